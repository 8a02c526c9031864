//! The QuickStore event contract: what every record on every QuickStore Kafka
//! topic looks like, and how it gets there and back.
//!
//! # Layout
//!
//! One module per job, each small enough to read in one sitting (the
//! mini-redis way: the file tree is the table of contents):
//!
//! | module | what it holds |
//! | --- | --- |
//! | `avro/` (folder, not a module) | **the source of truth**: one `.avsc` file per record/enum, `avro/<context>/{events,commands,types}/`, shared `avro/types/`, top-level `avro/records/`, and every published version under `avro/history/` |
//! | `build.rs` | the generator: reads the `.avsc` files, checks the conventions, writes the Rust types and the self-contained ("inlined") schemas to `$OUT_DIR` |
//! | [`common`], [`catalog`], [`inventory`], [`orders`], [`payments`], [`deliveries`], [`customers`] | the generated types, one module per Avro namespace; per context an enum of all its events ([`catalog::CatalogEvent`], …) and of all its commands |
//! | [`any`] | [`AnyEvent`]/[`AnyCommand`]: every event/command of the contract, for consumers of several contexts |
//! | [`contract`] | the table of all schemas (kind, context, aggregate, inlined JSON), the parsed schemas, and which topics each record is registered for |
//! | [`payload`] | the [`EventPayload`]/[`CommandPayload`] traits the codec is generic over |
//! | [`topics`] | [`Context`] and [`TopicNames`]: every topic name in one place |
//! | [`codec`] | [`AvroCodec`]: Confluent wire format (magic byte, schema id, Avro body), subject naming, caches, the input guard; [`codec::fast`]: the generated direct Avro writers and readers the codec uses when a record's schema is its type's own (ADR 0027) |
//! | [`hash_chain`] | the tamper-evident chain: canonical event bytes and `hash = SHA-256(prev_hash ‖ canonical)` |
//! | [`registry`] | the [`SchemaRegistry`](registry::SchemaRegistry) port with Confluent semantics, its embedded and Confluent-HTTP adapters, compatibility rules, and (feature `http-server`) the embedded registry served over the Confluent REST subset |
//! | [`error`] | [`CodecError`] and small error types |
//!
//! # Why it is shaped like this
//!
//! * **The `.avsc` files are the contract**, not the Rust types: analysts and
//!   other languages read them, the registry stores them, the compatibility
//!   guard (`tests/compatibility_guard.rs`) compares them with every
//!   published version. Rust types are derived from them at build time, so
//!   the two cannot drift.
//! * **Each event/command record carries its envelope as its first field**,
//!   and the registered schema is fully inlined, so `confluent-kafka`'s
//!   `AvroDeserializer`, `fastavro`, Spark or `kcat -s avro` decode any record
//!   with nothing but the schema registry — no private formats.
//! * **Subjects use TopicRecordNameStrategy** (`<topic>-<full.RecordName>`):
//!   one topic per context holds many event types, each evolving on its own
//!   (see `docs/adr/0002-avro-contract-and-subject-naming.md`).
//! * **Encoding is synchronous and cache-only** (the hot path of the command
//!   processor does no I/O); the contract is registered once at start-up.
//!   **Decoding is async**: an unknown schema id is fetched from the
//!   registry once, then cached.
//! * **Encoding skips apache-avro when it can**: `build.rs` also generates
//!   a direct binary writer per type ([`codec::fast::AvroWrite`]), used when
//!   the topic's writer schema is the type's own; it writes apache-avro's
//!   exact bytes (proved for every record by `tests/fast_encoding.rs`), so
//!   the hash chain and every reader are unaffected. Decoding stays on
//!   apache-avro, which resolves old writer schemas.
//! * **No input can panic the decoder or make it allocate without bound**:
//!   every body is pre-scanned against its writer schema (lengths and counts
//!   must fit the bytes that are actually there) before apache-avro decodes
//!   it; a property test feeds random and mutated records to prove it.

pub mod any;
pub mod catalog;
pub mod codec;
pub mod common;
pub mod contract;
pub mod customers;
pub mod deliveries;
pub mod error;
pub mod hash_chain;
pub mod inventory;
pub mod orders;
pub mod payload;
pub mod payments;
pub mod registry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topics;

pub use any::{AnyCommand, AnyEvent};
pub use codec::AvroCodec;
pub use common::{
    AggregateSnapshot, CommandEnvelope, CommandOutcome, CommandStatus, EventEnvelope,
    FulfillmentStage, OrderFulfillmentStep, PostalAddress, SagaCommand,
};
pub use contract::NamedRecord;
pub use error::{CodecError, UnknownSymbol};
pub use payload::{CommandPayload, EventPayload};
pub use topics::{Context, TopicNames, ORDER_FULFILLMENT};
