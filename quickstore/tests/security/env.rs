//! One environment per case: the write side (command API, processors,
//! saga) on the adapter under test, the query API and projectors beside
//! it, a product in stock, and the HTTP helpers the cases share.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use command_api::http::state::SharedState;
use platform::testing::TestAdapter;
use quickstore::read_side::{ReadSide, ReadSideOptions};
use quickstore::write_side::WriteSideOptions;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::app::{spawn_app_with, TestApp};

pub struct Env {
    pub app: TestApp,
    pub side: ReadSide,
    pub http: reqwest::Client,
    /// A product with stock, for orders that would succeed if allowed.
    pub sku: String,
}

/// An answer: status, headers, body (JSON, or the text as a string).
pub type Answer = (StatusCode, HeaderMap, Value);

pub async fn start(adapter: TestAdapter) -> Result<Env> {
    start_with(adapter, |_| {}).await
}

pub async fn start_with(
    adapter: TestAdapter,
    tweak: impl FnOnce(&mut WriteSideOptions),
) -> Result<Env> {
    let mut app = spawn_app_with(adapter, tweak).await?;
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.keys = app.keys();
    options.service.pointer_poll = Duration::from_millis(200);
    options.service.status_interval = Duration::from_millis(250);
    options.query.generation_refresh = Duration::from_millis(300);
    options.query.read_your_writes_timeout = Duration::from_secs(5);
    let store: Arc<dyn platform::readstore::ReadStore> =
        Arc::new(platform::readstore::EmbeddedStore::in_memory()?);
    let side = ReadSide::start(&app.system, store, options).await?;
    let sku = format!("SEC-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
    app.product(&sku, 1_000, 50).await?;
    Ok(Env {
        app,
        side,
        http: reqwest::Client::new(),
        sku,
    })
}

/// A clock that only moves when told (rate-limit cases: real time
/// passing between requests must not refill a bucket behind the test's back).
pub fn frozen_clock(options: &mut WriteSideOptions) -> Arc<AtomicI64> {
    let now = Arc::new(AtomicI64::new((quickstore::write_side::system_clock())()));
    let read = Arc::clone(&now);
    options.clock = Arc::new(move || read.load(Ordering::SeqCst));
    now
}

impl Env {
    pub async fn stop(self) -> Result<()> {
        self.side.stop().await?;
        self.app.stop().await
    }

    pub fn state(&self) -> &SharedState {
        self.app.side.as_ref().unwrap().api_state().unwrap()
    }

    pub fn now_s(&self) -> i64 {
        self.state().now_s()
    }

    pub async fn request(
        &self,
        method: Method,
        url: String,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let mut request = self.http.request(method, url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, headers, value))
    }

    /// A command API request.
    pub async fn command(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer> {
        self.request(method, format!("{}{path}", self.app.url), token, body)
            .await
    }

    /// A query API GET.
    pub async fn query(&self, path: &str, token: Option<&str>) -> Result<Answer> {
        self.request(
            Method::GET,
            format!("{}{path}", self.side.url()),
            token,
            None,
        )
        .await
    }

    /// Event counts per topic (to prove nothing was appended).
    pub async fn written(&self) -> Result<HashMap<String, i64>> {
        self.app.event_ends().await
    }

    /// Waits until the query API shows the customer's order (after a
    /// command's answer, via its position token).
    pub async fn visible(&self, token: &str, order: &str, position: &str) -> Result<()> {
        let response = self
            .http
            .get(format!("{}/orders/{order}", self.side.url()))
            .bearer_auth(token)
            .header("X-Position-Token", position)
            .send()
            .await?;
        ensure!(
            response.status() == StatusCode::OK,
            "the owner cannot read their order: {}",
            response.status()
        );
        Ok(())
    }

    /// Places an order of one unit as `token`: (order id, position).
    pub async fn order(&self, token: &str) -> Result<(String, String)> {
        let (status, body) = self
            .app
            .place_order(token, &[(&self.sku, 1)], crate::app::APPROVE)
            .await?;
        ensure!(status.is_success(), "placing an order: {status} {body}");
        Ok((
            body["order_id"].as_str().unwrap().to_owned(),
            body["position"].as_str().unwrap_or_default().to_owned(),
        ))
    }
}

/// The answer is a problem+json with `status`.
pub fn refused(answer: &Answer, status: StatusCode, what: &str) -> Result<()> {
    let (got, headers, body) = answer;
    ensure!(
        *got == status,
        "{what}: expected {status}, got {got} {body}"
    );
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ensure!(
        content_type.starts_with("application/problem+json"),
        "{what}: not problem+json ({content_type}): {body}"
    );
    Ok(())
}

/// Nothing was appended since `before`.
pub async fn nothing_written(env: &Env, before: &HashMap<String, i64>, what: &str) -> Result<()> {
    // A command that slipped through is decided within the outcome wait;
    // the answer came back already, so a short settle is enough to see it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = env.written().await?;
    ensure!(
        &after == before,
        "{what}: events were appended: {before:?} -> {after:?}"
    );
    Ok(())
}
