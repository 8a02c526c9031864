//! The fast paths (generated direct writers and readers,
//! `schemas::codec::fast`) write exactly apache-avro's bytes and read
//! exactly what apache-avro reads, for EVERY record of the contract, and
//! leave the hash chain unchanged.
//!
//! How: random Avro values of each record's schema (proptest; optionals null
//! and filled, empty and non-empty arrays, extreme and negative numbers,
//! non-ASCII strings) are encoded by apache-avro, decoded into the Rust
//! types, and encoded again by the fast path (body level and through the
//! codec) and by the apache-avro path (a codec `without_fast_path`); all
//! three must be the original bytes. The bytes are also decoded by the
//! generated readers (body level and through the codec) and by the
//! apache-avro path; all must give the apache-avro decoding. Deterministic
//! extreme samples make sure the corners are hit on every run, whatever
//! proptest draws.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use apache_avro::types::Value;
use apache_avro::Schema;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use schemas::codec::fast::AvroRead;
use schemas::contract::{self, DefKind, SchemaDef};
use schemas::registry::EmbeddedRegistry;
use schemas::{
    hash_chain, AggregateSnapshot, AnyCommand, AnyEvent, AvroCodec, CommandEnvelope,
    CommandOutcome, CommandPayload, EventEnvelope, EventPayload, NamedRecord, OrderFulfillmentStep,
    TopicNames,
};

struct Codecs {
    fast: AvroCodec,
    slow: AvroCodec,
    topics: TopicNames,
    rt: tokio::runtime::Runtime,
}

/// Both codecs share one registry, so their schema ids agree.
static CODECS: LazyLock<Codecs> = LazyLock::new(|| {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let fast = AvroCodec::new(registry.clone());
    let slow = AvroCodec::new(registry).without_fast_path();
    let topics = TopicNames::new("t.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        fast.register_contract(&topics).await.unwrap();
        slow.register_contract(&topics).await.unwrap();
    });
    assert!(fast.fast_path() && !slow.fast_path());
    Codecs {
        fast,
        slow,
        topics,
        rt,
    }
});

// ------------------------------------------------------------ values

fn long() -> BoxedStrategy<i64> {
    prop_oneof![
        Just(0i64),
        Just(-1),
        Just(i64::MIN),
        Just(i64::MAX),
        -200i64..200,
        any::<i64>(),
    ]
    .boxed()
}

fn int() -> BoxedStrategy<i32> {
    prop_oneof![
        Just(0i32),
        Just(i32::MIN),
        Just(i32::MAX),
        -200i32..200,
        any::<i32>()
    ]
    .boxed()
}

fn string() -> BoxedStrategy<String> {
    // `\PC`: any printable Unicode scalar, so multi-byte UTF-8 is common;
    // up to 80 chars, so lengths need one- and two-byte varints.
    prop_oneof![Just(String::new()), "\\PC{0,80}", "[a-z]{0,8}"].boxed()
}

/// Any value of `schema` (maps excluded: the contract has none, and the
/// generator gives types with maps no fast writer).
fn value(schema: &Schema, named: &Arc<HashMap<String, Schema>>) -> BoxedStrategy<Value> {
    match schema {
        Schema::Null => Just(Value::Null).boxed(),
        Schema::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        Schema::Int => int().prop_map(Value::Int).boxed(),
        Schema::Long => long().prop_map(Value::Long).boxed(),
        Schema::Float => any::<f32>().prop_map(Value::Float).boxed(),
        Schema::Double => any::<f64>().prop_map(Value::Double).boxed(),
        Schema::String => string().prop_map(Value::String).boxed(),
        Schema::Bytes => proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(Value::Bytes)
            .boxed(),
        Schema::TimestampMillis => long().prop_map(Value::TimestampMillis).boxed(),
        Schema::Array(a) => proptest::collection::vec(value(&a.items, named), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Schema::Union(u) => {
            let variants: Vec<BoxedStrategy<Value>> = u
                .variants()
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let i = u32::try_from(i).unwrap();
                    value(v, named)
                        .prop_map(move |v| Value::Union(i, Box::new(v)))
                        .boxed()
                })
                .collect();
            proptest::strategy::Union::new(variants).boxed()
        }
        Schema::Record(r) => {
            let fields: Vec<BoxedStrategy<(String, Value)>> = r
                .fields
                .iter()
                .map(|f| {
                    let name = f.name.clone();
                    value(&f.schema, named)
                        .prop_map(move |v| (name.clone(), v))
                        .boxed()
                })
                .collect();
            fields.prop_map(Value::Record).boxed()
        }
        Schema::Enum(e) => {
            let symbols = e.symbols.clone();
            (0..symbols.len())
                .prop_map(move |i| Value::Enum(u32::try_from(i).unwrap(), symbols[i].clone()))
                .boxed()
        }
        Schema::Ref { name } => {
            let resolved = named
                .get(&name.fullname(None))
                .unwrap_or_else(|| panic!("unresolved {name:?}"))
                .clone();
            value(&resolved, named)
        }
        other => panic!("no strategy for {other:?}: extend this test with the contract"),
    }
}

/// A deterministic corner-case value: `low` = zeros/minimums, empty strings
/// and arrays, null optionals; otherwise maximums, long non-ASCII strings,
/// three-item arrays, filled optionals.
fn extreme(schema: &Schema, named: &HashMap<String, Schema>, low: bool) -> Value {
    let text = "Grüße, 世界 ✓ ".repeat(8);
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(!low),
        Schema::Int => Value::Int(if low { i32::MIN } else { i32::MAX }),
        Schema::Long => Value::Long(if low { i64::MIN } else { i64::MAX }),
        Schema::Float => Value::Float(if low { f32::MIN } else { f32::MAX }),
        Schema::Double => Value::Double(if low { f64::MIN } else { f64::MAX }),
        Schema::String => Value::String(if low { String::new() } else { text }),
        Schema::Bytes => Value::Bytes(if low { Vec::new() } else { vec![0xff; 200] }),
        Schema::TimestampMillis => Value::TimestampMillis(if low { -1 } else { i64::MAX }),
        Schema::Array(a) => Value::Array(if low {
            Vec::new()
        } else {
            (0..3).map(|_| extreme(&a.items, named, low)).collect()
        }),
        Schema::Union(u) => {
            let index = if low { 0 } else { u.variants().len() - 1 };
            let inner = extreme(&u.variants()[index], named, low);
            Value::Union(u32::try_from(index).unwrap(), Box::new(inner))
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| (f.name.clone(), extreme(&f.schema, named, low)))
                .collect(),
        ),
        Schema::Enum(e) => {
            let index = if low { 0 } else { e.symbols.len() - 1 };
            Value::Enum(u32::try_from(index).unwrap(), e.symbols[index].clone())
        }
        Schema::Ref { name } => extreme(&named[&name.fullname(None)], named, low),
        other => panic!("no extreme for {other:?}"),
    }
}

// ------------------------------------------------------------ the check

fn framed(codecs: &Codecs, def: &SchemaDef, body: &[u8]) -> (String, Vec<u8>) {
    let topic = contract::topics_for(def, &codecs.topics).remove(0);
    let id = codecs.fast.schema_id_for(&topic, def.full_name).unwrap();
    (topic, common::sample::framed(id, body))
}

/// The record's fields after `envelope`, and the envelope.
fn split(value: Value) -> (Value, Value) {
    let Value::Record(mut fields) = value else {
        panic!("not a record")
    };
    let (name, envelope) = fields.remove(0);
    assert_eq!(name, "envelope");
    (envelope, Value::Record(fields))
}

/// `body` (apache-avro's encoding of a value of `def`) decoded into the Rust
/// types and encoded again: by the fast writers, by the codec's fast path
/// and by its apache-avro path. Every result must be `body` again.
fn check(def: &SchemaDef, body: &[u8]) -> Result<(), TestCaseError> {
    let codecs = &*CODECS;
    let schema = contract::schema(def.full_name).unwrap();
    let name = def.full_name;
    let decoded = apache_avro::from_avro_datum(schema, &mut &body[..], None).unwrap();
    let (topic, bytes) = framed(codecs, def, body);
    match def.kind {
        DefKind::Event => {
            let (envelope, fields) = split(decoded);
            let envelope: EventEnvelope = apache_avro::from_value(&envelope).unwrap();
            let event = AnyEvent::from_fields(name, fields).unwrap();
            let mut direct = Vec::new();
            schemas::codec::fast::AvroWrite::write_avro(&envelope, &mut direct);
            prop_assert!(event.write_fields(&mut direct), "{name} has no fast writer");
            prop_assert_eq!(&direct, &body, "{} body", name);
            let fast = codecs.fast.encode_event(&topic, &envelope, &event).unwrap();
            let slow = codecs.slow.encode_event(&topic, &envelope, &event).unwrap();
            prop_assert_eq!(&fast, &bytes, "{} fast codec", name);
            prop_assert_eq!(&slow, &bytes, "{} apache-avro codec", name);
            let mut input = body;
            let read_envelope = EventEnvelope::read_avro(&mut input).unwrap();
            let read = AnyEvent::read_fields(name, &mut input);
            prop_assert!(read.is_some(), "{name} has no fast reader");
            prop_assert_eq!(read.unwrap().unwrap(), event.clone(), "{} read", name);
            prop_assert_eq!(&read_envelope, &envelope, "{} read envelope", name);
            prop_assert!(input.is_empty(), "{name}: read left bytes");
            for (path, codec) in [("fast", &codecs.fast), ("apache-avro", &codecs.slow)] {
                let decoded = codecs.rt.block_on(codec.decode_event::<AnyEvent>(&bytes));
                prop_assert_eq!(
                    decoded.unwrap(),
                    (envelope.clone(), event.clone()),
                    "{} decode, {} codec",
                    name,
                    path
                );
            }
            check_chain(codecs, &topic, envelope, &event)?;
        }
        DefKind::Command => {
            let (envelope, fields) = split(decoded);
            let envelope: CommandEnvelope = apache_avro::from_value(&envelope).unwrap();
            let command = AnyCommand::from_fields(name, fields).unwrap();
            let mut direct = Vec::new();
            schemas::codec::fast::AvroWrite::write_avro(&envelope, &mut direct);
            prop_assert!(
                command.write_fields(&mut direct),
                "{name} has no fast writer"
            );
            prop_assert_eq!(&direct, &body, "{} body", name);
            let fast = codecs.fast.encode_command(&topic, &envelope, &command);
            let slow = codecs.slow.encode_command(&topic, &envelope, &command);
            prop_assert_eq!(fast.unwrap(), bytes.clone(), "{} fast codec", name);
            prop_assert_eq!(slow.unwrap(), bytes.clone(), "{} apache-avro codec", name);
            let mut input = body;
            let read_envelope = CommandEnvelope::read_avro(&mut input).unwrap();
            let read = AnyCommand::read_fields(name, &mut input);
            prop_assert!(read.is_some(), "{name} has no fast reader");
            prop_assert_eq!(read.unwrap().unwrap(), command.clone(), "{} read", name);
            prop_assert_eq!(&read_envelope, &envelope, "{} read envelope", name);
            prop_assert!(input.is_empty(), "{name}: read left bytes");
            for (path, codec) in [("fast", &codecs.fast), ("apache-avro", &codecs.slow)] {
                let decoded = codecs
                    .rt
                    .block_on(codec.decode_command::<AnyCommand>(&bytes));
                prop_assert_eq!(
                    decoded.unwrap(),
                    (envelope.clone(), command.clone()),
                    "{} decode, {} codec",
                    name,
                    path
                );
            }
        }
        DefKind::Record if name == CommandOutcome::FULL_NAME => {
            let outcome: CommandOutcome = apache_avro::from_value(&decoded).unwrap();
            check_record(codecs, &topic, &outcome, body, &bytes)?;
        }
        DefKind::Record if name == AggregateSnapshot::FULL_NAME => {
            let snapshot: AggregateSnapshot = apache_avro::from_value(&decoded).unwrap();
            check_record(codecs, &topic, &snapshot, body, &bytes)?;
        }
        DefKind::Record if name == OrderFulfillmentStep::FULL_NAME => {
            let step: OrderFulfillmentStep = apache_avro::from_value(&decoded).unwrap();
            check_record(codecs, &topic, &step, body, &bytes)?;
        }
        other => panic!("no check for {other:?} {name}: extend this test"),
    }
    Ok(())
}

fn check_record<
    T: NamedRecord + serde::Serialize + serde::de::DeserializeOwned + PartialEq + 'static,
>(
    codecs: &Codecs,
    topic: &str,
    value: &T,
    body: &[u8],
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    let name = T::FULL_NAME;
    let mut input = body;
    let read = T::read_record(&mut input);
    prop_assert!(read.is_some(), "{name} has no fast reader");
    prop_assert!(read.unwrap().unwrap() == *value, "{name} read");
    prop_assert!(input.is_empty(), "{name}: read left bytes");
    for (path, codec) in [("fast", &codecs.fast), ("apache-avro", &codecs.slow)] {
        let decoded: T = codecs.rt.block_on(codec.decode_named(bytes)).unwrap();
        prop_assert!(decoded == *value, "{name} decode_named, {path} codec");
    }
    let mut direct = Vec::new();
    prop_assert!(value.write_record(&mut direct), "{name} has no fast writer");
    prop_assert_eq!(&direct[..], body, "{} body", name);
    for (path, codec) in [("fast", &codecs.fast), ("apache-avro", &codecs.slow)] {
        prop_assert_eq!(
            &codec.encode_named(topic, value).unwrap()[..],
            bytes,
            "{} encode_named, {} codec",
            name,
            path
        );
        prop_assert_eq!(
            &codec.encode_record(topic, name, value).unwrap()[..],
            bytes,
            "{} encode_record, {} codec",
            name,
            path
        );
    }
    Ok(())
}

/// Sealing is unchanged: the canonical bytes, the hash, and the fused
/// seal-and-encode (whose output an auditor re-verifies with apache-avro).
fn check_chain(
    codecs: &Codecs,
    topic: &str,
    envelope: EventEnvelope,
    event: &AnyEvent,
) -> Result<(), TestCaseError> {
    let name = event.record_name();
    let fast = hash_chain::canonical_event_bytes(&envelope, event).unwrap();
    let slow = hash_chain::canonical_event_bytes_generic(&envelope, event).unwrap();
    prop_assert_eq!(&fast, &slow, "{} canonical bytes", name);

    let mut sealed = envelope.clone();
    let hash = hash_chain::seal(&mut sealed, event).unwrap();
    prop_assert_eq!(hash, hash_chain::event_hash(&envelope.prev_hash, &slow));
    prop_assert!(hash_chain::verify(&sealed, event).unwrap());

    let mut fused_fast = envelope.clone();
    let mut fused_slow = envelope;
    let bytes_fast = codecs
        .fast
        .encode_sealed_event(topic, &mut fused_fast, event)
        .unwrap();
    let bytes_slow = codecs
        .slow
        .encode_sealed_event(topic, &mut fused_slow, event)
        .unwrap();
    prop_assert_eq!(&fused_fast, &sealed, "{} fused seal", name);
    prop_assert_eq!(&fused_slow, &sealed, "{} apache-avro seal", name);
    prop_assert_eq!(&bytes_fast, &bytes_slow, "{} sealed bytes", name);
    prop_assert_eq!(
        &bytes_fast,
        &codecs.slow.encode_event(topic, &sealed, event).unwrap(),
        "{} sealed bytes vs seal + encode",
        name
    );
    let link = codecs
        .rt
        .block_on(codecs.fast.chain_link(&bytes_fast))
        .unwrap();
    prop_assert!(link.is_intact(), "{} chain link", name);
    Ok(())
}

// ------------------------------------------------------------ the tests

#[test]
fn every_record_fast_encodes_like_apache_avro_on_corner_cases() {
    let mut checked = 0;
    for def in contract::subject_defs() {
        let schema = contract::schema(def.full_name).unwrap();
        let named = common::sample::named_types(schema);
        let mut bodies = Vec::new();
        for fill_optionals in [true, false] {
            bodies.push(common::sample::sample_body(schema, fill_optionals));
        }
        for low in [true, false] {
            bodies.push(apache_avro::to_avro_datum(schema, extreme(schema, &named, low)).unwrap());
        }
        for body in bodies {
            check(def, &body).unwrap_or_else(|e| panic!("{}: {e}", def.full_name));
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * contract::subject_defs().count());
}

#[test]
fn every_record_fast_encodes_like_apache_avro_on_random_values() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    for def in contract::subject_defs() {
        let schema = contract::schema(def.full_name).unwrap();
        let named = Arc::new(common::sample::named_types(schema));
        let strategy = value(schema, &named);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |value| {
                let body = apache_avro::to_avro_datum(schema, value).unwrap();
                check(def, &body)
            })
            .unwrap_or_else(|e| panic!("{}: {e}", def.full_name));
    }
}

/// When a topic's writer schema is not the one the writer was generated for
/// (here: a version with one more optional field), the codec falls back to
/// apache-avro, which resolves the value to that schema.
#[test]
fn another_writer_schema_falls_back_to_apache_avro() {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let fast = AvroCodec::new(registry.clone());
    let slow = AvroCodec::new(registry).without_fast_path();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let with_note = |full_name: &str| {
        let def = contract::def(full_name).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(def.schema_json).unwrap();
        json["fields"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "note", "type": ["null", "string"], "default": null}));
        Schema::parse(&json).unwrap()
    };
    let placed_schema = with_note("com.quickstore.orders.OrderPlaced");
    let outcome_schema = with_note(CommandOutcome::FULL_NAME);
    rt.block_on(async {
        for codec in [&fast, &slow] {
            codec
                .register_schema("events", &placed_schema)
                .await
                .unwrap();
            codec
                .register_schema("outcomes", &outcome_schema)
                .await
                .unwrap();
        }
    });

    let current = contract::schema("com.quickstore.orders.OrderPlaced").unwrap();
    let named = common::sample::named_types(current);
    let body = apache_avro::to_avro_datum(current, extreme(current, &named, false)).unwrap();
    let (envelope, fields) =
        split(apache_avro::from_avro_datum(current, &mut &body[..], None).unwrap());
    let envelope: EventEnvelope = apache_avro::from_value(&envelope).unwrap();
    let event = AnyEvent::from_fields("com.quickstore.orders.OrderPlaced", fields).unwrap();
    let encoded = fast.encode_event("events", &envelope, &event).unwrap();
    assert_eq!(
        encoded,
        slow.encode_event("events", &envelope, &event).unwrap()
    );
    // The writer's extra optional field: one more byte (null branch) at the end.
    assert_eq!(encoded[5..], [&body[..], &[0]].concat()[..]);
    // Read back, both codecs resolve it to the current schema (the fast
    // reader, generated for that schema, must not be used).
    for codec in [&fast, &slow] {
        let decoded = rt
            .block_on(codec.decode_event::<AnyEvent>(&encoded))
            .unwrap();
        assert_eq!(decoded, (envelope.clone(), event.clone()));
    }
    let mut sealed = envelope.clone();
    let bytes = fast
        .encode_sealed_event("events", &mut sealed, &event)
        .unwrap();
    let mut expected = envelope;
    hash_chain::seal(&mut expected, &event).unwrap();
    assert_eq!(sealed, expected);
    assert_eq!(
        bytes,
        slow.encode_event("events", &expected, &event).unwrap()
    );

    let outcome = CommandOutcome {
        command_id: "c".into(),
        aggregate_type: "Order".into(),
        aggregate_id: "o-1".into(),
        correlation_id: "k".into(),
        status: schemas::CommandStatus::Rejected,
        version: 3,
        event_count: 0,
        error_code: Some("nope".into()),
        error_message: None,
        decided_at: 1_700_000_000_000,
        event_types: vec!["CounterIncremented".to_owned()],
    };
    let encoded = fast.encode_named("outcomes", &outcome).unwrap();
    assert_eq!(encoded, slow.encode_named("outcomes", &outcome).unwrap());
    assert_eq!(
        encoded,
        fast.encode_record("outcomes", CommandOutcome::FULL_NAME, &outcome)
            .unwrap()
    );
    assert_eq!(encoded.last(), Some(&0));
    for codec in [&fast, &slow] {
        let decoded: CommandOutcome = rt.block_on(codec.decode_named(&encoded)).unwrap();
        assert_eq!(decoded, outcome);
    }
}
