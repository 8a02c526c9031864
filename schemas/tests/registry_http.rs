//! `ConfluentRegistry` against the embedded registry's HTTP router on
//! 127.0.0.1:0: the client and the server agree with each other and with
//! the embedded registry called directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use schemas::registry::{
    http, ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};

async fn serve() -> (ConfluentRegistry, Arc<EmbeddedRegistry>) {
    let embedded = Arc::new(EmbeddedRegistry::in_memory());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve(listener, embedded.clone()));
    let client =
        ConfluentRegistry::new(ConfluentRegistryConfig::new(format!("http://{addr}"))).unwrap();
    (client, embedded)
}

#[tokio::test]
async fn the_confluent_client_has_confluent_semantics_over_the_router() {
    let (client, embedded) = serve().await;
    let unique = common::unique();
    common::conformance::registry_semantics(&client, &unique, true).await;

    // Both paths see the same state.
    let subjects = client.subjects().await.unwrap();
    assert_eq!(subjects, embedded.subjects().await.unwrap());
    for subject in &subjects {
        assert_eq!(
            client.latest(subject).await.unwrap(),
            embedded.latest(subject).await.unwrap()
        );
        assert_eq!(
            client.versions(subject).await.unwrap(),
            embedded.versions(subject).await.unwrap()
        );
    }
}

#[tokio::test]
async fn the_codec_works_over_http() {
    let (client, _) = serve().await;
    common::conformance::codec_round_trip(Arc::new(client), &common::unique()).await;
}

#[tokio::test]
async fn the_router_speaks_the_confluent_dialect() {
    let (client, _) = serve().await;
    let base = client.url().clone();
    let http = reqwest::Client::new();
    // A standard client posts with the Confluent media type and gets it back.
    let response = http
        .post(base.join("subjects/s-t.R/versions").unwrap())
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"schema":"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[]}"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["id"].as_u64().is_some(), "{body}");

    let response = http
        .get(base.join("subjects/nope/versions/latest").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 40401);

    let response = http
        .get(base.join("schemas/ids/999").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 40403);

    let response = http
        .post(base.join("subjects/s-t.R/versions").unwrap())
        .body(r#"{"schema":"{\"type\":\"nonsense\"}"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 42201);

    let response = http
        .put(base.join("config/s-t.R").unwrap())
        .body(r#"{"compatibility":"SIDEWAYS"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 42203);

    // Explicit version numbers in the compatibility endpoint.
    let response = http
        .post(base.join("compatibility/subjects/s-t.R/versions/1").unwrap())
        .body(r#"{"schema":"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}"}"#)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["is_compatible"], false, "{body}");
}
