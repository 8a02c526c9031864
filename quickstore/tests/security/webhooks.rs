//! The payment gateway's webhook: a replayed delivery, a bad signature and
//! a stale timestamp are refused, and the payment's history does not move.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use anyhow::{ensure, Result};
use command_api::gateway::webhook::{sign, WebhookEvent};
use platform::config::Secret;
use platform::testing::TestAdapter;
use reqwest::StatusCode;
use schemas::Context;

use crate::env::{self, nothing_written, Env};

/// An order whose payment waits for the gateway's webhook:
/// (order id, the signed payload's body, now in seconds).
async fn pending(env: &Env) -> Result<(String, Vec<u8>, i64)> {
    let (_, customer) = env.app.customer("web").await?;
    let (status, body) = env
        .app
        .place_order(&customer, &[(&env.sku, 1)], crate::app::ANSWER_BY_WEBHOOK)
        .await?;
    ensure!(status.is_success(), "{status} {body}");
    let order = body["order_id"].as_str().unwrap().to_owned();
    env.app
        .wait_for(Context::Payments, &order, "PaymentAuthorizationPending")
        .await?;
    let reference = env
        .app
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
    let payload = WebhookEvent::authorized("evt_sec_1", &reference, &order, "AUTH77").to_json();
    Ok((order, payload, env.now_s()))
}

async fn post(env: &Env, signature: &str, body: &[u8]) -> Result<StatusCode> {
    Ok(env
        .http
        .post(format!("{}/webhooks/payments", env.app.url))
        .header("content-type", "application/json")
        .header("gateway-signature", signature)
        .body(body.to_vec())
        .send()
        .await?
        .status())
}

fn secret() -> Secret {
    Secret::new(crate::app::WEBHOOK_SECRET)
}

pub async fn replayed_webhook_is_refused(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (order, payload, now) = pending(&env).await?;
    let signature = sign(&payload, &secret(), now);
    ensure!(
        post(&env, &signature, &payload).await? == StatusCode::OK,
        "the first delivery"
    );
    env.app
        .wait_for(Context::Deliveries, &order, "ShipmentScheduled")
        .await?;
    let before = env.written().await?;
    // The very same request again (a captured delivery replayed)...
    let replay = post(&env, &signature, &payload).await?;
    ensure!(replay == StatusCode::CONFLICT, "replay: {replay}");
    // ...and re-signed a second later (same event id): whatever the
    // answer, the payment must not move again.
    let _ = post(&env, &sign(&payload, &secret(), now + 1), &payload).await?;
    nothing_written(&env, &before, "a replayed webhook").await?;
    ensure!(
        env.app.history(Context::Payments, &order).await?
            == ["PaymentAuthorizationPending", "PaymentAuthorized"]
    );
    env.stop().await
}

pub async fn badly_signed_webhook_is_refused(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (order, payload, now) = pending(&env).await?;
    let before = env.written().await?;
    let wrong_secret = sign(&payload, &Secret::new("whsec_guessed"), now);
    let mut tampered_body = payload.clone();
    if let Some(b) = tampered_body.iter_mut().find(|b| **b == b'7') {
        *b = b'8';
    }
    for (what, signature, body) in [
        ("wrong secret", wrong_secret, payload.clone()),
        (
            "body changed after signing",
            sign(&payload, &secret(), now),
            tampered_body,
        ),
        ("no signature", String::new(), payload.clone()),
        ("garbage signature", "t=1,v1=zz".to_owned(), payload.clone()),
    ] {
        let status = post(&env, &signature, &body).await?;
        ensure!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
            "{what}: {status}"
        );
    }
    nothing_written(&env, &before, "a badly signed webhook").await?;
    ensure!(env.app.history(Context::Payments, &order).await? == ["PaymentAuthorizationPending"]);
    env.stop().await
}

pub async fn stale_webhook_is_refused(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (order, payload, now) = pending(&env).await?;
    let before = env.written().await?;
    // Correctly signed, but an hour old (or an hour ahead): outside the 5-minute tolerance.
    for t in [now - 3_600, now + 3_600] {
        let status = post(&env, &sign(&payload, &secret(), t), &payload).await?;
        ensure!(
            status == StatusCode::UNAUTHORIZED,
            "timestamp {t} (now {now}): {status}"
        );
    }
    nothing_written(&env, &before, "a stale webhook").await?;
    ensure!(env.app.history(Context::Payments, &order).await? == ["PaymentAuthorizationPending"]);
    env.stop().await
}
