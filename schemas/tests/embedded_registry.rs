//! The embedded registry: Confluent semantics, persistence across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use schemas::registry::{CompatibilityLevel, EmbeddedRegistry, SchemaRegistry};

#[tokio::test]
async fn has_confluent_semantics() {
    let registry = EmbeddedRegistry::in_memory();
    common::conformance::registry_semantics(&registry, &common::unique(), true).await;
}

#[tokio::test]
async fn the_codec_works_on_it() {
    common::conformance::codec_round_trip(
        Arc::new(EmbeddedRegistry::in_memory()),
        &common::unique(),
    )
    .await;
}

#[tokio::test]
async fn ids_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let schema =
        r#"{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":"string"}]}"#;
    let other = r#"{"type":"record","name":"S","namespace":"t","fields":[]}"#;
    let (id, other_id) = {
        let registry = EmbeddedRegistry::open(dir.path()).unwrap();
        let id = registry.register("s-t.R", schema).await.unwrap();
        let other_id = registry.register("s-t.S", other).await.unwrap();
        registry
            .set_compatibility(Some("s-t.R"), CompatibilityLevel::FullTransitive)
            .await
            .unwrap();
        (id, other_id)
    };
    let file = dir.path().join(schemas::registry::EMBEDDED_REGISTRY_FILE);
    assert!(file.exists());
    // No temp files left behind.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    let registry = EmbeddedRegistry::open(dir.path()).unwrap();
    assert_eq!(registry.register("s-t.R", schema).await.unwrap(), id);
    assert_eq!(registry.versions("s-t.R").await.unwrap(), vec![1]);
    assert_eq!(registry.schema_by_id(other_id).await.unwrap(), other);
    assert_eq!(
        registry.compatibility(Some("s-t.R")).await.unwrap(),
        CompatibilityLevel::FullTransitive
    );
    // New ids continue after the old ones.
    let third = registry
        .register(
            "s-t.T",
            r#"{"type":"record","name":"T","namespace":"t","fields":[]}"#,
        )
        .await
        .unwrap();
    assert!(third > id.max(other_id));
}

#[tokio::test]
async fn a_corrupt_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(schemas::registry::EMBEDDED_REGISTRY_FILE),
        b"{not json",
    )
    .unwrap();
    let err = EmbeddedRegistry::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, schemas::registry::RegistryError::Storage(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn concurrent_registrations_agree_on_ids() {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let schema =
        r#"{"type":"record","name":"C","namespace":"t","fields":[{"name":"a","type":"long"}]}"#;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                registry
                    .register(&format!("s{}-t.C", i % 4), schema)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    for i in 0..4 {
        assert_eq!(
            registry.versions(&format!("s{i}-t.C")).await.unwrap(),
            vec![1]
        );
    }
}
