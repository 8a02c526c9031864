//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod conformance;
pub mod sample;

/// A name fragment unique to this run (registry subjects and record names
/// must not collide on a long-lived real registry).
pub fn unique() -> String {
    format!("r{}", uuid::Uuid::new_v4().simple())
}
