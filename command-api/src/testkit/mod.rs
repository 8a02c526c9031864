//! Test support shipped with the crate (cqrs-es style): a given/when/then
//! harness for aggregates, and [`counter`], the smallest real aggregate —
//! used by the processor's tests and by `quickstore bench log`.

pub mod counter;
mod given_when_then;

pub use given_when_then::{AggregateTest, Then};
