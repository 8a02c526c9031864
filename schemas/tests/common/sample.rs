//! The samples live in the crate (feature `testing`) so other crates' suites
//! can use them too.
#[allow(unused_imports, reason = "each test binary uses a different part")]
pub use schemas::testing::*;
