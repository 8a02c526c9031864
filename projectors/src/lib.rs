//! # projectors — read-model builders
//!
//! - [`projection`] — what a projection is: a pure step from one event to
//!   the row writes it causes, idempotent by write timestamps (no counters,
//!   no read-modify-write).
//! - [`projections`] — the read models: [`projections::orders`] (order by
//!   id with payment and shipment status, orders by customer, timeline)…
//!
//! - [`runtime`] — the projector: a consumer group per projection,
//!   at-least-once, offsets committed after the writes are durable, the
//!   store retried while it is down, poison events dead-lettered with their
//!   key parked.
//!
//! Rebuild into a new table generation and `dlq retry` are the read-side
//! issue's next steps.

pub mod generations;
pub mod projection;
pub mod projections;
pub mod runtime;

/// The metadata tables of the projectors (generation 0): which generation
/// serves, and the dead-letter bookkeeping.
pub fn meta_tables() -> &'static [platform::readstore::TableDef] {
    &[generations::PROJECTION_GENERATIONS]
}
