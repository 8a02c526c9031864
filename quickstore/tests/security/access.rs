//! Who may do what: role escalation per endpoint family (a customer on
//! admin and courier commands, a courier on admin commands, anyone but an
//! admin or auditor on admin reads) and object-level access (another
//! customer's order, another courier's shipment).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use platform::testing::TestAdapter;
use reqwest::{Method, StatusCode};
use schemas::Context;
use serde_json::{json, Value};

use crate::env::{self, nothing_written, refused, Env};

/// Each request must be 403 problem+json, and nothing written.
async fn all_forbidden(env: &Env, token: &str, requests: &[(Method, String, Value)]) -> Result<()> {
    let before = env.written().await?;
    for (method, path, body) in requests {
        let answer = env
            .command(method.clone(), path, Some(token), Some(body))
            .await?;
        refused(&answer, StatusCode::FORBIDDEN, &format!("{method} {path}"))?;
    }
    nothing_written(env, &before, "a refused command").await
}

pub async fn customer_cannot_use_catalog_admin_commands(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("cat").await?;
    let sku = &env.sku;
    all_forbidden(&env, &customer, &[
        (Method::POST, "/products".into(), json!({"sku": "CHEAP-1", "name": "x", "category": "x", "price_minor": 1, "currency": "EUR"})),
        (Method::PUT, format!("/products/{sku}/price"), json!({"price_minor": 1, "currency": "EUR"})),
        (Method::POST, format!("/products/{sku}/discontinue"), json!({})),
    ]).await?;
    env.stop().await
}

pub async fn customer_cannot_use_inventory_admin_commands(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("inv").await?;
    let sku = &env.sku;
    all_forbidden(
        &env,
        &customer,
        &[
            (
                Method::POST,
                format!("/stock/{sku}/restock"),
                json!({"quantity": 1000}),
            ),
            (
                Method::POST,
                format!("/stock/{sku}/adjustments"),
                json!({"delta": -50, "reason": "theft"}),
            ),
        ],
    )
    .await?;
    env.stop().await
}

pub async fn customer_cannot_grant_themself_a_role(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (id, customer) = env.app.customer("rolf").await?;
    all_forbidden(
        &env,
        &customer,
        &[
            (
                Method::POST,
                format!("/customers/{id}/roles"),
                json!({"role": "admin"}),
            ),
            (
                Method::POST,
                "/customers/me/roles".into(),
                json!({"role": "courier"}),
            ),
        ],
    )
    .await?;
    // The login was not changed either: a fresh login still has no admin role.
    let (status, _, body) = env
        .command(Method::POST, "/products", Some(&customer), Some(&json!({"sku": "CHEAP-2", "name": "x", "category": "x", "price_minor": 1, "currency": "EUR"})))
        .await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status} {body}");
    env.stop().await
}

pub async fn customer_cannot_use_payment_admin_commands(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("pay").await?;
    let (order, _) = env.order(&customer).await?;
    env.app
        .wait_for(Context::Deliveries, &order, "ShipmentScheduled")
        .await?;
    all_forbidden(
        &env,
        &customer,
        &[
            (
                Method::POST,
                format!("/payments/{order}/capture"),
                json!({"amount_minor": 1000, "currency": "EUR"}),
            ),
            (
                Method::POST,
                format!("/payments/{order}/refunds"),
                json!({"amount_minor": 1000, "currency": "EUR"}),
            ),
            (Method::POST, format!("/payments/{order}/void"), json!({})),
        ],
    )
    .await?;
    env.stop().await
}

pub async fn courier_cannot_use_delivery_admin_commands(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("del").await?;
    let (courier_id, courier) = env.app.courier("cory").await?;
    let (order, _) = env.order(&customer).await?;
    env.app
        .wait_for(Context::Deliveries, &order, "ShipmentScheduled")
        .await?;
    all_forbidden(
        &env,
        &courier,
        &[
            (
                Method::PUT,
                format!("/shipments/{order}/courier"),
                json!({"courier_id": courier_id}),
            ),
            (
                Method::POST,
                format!("/shipments/{order}/cancel"),
                json!({"reason": "mine now"}),
            ),
        ],
    )
    .await?;
    env.stop().await
}

pub async fn customer_cannot_use_courier_commands(adapter: TestAdapter) -> Result<()> {
    let mut env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("cou").await?;
    let (courier_id, _) = env.app.courier("kim").await?;
    let (order, _) = env.order(&customer).await?;
    env.app
        .wait_for(Context::Deliveries, &order, "ShipmentScheduled")
        .await?;
    let admin = env.app.admin().await?;
    env.app
        .ok(
            Method::PUT,
            &format!("/shipments/{order}/courier"),
            &admin,
            json!({"courier_id": courier_id}),
        )
        .await?;
    all_forbidden(
        &env,
        &customer,
        &[
            (
                Method::POST,
                format!("/shipments/{order}/pickup"),
                json!(null),
            ),
            (
                Method::POST,
                format!("/shipments/{order}/delivery"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/shipments/{order}/failure"),
                json!({"reason": "not home"}),
            ),
        ],
    )
    .await?;
    env.stop().await
}

pub async fn customer_cannot_use_admin_or_auditor_reads(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("ada").await?;
    let (courier_id, courier) = env.app.courier("otto").await?;
    let (order, _) = env.order(&customer).await?;
    let sku = &env.sku;
    let today = "2026-01-01";
    for (token, who) in [(&customer, "customer"), (&courier, "courier")] {
        for path in [
            format!("/stock/{sku}"),
            format!("/sales/days/{today}"),
            format!("/sales/products/{sku}"),
            format!("/ops/sagas/{order}"),
            format!("/audit/Order/{order}/events"),
            format!("/audit/Order/{order}/state"),
            format!("/audit/Order/{order}/verify"),
        ] {
            let answer = env.query(&path, Some(token)).await?;
            refused(&answer, StatusCode::FORBIDDEN, &format!("{who} GET {path}"))?;
        }
    }
    // A customer is no courier; a courier lists only their own shipments.
    let answer = env
        .query(
            &format!("/couriers/{courier_id}/shipments"),
            Some(&customer),
        )
        .await?;
    refused(
        &answer,
        StatusCode::FORBIDDEN,
        "customer lists a courier's shipments",
    )?;
    let (other_id, _) = env.app.courier("olga").await?;
    let answer = env
        .query(&format!("/couriers/{other_id}/shipments"), Some(&courier))
        .await?;
    refused(
        &answer,
        StatusCode::FORBIDDEN,
        "courier lists another courier's shipments",
    )?;
    env.stop().await
}

pub async fn customer_cannot_read_anothers_order(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (ana_id, ana) = env.app.customer("ana").await?;
    let (_, ben) = env.app.customer("ben").await?;
    let (order, position) = env.order(&ana).await?;
    env.visible(&ana, &order, &position).await?;
    for path in [
        format!("/orders/{order}"),
        format!("/orders/{order}/timeline"),
        format!("/orders/{order}/payment"),
    ] {
        // Not found, like an order that does not exist: ids do not leak.
        let answer = env.query(&path, Some(&ben)).await?;
        refused(&answer, StatusCode::NOT_FOUND, &format!("ben GET {path}"))?;
    }
    for path in [
        format!("/customers/{ana_id}/orders"),
        format!("/customers/{ana_id}"),
    ] {
        let answer = env.query(&path, Some(&ben)).await?;
        refused(&answer, StatusCode::FORBIDDEN, &format!("ben GET {path}"))?;
    }
    // With a position token for Ana's order far ahead: still 404, at once —
    // ownership is decided before the read-your-writes wait, so the wait's
    // length cannot tell how far someone else's order got.
    use base64::Engine as _;
    let ahead = format!(
        "p1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("Order:{order}:999"))
    );
    for path in [
        format!("/orders/{order}"),
        format!("/orders/{order}/timeline"),
    ] {
        let started = Instant::now();
        let response = env
            .http
            .get(format!("{}{path}", env.side.url()))
            .bearer_auth(&ben)
            .header("X-Position-Token", &ahead)
            .send()
            .await?;
        let status = response.status();
        ensure!(
            status == StatusCode::NOT_FOUND,
            "ben with a position token on {path}: {status}"
        );
        ensure!(
            started.elapsed() < Duration::from_secs(2),
            "ben's 404 on {path} came after the wait ({:?}): ownership was decided after it",
            started.elapsed()
        );
    }
    env.stop().await
}

pub async fn customer_cannot_cancel_anothers_order(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, ana) = env.app.customer("ana").await?;
    let (_, ben) = env.app.customer("ben").await?;
    let (order, _) = env.order(&ana).await?;
    env.app
        .wait_for(Context::Orders, &order, "OrderConfirmed")
        .await?;
    let history = env.app.history(Context::Orders, &order).await?;
    let before = env.written().await?;
    let answer = env
        .command(
            Method::POST,
            &format!("/orders/{order}/cancellation"),
            Some(&ben),
            Some(&json!({"reason": "mine now"})),
        )
        .await?;
    refused(&answer, StatusCode::NOT_FOUND, "ben cancels ana's order")?;
    nothing_written(&env, &before, "ben's cancellation").await?;
    ensure!(
        env.app.history(Context::Orders, &order).await? == history,
        "ana's order changed"
    );
    env.stop().await
}

pub async fn courier_cannot_act_on_anothers_shipment(adapter: TestAdapter) -> Result<()> {
    let mut env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("cus").await?;
    let (xavier_id, _xavier) = env.app.courier("xavier").await?;
    let (_, yann) = env.app.courier("yann").await?;
    let (order, _) = env.order(&customer).await?;
    env.app
        .wait_for(Context::Deliveries, &order, "ShipmentScheduled")
        .await?;
    let admin = env.app.admin().await?;
    env.app
        .ok(
            Method::PUT,
            &format!("/shipments/{order}/courier"),
            &admin,
            json!({"courier_id": xavier_id}),
        )
        .await?;
    env.app
        .wait_for(Context::Deliveries, &order, "CourierAssigned")
        .await?;
    let history = env.app.history(Context::Deliveries, &order).await?;
    let before = env.written().await?;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/shipments/{order}/pickup"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/shipments/{order}/delivery"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/shipments/{order}/failure"),
            json!({"reason": "not home"}),
        ),
    ] {
        let (status, _, body) = env.command(method, &path, Some(&yann), Some(&body)).await?;
        // Pickup and failure are refused as not his; delivery may be refused
        // first for not being picked up: refused either way.
        ensure!(
            status.is_client_error()
                && (path.ends_with("/delivery") || body["code"] == "not-your-shipment"),
            "yann on xavier's shipment {path}: {status} {body}"
        );
    }
    nothing_written(&env, &before, "yann's commands").await?;
    ensure!(
        env.app.history(Context::Deliveries, &order).await? == history,
        "the shipment changed"
    );
    // Reading it: 404 (not assigned to him), like a shipment that does not exist.
    let answer = env
        .query(&format!("/shipments/{order}"), Some(&yann))
        .await?;
    refused(
        &answer,
        StatusCode::NOT_FOUND,
        "yann reads xavier's shipment",
    )?;
    env.stop().await
}
