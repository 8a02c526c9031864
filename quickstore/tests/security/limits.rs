//! Rate limits (429 problem+json with Retry-After) and request size
//! limits (413/414/431 problem+json) on both APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::atomic::Ordering;

use anyhow::{ensure, Result};
use platform::testing::TestAdapter;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::env::{self, nothing_written, refused, Answer, Env};

fn retry_after(answer: &Answer) -> Result<u64> {
    let value = answer
        .1
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    ensure!(
        value.is_some_and(|s| s >= 1),
        "no Retry-After: {:?}",
        answer.1
    );
    Ok(value.unwrap_or(1))
}

async fn login(env: &Env, email: &str) -> Result<Answer> {
    env.command(
        Method::POST,
        "/auth/login",
        None,
        Some(&json!({"email": email, "password": crate::app::PASSWORD})),
    )
    .await
}

pub async fn logins_are_rate_limited_per_account(adapter: TestAdapter) -> Result<()> {
    let mut clock = None;
    let env = env::start_with(adapter, |o| {
        o.api.rate_limits.login_per_min = 3;
        o.api.rate_limits.login_ip_per_min = 0;
        clock = Some(env::frozen_clock(o));
    })
    .await?;
    let clock = clock.unwrap();
    let (_, _) = env
        .app
        .user("victim", &[platform::auth::Role::Customer])
        .await?;
    // `user` logged in once already: two more, then refused — right or wrong password.
    let email = "victim@users.local";
    for _ in 0..2 {
        let (status, _, body) = login(&env, email).await?;
        ensure!(status == StatusCode::OK, "{status} {body}");
    }
    let answer = login(&env, email).await?;
    refused(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "fourth login a minute",
    )?;
    ensure!(answer.2["code"] == "rate-limited", "{}", answer.2);
    let wait = retry_after(&answer)?;
    ensure!((1..=20).contains(&wait), "Retry-After {wait}");
    // The e-mail's case or spaces do not make another account.
    let answer = login(&env, " Victim@Users.Local ").await?;
    refused(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "same account, other spelling",
    )?;
    // Another account is not affected.
    let (_, _) = env
        .app
        .user("bystander", &[platform::auth::Role::Customer])
        .await?;
    // After Retry-After, one more goes through.
    clock.fetch_add(i64::try_from(wait)? * 1_000, Ordering::SeqCst);
    let (status, _, body) = login(&env, email).await?;
    ensure!(
        status == StatusCode::OK,
        "after Retry-After: {status} {body}"
    );
    env.stop().await
}

pub async fn logins_are_rate_limited_per_address(adapter: TestAdapter) -> Result<()> {
    let mut clock = None;
    let env = env::start_with(adapter, |o| {
        o.api.rate_limits.login_per_min = 0;
        o.api.rate_limits.login_ip_per_min = 4;
        clock = Some(env::frozen_clock(o));
    })
    .await?;
    let clock = clock.unwrap();
    // Credential stuffing: many accounts from one address (the setup's
    // admin login took the first of the four).
    for i in 0..3 {
        let (status, _, body) = login(&env, &format!("nobody-{i}@example.com")).await?;
        ensure!(status == StatusCode::UNAUTHORIZED, "{status} {body}");
    }
    let answer = login(&env, "nobody-5@example.com").await?;
    refused(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "fifth login from one address",
    )?;
    let wait = retry_after(&answer)?;
    // Registering counts too (it costs a password hash).
    let answer = env
        .command(Method::POST, "/auth/register", None, Some(&json!({"email": "new@example.com", "password": crate::app::PASSWORD, "display_name": "New"})))
        .await?;
    refused(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "register from a limited address",
    )?;
    clock.fetch_add(i64::try_from(wait)? * 1_000, Ordering::SeqCst);
    let (status, _, body) = login(&env, "nobody-6@example.com").await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "after Retry-After: {status} {body}"
    );
    env.stop().await
}

pub async fn commands_are_rate_limited_per_subject(adapter: TestAdapter) -> Result<()> {
    let mut clock = None;
    let env = env::start_with(adapter, |o| {
        // The admin's setup (a product, a restock) fits in the burst.
        o.api.rate_limits.commands_per_sec = 3;
        clock = Some(env::frozen_clock(o));
    })
    .await?;
    let clock = clock.unwrap();
    // A new second: the admin's setup does not count against anyone here.
    clock.fetch_add(1_000, Ordering::SeqCst);
    let (id, customer) = env.app.customer("rapid").await?;
    let profile = |n: i32| json!({"display_name": format!("Rapid {n}")});
    for n in 0..3 {
        let (status, _, body) = env
            .command(
                Method::PUT,
                &format!("/customers/{id}/profile"),
                Some(&customer),
                Some(&profile(n)),
            )
            .await?;
        ensure!(status.is_success(), "command {n}: {status} {body}");
    }
    let before = env.written().await?;
    let answer = env
        .command(
            Method::PUT,
            &format!("/customers/{id}/profile"),
            Some(&customer),
            Some(&profile(9)),
        )
        .await?;
    refused(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "fourth command in a second",
    )?;
    let wait = retry_after(&answer)?;
    // An order is refused too (any state-changing route), nothing written.
    let (status, body) = env
        .app
        .place_order(&customer, &[(&env.sku, 1)], crate::app::APPROVE)
        .await?;
    ensure!(
        status == StatusCode::TOO_MANY_REQUESTS,
        "order while limited: {status} {body}"
    );
    nothing_written(&env, &before, "rate-limited commands").await?;
    // Another subject is not affected; after Retry-After the first goes on.
    let (other_id, other) = env.app.customer("calm").await?;
    let (status, _, body) = env
        .command(
            Method::PUT,
            &format!("/customers/{other_id}/profile"),
            Some(&other),
            Some(&profile(1)),
        )
        .await?;
    ensure!(status.is_success(), "another subject: {status} {body}");
    clock.fetch_add(i64::try_from(wait)? * 1_000, Ordering::SeqCst);
    let (status, _, body) = env
        .command(
            Method::PUT,
            &format!("/customers/{id}/profile"),
            Some(&customer),
            Some(&profile(10)),
        )
        .await?;
    ensure!(status.is_success(), "after Retry-After: {status} {body}");
    env.stop().await
}

/// A raw request with a big URI, big headers or a big body.
async fn oversized(base: &str, path: &str, method: Method, token: &str) -> Result<()> {
    // A client of its own, without a pool: the request before this one may
    // have been refused before its body was read, and the server closes
    // such a connection once it answered. A pooled client can pick that
    // connection for the next request in the instant before it notices
    // ("error sending request", seen once in a full run on busy cores).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let uri = format!("{base}{path}?pad={}", "a".repeat(9 * 1024));
    let response = http
        .request(method.clone(), &uri)
        .bearer_auth(token)
        .send()
        .await?;
    let answer = (
        response.status(),
        response.headers().clone(),
        response.json().await.unwrap_or_default(),
    );
    refused(&answer, StatusCode::URI_TOO_LONG, "a 9 KiB URI")?;
    let response = http
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(token)
        .header("x-filler", "h".repeat(20 * 1024))
        .send()
        .await?;
    let answer = (
        response.status(),
        response.headers().clone(),
        response.json().await.unwrap_or_default(),
    );
    refused(
        &answer,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "20 KiB of headers",
    )?;
    Ok(())
}

pub async fn command_api_refuses_oversized_requests(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("big").await?;
    let before = env.written().await?;
    // A 100 KiB order (the limit is 64 KiB): 413 before anything is parsed.
    let lines: Vec<_> = (0..4000)
        .map(|_| json!({"sku": env.sku, "quantity": 1}))
        .collect();
    let body = json!({"lines": lines, "shipping_address": crate::app::address(), "payment": {"card_number": crate::app::APPROVE}});
    ensure!(body.to_string().len() > 100 * 1024);
    let answer = env
        .command(Method::POST, "/orders", Some(&customer), Some(&body))
        .await?;
    refused(&answer, StatusCode::PAYLOAD_TOO_LARGE, "a 100 KiB body")?;
    ensure!(answer.2["code"] == "body-too-large", "{}", answer.2);
    oversized(&env.app.url, "/orders", Method::POST, &customer).await?;
    nothing_written(&env, &before, "oversized requests").await?;
    env.stop().await
}

pub async fn query_api_refuses_oversized_requests(adapter: TestAdapter) -> Result<()> {
    let env = env::start(adapter).await?;
    let (_, customer) = env.app.customer("big").await?;
    let response = env
        .http
        .get(format!("{}/customers/me/orders", env.side.url()))
        .bearer_auth(&customer)
        .body("x".repeat(4 * 1024))
        .send()
        .await?;
    let answer = (
        response.status(),
        response.headers().clone(),
        response.json().await.unwrap_or_default(),
    );
    refused(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a 4 KiB body on a GET",
    )?;
    oversized(
        &env.side.url(),
        "/customers/me/orders",
        Method::GET,
        &customer,
    )
    .await?;
    env.stop().await
}
