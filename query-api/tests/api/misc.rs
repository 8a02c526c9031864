//! Probes, the OpenAPI document, unknown routes and methods.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use platform::readstore::EmbeddedStore;
use query_api::VerifierSource;

use crate::fixture::{test_config, Fixture};

#[tokio::test]
async fn probes_say_alive_and_ready() {
    let f = Fixture::new().await;
    assert_eq!(f.get("/healthz", None).await.ok()["status"], "ok");
    assert_eq!(f.get("/readyz", None).await.ok()["status"], "ready");
}

#[tokio::test]
async fn not_ready_without_a_working_read_store() {
    // A store whose metadata tables were never created.
    let store = Arc::new(EmbeddedStore::in_memory().unwrap());
    let f0 = Fixture::new().await;
    let f = Fixture::assemble(
        store,
        f0.issuer.clone(),
        VerifierSource::fixed(f0.issuer.verifier().unwrap()),
        test_config(),
    );
    assert_eq!(f.get("/healthz", None).await.status, 200);
    let answer = f.get("/readyz", None).await;
    answer.problem(503, "unavailable", None);
    // Opaque: the store's words stay in the log.
    assert_eq!(
        answer.body["detail"],
        "temporarily unavailable, retry later"
    );
    assert!(answer.body["incident"].is_string());
    // A read then is an opaque 500 (a missing table is our bug, not the caller's).
    let read = f.get("/products/MUG-1", None).await;
    read.problem(500, "internal", None);
    assert_eq!(read.body["detail"], "internal error");
    assert!(!read.body.to_string().contains("projection_generations"));
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_documents_every_endpoint() {
    let f = Fixture::new().await;
    let served = f.get("/openapi.json", None).await;
    let doc = served.ok();
    assert_eq!(doc, &serde_json::to_value(query_api::openapi()).unwrap());
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/orders/{order_id}",
        "/orders/{order_id}/timeline",
        "/orders/{order_id}/payment",
        "/orders/{order_id}/stream",
        "/customers/{customer_id}",
        "/customers/{customer_id}/orders",
        "/customers/{customer_id}/orders/stream",
        "/products",
        "/products/{sku}",
        "/stock/{sku}",
        "/shipments/{shipment_id}",
        "/couriers/{courier_id}/shipments",
        "/sales/days/{day}",
        "/sales/products/{sku}",
        "/audit/{aggregate_type}/{aggregate_id}/events",
        "/audit/{aggregate_type}/{aggregate_id}/state",
        "/audit/{aggregate_type}/{aggregate_id}/verify",
        "/ops/sagas/{order_id}",
        "/healthz",
        "/readyz",
    ] {
        let op = &paths[path]["get"];
        assert!(op.is_object(), "{path} is not documented");
        assert!(op["responses"]["500"].is_object(), "{path}");
        if !path.ends_with('z') {
            assert!(op["x-roles"].is_array(), "{path} has no roles");
            assert!(op["responses"]["503"].is_object(), "{path}");
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params.iter().any(|p| p["name"] == "X-Position-Token"),
                "{path}"
            );
        }
    }
    assert_eq!(paths.len(), 20);
    let problem = &paths["/orders/{order_id}"]["get"]["responses"]["404"]["content"];
    assert!(problem["application/problem+json"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let f = Fixture::new().await;
    f.get("/nope", None).await.problem(404, "not-found", None);
    let post = Request::post("/products/MUG-1")
        .body(Body::empty())
        .unwrap();
    f.send(post).await.problem(405, "method-not-allowed", None);
}
