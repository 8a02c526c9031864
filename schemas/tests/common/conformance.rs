//! The semantics every `SchemaRegistry` adapter must have (Confluent's),
//! run against the embedded registry, the Confluent client over the
//! embedded HTTP router, and a real registry.

use apache_avro::Schema;
use schemas::registry::{CompatibilityLevel, RegistryError, SchemaRegistry};
use schemas::topics::TopicNames;
use schemas::{catalog, AvroCodec, EventEnvelope, EventPayload as _};
use std::sync::Arc;

fn record(name: &str, fields: &str) -> String {
    format!(
        r#"{{"type":"record","name":"{name}","namespace":"com.quickstore.conformance","fields":[{fields}]}}"#
    )
}

fn same_schema(a: &str, b: &str) -> bool {
    let a = Schema::parse_str(a).unwrap();
    let b = Schema::parse_str(b).unwrap();
    a.canonical_form() == b.canonical_form()
}

/// Runs the suite with subjects and record names made unique by `unique`.
/// `owns_global_config`: the registry is private to the test, so the
/// global compatibility level may be changed.
pub async fn registry_semantics(
    registry: &dyn SchemaRegistry,
    unique: &str,
    owns_global_config: bool,
) {
    let name = format!("T{unique}");
    let subject_a = format!("{unique}.conformance-com.quickstore.conformance.{name}");
    let subject_b = format!("{unique}.other-com.quickstore.conformance.{name}");
    let v1 = record(&name, r#"{"name":"a","type":"string"}"#);
    let v2 = record(
        &name,
        r#"{"name":"a","type":"string"},{"name":"b","type":"long","default":0}"#,
    );
    let v3_needs_b = record(
        &name,
        r#"{"name":"a","type":"string"},{"name":"b","type":"long"}"#,
    );
    let no_default = record(
        &name,
        r#"{"name":"a","type":"string"},{"name":"c","type":"int"}"#,
    );

    // Unknown things.
    assert!(matches!(
        registry.latest(&subject_a).await,
        Err(RegistryError::SubjectNotFound(_))
    ));
    assert!(matches!(
        registry.versions(&subject_a).await,
        Err(RegistryError::SubjectNotFound(_))
    ));
    assert!(matches!(
        registry.schema_by_id(2_000_000_000).await,
        Err(RegistryError::SchemaNotFound(2_000_000_000))
    ));
    assert!(
        registry.check_compatibility(&subject_a, &v1).await.unwrap(),
        "no versions yet"
    );

    // Register, idempotently.
    registry
        .set_compatibility(Some(&subject_a), CompatibilityLevel::Backward)
        .await
        .unwrap();
    assert_eq!(
        registry.compatibility(Some(&subject_a)).await.unwrap(),
        CompatibilityLevel::Backward
    );
    let id1 = registry.register(&subject_a, &v1).await.unwrap();
    assert_eq!(
        registry.register(&subject_a, &v1).await.unwrap(),
        id1,
        "same schema, same subject"
    );
    assert_eq!(
        registry.versions(&subject_a).await.unwrap(),
        vec![1],
        "no new version"
    );
    let latest = registry.latest(&subject_a).await.unwrap();
    assert_eq!(
        (latest.subject.as_str(), latest.version, latest.id),
        (subject_a.as_str(), 1, id1)
    );
    assert!(same_schema(&latest.schema, &v1));
    assert!(same_schema(&registry.schema_by_id(id1).await.unwrap(), &v1));

    // Same schema under another subject: same global id.
    assert_eq!(registry.register(&subject_b, &v1).await.unwrap(), id1);
    assert_eq!(registry.versions(&subject_b).await.unwrap(), vec![1]);

    // A compatible change.
    assert!(registry.check_compatibility(&subject_a, &v2).await.unwrap());
    let id2 = registry.register(&subject_a, &v2).await.unwrap();
    assert_ne!(id2, id1);
    assert_eq!(registry.versions(&subject_a).await.unwrap(), vec![1, 2]);
    assert_eq!(registry.version(&subject_a, 1).await.unwrap().id, id1);
    assert_eq!(registry.version(&subject_a, 2).await.unwrap().id, id2);
    assert_eq!(registry.latest(&subject_a).await.unwrap().version, 2);
    assert!(matches!(
        registry.version(&subject_a, 99).await,
        Err(RegistryError::VersionNotFound { version: 99, .. })
    ));

    // A breaking change (new field without default) is refused: 409.
    assert!(!registry
        .check_compatibility(&subject_a, &no_default)
        .await
        .unwrap());
    let err = registry
        .register(&subject_a, &no_default)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Incompatible { .. }), "{err:?}");
    assert_eq!(registry.versions(&subject_a).await.unwrap(), vec![1, 2]);

    // Transitive levels check every version: v3 reads v2 data but not v1's.
    registry
        .set_compatibility(Some(&subject_a), CompatibilityLevel::BackwardTransitive)
        .await
        .unwrap();
    assert_eq!(
        registry.compatibility(Some(&subject_a)).await.unwrap(),
        CompatibilityLevel::BackwardTransitive
    );
    let err = registry
        .register(&subject_a, &v3_needs_b)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Incompatible { .. }), "{err:?}");

    // NONE accepts anything.
    registry
        .set_compatibility(Some(&subject_a), CompatibilityLevel::None)
        .await
        .unwrap();
    let id3 = registry.register(&subject_a, &no_default).await.unwrap();
    assert_eq!(registry.versions(&subject_a).await.unwrap(), vec![1, 2, 3]);
    assert_eq!(registry.latest(&subject_a).await.unwrap().id, id3);

    // Invalid schemas are typed.
    let err = registry
        .register(&subject_a, r#"{"type":"record","name":"Broken"}"#)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidSchema(_)), "{err:?}");

    let subjects = registry.subjects().await.unwrap();
    assert!(
        subjects.contains(&subject_a) && subjects.contains(&subject_b),
        "{subjects:?}"
    );

    if owns_global_config {
        registry
            .set_compatibility(None, CompatibilityLevel::Full)
            .await
            .unwrap();
        assert_eq!(
            registry.compatibility(None).await.unwrap(),
            CompatibilityLevel::Full
        );
        // A subject without its own level follows the global one.
        assert_eq!(
            registry.compatibility(Some(&subject_b)).await.unwrap(),
            CompatibilityLevel::Full
        );
        registry
            .set_compatibility(None, CompatibilityLevel::Backward)
            .await
            .unwrap();
    }
}

/// Registers the whole contract through a codec on `registry` and
/// round-trips an event: the codec path works on this registry.
pub async fn codec_round_trip(registry: Arc<dyn SchemaRegistry>, unique: &str) {
    let topics = TopicNames::new(format!("{unique}."));
    let codec = AvroCodec::new(registry.clone());
    codec.register_contract(&topics).await.unwrap();
    // Idempotent: a second registration creates no versions.
    codec.register_contract(&topics).await.unwrap();
    let subject = format!(
        "{}-com.quickstore.catalog.ProductCreated",
        topics.events(schemas::Context::Catalog)
    );
    assert_eq!(registry.versions(&subject).await.unwrap(), vec![1]);

    let event = catalog::CatalogEvent::ProductCreated(catalog::ProductCreated {
        sku: "SKU-1".into(),
        name: "Mug".into(),
        description: Some("Blue".into()),
        category: "kitchen".into(),
        price_minor: 1299,
        currency: "EUR".into(),
    });
    let envelope = EventEnvelope {
        event_id: "8b0f2f8e-6c1a-4f57-9a53-0d7c5d0e2b11".into(),
        aggregate_type: "Product".into(),
        aggregate_id: "p-1".into(),
        version: 1,
        occurred_at: 1_700_000_000_000,
        command_id: "c-1".into(),
        correlation_id: "k-1".into(),
        causation_id: "c-1".into(),
        actor: "admin-1".into(),
        prev_hash: Vec::new(),
        hash: vec![7; 32],
    };
    let bytes = codec
        .encode_event(&topics.events(schemas::Context::Catalog), &envelope, &event)
        .unwrap();
    // A fresh codec has an empty cache: it must fetch the schema by id.
    let fresh = AvroCodec::new(registry);
    let (env, decoded) = fresh
        .decode_event::<catalog::CatalogEvent>(&bytes)
        .await
        .unwrap();
    assert_eq!(
        (env, decoded.record_name()),
        (envelope, event.record_name())
    );
    assert_eq!(decoded, event);
}
