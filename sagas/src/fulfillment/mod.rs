//! The order-fulfillment saga: reserve stock for every line → authorize
//! the payment → confirm the order and schedule the shipment → (courier
//! assigned, parcel picked up) capture the payment, commit the stock →
//! (delivered) complete the order; compensating on every failure path.
//!
//! - [`state`] — the pure state machine (`handle(state, input, now)`).
//! - [`outgoing`] — the commands it sends, with deterministic ids.
//! - [`inputs`] — records → inputs (and the checkout policy's trigger).
//! - [`worker`] — the exactly-once consumer that runs it.

pub mod inputs;
pub mod outgoing;
pub mod state;
pub mod worker;

#[cfg(test)]
mod tests;

pub use state::{FulfillmentState, FulfillmentTimeouts, Input, Stage};
pub use worker::{Clock, FulfillmentWorker, SagaError, WorkerConfig, WorkerStats, SAGA_ACTOR};
