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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod body;
mod guard;
pub mod wire;

use crate::contract::{self, NamedRecord};
pub use crate::hash_chain::{canonical_event_bytes, ChainLink};
pub use crate::payload::{CommandPayload, EventPayload};
use crate::registry::{RegistryError, SchemaRegistry};
use crate::topics::TopicNames;
use crate::{CodecError, CommandEnvelope, EventEnvelope};

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
}

impl WriterSchema {
    fn new(id: u32, full_name: String, schema: Schema) -> Self {
        let guard = guard::Guard::new(&schema);
        Self {
            id,
            full_name,
            schema,
            guard,
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
}

impl fmt::Debug for AvroCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = self.by_id.read().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("AvroCodec")
            .field("registry", &self.registry)
            .field("cached_schema_ids", &ids)
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
        }
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
        let writer = self.registered(topic, name)?;
        let value = body::compose(name, body::to_value(name, envelope)?, event.to_fields()?)?;
        self.encode_with(&writer, value)
    }

    /// Decodes an event of type `E`; [`CodecError::SchemaMismatch`] if the
    /// record is not one `E` holds.
    pub async fn decode_event<E: EventPayload>(
        &self,
        bytes: &[u8],
    ) -> Result<(EventEnvelope, E), CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        let name = writer.full_name.as_str();
        let reader = E::schema(name).ok_or_else(|| CodecError::SchemaMismatch {
            expected: std::any::type_name::<E>().to_owned(),
            found: name.to_owned(),
        })?;
        let value = self.decode_body(&writer, self.resolution_target(&writer, reader), bytes)?;
        let (envelope, fields) = body::split_envelope(name, value)?;
        let envelope = apache_avro::from_value(&envelope).map_err(|e| CodecError::Payload {
            record: name.to_owned(),
            reason: format!("envelope: {e}"),
        })?;
        Ok((envelope, E::from_fields(name, fields)?))
    }

    /// Encodes a command (envelope + payload as one record) for `topic`.
    pub fn encode_command<C: CommandPayload>(
        &self,
        topic: &str,
        envelope: &CommandEnvelope,
        command: &C,
    ) -> Result<Vec<u8>, CodecError> {
        let name = command.record_name();
        let writer = self.registered(topic, name)?;
        let value = body::compose(name, body::to_value(name, envelope)?, command.to_fields()?)?;
        self.encode_with(&writer, value)
    }

    /// Decodes a command of type `C`.
    pub async fn decode_command<C: CommandPayload>(
        &self,
        bytes: &[u8],
    ) -> Result<(CommandEnvelope, C), CodecError> {
        let writer = self.writer(wire::schema_id(bytes)?).await?;
        let name = writer.full_name.as_str();
        let reader = C::schema(name).ok_or_else(|| CodecError::SchemaMismatch {
            expected: std::any::type_name::<C>().to_owned(),
            found: name.to_owned(),
        })?;
        let value = self.decode_body(&writer, self.resolution_target(&writer, reader), bytes)?;
        let (envelope, fields) = body::split_envelope(name, value)?;
        let envelope = apache_avro::from_value(&envelope).map_err(|e| CodecError::Payload {
            record: name.to_owned(),
            reason: format!("envelope: {e}"),
        })?;
        Ok((envelope, C::from_fields(name, fields)?))
    }

    /// Encodes any other record (a [`crate::CommandOutcome`], an
    /// [`crate::AggregateSnapshot`], a saga's state event…) registered for `topic`.
    pub fn encode_record<T: Serialize>(
        &self,
        topic: &str,
        record_full_name: &str,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let writer = self.registered(topic, record_full_name)?;
        let value = body::to_value(record_full_name, value)?;
        self.encode_with(&writer, value)
    }

    /// [`Self::encode_record`] for a generated type, which knows its name.
    pub fn encode_named<T: NamedRecord + Serialize>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        self.encode_record(topic, T::FULL_NAME, value)
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
        let name = self.record_name(bytes).await?;
        if name != T::FULL_NAME {
            return Err(CodecError::SchemaMismatch {
                expected: T::FULL_NAME.to_owned(),
                found: name,
            });
        }
        self.decode_record(bytes).await
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
