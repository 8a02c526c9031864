//! The codec: every record of the contract round-trips through the Rust
//! types; typed errors; schema evolution; hash chain over encoded bytes;
//! a hand-written test aggregate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, LazyLock};

use apache_avro::types::Value;
use apache_avro::Schema;
use schemas::catalog::{CatalogCommand, CatalogEvent, CreateProduct, ProductCreated};
use schemas::contract::{self, DefKind};
use schemas::customers::{CustomerRegistered, CustomersEvent, Role};
use schemas::orders::{OrderLine, OrderPlaced, OrderTotals, OrdersEvent};
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use schemas::{
    hash_chain, AggregateSnapshot, AnyCommand, AnyEvent, AvroCodec, CodecError, CommandEnvelope,
    CommandOutcome, CommandPayload, CommandStatus, Context, EventEnvelope, EventPayload,
    OrderFulfillmentStep, PostalAddress, TopicNames,
};
use serde::{Deserialize, Serialize};

async fn codec() -> (AvroCodec, TopicNames, Arc<EmbeddedRegistry>) {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let codec = AvroCodec::new(registry.clone());
    let topics = TopicNames::new("t.");
    codec.register_contract(&topics).await.unwrap();
    (codec, topics, registry)
}

fn envelope(
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
    prev_hash: Vec<u8>,
) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        version,
        occurred_at: 1_700_000_000_000 + version,
        command_id: format!("cmd-{version}"),
        correlation_id: "corr-1".into(),
        causation_id: format!("cmd-{version}"),
        actor: "customer-7".into(),
        prev_hash,
        hash: Vec::new(),
    }
}

fn command_envelope() -> CommandEnvelope {
    CommandEnvelope {
        command_id: "cmd-1".into(),
        aggregate_type: "Product".into(),
        aggregate_id: "p-1".into(),
        expected_version: Some(3),
        issued_at: 1_700_000_000_000,
        correlation_id: "corr-1".into(),
        causation_id: "req-1".into(),
        actor: "admin-1".into(),
        reply_to: None,
    }
}

fn address() -> PostalAddress {
    PostalAddress {
        recipient: "Ada Lovelace".into(),
        line1: "1 Analytical St".into(),
        line2: None,
        city: "London".into(),
        region: None,
        postal_code: "N1 9GU".into(),
        country: "GB".into(),
    }
}

/// One generated sample of EVERY record of the contract goes Avro bytes ->
/// Rust type -> Avro bytes, unchanged, with optionals both filled and null.
#[tokio::test]
async fn every_record_round_trips_through_its_rust_type() {
    let (codec, topics, _) = codec().await;
    let mut checked = 0;
    for def in contract::subject_defs() {
        let schema = contract::schema(def.full_name).unwrap();
        let topic = contract::topics_for(def, &topics).remove(0);
        let id = codec.schema_id_for(&topic, def.full_name).unwrap();
        for fill_optionals in [true, false] {
            let bytes =
                common::sample::framed(id, &common::sample::sample_body(schema, fill_optionals));
            assert_eq!(codec.record_name(&bytes).await.unwrap(), def.full_name);
            let again = match def.kind {
                DefKind::Event => {
                    let (env, event) = codec.decode_event::<AnyEvent>(&bytes).await.unwrap();
                    assert_eq!(event.record_name(), def.full_name);
                    assert_eq!(Some(event.context()), def.context);
                    assert_eq!(Some(event.aggregate_type()), def.aggregate_type);
                    codec.encode_event(&topic, &env, &event).unwrap()
                }
                DefKind::Command => {
                    let (env, command) = codec.decode_command::<AnyCommand>(&bytes).await.unwrap();
                    assert_eq!(command.record_name(), def.full_name);
                    codec.encode_command(&topic, &env, &command).unwrap()
                }
                DefKind::Record if def.full_name == CommandOutcome::FULL_NAME => {
                    let outcome: CommandOutcome = codec.decode_named(&bytes).await.unwrap();
                    codec.encode_named(&topic, &outcome).unwrap()
                }
                DefKind::Record if def.full_name == AggregateSnapshot::FULL_NAME => {
                    let snapshot: AggregateSnapshot = codec.decode_named(&bytes).await.unwrap();
                    codec
                        .encode_record(&topic, def.full_name, &snapshot)
                        .unwrap()
                }
                DefKind::Record if def.full_name == OrderFulfillmentStep::FULL_NAME => {
                    let step: OrderFulfillmentStep = codec.decode_named(&bytes).await.unwrap();
                    codec.encode_named(&topic, &step).unwrap()
                }
                other => panic!("no round trip for {other:?} {}", def.full_name),
            };
            assert_eq!(
                again, bytes,
                "{} (optionals filled: {fill_optionals})",
                def.full_name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * contract::subject_defs().count());
}

#[tokio::test]
async fn typed_values_round_trip_and_per_context_enums_route() {
    let (codec, topics, _) = codec().await;
    let placed = OrdersEvent::OrderPlaced(OrderPlaced {
        customer_id: "customer-7".into(),
        lines: vec![
            OrderLine {
                line_no: 1,
                sku: "SKU-1".into(),
                quantity: 2,
                unit_price_minor: 1299,
                currency: "EUR".into(),
            },
            OrderLine {
                line_no: 2,
                sku: "SKU-2".into(),
                quantity: 1,
                unit_price_minor: 500,
                currency: "EUR".into(),
            },
        ],
        shipping_address: address(),
        totals: OrderTotals {
            subtotal_minor: 3098,
            shipping_minor: 490,
            tax_minor: 0,
            total_minor: 3588,
            currency: "EUR".into(),
        },
        payment_token: Some("tok_sim_4242".into()),
    });
    let env = envelope("Order", "o-1", 1, Vec::new());
    let topic = topics.events(Context::Orders);
    let bytes = codec.encode_event(&topic, &env, &placed).unwrap();
    assert_eq!(bytes[0], 0);
    let (env2, decoded) = codec.decode_event::<OrdersEvent>(&bytes).await.unwrap();
    assert_eq!((env2, &decoded), (env.clone(), &placed));
    assert_eq!(decoded.name(), "OrderPlaced");
    assert_eq!(decoded.aggregate_type(), "Order");
    // The payload struct itself is a payload too.
    let (_, only) = codec.decode_event::<OrderPlaced>(&bytes).await.unwrap();
    assert_eq!(OrdersEvent::from(only), placed);
    // AnyEvent routes to the orders context.
    let (_, any) = codec.decode_event::<AnyEvent>(&bytes).await.unwrap();
    assert_eq!(any, AnyEvent::Orders(placed.clone()));

    // Wrong context, or a command decoded as an event: typed mismatches.
    assert!(matches!(
        codec.decode_event::<CatalogEvent>(&bytes).await,
        Err(CodecError::SchemaMismatch { .. })
    ));
    assert!(matches!(
        codec.decode_command::<AnyCommand>(&bytes).await,
        Err(CodecError::SchemaMismatch { .. })
    ));
    assert!(matches!(
        codec.decode_named::<CommandOutcome>(&bytes).await,
        Err(CodecError::SchemaMismatch { .. })
    ));

    // Enums, arrays of enums.
    let registered = CustomersEvent::CustomerRegistered(CustomerRegistered {
        email: "ada@example.com".into(),
        display_name: "Ada".into(),
        phone: Some("+441234567".into()),
        roles: vec![Role::Customer, Role::Auditor],
    });
    let bytes = codec
        .encode_event(
            &topics.events(Context::Customers),
            &envelope("Customer", "u-1", 1, Vec::new()),
            &registered,
        )
        .unwrap();
    assert_eq!(
        codec
            .decode_event::<CustomersEvent>(&bytes)
            .await
            .unwrap()
            .1,
        registered
    );
    assert_eq!("AUDITOR".parse::<Role>(), Ok(Role::Auditor));
    assert_eq!(Role::Courier.to_string(), "COURIER");
    assert!("ROOT".parse::<Role>().is_err());

    // Commands.
    let create = CatalogCommand::CreateProduct(CreateProduct {
        sku: "SKU-1".into(),
        name: "Mug".into(),
        description: None,
        category: "kitchen".into(),
        price_minor: 1299,
        currency: "EUR".into(),
    });
    let bytes = codec
        .encode_command(
            &topics.commands(Context::Catalog),
            &command_envelope(),
            &create,
        )
        .unwrap();
    let (cmd_env, decoded) = codec
        .decode_command::<CatalogCommand>(&bytes)
        .await
        .unwrap();
    assert_eq!((cmd_env, decoded), (command_envelope(), create));

    // Outcomes and snapshots.
    let outcome = CommandOutcome {
        command_id: "cmd-1".into(),
        aggregate_type: "StockItem".into(),
        aggregate_id: "SKU-1".into(),
        correlation_id: "corr-1".into(),
        status: CommandStatus::Rejected,
        version: 4,
        event_count: 0,
        error_code: Some("out_of_stock".into()),
        error_message: Some("only 1 left".into()),
        decided_at: 1_700_000_000_001,
        event_types: vec!["CounterIncremented".to_owned()],
    };
    let bytes = codec
        .encode_named(&topics.command_outcomes(), &outcome)
        .unwrap();
    assert_eq!(
        codec.decode_record::<CommandOutcome>(&bytes).await.unwrap(),
        outcome
    );
    let snapshot = AggregateSnapshot {
        aggregate_type: "Product".into(),
        aggregate_id: "p-1".into(),
        version: 9,
        last_hash: vec![1; 32],
        state_json: r#"{"name":"Mug"}"#.into(),
        taken_at: 1_700_000_000_002,
    };
    let bytes = codec
        .encode_record(
            &topics.snapshots(Context::Inventory),
            AggregateSnapshot::FULL_NAME,
            &snapshot,
        )
        .unwrap();
    assert_eq!(
        codec
            .decode_named::<AggregateSnapshot>(&bytes)
            .await
            .unwrap(),
        snapshot
    );
}

#[tokio::test]
async fn encoding_needs_registration_first() {
    let codec = AvroCodec::new(Arc::new(EmbeddedRegistry::in_memory()));
    let event = ProductCreated {
        sku: "S".into(),
        name: "N".into(),
        description: None,
        category: "c".into(),
        price_minor: 1,
        currency: "EUR".into(),
    };
    let err = codec
        .encode_event(
            "t.catalog.events",
            &envelope("Product", "p", 1, Vec::new()),
            &event,
        )
        .unwrap_err();
    assert_eq!(
        err,
        CodecError::NotRegistered {
            subject: "t.catalog.events-com.quickstore.catalog.ProductCreated".into()
        }
    );
    // Registered for another topic is not registered for this one.
    codec
        .register_contract_record("t.other", ProductCreated::FULL_NAME)
        .await
        .unwrap();
    assert!(codec
        .encode_event(
            "t.catalog.events",
            &envelope("Product", "p", 1, Vec::new()),
            &event
        )
        .is_err());
    assert!(matches!(
        codec
            .register_contract_record("t.x", "com.quickstore.Nope")
            .await,
        Err(CodecError::UnknownRecord(_))
    ));
    // Saga reply topics carry outcomes.
    let id = codec
        .register_contract_record(
            &TopicNames::new("t.").saga_replies("fulfillment"),
            CommandOutcome::FULL_NAME,
        )
        .await
        .unwrap();
    assert_eq!(
        codec.schema_id_for("t.sagas.fulfillment.replies", CommandOutcome::FULL_NAME),
        Some(id)
    );
}

#[tokio::test]
async fn registration_uses_topic_record_name_subjects() {
    let (_, _, registry) = codec().await;
    let subjects = registry.subjects().await.unwrap();
    assert!(subjects.contains(&"t.catalog.events-com.quickstore.catalog.ProductCreated".to_owned()));
    assert!(
        subjects.contains(&"t.inventory.commands-com.quickstore.inventory.ReserveStock".to_owned())
    );
    assert!(subjects.contains(&"t.command-outcomes-com.quickstore.CommandOutcome".to_owned()));
    for c in Context::ALL {
        assert!(subjects.contains(&format!("t.{c}.snapshots-com.quickstore.AggregateSnapshot")));
    }
    // The registered schema is self-contained: a standard tool parses it alone.
    let latest = registry
        .latest("t.orders.events-com.quickstore.orders.OrderPlaced")
        .await
        .unwrap();
    let schema = Schema::parse_str(&latest.schema).unwrap();
    let Schema::Record(record) = &schema else {
        panic!()
    };
    assert_eq!(record.fields[0].name, "envelope");
    assert!(
        matches!(&record.fields[0].schema, Schema::Record(env) if env.name.fullname(None) == "com.quickstore.EventEnvelope")
    );
    // Deployments pin the level the repository's guard enforces.
    AvroCodec::new(registry.clone())
        .set_contract_compatibility(
            &TopicNames::new("t."),
            schemas::registry::CompatibilityLevel::BackwardTransitive,
        )
        .await
        .unwrap();
    assert_eq!(
        registry
            .compatibility(Some(
                "t.payments.events-com.quickstore.payments.PaymentCaptured"
            ))
            .await
            .unwrap(),
        schemas::registry::CompatibilityLevel::BackwardTransitive
    );
    // The same schema on two topics has one global id.
    let a = registry
        .latest("t.catalog.snapshots-com.quickstore.AggregateSnapshot")
        .await
        .unwrap();
    let b = registry
        .latest("t.orders.snapshots-com.quickstore.AggregateSnapshot")
        .await
        .unwrap();
    assert_eq!(a.id, b.id);
}

/// Records written with an OLDER schema decode into today's types (missing
/// fields take their defaults), and with a NEWER one (extra fields dropped).
#[tokio::test]
async fn older_and_newer_writers_decode_into_current_types() {
    let (codec, topics, registry) = codec().await;
    let topic = topics.events(Context::Catalog);
    let current: serde_json::Value = serde_json::from_str(
        contract::def(ProductCreated::FULL_NAME)
            .unwrap()
            .schema_json,
    )
    .unwrap();

    // Old: no `description`.
    let mut old = current.clone();
    old["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "description");
    // New: an extra `weight_grams` with a default.
    let mut new = current.clone();
    new["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "weight_grams", "type": "int", "default": 0}));

    for (writer, extra) in [(old, None), (new, Some(("weight_grams", Value::Int(250))))] {
        let is_new = extra.is_some();
        let schema = Schema::parse(&writer).unwrap();
        let id = registry
            .register(
                &format!("{topic}-evolution-{}", extra.is_some()),
                &writer.to_string(),
            )
            .await
            .unwrap();
        let mut fields = vec![
            ("envelope".to_owned(), envelope_value()),
            ("sku".to_owned(), Value::String("SKU-9".into())),
            ("name".to_owned(), Value::String("Teapot".into())),
            ("category".to_owned(), Value::String("kitchen".into())),
            ("price_minor".to_owned(), Value::Long(2500)),
            ("currency".to_owned(), Value::String("EUR".into())),
        ];
        if let Some((name, value)) = extra {
            fields.push((name.to_owned(), value));
            fields.push((
                "description".to_owned(),
                Value::Union(1, Box::new(Value::String("big".into()))),
            ));
        }
        let value = Value::Record(fields).resolve(&schema).unwrap();
        let body = apache_avro::to_avro_datum(&schema, value).unwrap();
        let bytes = common::sample::framed(id, &body);
        let (_, event) = codec.decode_event::<CatalogEvent>(&bytes).await.unwrap();
        let CatalogEvent::ProductCreated(p) = event else {
            panic!()
        };
        assert_eq!(
            (p.sku.as_str(), p.name.as_str(), p.price_minor),
            ("SKU-9", "Teapot", 2500)
        );
        // Old writer: `description` missing, so its default (null). New writer: kept; `weight_grams` dropped.
        let expected = if is_new { Some("big") } else { None };
        assert_eq!(p.description.as_deref(), expected);
    }
    fn envelope_value() -> Value {
        apache_avro::to_value(envelope("Product", "p-9", 1, Vec::new())).unwrap()
    }
}

#[tokio::test]
async fn the_hash_chain_verifies_from_the_wire_and_detects_tampering() {
    let (codec, topics, _) = codec().await;
    let topic = topics.events(Context::Catalog);
    let created = CatalogEvent::ProductCreated(ProductCreated {
        sku: "SKU-1".into(),
        name: "Mug".into(),
        description: None,
        category: "kitchen".into(),
        price_minor: 1299,
        currency: "EUR".into(),
    });
    let mut first = envelope("Product", "p-1", 1, Vec::new());
    let h1 = hash_chain::seal(&mut first, &created).unwrap();
    let bytes1 = codec.encode_event(&topic, &first, &created).unwrap();

    let discontinued = CatalogEvent::ProductDiscontinued(schemas::catalog::ProductDiscontinued {
        reason: None,
        name: Some("Mug".into()),
        category: Some("kitchen".into()),
    });
    let mut second = envelope("Product", "p-1", 2, h1.to_vec());
    hash_chain::seal(&mut second, &discontinued).unwrap();
    let bytes2 = codec.encode_event(&topic, &second, &discontinued).unwrap();

    let link1 = codec.chain_link(&bytes1).await.unwrap();
    let link2 = codec.chain_link(&bytes2).await.unwrap();
    assert!(link1.is_first() && link1.is_intact());
    assert!(link2.is_intact() && link2.follows(&link1));
    assert!(!link1.follows(&link2));
    // The canonical bytes from the wire equal those the writer hashed.
    assert_eq!(
        link1.canonical,
        hash_chain::canonical_event_bytes(&first, &created).unwrap()
    );

    // Flip one byte of the payload: still decodes, but the chain breaks.
    let mut tampered = bytes1.clone();
    let sku_at = tampered.windows(5).position(|w| w == b"SKU-1").unwrap();
    tampered[sku_at + 4] = b'2';
    let link = codec.chain_link(&tampered).await.unwrap();
    assert!(!link.is_intact());
}

// ------------------------------------------------------------------ a test aggregate

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Incremented {
    by: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum CounterEvent {
    Incremented(Incremented),
}

const INCREMENTED: &str = "com.quickstore.test.CounterIncremented";

static INCREMENTED_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    contract::event_record_schema(
        INCREMENTED,
        serde_json::json!([{"name": "by", "type": "long"}]),
    )
    .unwrap()
});

impl EventPayload for CounterEvent {
    fn record_name(&self) -> &'static str {
        INCREMENTED
    }
    fn schema(record_full_name: &str) -> Option<&'static Schema> {
        (record_full_name == INCREMENTED).then(|| &*INCREMENTED_SCHEMA)
    }
    fn to_fields(&self) -> Result<Value, CodecError> {
        let CounterEvent::Incremented(e) = self;
        schemas::payload::record_to_fields(INCREMENTED, e)
    }
    fn from_fields(record_full_name: &str, fields: Value) -> Result<Self, CodecError> {
        schemas::payload::record_from_fields(INCREMENTED, record_full_name, &fields)
            .map(CounterEvent::Incremented)
    }
}

#[tokio::test]
async fn a_hand_written_test_aggregate_uses_the_same_codec() {
    let codec = AvroCodec::new(Arc::new(EmbeddedRegistry::in_memory()));
    let topic = "t.counter.events";
    let id = codec
        .register_schema(topic, &INCREMENTED_SCHEMA)
        .await
        .unwrap();
    assert_eq!(
        codec
            .register_schema(topic, &INCREMENTED_SCHEMA)
            .await
            .unwrap(),
        id
    );
    let event = CounterEvent::Incremented(Incremented { by: 5 });
    let mut env = envelope("Counter", "c-1", 1, Vec::new());
    hash_chain::seal(&mut env, &event).unwrap();
    let bytes = codec.encode_event(topic, &env, &event).unwrap();
    assert_eq!(
        codec.decode_event::<CounterEvent>(&bytes).await.unwrap(),
        (env, event)
    );
    assert!(codec.chain_link(&bytes).await.unwrap().is_intact());
    assert!(matches!(
        codec.decode_event::<AnyEvent>(&bytes).await,
        Err(CodecError::SchemaMismatch { .. })
    ));
    assert!(matches!(
        codec.register_schema(topic, &Schema::String).await,
        Err(CodecError::InvalidSchema(_))
    ));
}

#[test]
fn context_enums_serialize_to_tagged_json() {
    let event = CatalogEvent::ProductDiscontinued(schemas::catalog::ProductDiscontinued {
        reason: Some("recalled".into()),
        name: Some("Mug".into()),
        category: None,
    });
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "ProductDiscontinued", "reason": "recalled", "name": "Mug", "category": null})
    );
    assert_eq!(serde_json::from_value::<CatalogEvent>(json).unwrap(), event);
    assert_eq!(CatalogEvent::CONTEXT, Context::Catalog);
    assert!(CatalogEvent::RECORD_NAMES.contains(&"com.quickstore.catalog.ProductDiscontinued"));
    assert_eq!(CatalogCommand::RECORD_NAMES.len(), 6);
    let _ =
        <CatalogCommand as CommandPayload>::schema("com.quickstore.catalog.CreateProduct").unwrap();
}
