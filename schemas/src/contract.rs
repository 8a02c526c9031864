//! The contract as data: every schema generated from `avro/`, its kind,
//! context and aggregate, its self-contained (inlined) JSON, the parsed
//! [`Schema`], and the topics each record is registered for.

use std::collections::HashMap;
use std::sync::LazyLock;

use apache_avro::Schema;
use serde_json::{json, Value as Json};

use crate::topics::{Context, TopicNames};
use crate::CodecError;

/// Implemented by every generated type: its fully-qualified Avro name.
pub trait NamedRecord {
    /// E.g. `com.quickstore.catalog.ProductCreated`.
    const FULL_NAME: &'static str;

    /// The fast path of [`crate::AvroCodec::encode_named`]: appends the
    /// record's Avro binary encoding (exactly apache-avro's, for the
    /// contract's schema of [`Self::FULL_NAME`]) and returns `true`, or writes
    /// nothing and returns `false` (no direct writer: apache-avro is used).
    /// Generated for every shared type and top-level record; event/command
    /// structs are payloads without their envelope and return `false`.
    fn write_record(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// The fast path of [`crate::AvroCodec::decode_named`]: reads the
    /// record from the front of `input` (written with the contract's schema
    /// of [`Self::FULL_NAME`]), or `None` when the type has no direct
    /// reader (apache-avro is used). Generated beside `write_record`.
    fn read_record(input: &mut &[u8]) -> Option<Result<Self, crate::codec::fast::ReadError>>
    where
        Self: Sized,
    {
        let _ = input;
        None
    }
}

/// What a schema is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefKind {
    /// A type referenced by other schemas (envelopes, addresses, enums); never a subject of its own.
    Named,
    /// A top-level record that is not an event or command ([`crate::CommandOutcome`], [`crate::AggregateSnapshot`]).
    Record,
    /// A domain event (first field: `envelope: EventEnvelope`).
    Event,
    /// A command (first field: `envelope: CommandEnvelope`).
    Command,
}

/// One schema of the contract.
#[derive(Debug)]
pub struct SchemaDef {
    /// E.g. `com.quickstore.catalog.ProductCreated`.
    pub full_name: &'static str,
    /// E.g. `ProductCreated`.
    pub name: &'static str,
    /// What the schema is for.
    pub kind: DefKind,
    /// The context, for events, commands and context types.
    pub context: Option<Context>,
    /// The aggregate type (`Product`, `Cart`, …), for events and commands.
    pub aggregate_type: Option<&'static str>,
    /// Source file, relative to `schemas/avro/`.
    pub source: &'static str,
    /// The self-contained schema (every referenced type inlined at first use):
    /// exactly what is registered in the schema registry.
    pub schema_json: &'static str,
}

impl SchemaDef {
    /// Whether the record is registered under subjects of its own.
    pub fn is_subject(&self) -> bool {
        self.kind != DefKind::Named
    }
}

mod generated {
    include!(concat!(env!("OUT_DIR"), "/defs.rs"));
}

/// Every schema of the contract, sorted by full name.
pub fn defs() -> &'static [SchemaDef] {
    generated::DEFS
}

/// The schema named `full_name`.
pub fn def(full_name: &str) -> Option<&'static SchemaDef> {
    let defs = defs();
    defs.binary_search_by(|d| d.full_name.cmp(full_name))
        .ok()
        .and_then(|i| defs.get(i))
}

/// The records that are registered as subjects (events, commands, outcomes, snapshots).
pub fn subject_defs() -> impl Iterator<Item = &'static SchemaDef> {
    defs().iter().filter(|d| d.is_subject())
}

static PARSED: LazyLock<Result<HashMap<&'static str, Schema>, String>> = LazyLock::new(|| {
    defs()
        .iter()
        .map(|d| {
            Schema::parse_str(d.schema_json)
                .map(|s| (d.full_name, s))
                .map_err(|e| format!("{} ({}): {e}", d.full_name, d.source))
        })
        .collect()
});

/// Checks that every schema of the contract parses (it always does unless
/// the build is broken; the codec calls this before registering).
pub fn load() -> Result<(), CodecError> {
    match &*PARSED {
        Ok(_) => Ok(()),
        Err(e) => Err(CodecError::Contract(e.clone())),
    }
}

/// The parsed, self-contained schema of a contract record, or `None` if the
/// name is not part of the contract.
pub fn schema(full_name: &str) -> Option<&'static Schema> {
    PARSED.as_ref().ok()?.get(full_name)
}

/// The subject of a record on a topic: TopicRecordNameStrategy,
/// `<topic>-<full.RecordName>`.
pub fn subject(topic: &str, record_full_name: &str) -> String {
    format!("{topic}-{record_full_name}")
}

/// The topics a contract record is registered for by
/// [`AvroCodec::register_contract`](crate::AvroCodec::register_contract):
/// events on `<context>.events`, commands on `<context>.commands`,
/// `CommandOutcome` on `command-outcomes` and the order-fulfillment saga's
/// replies, `OrderFulfillmentStep` on that saga's events,
/// `AggregateSnapshot` on every `<context>.snapshots`.
pub fn topics_for(def: &SchemaDef, topics: &TopicNames) -> Vec<String> {
    match (def.kind, def.context) {
        (DefKind::Event, Some(c)) => vec![topics.events(c)],
        (DefKind::Command, Some(c)) => vec![topics.commands(c)],
        (DefKind::Record, _) if def.full_name == crate::CommandOutcome::FULL_NAME => vec![
            topics.command_outcomes(),
            topics.saga_replies(crate::topics::ORDER_FULFILLMENT),
        ],
        (DefKind::Record, _) if def.full_name == crate::OrderFulfillmentStep::FULL_NAME => {
            vec![topics.saga_events(crate::topics::ORDER_FULFILLMENT)]
        }
        (DefKind::Record, _) if def.full_name == crate::AggregateSnapshot::FULL_NAME => {
            Context::ALL.iter().map(|c| topics.snapshots(*c)).collect()
        }
        _ => Vec::new(),
    }
}

/// Builds the self-contained schema of an event record outside the six
/// contexts (tests use a `com.quickstore.test.Counter*` aggregate): the
/// `envelope` field is prepended and `EventEnvelope` inlined.
/// `payload_fields` is the JSON array of the record's own fields.
pub fn event_record_schema(full_name: &str, payload_fields: Json) -> Result<Schema, CodecError> {
    record_with_envelope(full_name, "com.quickstore.EventEnvelope", payload_fields)
}

/// Like [`event_record_schema`], for a command (`CommandEnvelope` inlined).
pub fn command_record_schema(full_name: &str, payload_fields: Json) -> Result<Schema, CodecError> {
    record_with_envelope(full_name, "com.quickstore.CommandEnvelope", payload_fields)
}

fn record_with_envelope(
    full_name: &str,
    envelope: &str,
    payload_fields: Json,
) -> Result<Schema, CodecError> {
    let envelope_def = def(envelope).ok_or_else(|| CodecError::UnknownRecord(envelope.into()))?;
    let envelope_json: Json = serde_json::from_str(envelope_def.schema_json)
        .map_err(|e| CodecError::Contract(e.to_string()))?;
    let Json::Array(payload) = payload_fields else {
        return Err(CodecError::InvalidSchema(
            "payload_fields must be a JSON array of Avro fields".into(),
        ));
    };
    let Some((namespace, name)) = full_name.rsplit_once('.') else {
        return Err(CodecError::InvalidSchema(format!(
            "{full_name} is not a fully-qualified name"
        )));
    };
    let mut fields = vec![json!({"name": "envelope", "type": envelope_json})];
    fields.extend(payload);
    let schema = json!({
        "type": "record",
        "name": name,
        "namespace": namespace,
        "fields": fields,
    });
    Schema::parse(&schema).map_err(|e| CodecError::InvalidSchema(e.to_string()))
}

/// The fully-qualified name of a record schema.
pub fn record_full_name(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Record(r) => Some(r.name.fullname(None)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_schema_parses_and_is_sorted() {
        load().unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<_> = defs().iter().map(|d| d.full_name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for d in defs() {
            let schema = schema(d.full_name).unwrap_or_else(|| panic!("{}", d.full_name));
            if d.kind != DefKind::Named {
                assert_eq!(record_full_name(schema).as_deref(), Some(d.full_name));
            }
        }
    }

    #[test]
    fn every_subject_record_has_a_topic() {
        let topics = TopicNames::new("t.");
        for d in subject_defs() {
            assert!(!topics_for(d, &topics).is_empty(), "{}", d.full_name);
        }
        let outcome = def("com.quickstore.CommandOutcome").unwrap_or_else(|| panic!());
        assert_eq!(
            topics_for(outcome, &topics),
            vec!["t.command-outcomes", "t.sagas.order-fulfillment.replies"]
        );
        let created = def("com.quickstore.catalog.ProductCreated").unwrap_or_else(|| panic!());
        assert_eq!(topics_for(created, &topics), vec!["t.catalog.events"]);
        assert_eq!(created.aggregate_type, Some("Product"));
        assert_eq!(created.context, Some(Context::Catalog));
    }

    #[test]
    fn the_contract_has_every_record_of_the_brief() {
        let count = |kind| defs().iter().filter(|d| d.kind == kind).count();
        // catalog 6+6, inventory 6+8, orders 11+11, payments 6+7, deliveries 6+6, customers 4+4
        assert_eq!(count(DefKind::Command), 39);
        assert_eq!(count(DefKind::Event), 42);
        assert_eq!(count(DefKind::Record), 3);
    }

    #[test]
    fn inlined_schemas_define_each_type_once_and_need_no_references() {
        // A self-contained schema parses on its own (that is what standard
        // tools do); a type defined twice would fail to parse.
        for d in subject_defs() {
            let json: Json = serde_json::from_str(d.schema_json).unwrap_or_else(|e| panic!("{e}"));
            Schema::parse(&json).unwrap_or_else(|e| panic!("{}: {e}", d.full_name));
        }
        let placed = def("com.quickstore.orders.OrderPlaced").unwrap_or_else(|| panic!());
        assert!(placed.schema_json.contains(r#""name":"EventEnvelope""#));
        assert!(placed.schema_json.contains(r#""name":"OrderLine""#));
    }

    #[test]
    fn test_aggregates_get_an_inlined_envelope() {
        let schema = event_record_schema(
            "com.quickstore.test.CounterIncremented",
            json!([{"name": "by", "type": "long"}]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Schema::Record(r) = &schema else { panic!() };
        assert_eq!(r.fields[0].name, "envelope");
        assert_eq!(r.fields[1].name, "by");
        assert!(event_record_schema("NoNamespace", json!([])).is_err());
        assert!(command_record_schema("a.B", json!({})).is_err());
    }
}
