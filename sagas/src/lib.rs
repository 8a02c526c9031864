//! # sagas — process managers
//!
//! Will hold the order-fulfillment saga (reserve stock → authorize payment →
//! schedule shipment → capture → complete, with compensations) and its
//! durable timers. Nothing lives here yet: the foundation issue only builds
//! the event log and the command processor the saga will stand on.
