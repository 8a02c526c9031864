//! Read-your-writes with position tokens, and following a rebuild's switch
//! to a new table generation.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use platform::readstore::ReadStore;
use platform::readstore::Value;
use projectors::projection::row;
use projectors::projection::Projection;
use projectors::projections::catalog::PRODUCTS_BY_ID;
use projectors::projections::orders::OrdersProjection;
use schemas::orders::{OrderCancellationRequested, OrderConfirmed, OrdersEvent};
use schemas::AnyEvent;

use crate::fixture::{envelope, placed, t, test_config, Fixture};

fn position(raw: &str) -> String {
    format!(
        "p1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

fn with_position(uri: &str, token: &str, position: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("x-position-token", position)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_read_waits_for_the_write_it_follows_and_never_404s() {
    let f = Fixture::new().await;
    let writer = f.clone();
    let started = Instant::now();
    let projected = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.place("o-1", "c-1", 1_000).await;
    });
    let answer = f
        .send(with_position(
            "/orders/o-1",
            &f.customer("c-1"),
            &position("Order:o-1:1"),
        ))
        .await;
    assert_eq!(answer.ok()["status"], "PLACED");
    assert_eq!(answer.headers["x-read-position-reached"], "true");
    assert!(started.elapsed() >= Duration::from_millis(100));
    projected.await.unwrap();
}

#[tokio::test]
async fn a_position_never_reached_is_503_not_yet_consistent() {
    let f = Fixture::with_config(query_api::QueryConfig {
        read_your_writes_timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    f.place("o-1", "c-1", 1_000).await;
    let started = Instant::now();
    let answer = f
        .send(with_position(
            "/orders/o-1",
            &f.customer("c-1"),
            &position("Order:o-1:5"),
        ))
        .await;
    answer.problem(503, "not-yet-consistent", None);
    assert_eq!(answer.body["title"], "Not yet consistent");
    assert_eq!(answer.headers["retry-after"], "1");
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(detail.contains("Order o-1 version 5"), "{detail}");
    assert!(answer.body.get("incident").is_none());
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_position_already_reached_answers_at_once() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let answer = f
        .get(
            &format!("/customers/me/orders?after={}", position("Order:o-1:1")),
            Some(&f.customer("c-1")),
        )
        .await;
    assert_eq!(answer.ok()["items"][0]["order_id"], "o-1");
    assert_eq!(answer.headers["x-read-position-reached"], "true");
    // Without a token, no such header.
    let plain = f.get("/orders/o-1", Some(&f.customer("c-1"))).await;
    assert!(plain.headers.get("x-read-position-reached").is_none());
}

#[tokio::test]
async fn malformed_and_unfollowed_positions_are_refused() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let token = f.customer("c-1");
    for bad in [
        "garbage",
        "p1.***",
        &position("Order:o-1:zero"),
        &position("Order:o-1:0"),
    ] {
        f.send(with_position("/orders/o-1", &token, bad))
            .await
            .problem(400, "invalid-position-token", Some("X-Position-Token"));
    }
    f.get("/orders/o-1?after=p1.nope", Some(&token))
        .await
        .problem(400, "invalid-position-token", Some("after"));
    let cart = f
        .send(with_position(
            "/orders/o-1",
            &token,
            &position("Cart:c-1:3"),
        ))
        .await;
    cart.problem(422, "position-not-followed", Some("X-Position-Token"));
    assert!(cart.body["detail"].as_str().unwrap().contains("Cart"));
    f.get(
        &format!("/orders/o-1?after={}", position("Cart:c-1:3")),
        Some(&token),
    )
    .await
    .problem(422, "position-not-followed", Some("after"));
}

#[tokio::test]
async fn a_public_read_waits_for_a_product() {
    let f = Fixture::new().await;
    let store = f.store.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut m = projectors::projection::upsert(
            PRODUCTS_BY_ID,
            1,
            row([
                ("sku", t("MUG-1")),
                ("name", t("Mug")),
                ("product_version", Value::BigInt(1)),
            ]),
        );
        m.generation = 1;
        store.write(&[m]).await.unwrap();
    });
    let answer = f
        .get(
            &format!("/products/MUG-1?after={}", position("Product:MUG-1:1")),
            None,
        )
        .await;
    assert_eq!(answer.ok()["name"], "Mug");
    writer.await.unwrap();
}

#[tokio::test]
async fn a_cancellation_request_is_reached_through_the_timeline() {
    // It changes no status, so `order_version` stays at 1; the timeline
    // shows the projection has version 2.
    let f = Fixture::with_config(query_api::QueryConfig {
        read_your_writes_timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    f.place("o-1", "c-1", 1_000).await;
    f.project(
        envelope("Order", "o-1", 2, 2_000),
        AnyEvent::Orders(OrdersEvent::OrderCancellationRequested(
            OrderCancellationRequested {
                reason: Some("changed my mind".into()),
            },
        )),
    )
    .await;
    let answer = f
        .send(with_position(
            "/orders/o-1",
            &f.customer("c-1"),
            &position("Order:o-1:2"),
        ))
        .await;
    assert_eq!(answer.ok()["status"], "PLACED");
}

#[tokio::test]
async fn after_a_rebuild_switches_answers_come_from_the_new_generation() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    // Generation 2 holds the order one step further.
    f.store
        .ensure_tables(OrdersProjection.tables(), 2)
        .await
        .unwrap();
    let project = |e, ev| {
        OrdersProjection
            .project(&projectors::projection::Projected {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                input: projectors::projection::Input::Event {
                    envelope: e,
                    event: ev,
                },
            })
            .unwrap()
    };
    let mut g2 = project(envelope("Order", "o-1", 1, 1_000), placed("c-1"));
    g2.extend(project(
        envelope("Order", "o-1", 2, 2_000),
        AnyEvent::Orders(OrdersEvent::OrderConfirmed(OrderConfirmed {
            payment_id: None,
        })),
    ));
    f.write_in(2, g2).await;

    let token = f.customer("c-1");
    assert_eq!(
        f.get("/orders/o-1", Some(&token)).await.ok()["status"],
        "PLACED"
    );
    projectors::generations::switch(f.store.as_ref(), "orders", 2, 5_000)
        .await
        .unwrap();
    // Within the refresh (50 ms in tests) the switch is seen.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        f.get("/orders/o-1", Some(&token)).await.ok()["status"],
        "CONFIRMED"
    );
    let timeline = f.get("/orders/o-1/timeline", Some(&token)).await;
    assert_eq!(timeline.ok()["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_bad_token_is_refused_before_any_wait() {
    let f = Fixture::new().await;
    let started = Instant::now();
    f.send(with_position(
        "/orders/o-1",
        "not-a-token",
        &position("Order:o-1:9"),
    ))
    .await
    .problem(401, "unauthorized", None);
    assert!(started.elapsed() < Duration::from_millis(500));
    // The caller is authenticated once, and still checked by the handler.
    f.place("o-1", "c-1", 1_000).await;
    f.send(with_position(
        "/orders/o-1",
        &f.customer("c-2"),
        &position("Order:o-1:1"),
    ))
    .await
    .problem(404, "not-found", None);
}
