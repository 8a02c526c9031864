//! Benchmarks. Every figure is reported beside a raw baseline measured in
//! the same run on the same servers, as a ratio — never as an absolute
//! number asserted in a test.

pub mod log;
pub mod memory;
pub mod orders;
pub mod projections;
