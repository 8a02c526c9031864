//! # sagas — process managers
//!
//! - [`fulfillment`] — the order-fulfillment saga: orchestrated, keyed by
//!   order id, its state event-sourced in `sagas.order-fulfillment.events`
//!   (one `OrderFulfillmentStep` per step, hash-chained like any aggregate),
//!   each step one exactly-once transaction (inputs consumed, step recorded,
//!   commands sent, offsets committed), durable deadlines for the payment
//!   authorization and the courier assignment. The same worker runs the
//!   checkout policy (a checked-out cart places its order).
//! - [`testkit`] — given/when/then for the saga state machine.
//! - [`courier`] — a simulated courier fleet (assign, pick up, deliver) for
//!   `quickstore dev` demos and benchmarks.
//!
//! Why orchestration and not choreography: one place (the saga's steps)
//! tells an operator where an order is and why, and compensation order is
//! explicit instead of emerging from a web of reactions (ADR 0005).

pub mod courier;
pub mod fulfillment;
pub mod testkit;
