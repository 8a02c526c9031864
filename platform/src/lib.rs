//! # platform — ports and adapters shared by every QuickStore service
//!
//! QuickStore keeps its system of record in an append-only, partitioned event
//! log. Services never talk to Kafka (or to the embedded twin) directly: they
//! talk to the [`eventlog::EventLog`] port, whose semantics are defined by the
//! conformance suite in `tests/conformance/` and not by any one adapter.
//!
//! Layout:
//! - [`eventlog`] — the port: topics, partitions, records, consumer groups
//!   with exactly-once transactions (records + consumed offsets committed
//!   atomically, zombies fenced), read_committed range reads.
//!   - [`eventlog::kafka`] — the production adapter over `rdkafka`
//!     (idempotent + transactional producer, `send_offsets_to_transaction`).
//!   - [`eventlog::embedded`] — the single-binary adapter: one directory on
//!     disk, crash-safe, same semantics, used by `quickstore dev` and fast tests.
//! - [`config`] — layered settings (defaults < TOML file < `QS_*` env) with
//!   [`config::Secret`] values that never print.
//! - [`partitioner`] — Java-compatible murmur2 key placement, so every Kafka
//!   tool agrees with us on where a key lives.
//! - [`readstore`] — the read-store port: typed query-first tables,
//!   last-write-wins by write timestamp (idempotent projections), paging;
//!   adapters for ScyllaDB/Cassandra (`scylla` driver) and embedded (redb).
//! - [`pii`] — crypto-shredding: per-customer data keys on the read store,
//!   sealed personal fields, reveal-or-erase for readers (ADR 0014).
//! - [`auth`] — argon2id passwords, the credential store (memory | redb),
//!   ES256 access tokens with a JWKS, rotating refresh tokens with reuse
//!   detection, logout, and the local [`auth::Verifier`] every service runs.
//! - [`ratelimit`] — token buckets with time as data, for the APIs' limits.
//! - [`http_rejections`] — axum's plain-text rejections read for the APIs'
//!   problem answers ([`http_rejections::as_problem`]).
//! - [`openapi`] — what both APIs' OpenAPI documents share.
//! - [`telemetry`] — tracing, metrics, probes, request size limits.
//!
//! Why ports at all: the command processor, sagas and projectors are written
//! once against the port; the embedded adapter makes the whole system one
//! process for development, while the test suite runs the same scenarios on
//! a real broker.

pub mod auth;
pub mod config;
pub mod eventlog;
pub mod http_rejections;
pub mod openapi;
pub mod partitioner;
pub mod pii;
pub mod ratelimit;
pub mod readstore;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
