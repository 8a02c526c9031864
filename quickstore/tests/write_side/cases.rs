//! What the write side must show, each case on the embedded log and on
//! real Kafka: the saga's paths end to end through the HTTP API, races,
//! idempotency, and bad input that appends nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::time::Duration;

use anyhow::{ensure, Result};
use platform::testing::TestAdapter;
use reqwest::{Method, StatusCode};
use schemas::Context;
use serde_json::json;

use crate::app::{self, spawn_app, spawn_app_with, TestApp, APPROVE, DECLINE, NO_ANSWER};

fn sku(app: &TestApp, name: &str) -> String {
    // Unique per app: Kafka cases share one broker.
    format!(
        "{name}-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    )
}

fn order_id(body: &serde_json::Value) -> String {
    body["order_id"].as_str().unwrap_or_default().to_owned()
}

/// Admin assigns the courier; the courier picks the parcel up.
pub(crate) async fn assign_and_pick_up(
    app: &mut TestApp,
    order: &str,
    courier: &(String, String),
) -> Result<()> {
    app.wait_for(Context::Deliveries, order, "ShipmentScheduled")
        .await?;
    let admin = app.admin().await?;
    app.ok(
        Method::PUT,
        &format!("/shipments/{order}/courier"),
        &admin,
        json!({"courier_id": courier.0}),
    )
    .await?;
    app.ok(
        Method::POST,
        &format!("/shipments/{order}/pickup"),
        &courier.1,
        json!({}),
    )
    .await?;
    app.wait_for(Context::Orders, order, "OrderShipped").await?;
    Ok(())
}

pub async fn happy_path(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let (mug, tea) = (sku(&app, "MUG"), sku(&app, "TEA"));
    app.product(&mug, 1299, 10).await?;
    app.product(&tea, 899, 10).await?;
    let (_, customer) = app.customer("ada").await?;
    let courier = app.courier("cora").await?;
    let (status, body) = app
        .place_order(&customer, &[(&mug, 2), (&tea, 1)], APPROVE)
        .await?;
    ensure!(
        status == StatusCode::CREATED,
        "place order: {status} {body}"
    );
    ensure!(
        body["version"] == 1
            && body["position"]
                .as_str()
                .is_some_and(|p| p.starts_with("p1.")),
        "{body}"
    );
    let order = order_id(&body);
    assign_and_pick_up(&mut app, &order, &courier).await?;
    app.ok(
        Method::POST,
        &format!("/shipments/{order}/delivery"),
        &courier.1,
        json!({"received_by": "Ada"}),
    )
    .await?;
    let orders = app
        .wait_for(Context::Orders, &order, "OrderCompleted")
        .await?;
    ensure!(
        orders
            == [
                "OrderPlaced",
                "OrderConfirmed",
                "OrderShipped",
                "OrderCompleted"
            ],
        "{orders:?}"
    );
    let payments = app
        .wait_for(Context::Payments, &order, "PaymentCaptured")
        .await?;
    ensure!(
        payments == ["PaymentAuthorized", "PaymentCaptured"],
        "{payments:?}"
    );
    // Captured exactly the order total: 2 × 12.99 + 8.99 + 4.99 shipping.
    let captured =
        app.events(Context::Payments)
            .await?
            .into_iter()
            .find_map(|(id, _, _, e)| match e {
                schemas::AnyEvent::Payments(schemas::payments::PaymentsEvent::PaymentCaptured(
                    c,
                )) if id == order => Some(c.amount_minor),
                _ => None,
            });
    ensure!(
        captured == Some(2 * 1299 + 899 + 499),
        "captured {captured:?}"
    );
    let shipment = app.history(Context::Deliveries, &order).await?;
    ensure!(
        shipment
            == [
                "ShipmentScheduled",
                "CourierAssigned",
                "ShipmentPickedUp",
                "ShipmentDelivered"
            ],
        "{shipment:?}"
    );
    let item = app.stock(&mug).await?;
    ensure!(
        item.on_hand == 8 && item.reserved() == 0,
        "mug stock: {item:?}"
    );
    app.stop().await
}

pub async fn out_of_stock_rejects_and_releases(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let (plenty, scarce) = (sku(&app, "PLENTY"), sku(&app, "SCARCE"));
    app.product(&plenty, 500, 10).await?;
    app.product(&scarce, 500, 1).await?;
    let (_, customer) = app.customer("bob").await?;
    let (status, body) = app
        .place_order(&customer, &[(&plenty, 3), (&scarce, 2)], APPROVE)
        .await?;
    ensure!(status == StatusCode::CREATED, "{status} {body}");
    let order = order_id(&body);
    let history = app
        .wait_for(Context::Orders, &order, "OrderRejected")
        .await?;
    ensure!(history == ["OrderPlaced", "OrderRejected"], "{history:?}");
    // Released: back to what it was.
    app.wait_stock(&plenty, |item| {
        item.available() == 10 && item.reserved() == 0
    })
    .await?;
    ensure!(app.stock(&scarce).await?.available() == 1);
    ensure!(
        app.history(Context::Payments, &order).await?.is_empty(),
        "no payment for a rejected order"
    );
    app.stop().await
}

pub async fn declined_card_and_payment_timeout_cancel(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "ITEM");
    app.product(&item, 1000, 10).await?;
    let (_, customer) = app.customer("cy").await?;
    let (_, declined) = app.place_order(&customer, &[(&item, 2)], DECLINE).await?;
    let declined = order_id(&declined);
    let history = app
        .wait_for(Context::Orders, &declined, "OrderCancelled")
        .await?;
    ensure!(history == ["OrderPlaced", "OrderCancelled"], "{history:?}");
    ensure!(app.history(Context::Payments, &declined).await? == ["PaymentDeclined"]);

    // A gateway that never answers: the saga's deadline (a test clock
    // moved past it) gives up on the authorization and cancels.
    let (_, silent) = app.place_order(&customer, &[(&item, 3)], NO_ANSWER).await?;
    let silent = order_id(&silent);
    app.wait_for(Context::Payments, &silent, "PaymentAuthorizationPending")
        .await?;
    app.advance(Duration::from_secs(31));
    let history = app
        .wait_for(Context::Orders, &silent, "OrderCancelled")
        .await?;
    ensure!(history == ["OrderPlaced", "OrderCancelled"], "{history:?}");
    ensure!(
        app.history(Context::Payments, &silent).await?
            == [
                "PaymentAuthorizationPending",
                "PaymentAuthorizationTimedOut"
            ]
    );
    app.wait_stock(&item, |stock| stock.available() == 10)
        .await?;
    app.stop().await
}

pub async fn webhook_answers_a_pending_authorization(adapter: TestAdapter) -> Result<()> {
    use command_api::gateway::webhook::{sign, WebhookEvent};
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "HOOK");
    app.product(&item, 1000, 5).await?;
    let (_, customer) = app.customer("dee").await?;
    let (_, body) = app
        .place_order(&customer, &[(&item, 1)], app::ANSWER_BY_WEBHOOK)
        .await?;
    let order = order_id(&body);
    app.wait_for(Context::Payments, &order, "PaymentAuthorizationPending")
        .await?;
    let reference = app
        .events(Context::Payments)
        .await?
        .into_iter()
        .find_map(|(id, _, _, e)| match e {
            schemas::AnyEvent::Payments(
                schemas::payments::PaymentsEvent::PaymentAuthorizationPending(p),
            ) if id == order => Some(p.gateway_reference),
            _ => None,
        })
        .unwrap();
    let event = WebhookEvent::authorized("evt_1", &reference, &order, "AUTH42");
    let payload = event.to_json();
    let now = (quickstore::write_side::system_clock())() / 1000
        + app.clock_offset.load(std::sync::atomic::Ordering::SeqCst) / 1000;
    let secret = platform::config::Secret::new(app::WEBHOOK_SECRET);
    let post = |signature: String, body: Vec<u8>| {
        app.http
            .post(format!("{}/webhooks/payments", app.url))
            .header("content-type", "application/json")
            .header("gateway-signature", signature)
            .body(body)
            .send()
    };
    // Bad signature, stale timestamp: refused, nothing recorded.
    let forged = post(
        sign(&payload, &platform::config::Secret::new("wrong"), now),
        payload.clone(),
    )
    .await?;
    ensure!(
        forged.status() == StatusCode::UNAUTHORIZED,
        "forged: {}",
        forged.status()
    );
    let stale = post(sign(&payload, &secret, now - 3600), payload.clone()).await?;
    ensure!(
        stale.status() == StatusCode::UNAUTHORIZED,
        "stale: {}",
        stale.status()
    );
    ensure!(app.history(Context::Payments, &order).await? == ["PaymentAuthorizationPending"]);
    let good = post(sign(&payload, &secret, now), payload.clone()).await?;
    ensure!(
        good.status() == StatusCode::OK,
        "good: {} {}",
        good.status(),
        good.text().await?
    );
    let replay = post(sign(&payload, &secret, now), payload.clone()).await?;
    ensure!(
        replay.status() == StatusCode::CONFLICT,
        "replay: {}",
        replay.status()
    );
    app.wait_for(Context::Orders, &order, "OrderConfirmed")
        .await?;
    ensure!(
        app.history(Context::Payments, &order).await?
            == ["PaymentAuthorizationPending", "PaymentAuthorized"]
    );
    app.stop().await
}

pub async fn delivery_failure_refunds_and_returns_stock(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "FRAGILE");
    app.product(&item, 2500, 5).await?;
    let (_, customer) = app.customer("eve").await?;
    let courier = app.courier("finn").await?;
    let (_, body) = app.place_order(&customer, &[(&item, 2)], APPROVE).await?;
    let order = order_id(&body);
    assign_and_pick_up(&mut app, &order, &courier).await?;
    ensure!(app.stock(&item).await?.on_hand == 3, "committed on pickup");
    app.ok(
        Method::POST,
        &format!("/shipments/{order}/failure"),
        &courier.1,
        json!({"reason": "address not found"}),
    )
    .await?;
    let history = app
        .wait_for(Context::Orders, &order, "OrderCancelled")
        .await?;
    ensure!(
        history
            == [
                "OrderPlaced",
                "OrderConfirmed",
                "OrderShipped",
                "OrderCancelled"
            ],
        "{history:?}"
    );
    let payments = app
        .wait_for(Context::Payments, &order, "PaymentRefunded")
        .await?;
    ensure!(
        payments == ["PaymentAuthorized", "PaymentCaptured", "PaymentRefunded"],
        "{payments:?}"
    );
    app.wait_stock(&item, |stock| stock.on_hand == 5 && stock.available() == 5)
        .await?;
    app.stop().await
}

pub async fn cancel_before_and_after_pickup(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "LAMP");
    app.product(&item, 3000, 10).await?;
    let (_, customer) = app.customer("gus").await?;
    let courier = app.courier("hal").await?;

    let (_, body) = app.place_order(&customer, &[(&item, 2)], APPROVE).await?;
    let early = order_id(&body);
    app.wait_for(Context::Deliveries, &early, "ShipmentScheduled")
        .await?;
    let (status, body) = app
        .post(
            &format!("/orders/{early}/cancellation"),
            &customer,
            json!({"reason": "changed my mind"}),
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    let history = app
        .wait_for(Context::Orders, &early, "OrderCancelled")
        .await?;
    ensure!(
        history.ends_with(&[
            "OrderCancellationRequested".to_owned(),
            "OrderCancelled".to_owned()
        ]),
        "{history:?}"
    );
    app.wait_for(Context::Payments, &early, "PaymentVoided")
        .await?;
    app.wait_for(Context::Deliveries, &early, "ShipmentCancelled")
        .await?;

    let (_, body) = app.place_order(&customer, &[(&item, 1)], APPROVE).await?;
    let late = order_id(&body);
    assign_and_pick_up(&mut app, &late, &courier).await?;
    let (status, body) = app
        .post(
            &format!("/orders/{late}/cancellation"),
            &customer,
            json!({}),
        )
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && body["code"] == "already-shipped",
        "{status} {body}"
    );
    ensure!(!app
        .history(Context::Orders, &late)
        .await?
        .contains(&"OrderCancelled".to_owned()));

    // 10 − 1 shipped; the cancelled order's 2 are back.
    app.wait_stock(&item, |stock| stock.on_hand == 9 && stock.available() == 9)
        .await?;
    app.stop().await
}

pub async fn fifty_orders_race_for_ten_units(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "LAST");
    app.product(&item, 100, 10).await?;
    let mut customers = Vec::new();
    for i in 0..5 {
        customers.push(app.customer(&format!("racer{i}")).await?.1);
    }
    let orders = futures::future::join_all((0..50).map(|i| {
        let (app, token, item) = (&app, customers[i % 5].clone(), item.clone());
        async move { app.place_order(&token, &[(&item, 1)], APPROVE).await }
    }))
    .await;
    let mut ids = Vec::new();
    for result in orders {
        let (status, body) = result?;
        ensure!(status == StatusCode::CREATED, "{status} {body}");
        ids.push(order_id(&body));
    }
    let (mut confirmed, mut rejected) = (0, 0);
    for id in &ids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let history = app.history(Context::Orders, id).await?;
            if history.contains(&"OrderConfirmed".to_owned()) {
                confirmed += 1;
                break;
            }
            if history.contains(&"OrderRejected".to_owned()) {
                rejected += 1;
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{id} undecided: {history:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    ensure!(
        confirmed == 10 && rejected == 40,
        "confirmed {confirmed}, rejected {rejected}"
    );
    // Never negative along the way: every event's available-after ≥ 0.
    for (id, _, _, event) in app.events(Context::Inventory).await? {
        if id == item {
            if let schemas::AnyEvent::Inventory(
                schemas::inventory::InventoryEvent::StockReserved(r),
            ) = event
            {
                ensure!(r.available_after >= 0, "negative: {r:?}");
            }
        }
    }
    let stock = app.stock(&item).await?;
    ensure!(
        stock.available() == 0 && stock.reserved() == 10,
        "{stock:?}"
    );
    app.stop().await
}

pub async fn a_repeated_post_appends_nothing(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "ONCE");
    app.product(&item, 700, 10).await?;
    let (_, customer) = app.customer("ivy").await?;
    let body = json!({"lines": [{"sku": item, "quantity": 1}], "shipping_address": app::address(), "payment": {"card_number": DECLINE}});
    let (s1, first) = app
        .send(
            Method::POST,
            "/orders",
            Some(&customer),
            Some("order-once"),
            Some(body.clone()),
        )
        .await?;
    ensure!(s1 == StatusCode::CREATED, "{s1} {first}");
    let order = order_id(&first);
    app.wait_for(Context::Orders, &order, "OrderCancelled")
        .await?;
    let before = app.event_ends().await?;
    let (s2, second) = app
        .send(
            Method::POST,
            "/orders",
            Some(&customer),
            Some("order-once"),
            Some(body.clone()),
        )
        .await?;
    ensure!(s2 == s1 && second == first, "replay differs: {s2} {second}");
    // Same key, different body: 422, nothing sent.
    let mut other = body.clone();
    other["lines"][0]["quantity"] = json!(2);
    let (s3, problem) = app
        .send(
            Method::POST,
            "/orders",
            Some(&customer),
            Some("order-once"),
            Some(other),
        )
        .await?;
    ensure!(
        s3 == StatusCode::UNPROCESSABLE_ENTITY && problem["code"] == "idempotency-key-reused",
        "{s3} {problem}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        app.event_ends().await? == before,
        "a repeated POST appended events"
    );
    ensure!(app.history(Context::Orders, &order).await? == ["OrderPlaced", "OrderCancelled"]);
    app.stop().await
}

/// A 202 is not an answer: a retry under the same key asks again, and
/// once a processor decides the command the retry gets its outcome — the
/// same command, decided once — instead of the 202 replayed for good
/// (what left courier flows stuck after a broker restart, ADR 0028).
pub async fn a_retry_after_a_202_gets_the_outcome(adapter: TestAdapter) -> Result<()> {
    let app = spawn_app_with(adapter, |o| {
        o.roles.command_processors = false;
        o.roles.sagas = false;
        o.api.outcome_wait = Duration::from_millis(300);
    })
    .await?;
    let (customer_id, token) = app.customer("kim").await?;
    let path = format!("/customers/{customer_id}/profile");
    let profile = json!({"display_name": "Kim K."});
    let put = || {
        app.send(
            Method::PUT,
            &path,
            Some(&token),
            Some("profile-once"),
            Some(profile.clone()),
        )
    };
    let (s1, pending) = put().await?;
    ensure!(
        s1 == StatusCode::ACCEPTED,
        "no processor yet: {s1} {pending}"
    );
    let command_id = pending["command_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Still undecided, asked again: a fresh 202 for the same command, not
    // a replay of the stored one.
    let (s2, again) = put().await?;
    ensure!(
        s2 == StatusCode::ACCEPTED && again["command_id"] == command_id.as_str(),
        "{s2} {again}"
    );
    let processors = app.start_processors().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let decided = loop {
        let (status, body) = put().await?;
        if status != StatusCode::ACCEPTED {
            break (status, body);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "still 202 a minute after the processors started: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(
        decided.0 == StatusCode::OK && decided.1["command_id"] == command_id.as_str(),
        "{} {}",
        decided.0,
        decided.1
    );
    // Decided now: from here on the retry is the stored answer.
    let (s4, replay) = put().await?;
    ensure!(s4 == decided.0 && replay == decided.1, "{s4} {replay}");
    // Sent three times, decided once.
    let history = app.history(Context::Customers, &customer_id).await?;
    ensure!(
        history == ["CustomerRegistered", "CustomerProfileUpdated"],
        "{history:?}"
    );
    processors.stop().await?;
    app.stop().await
}

pub async fn bad_input_is_refused_and_appends_nothing(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "SAFE");
    app.product(&item, 700, 10).await?;
    // If-Match: a stale version is a 409 that names the current one.
    let admin = app.admin().await?;
    let reprice = |version: &'static str| {
        app.http
            .put(format!("{}/products/{item}/price", app.url))
            .bearer_auth(&admin)
            .header("if-match", version)
            .json(&json!({"price_minor": 800, "currency": "EUR"}))
            .send()
    };
    let stale = reprice("\"7\"").await?;
    ensure!(
        stale.status() == StatusCode::CONFLICT,
        "stale If-Match: {}",
        stale.status()
    );
    let problem: serde_json::Value = stale.json().await?;
    ensure!(
        problem["code"] == "version-conflict" && problem["current_version"] == 1,
        "{problem}"
    );
    let fresh = reprice("\"1\"").await?;
    ensure!(
        fresh.status() == StatusCode::OK,
        "current If-Match: {}",
        fresh.status()
    );
    ensure!(fresh.headers()["etag"] == "\"2\"");
    let (_, alice) = app.customer("alice").await?;
    let (_, mallory) = app.customer("mallory").await?;
    let (_, body) = app.place_order(&alice, &[(&item, 1)], DECLINE).await?;
    let alices = order_id(&body);
    app.wait_for(Context::Orders, &alices, "OrderCancelled")
        .await?;
    let before = app.event_ends().await?;
    let url = format!("{}/orders", app.url);

    // Malformed JSON.
    let r = app
        .http
        .post(&url)
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{\"lines\": [")
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::BAD_REQUEST,
        "malformed: {}",
        r.status()
    );
    ensure!(r.headers()["content-type"] == "application/problem+json");
    // Negative quantity, huge quantity, unknown SKU: 422 naming the field.
    for (line, field) in [
        (json!({"sku": item, "quantity": -1}), "lines[0].quantity"),
        (
            json!({"sku": item, "quantity": 9_223_372_036_854_775_807_i64}),
            "lines[0].quantity",
        ),
        (json!({"sku": "NO-SUCH-SKU", "quantity": 1}), "lines[0].sku"),
        (json!({"sku": item, "quantity": "two"}), "lines[0].quantity"),
    ] {
        let (status, problem) = app.post("/orders", &alice, json!({"lines": [line], "shipping_address": app::address(), "payment": {"card_number": APPROVE}})).await?;
        ensure!(
            status == StatusCode::UNPROCESSABLE_ENTITY && problem["field"] == field,
            "{field}: {status} {problem}"
        );
    }
    // A bad card number: 422 on the card, and the number is not echoed.
    let (status, problem) = app
        .place_order(&alice, &[(&item, 1)], "4242 4242 4242 4241")
        .await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY && problem["field"] == "payment.card_number",
        "{status} {problem}"
    );
    ensure!(
        !problem.to_string().contains("4241"),
        "card number echoed: {problem}"
    );
    // Wrong role: a customer creating a product.
    let (status, _) = app.post("/products", &alice, json!({"sku": "X-1", "name": "x", "category": "x", "price_minor": 1, "currency": "EUR"})).await?;
    ensure!(status == StatusCode::FORBIDDEN, "wrong role: {status}");
    // Another customer's order.
    let (status, problem) = app
        .post(
            &format!("/orders/{alices}/cancellation"),
            &mallory,
            json!({}),
        )
        .await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "another's order: {status} {problem}"
    );
    // Another customer's cart.
    let alice_id = app.customer("alice2").await?.0;
    let (status, _) = app
        .post(
            &format!("/carts/{alice_id}/lines"),
            &mallory,
            json!({"sku": item, "quantity": 1}),
        )
        .await?;
    ensure!(status == StatusCode::NOT_FOUND, "another's cart: {status}");
    // No token, a forged token, alg none, an expired token.
    let (status, _) = app
        .send(Method::POST, "/orders", None, None, Some(json!({})))
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "no token: {status}");
    let mut parts: Vec<String> = alice.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let forged = parts.join(".");
    let (status, _) = app.place_order(&forged, &[(&item, 1)], APPROVE).await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "forged: {status}");
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(alice.split('.').nth(1).unwrap())?,
    )?;
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "at+jwt"})),
        b64(claims)
    );
    let (status, _) = app.place_order(&none, &[(&item, 1)], APPROVE).await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "alg none: {status}");
    app.advance(Duration::from_secs(16 * 60));
    let (status, problem) = app.place_order(&alice, &[(&item, 1)], APPROVE).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED
            && problem["detail"].as_str().unwrap_or("").contains("expired"),
        "expired: {status} {problem}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after = app.event_ends().await?;
    // Registering alice2 appended her CustomerRegistered: the only change.
    let customers = app.system.topics.events(Context::Customers);
    *after.get_mut(&customers).unwrap() -= 1;
    ensure!(
        after == before,
        "bad input appended events: {before:?} → {after:?}"
    );
    app.stop().await
}

pub async fn the_api_documents_itself(adapter: TestAdapter) -> Result<()> {
    let app = spawn_app_with(adapter, |_| {}).await?;
    let (status, doc) = app
        .send(Method::GET, "/openapi.json", None, None, None)
        .await?;
    ensure!(status == StatusCode::OK);
    let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or(0);
    ensure!(paths >= 35, "only {paths} paths documented");
    for path in [
        "/orders",
        "/carts/{customer_id}/checkout",
        "/auth/login",
        "/shipments/{order_id}/pickup",
        "/payments/{order_id}/refunds",
        "/webhooks/payments",
    ] {
        ensure!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
    let (status, jwks) = app
        .send(Method::GET, "/.well-known/jwks.json", None, None, None)
        .await?;
    ensure!(
        status == StatusCode::OK && jwks["keys"][0]["alg"] == "ES256",
        "{jwks}"
    );
    let (status, problem) = app
        .send(Method::GET, "/no/such/thing", None, None, None)
        .await?;
    ensure!(status == StatusCode::NOT_FOUND && problem["code"] == "not-found");
    app.stop().await
}

pub async fn a_deadline_fires_after_a_restart(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "SLOW");
    app.product(&item, 1000, 4).await?;
    let (_, customer) = app.customer("kai").await?;
    let (_, body) = app.place_order(&customer, &[(&item, 2)], NO_ANSWER).await?;
    let order = order_id(&body);
    app.wait_for(Context::Payments, &order, "PaymentAuthorizationPending")
        .await?;
    // The saga waits on its deadline; stop everything, move past the
    // deadline, start again: the restored saga fires it.
    app.restart().await?;
    app.advance(Duration::from_secs(31));
    let history = app
        .wait_for(Context::Orders, &order, "OrderCancelled")
        .await?;
    ensure!(history == ["OrderPlaced", "OrderCancelled"], "{history:?}");
    ensure!(
        app.history(Context::Payments, &order).await?
            == [
                "PaymentAuthorizationPending",
                "PaymentAuthorizationTimedOut"
            ]
    );
    app.wait_stock(&item, |stock| stock.available() == 4)
        .await?;
    app.stop().await
}

/// Without an OpenTelemetry layer (no span exporter configured — as in
/// this suite) the trace id still crosses every hop in the records'
/// `traceparent` headers: the caller's trace when it sent one, else one
/// minted for the request (ADR 0029).
pub async fn trace_ids_cross_every_hop_without_a_tracer(adapter: TestAdapter) -> Result<()> {
    use platform::eventlog::{read_topic, LogRecord};
    use platform::telemetry::trace_id_of;

    let mut app = spawn_app(adapter).await?;
    let item = sku(&app, "TRACE");
    app.product(&item, 900, 10).await?;
    let (_, customer) = app.customer("tia").await?;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = json!({"lines": [{"sku": item, "quantity": 1}], "shipping_address": app::address(), "payment": {"card_number": APPROVE}});
    let traced = app
        .http
        .post(format!("{}/orders", app.url))
        .bearer_auth(&customer)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&body)
        .send()
        .await?;
    ensure!(
        traced.status() == StatusCode::CREATED,
        "{}",
        traced.status()
    );
    let order = order_id(&traced.json().await?);
    app.wait_for(Context::Orders, &order, "OrderConfirmed")
        .await?;

    let log = app.system.log.as_ref();
    let topics = &app.system.topics;
    let of_order = |records: Vec<LogRecord>| -> Vec<LogRecord> {
        let id = Some(order.as_bytes());
        records
            .into_iter()
            .filter(|r| {
                r.key == order.as_bytes()
                    || r.header("correlation_id") == id
                    || r.header("aggregate_id") == id
            })
            .collect()
    };
    // HTTP → command → events and outcome → saga step → the saga's commands.
    for (what, topic) in [
        ("order command", topics.commands(Context::Orders)),
        ("order event", topics.events(Context::Orders)),
        ("saga step", topics.saga_events(schemas::ORDER_FULFILLMENT)),
        ("inventory command", topics.commands(Context::Inventory)),
        ("command outcome", topics.command_outcomes()),
    ] {
        let records = of_order(read_topic(log, &topic).await?);
        ensure!(!records.is_empty(), "no {what} record of {order}");
        for r in &records {
            ensure!(
                trace_id_of(&r.headers).as_deref() == Some(trace_id),
                "{what} record at {}/{}: traceparent {:?}",
                r.partition,
                r.offset,
                r.header("traceparent").map(String::from_utf8_lossy)
            );
        }
    }

    // A request without `traceparent` gets a trace of its own.
    let (status, other) = app.place_order(&customer, &[(&item, 1)], APPROVE).await?;
    ensure!(status == StatusCode::CREATED, "{status} {other}");
    let other = order_id(&other);
    let commands = read_topic(log, &topics.commands(Context::Orders)).await?;
    let own = commands
        .iter()
        .find(|r| r.key == other.as_bytes())
        .and_then(|r| trace_id_of(&r.headers));
    ensure!(
        own.is_some() && own.as_deref() != Some(trace_id),
        "a new trace for a request without traceparent: {own:?}"
    );
    app.stop().await
}
