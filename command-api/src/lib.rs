//! # command-api — the write side
//!
//! Commands reach QuickStore over HTTP ([`http`]) and travel as records on
//! `<context>.commands` ([`bus`]). This crate turns them into events,
//! exactly once:
//!
//! - [`aggregate`] — the shape of a pure aggregate: `decide(state, command)
//!   -> events | refusal` and `evolve(state, event) -> state`, no I/O, no
//!   clock (time arrives in the command envelope).
//! - [`processor`] — the command processor, generic over an aggregate: a
//!   consumer-group member that owns some partitions of the command topic and
//!   is therefore the single writer of every aggregate whose key lives there.
//!   Per batch it appends events, outcomes and snapshots and commits the
//!   consumed offsets in one log transaction.
//! - [`gateway`] — the payment gateway port, its deterministic simulator,
//!   the consultant that asks it before a payment decision, and signed
//!   webhook verification.
//! - [`topology`] — the topics a context needs, co-partitioned.
//! - [`http`] — the command API (axum): auth, idempotency, problem+json,
//!   OpenAPI; [`bus`] — sends commands and awaits their outcomes;
//!   [`pricebook`] — the catalog prices carts and orders are priced from.
//! - [`domain`] — the six contexts' aggregates; [`testkit`] — given/when/then.
//!
//! Why a consumer group and not a database lock: Kafka has no conditional
//! append, so optimistic concurrency comes from partition ownership plus
//! transactional fencing (see `docs/adr/0003-single-writer-command-processor.md`).

pub mod aggregate;
pub mod bus;
pub mod domain;
pub mod gateway;
pub mod http;
pub mod pricebook;
pub mod processor;
pub mod testkit;
pub mod topology;
