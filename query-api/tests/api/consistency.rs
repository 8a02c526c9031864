//! Read-your-writes with position tokens, and following a rebuild's switch
//! to a new table generation.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use platform::auth::Role;
use platform::readstore::ReadStore;
use platform::readstore::Value;
use projectors::projection::row;
use projectors::projection::Projection;
use projectors::projections::catalog::PRODUCTS_BY_ID;
use projectors::projections::customers::CUSTOMER_PROFILES;
use projectors::projections::orders::{OrdersProjection, ORDER_TIMELINE};
use projectors::projections::stock::STOCK_LEVELS;
use schemas::orders::{OrderCancellationRequested, OrderConfirmed, OrdersEvent};
use schemas::AnyEvent;

use crate::fixture::{envelope, placed, t, test_config, Answer, Fixture};

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
async fn a_cancellation_request_is_reached_through_the_order_version() {
    // It changes no status, but the orders projection still moves
    // `order_version` to 2: that cell alone answers.
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
    assert_eq!(answer.body["versions"]["order"], 2);
}

#[tokio::test]
async fn an_order_position_waits_on_the_order_version_only_not_the_timeline() {
    let f = Fixture::with_config(query_api::QueryConfig {
        read_your_writes_timeout: Duration::from_millis(200),
        ..test_config()
    })
    .await;
    f.place("o-1", "c-1", 1_000).await;
    // A timeline entry ahead of the row does not count.
    f.put(
        ORDER_TIMELINE,
        row([
            ("order_id", t("o-1")),
            ("occurred_at", Value::Timestamp(2_000)),
            ("event_id", t("e-2")),
            ("aggregate_type", t("Order")),
            ("version", Value::BigInt(2)),
        ]),
    )
    .await;
    f.send(with_position(
        "/orders/o-1",
        &f.customer("c-1"),
        &position("Order:o-1:2"),
    ))
    .await
    .problem(503, "not-yet-consistent", None);
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

/// A config whose waits are long enough that "no wait" shows.
fn slow_config() -> query_api::QueryConfig {
    query_api::QueryConfig {
        read_your_writes_timeout: Duration::from_secs(5),
        ..test_config()
    }
}

/// Sends `uri` with `position` (and a bearer token, if any), expecting an
/// answer well before the wait's bound: the position was refused or never
/// waited for.
async fn at_once(f: &Fixture, uri: &str, token: Option<&str>, position: &str) -> Answer {
    let mut request = Request::get(uri).header("x-position-token", position);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let started = Instant::now();
    let answer = f.send(request.body(Body::empty()).unwrap()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{uri} waited: {:?}",
        answer.body
    );
    answer
}

#[tokio::test]
async fn an_order_route_follows_only_its_own_order_payment_and_shipment() {
    let f = Fixture::with_config(slow_config()).await;
    f.place("o-1", "c-1", 1_000).await;
    let token = f.customer("c-1");
    // Another order's position: refused, no wait.
    let other = at_once(&f, "/orders/o-1", Some(&token), &position("Order:o-2:1")).await;
    other.problem(422, "position-not-followed", Some("X-Position-Token"));
    assert!(other.body["detail"].as_str().unwrap().contains("order_id"));
    for uri in [
        "/orders/o-1/timeline",
        "/orders/o-1/payment",
        "/orders/o-1/stream",
    ] {
        at_once(&f, uri, Some(&token), &position("Payment:o-9:1"))
            .await
            .problem(422, "position-not-followed", Some("X-Position-Token"));
    }
    // A type order routes do not follow.
    let product = at_once(&f, "/orders/o-1", Some(&token), &position("Product:o-1:1")).await;
    product.problem(422, "position-not-followed", Some("X-Position-Token"));
    assert!(product.body["detail"]
        .as_str()
        .unwrap()
        .contains("does not follow Product positions"));
    // The same through `?after=` names `after`.
    f.get(
        &format!("/orders/o-1?after={}", position("Shipment:o-2:1")),
        Some(&token),
    )
    .await
    .problem(422, "position-not-followed", Some("after"));
    // Its own: served.
    let own = at_once(&f, "/orders/o-1", Some(&token), &position("Order:o-1:1")).await;
    assert_eq!(own.ok()["order_id"], "o-1");
}

#[tokio::test]
async fn a_public_route_waits_without_a_token_only_for_public_data() {
    let f = Fixture::with_config(slow_config()).await;
    f.put(
        PRODUCTS_BY_ID,
        row([
            ("sku", t("MUG-1")),
            ("name", t("Mug")),
            ("category", t("kitchen")),
            ("product_version", Value::BigInt(1)),
        ]),
    )
    .await;
    f.put(
        STOCK_LEVELS,
        row([
            ("sku", t("MUG-1")),
            ("available", Value::Int(3)),
            ("stock_version", Value::BigInt(2)),
        ]),
    )
    .await;
    // Its product and its stock: no bearer token needed.
    let product = at_once(&f, "/products/MUG-1", None, &position("Product:MUG-1:1")).await;
    assert_eq!(product.ok()["availability"]["in_stock"], true);
    at_once(&f, "/products/MUG-1", None, &position("StockItem:MUG-1:2"))
        .await
        .ok();
    at_once(
        &f,
        "/products?category=kitchen",
        None,
        &position("Product:MUG-1:1"),
    )
    .await
    .ok();
    // Another product's: refused without a wait.
    at_once(&f, "/products/MUG-1", None, &position("Product:MUG-2:1"))
        .await
        .problem(422, "position-not-followed", Some("X-Position-Token"));
    // Anything else needs a caller first (401), and then does not fit.
    for (uri, kind) in [
        ("/products/MUG-1", "Order:o-1:1"),
        ("/products/MUG-1", "Customer:c-1:1"),
        ("/products?category=kitchen", "StockItem:MUG-1:1"),
        ("/products?category=kitchen", "Cart:c-1:1"),
    ] {
        let answer = at_once(&f, uri, None, &position(kind)).await;
        answer.problem(401, "unauthorized", None);
        assert!(answer.headers.contains_key("www-authenticate"));
        at_once(&f, uri, Some("not-a-token"), &position(kind))
            .await
            .problem(401, "unauthorized", None);
        at_once(&f, uri, Some(&f.customer("c-1")), &position(kind))
            .await
            .problem(422, "position-not-followed", Some("X-Position-Token"));
    }
}

#[tokio::test]
async fn customer_routes_check_the_caller_before_waiting() {
    let f = Fixture::with_config(slow_config()).await;
    f.place("o-1", "c-1", 1_000).await;
    let c1 = f.customer("c-1");
    let c2 = f.customer("c-2");
    // Another customer's list or profile: 403 at once, whatever the order.
    for uri in ["/customers/c-1/orders", "/customers/c-1/orders/stream"] {
        at_once(&f, uri, Some(&c2), &position("Order:o-1:9"))
            .await
            .problem(403, "forbidden", None);
    }
    at_once(&f, "/customers/c-1", Some(&c2), &position("Customer:c-1:9"))
        .await
        .problem(403, "forbidden", None);
    // A list follows orders (any of them), a profile its customer (`me`).
    at_once(
        &f,
        "/customers/me/orders",
        Some(&c1),
        &position("Customer:c-1:1"),
    )
    .await
    .problem(422, "position-not-followed", Some("X-Position-Token"));
    at_once(&f, "/customers/me", Some(&c1), &position("Customer:c-2:1"))
        .await
        .problem(422, "position-not-followed", Some("X-Position-Token"));
    at_once(&f, "/customers/me", Some(&c1), &position("Order:o-1:1"))
        .await
        .problem(422, "position-not-followed", Some("X-Position-Token"));
    let listed = at_once(
        &f,
        "/customers/me/orders",
        Some(&c1),
        &position("Order:o-1:1"),
    )
    .await;
    assert_eq!(listed.ok()["items"][0]["order_id"], "o-1");
    at_once(
        &f,
        "/customers/c-1/orders",
        Some(&f.admin()),
        &position("Order:o-1:1"),
    )
    .await
    .ok();
    f.put(
        CUSTOMER_PROFILES,
        row([
            ("customer_id", t("c-1")),
            ("customer_version", Value::BigInt(2)),
        ]),
    )
    .await;
    let profile = at_once(&f, "/customers/me", Some(&c1), &position("Customer:c-1:2")).await;
    assert_eq!(profile.ok()["version"], 2);
}

#[tokio::test]
async fn admin_and_courier_routes_check_the_caller_before_waiting() {
    let f = Fixture::with_config(slow_config()).await;
    let customer = f.customer("c-1");
    let courier = f.token("k-1", &[Role::Courier]);
    at_once(
        &f,
        "/stock/MUG-1",
        Some(&customer),
        &position("StockItem:MUG-1:9"),
    )
    .await
    .problem(403, "forbidden", None);
    at_once(
        &f,
        "/stock/MUG-1",
        Some(&f.admin()),
        &position("StockItem:MUG-2:9"),
    )
    .await
    .problem(422, "position-not-followed", Some("X-Position-Token"));
    at_once(
        &f,
        "/shipments/o-1",
        Some(&customer),
        &position("Shipment:o-1:9"),
    )
    .await
    .problem(403, "forbidden", None);
    at_once(
        &f,
        "/shipments/o-1",
        Some(&courier),
        &position("Shipment:o-2:9"),
    )
    .await
    .problem(422, "position-not-followed", Some("X-Position-Token"));
    at_once(
        &f,
        "/couriers/k-2/shipments",
        Some(&courier),
        &position("Shipment:o-1:9"),
    )
    .await
    .problem(403, "forbidden", None);
    at_once(
        &f,
        "/couriers/me/shipments",
        Some(&courier),
        &position("Order:o-1:9"),
    )
    .await
    .problem(422, "position-not-followed", Some("X-Position-Token"));
    // Their own, reached: served.
    f.put(
        STOCK_LEVELS,
        row([("sku", t("MUG-1")), ("stock_version", Value::BigInt(1))]),
    )
    .await;
    at_once(
        &f,
        "/stock/MUG-1",
        Some(&f.admin()),
        &position("StockItem:MUG-1:1"),
    )
    .await
    .ok();
}

#[tokio::test]
async fn routes_that_follow_no_positions_refuse_them() {
    let f = Fixture::with_config(slow_config()).await;
    let admin = f.admin();
    for uri in [
        "/sales/days/2026-11-21",
        "/sales/products/MUG-1",
        "/audit/Order/o-1/events",
        "/ops/sagas/o-1",
    ] {
        let answer = at_once(&f, uri, Some(&admin), &position("Order:o-1:1")).await;
        answer.problem(422, "position-not-followed", Some("X-Position-Token"));
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap()
                .contains("this endpoint does not follow Order positions"),
            "{:?}",
            answer.body
        );
        // Not without a caller either.
        at_once(&f, uri, None, &position("Order:o-1:1"))
            .await
            .problem(401, "unauthorized", None);
    }
}
