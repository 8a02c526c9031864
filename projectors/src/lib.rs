//! # projectors — read-model builders
//!
//! - [`projection`] — what a projection is: a pure step from one event to
//!   the row writes it causes, idempotent by write timestamps (no counters,
//!   no read-modify-write).
//! - [`projections`] — the read models: [`projections::orders`] (order by
//!   id with payment and shipment status, orders by customer, timeline)…
//!
//! The runtime (consumer group per projection, at-least-once, offsets
//! committed after the writes are durable), rebuild into a new table
//! generation and the dead-letter handling are the read-side issue's next
//! steps.

pub mod projection;
pub mod projections;
