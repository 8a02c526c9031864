//! `ConfluentRegistry` against a REAL schema registry (Confluent Schema
//! Registry, or a compatible server such as Apicurio's ccompat API).
//!
//! Needs `QS_SCHEMA_REGISTRY_URL` (e.g. `http://127.0.0.1:8081`), which the
//! project test script sets after starting a registry. Without it this test
//! FAILS on purpose: a missing prerequisite is never a silent pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use schemas::registry::{ConfluentRegistry, ConfluentRegistryConfig, Secret};

fn registry() -> ConfluentRegistry {
    let url = match std::env::var("QS_SCHEMA_REGISTRY_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "QS_SCHEMA_REGISTRY_URL is not set: this test needs a real schema registry. \
             Run the project test script `deploy/test.sh` (what `.ci/run` runs), which starts \
             one and sets QS_SCHEMA_REGISTRY_URL, or start a registry yourself and export its URL."
        ),
    };
    let mut config = ConfluentRegistryConfig::new(url);
    if let (Ok(user), Ok(password)) = (
        std::env::var("QS_SCHEMA_REGISTRY_USER"),
        std::env::var("QS_SCHEMA_REGISTRY_PASSWORD"),
    ) {
        config = config.with_basic_auth(user, Secret::new(password));
    }
    ConfluentRegistry::new(config).unwrap()
}

#[tokio::test]
async fn real_schema_registry() {
    let registry = registry();
    let unique = common::unique();
    // The global level of a shared registry is left alone.
    common::conformance::registry_semantics(&registry, &unique, false).await;
    common::conformance::codec_round_trip(Arc::new(registry), &unique).await;
}
