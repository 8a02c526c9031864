//! [`AvroCodec`]: records <-> bytes in the Confluent wire format.
//!
//! * **Encoding is synchronous and touches only memory**: the schema id of a
//!   subject (`<topic>-<full.RecordName>`, TopicRecordNameStrategy) must be in
//!   the cache, put there by [`AvroCodec::register_contract`] (or
//!   [`AvroCodec::register_schema`]) at start-up; otherwise
//!   [`CodecError::NotRegistered`].
//! * **Decoding is async**: the writer schema comes from the header's id; an
//!   id not yet cached is fetched from the registry once. The body is
//!   guarded (see [`guard`](self)) before apache-avro sees it, then resolved
//!   to the reader's (current) schema when the writer's differs, so records
//!   written with older versions decode into today's types.
//! * **Encoding takes a fast path** ([`fast`]) when the value's type has a
//!   generated direct writer and the topic's writer schema is the one it was
//!   generated for: the same bytes as apache-avro, without building and
//!   resolving a `Value` tree. Everything else goes through apache-avro.
//! * **So does decoding**, when the record's writer schema is the type's own
//!   (nothing to resolve): generated readers fill the Rust type directly.
//!   They bound every length by the bytes left, so they need no guard.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod body;
pub mod fast;
mod guard;
pub mod wire;

use fast::{AvroRead, AvroWrite};

/// A payload type's generated reader (`EventPayload::read_fields`).
type ReadFields<P> = fn(&str, &mut &[u8]) -> Option<Result<P, fast::ReadError>>;

/// Reads the body of `bytes` (written with `writer`) with a generated
/// reader, which must take all of it; `None` when `read` has no reader for
/// the record (the caller uses apache-avro). Errors as apache-avro's path
/// reports them.
fn read_body<T>(
    writer: &WriterSchema,
    bytes: &[u8],
    read: impl FnOnce(&mut &[u8]) -> Option<Result<T, fast::ReadError>>,
) -> Option<Result<T, CodecError>> {
    let mut input = match wire::split(bytes) {
        Ok((_, body)) => body,
        Err(e) => return Some(Err(e)),
    };
    let fail = |reason: String| CodecError::BodyDoesNotDecode {
        schema_id: writer.id,
        record: writer.full_name.clone(),
        reason,
    };
    Some(match read(&mut input)? {
        Ok(value) if input.is_empty() => Ok(value),
        Ok(_) => Err(fail(format!("{} trailing bytes", input.len()))),
        Err(e) => Err(fail(e.to_string())),
    })
}

use crate::contract::{self, NamedRecord};
pub use crate::hash_chain::{canonical_event_bytes, ChainLink};
pub use crate::payload::{CommandPayload, EventPayload};
use crate::registry::{RegistryError, SchemaRegistry};
use crate::topics::TopicNames;
use crate::{AggregateSnapshot, CodecError, CommandEnvelope, CommandOutcome, EventEnvelope};

/// The cap set with `apache_avro::max_allocation_bytes` (process-wide, first
/// setter wins): no single string, byte array or block may ask for more.
/// The guard already bounds allocations by the record's size; this is the
/// second line of defence.
pub const MAX_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

/// A writer schema known by id.
#[derive(Debug)]
struct WriterSchema {
    id: u32,
    full_name: String,
    schema: Schema,
    guard: guard::Guard,
    /// Address of a reader schema known to equal `schema` (0: none yet), so
    /// the fast-path check is one atomic load on the hot path.
    same_as_reader: AtomicUsize,
}

impl WriterSchema {
    fn new(id: u32, full_name: String, schema: Schema) -> Self {
        let guard = guard::Guard::new(&schema);
        Self {
            id,
            full_name,
            schema,
            guard,
            same_as_reader: AtomicUsize::new(0),
        }
    }
}

/// Encodes and decodes QuickStore records in the Confluent wire format,
/// with a schema registry behind in-memory caches. Share it in an `Arc`.
pub struct AvroCodec {
    registry: Arc<dyn SchemaRegistry>,
    /// topic -> record full name -> writer schema.
    subjects: RwLock<HashMap<String, HashMap<String, Arc<WriterSchema>>>>,
    /// schema id -> writer schema.
    by_id: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    /// (schema id, reader schema address) -> writer equals reader (no resolution needed).
    same_schema: RwLock<HashMap<(u32, usize), bool>>,
    /// Whether encoding may use the generated writers (see [`fast`]).
    fast_path: bool,
}

impl fmt::Debug for AvroCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = self.by_id.read().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("AvroCodec")
            .field("registry", &self.registry)
            .field("cached_schema_ids", &ids)
            .field("fast_path", &self.fast_path)
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl AvroCodec {
    /// A codec over `registry`, with empty caches.
    pub fn new(registry: Arc<dyn SchemaRegistry>) -> Self {
        let cap = apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
        if cap != MAX_ALLOCATION_BYTES {
            tracing::debug!(cap, "apache-avro allocation cap was already set");
        }
        Self {
            registry,
            subjects: RwLock::default(),
            by_id: RwLock::default(),
            same_schema: RwLock::default(),
            fast_path: true,
        }
    }

    /// The same codec encoding everything through apache-avro: the
    /// reference the fast path is measured and tested against, and a
    /// switch should a discrepancy ever be suspected in production.
    pub fn without_fast_path(mut self) -> Self {
        self.fast_path = false;
        self
    }

    /// Whether encoding may use the generated writers.
    pub fn fast_path(&self) -> bool {
        self.fast_path
    }

    /// The registry behind the codec.
    pub fn registry(&self) -> &Arc<dyn SchemaRegistry> {
        &self.registry
    }

    /// Registers (idempotently) every schema of the contract under its
    /// subject on `topics` (see [`contract::topics_for`]) and fills the caches.
    pub async fn register_contract(&self, topics: &TopicNames) -> Result<(), CodecError> {
        contract::load()?;
        for def in contract::subject_defs() {
            for topic in contract::topics_for(def, topics) {
                self.register_contract_record(&topic, def.full_name).await?;
            }
        }
        Ok(())
    }

    /// Sets `level` on every subject of the contract on `topics` (deployments
    /// use `BACKWARD_TRANSITIVE`, the rule the repository's compatibility
    /// guard enforces; the registry's default is `BACKWARD`). Needs config
    /// rights on the registry, so it is a deployment step, not part of
    /// [`Self::register_contract`].
    pub async fn set_contract_compatibility(
        &self,
        topics: &TopicNames,
        level: crate::registry::CompatibilityLevel,
    ) -> Result<(), CodecError> {
        for def in contract::subject_defs() {
            for topic in contract::topics_for(def, topics) {
                self.registry
                    .set_compatibility(Some(&contract::subject(&topic, def.full_name)), level)
                    .await?;
            }
        }
        Ok(())
    }

    /// Registers one contract record for one topic, e.g. `CommandOutcome` on a
    /// saga's replies topic. Returns the schema id.
    pub async fn register_contract_record(
        &self,
        topic: &str,
        record_full_name: &str,
    ) -> Result<u32, CodecError> {
        contract::load()?;
        let def = contract::def(record_full_name)
            .filter(|d| d.is_subject())
            .ok_or_else(|| CodecError::UnknownRecord(record_full_name.to_owned()))?;
        let schema = contract::schema(def.full_name)
            .ok_or_else(|| CodecError::Contract(format!("{} does not parse", def.full_name)))?;
        let subject = contract::subject(topic, def.full_name);
        let id = self.registry.register(&subject, def.schema_json).await?;
        self.remember(topic, def.full_name, id, schema);
        Ok(id)
    }

    /// Registers a record schema outside the contract (tests use a
    /// `com.quickstore.test.Counter*` aggregate) for `topic`. Returns its id.
    pub async fn register_schema(&self, topic: &str, schema: &Schema) -> Result<u32, CodecError> {
        let full_name = contract::record_full_name(schema).ok_or_else(|| {
            CodecError::InvalidSchema("only record schemas can be registered".into())
        })?;
        let json =
            serde_json::to_string(schema).map_err(|e| CodecError::InvalidSchema(e.to_string()))?;
        let id = self
            .registry
            .register(&contract::subject(topic, &full_name), &json)
            .await?;
        self.remember(topic, &full_name, id, schema);
        Ok(id)
    }

    fn remember(&self, topic: &str, full_name: &str, id: u32, schema: &Schema) {
        let writer = write(&self.by_id)
            .entry(id)
            .or_insert_with(|| {
                Arc::new(WriterSchema::new(id, full_name.to_owned(), schema.clone()))
            })
            .clone();
        write(&self.subjects)
            .entry(topic.to_owned())
            .or_default()
            .insert(full_name.to_owned(), writer);
    }

    /// The schema id registered for `record_full_name` on `topic`, if cached.
    pub fn schema_id_for(&self, topic: &str, record_full_name: &str) -> Option<u32> {
        self.registered(topic, record_full_name).ok().map(|w| w.id)
    }

    fn registered(
        &self,
        topic: &str,
        record_full_name: &str,
    ) -> Result<Arc<WriterSchema>, CodecError> {
        read(&self.subjects)
            .get(topic)
            .and_then(|records| records.get(record_full_name))
            .cloned()
            .ok_or_else(|| CodecError::NotRegistered {
                subject: contract::subject(topic, record_full_name),
            })
    }

    /// The writer schema of `id`: from the cache, else from the registry (then cached).
    async fn writer(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        if let Some(writer) = read(&self.by_id).get(&id) {
            return Ok(writer.clone());
        }
        let text = match self.registry.schema_by_id(id).await {
            Ok(text) => text,
            Err(RegistryError::SchemaNotFound(_)) => return Err(CodecError::UnknownSchemaId(id)),
            Err(e) => return Err(e.into()),
        };
        let unusable = |reason: String| CodecError::UnusableSchema {
            schema_id: id,
            reason,
        };
        let schema = Schema::parse_str(&text).map_err(|e| unusable(e.to_string()))?;
        let full_name = contract::record_full_name(&schema)
            .ok_or_else(|| unusable("not a record schema".into()))?;
        let writer = write(&self.by_id)
            .entry(id)
            .or_insert_with(|| Arc::new(WriterSchema::new(id, full_name, schema)))
            .clone();
        Ok(writer)
    }

    /// `None` when data written with `writer` needs no resolution to `reader`.
    fn resolution_target(
        &self,
        writer: &WriterSchema,
        reader: &'static Schema,
    ) -> Option<&'static Schema> {
        let key = (writer.id, std::ptr::from_ref(reader) as usize);
        let cached = read(&self.same_schema).get(&key).copied();
        let same = match cached {
            Some(same) => same,
            None => {
                let same = writer.schema == *reader;
                write(&self.same_schema).insert(key, same);
                same
            }
        };
        (!same).then_some(reader)
    }

    /// Whether a direct writer or reader generated for `reader` (the schema
    /// the value's type knows) may write or read records of `writer`: only
    /// when the two are the same schema, since the generated code bakes in
    /// the field layout. A topic registered with another version (tests of
    /// schema evolution do that), or a record written with one, keeps the
    /// apache-avro path, which resolves between the two schemas.
    fn writes_as(&self, writer: &WriterSchema, reader: Option<&'static Schema>) -> bool {
        let Some(reader) = reader else {
            return false;
        };
        if !self.fast_path {
            return false;
        }
        let address = std::ptr::from_ref(reader) as usize;
        if writer.same_as_reader.load(Ordering::Relaxed) == address {
            return true;
        }
        let same = self.resolution_target(writer, reader).is_none();
        if same {
            writer.same_as_reader.store(address, Ordering::Relaxed);
        }
        same
    }

    fn encode_with(&self, writer: &WriterSchema, value: Value) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(256);
        wire::write_header(writer.id, &mut out);
        body::encode(&writer.schema, &writer.full_name, value, &mut out)?;
        Ok(out)
    }

    fn decode_body(
        &self,
        writer: &WriterSchema,
        reader: Option<&Schema>,
        bytes: &[u8],
    ) -> Result<Value, CodecError> {
        let (_, payload) = wire::split(bytes)?;
        body::decode(
            writer.id,
            &writer.full_name,
            &writer.schema,
            &writer.guard,
            reader,
            payload,
        )
    }

    /// Encodes an event (envelope + payload as one record) for `topic`.
    pub fn encode_event<E: EventPayload>(
        &self,
        topic: &str,
        envelope: &EventEnvelope,
        event: &E,
    ) -> Result<Vec<u8>, CodecError> {
        let name = event.record_name();
        self.encode_enveloped(
            topic,
            name,
            E::schema(name),
            envelope,
            |out| event.write_fields(out),
            || event.to_fields(),
        )
    }

    /// Encodes an envelope-first record (event or command): the generated
    /// writers when the topic's registered schema is the type's own, else
    /// apache-avro.
    fn encode_enveloped<Env: AvroWrite + Serialize>(
        &self,
        topic: &str,
        name: &str,
        own_schema: Option<&'static Schema>,
        envelope: &Env,
        write_fields: impl FnOnce(&mut Vec<u8>) -> bool,
        to_fields: impl FnOnce() -> Result<Value, CodecError>,
    ) -> Result<Vec<u8>, CodecError> {
        let writer = self.registered(topic, name)?;
        if self.writes_as(&writer, own_schema) {
            let mut out = Vec::with_capacity(256);
            wire::write_header(writer.id, &mut out);
            envelope.write_avro(&mut out);
            if write_fields(&mut out) {
                return Ok(out);
            }
        }
        let value = body::compose(name, body::to_value(name, envelope)?, to_fields()?)?;
        self.encode_with(&writer, value)
    }

    /// Seals the event into its aggregate's hash chain (sets `envelope.hash`,
    /// as [`crate::hash_chain::seal`]) and encodes it for `topic`: what the
    /// command processor does with every new event. On the fast path the
    /// body is written once with an empty hash (the canonical bytes, hashed
    /// in place) and the hash is then spliced in, instead of encoding twice.
    pub fn encode_sealed_event<E: EventPayload>(
        &self,
        topic: &str,
        envelope: &mut EventEnvelope,
        event: &E,
    ) -> Result<Vec<u8>, CodecError> {
        let name = event.record_name();
        let writer = self.registered(topic, name)?;
        if self.writes_as(&writer, E::schema(name)) {
            let mut out = Vec::with_capacity(256);
            wire::write_header(writer.id, &mut out);
            let body_start = out.len();
            let hash_at = envelope.write_avro_with_hash(&[], &mut out);
            if event.write_fields(&mut out) {
                let canonical = out.get(body_start..).unwrap_or_default();
                let hash = crate::hash_chain::event_hash(&envelope.prev_hash, canonical);
                // Empty bytes are the single length byte 0 at `hash_at`;
                // replace it with the length and the hash.
                if out.get(hash_at) != Some(&0) {
                    return Err(CodecError::Encode {
                        record: name.to_owned(),
                        reason: "the canonical envelope has no empty hash to replace".into(),
                    });
                }
                let mut field = Vec::with_capacity(hash.len() + 1);
                fast::write_bytes(&mut field, &hash);
                drop(out.splice(hash_at..=hash_at, field));
                envelope.hash = hash.to_vec();
                return Ok(out);
            }
        }
        crate::hash_chain::seal_with(envelope, event, self.fast_path)?;
        let value = body::compose(name, body::to_value(name, envelope)?, event.to_fields()?)?;
        self.encode_with(&writer, value)
    }

    /// Decodes an event of type `E`; [`CodecError::SchemaMismatch`] if the
    /// record is not one `E` holds.
    pub async fn decode_event<E: EventPayload>(
        &self,
        bytes: &[u8],
    ) -> Result<(EventEnvelope, E), CodecError> {
        self.decode_enveloped(
            bytes,
            std::any::type_name::<E>(),
            E::schema,
            E::read_fields,
            E::from_fields,
        )
        .await
    }

    /// Decodes an envelope-first record (event or command) whose payload
    /// type offers `schema`/`from_fields`: with the generated readers
    /// (`read_fields`) when the record was written with the type's own
    /// schema, else with apache-avro, resolving to that schema.
    async fn decode_enveloped<Env: DeserializeOwned + AvroRead, P>(
        &self,
        bytes: &[u8],
        payload_type: &str,
        schema: fn(&str) -> Option<&'static Schema>,
        read_fields: ReadFields<P>,
        from_fields: fn(&str, apache_avro::types::Value) -> Result<P, CodecError>,
    ) -> Result<(Env, P), CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        let name = writer.full_name.as_str();
        let reader = schema(name).ok_or_else(|| CodecError::SchemaMismatch {
            expected: payload_type.to_owned(),
            found: name.to_owned(),
        })?;
        if self.writes_as(&writer, Some(reader)) {
            let read = read_body(&writer, bytes, |input| {
                let envelope = match Env::read_avro(input) {
                    Ok(envelope) => envelope,
                    Err(e) => return Some(Err(e)),
                };
                read_fields(name, input).map(|payload| payload.map(|p| (envelope, p)))
            });
            if let Some(read) = read {
                return read;
            }
        }
        let value = self.decode_body(&writer, self.resolution_target(&writer, reader), bytes)?;
        let (envelope, fields) = body::split_envelope(name, value)?;
        let envelope = apache_avro::from_value(&envelope).map_err(|e| CodecError::Payload {
            record: name.to_owned(),
            reason: format!("envelope: {e}"),
        })?;
        Ok((envelope, from_fields(name, fields)?))
    }

    /// Encodes a command (envelope + payload as one record) for `topic`.
    pub fn encode_command<C: CommandPayload>(
        &self,
        topic: &str,
        envelope: &CommandEnvelope,
        command: &C,
    ) -> Result<Vec<u8>, CodecError> {
        let name = command.record_name();
        self.encode_enveloped(
            topic,
            name,
            C::schema(name),
            envelope,
            |out| command.write_fields(out),
            || command.to_fields(),
        )
    }

    /// Decodes a command of type `C`.
    pub async fn decode_command<C: CommandPayload>(
        &self,
        bytes: &[u8],
    ) -> Result<(CommandEnvelope, C), CodecError> {
        self.decode_enveloped(
            bytes,
            std::any::type_name::<C>(),
            C::schema,
            C::read_fields,
            C::from_fields,
        )
        .await
    }

    /// Encodes any other record (a [`crate::CommandOutcome`], an
    /// [`crate::AggregateSnapshot`], a saga's state event…) registered for `topic`.
    /// [`CommandOutcome`] and [`AggregateSnapshot`] (the processor's
    /// per-command records) take the fast path; prefer [`Self::encode_named`],
    /// which does for every generated type.
    pub fn encode_record<T: Serialize + 'static>(
        &self,
        topic: &str,
        record_full_name: &str,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let writer = self.registered(topic, record_full_name)?;
        // No specialization in stable Rust: recognise the two hot types by
        // `Any` (hence `'static`; every caller passes an owned record type).
        let any: &dyn Any = value;
        if let Some(outcome) = any.downcast_ref::<CommandOutcome>() {
            if let Some(out) = self.encode_fast(&writer, record_full_name, outcome) {
                return Ok(out);
            }
        } else if let Some(snapshot) = any.downcast_ref::<AggregateSnapshot>() {
            if let Some(out) = self.encode_fast(&writer, record_full_name, snapshot) {
                return Ok(out);
            }
        }
        let value = body::to_value(record_full_name, value)?;
        self.encode_with(&writer, value)
    }

    /// [`Self::encode_record`] for a generated type, which knows its name
    /// (and takes the fast path when it has a direct writer).
    pub fn encode_named<T: NamedRecord + Serialize>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let writer = self.registered(topic, T::FULL_NAME)?;
        if let Some(out) = self.encode_fast(&writer, T::FULL_NAME, value) {
            return Ok(out);
        }
        let value = body::to_value(T::FULL_NAME, value)?;
        self.encode_with(&writer, value)
    }

    /// The fast path for a whole generated record, `None` when it does not
    /// apply (another record name, another writer schema, no direct writer).
    fn encode_fast<T: NamedRecord>(
        &self,
        writer: &WriterSchema,
        record_full_name: &str,
        value: &T,
    ) -> Option<Vec<u8>> {
        if record_full_name != T::FULL_NAME
            || !self.writes_as(writer, contract::schema(T::FULL_NAME))
        {
            return None;
        }
        let mut out = Vec::with_capacity(128);
        wire::write_header(writer.id, &mut out);
        value.write_record(&mut out).then_some(out)
    }

    /// Decodes any record into `T` (resolved to the contract's current schema
    /// when the record is part of the contract). Prefer [`Self::decode_named`]
    /// when `T` is a generated type: it also checks the record name.
    pub async fn decode_record<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        let reader =
            contract::schema(&writer.full_name).and_then(|r| self.resolution_target(&writer, r));
        let value = self.decode_body(&writer, reader, bytes)?;
        apache_avro::from_value(&value).map_err(|e| CodecError::Payload {
            record: writer.full_name.clone(),
            reason: e.to_string(),
        })
    }

    /// Decodes a record that must be a `T` ([`CodecError::SchemaMismatch`] otherwise).
    pub async fn decode_named<T: NamedRecord + DeserializeOwned>(
        &self,
        bytes: &[u8],
    ) -> Result<T, CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        if writer.full_name != T::FULL_NAME {
            return Err(CodecError::SchemaMismatch {
                expected: T::FULL_NAME.to_owned(),
                found: writer.full_name.clone(),
            });
        }
        if self.writes_as(&writer, contract::schema(T::FULL_NAME)) {
            if let Some(read) = read_body(&writer, bytes, T::read_record) {
                return read;
            }
        }
        self.decode_record(bytes).await
    }

    /// Decodes any record with its own writer schema, unresolved — what a
    /// generic reader (confluent-kafka's `AvroDeserializer`, kcat) sees —
    /// with its record's full name. For exports.
    pub async fn decode_value(&self, bytes: &[u8]) -> Result<(String, Value), CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        let value = self.decode_body(&writer, None, bytes)?;
        Ok((writer.full_name.clone(), value))
    }

    /// The record's fully-qualified name from its schema id (for routing
    /// without decoding the body).
    pub async fn record_name(&self, bytes: &[u8]) -> Result<String, CodecError> {
        Ok(self
            .writer(wire::schema_id(bytes)?)
            .await?
            .full_name
            .clone())
    }

    /// The hash-chain view of an encoded event, computed with its own writer
    /// schema (so events written with any schema version verify): for
    /// auditors and `quickstore audit`.
    pub async fn chain_link(&self, bytes: &[u8]) -> Result<ChainLink, CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        let name = writer.full_name.clone();
        let value = self.decode_body(&writer, None, bytes)?;
        let Value::Record(mut fields) = value else {
            return Err(CodecError::SchemaMismatch {
                expected: "an event record".into(),
                found: name,
            });
        };
        let mismatch = || CodecError::SchemaMismatch {
            expected: "an event record with an EventEnvelope".into(),
            found: name.clone(),
        };
        let envelope = match fields.first_mut() {
            Some((field, envelope)) if field == body::ENVELOPE_FIELD => envelope,
            _ => return Err(mismatch()),
        };
        let text = |v: Option<&mut Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let aggregate_type =
            text(body::field_mut(envelope, "aggregate_type")).ok_or_else(mismatch)?;
        let aggregate_id = text(body::field_mut(envelope, "aggregate_id")).ok_or_else(mismatch)?;
        let version = match body::field_mut(envelope, "version") {
            Some(Value::Long(v)) => *v,
            _ => return Err(mismatch()),
        };
        let prev_hash = match body::field_mut(envelope, "prev_hash") {
            Some(Value::Bytes(b)) => b.clone(),
            _ => return Err(mismatch()),
        };
        let hash = match body::field_mut(envelope, body::HASH_FIELD) {
            Some(Value::Bytes(b)) => std::mem::take(b),
            _ => return Err(mismatch()),
        };
        let mut canonical = Vec::new();
        body::encode(&writer.schema, &name, Value::Record(fields), &mut canonical)?;
        Ok(ChainLink {
            record_name: name,
            aggregate_type,
            aggregate_id,
            version,
            prev_hash,
            hash,
            canonical,
        })
    }
}

pub(crate) use body::{compose, encode as encode_body, field_mut, to_value, HASH_FIELD};
