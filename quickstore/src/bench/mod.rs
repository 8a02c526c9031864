//! Benchmarks. Every figure is reported beside a raw baseline measured in
//! the same run on the same servers, as a ratio — never as an absolute
//! number asserted in a test.

pub mod all;
pub mod consume;
pub mod figure;
pub mod load;
pub mod log;
pub mod machine;
pub mod markdown;
pub mod memory;
pub mod memory_roles;
pub mod order_steps;
pub mod orders;
pub mod plots;
pub mod projections;
pub mod report;
pub mod stages;
