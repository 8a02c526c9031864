//! # projectors — read-model builders
//!
//! - [`projection`] — what a projection is: a pure step from one event to
//!   the row writes it causes, idempotent by write timestamps (no counters,
//!   no read-modify-write).
//! - [`projections`] — the read models: [`projections::orders`] (order by
//!   id with payment and shipment status, orders by customer, timeline)…
//!
//! - `decode` — the pure half of a batch: decoding and projecting
//!   records, run for the next poll while a batch is written.
//! - [`runtime`] — the projector: a consumer group per projection and
//!   table generation, at-least-once, offsets committed after the writes
//!   are durable, the store retried while it is down, poison events
//!   dead-lettered with their key parked.
//! - [`service`] — runs every projection on its serving generation and
//!   moves to a new one when a rebuild switches; status with lag.
//! - [`rebuild`] — builds a new table generation from offset 0 beside the
//!   serving one, hands off and switches readers to it, drops the old one.
//! - [`generations`] — which generation serves, and the rebuild's
//!   hand-off.
//! - [`dlq`] — dead letters, persistently parked keys and `dlq retry`.
//! - [`testkit`] — given/when/then for projections over an in-memory read
//!   store, and a check that redelivery and interleaving change no row.

mod decode;
pub mod dlq;
pub mod generations;
pub mod projection;
pub mod projections;
pub mod rebuild;
pub mod runtime;
pub mod service;
pub mod testkit;

/// The metadata tables of the projectors (generation 0): which generation
/// serves, and the dead-letter bookkeeping.
pub fn meta_tables() -> &'static [platform::readstore::TableDef] {
    &[
        generations::PROJECTION_GENERATIONS,
        dlq::PARKED_KEYS,
        dlq::PROJECTION_CONTROL,
        generations::HANDOFF_ACKS,
    ]
}
