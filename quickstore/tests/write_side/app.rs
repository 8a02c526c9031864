//! `spawn_app`: the whole write side on one adapter, API on port 0, fresh
//! topic prefix (Kafka) or data directory (embedded), an adjustable clock;
//! plus the HTTP and log-reading helpers the cases share.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use command_api::aggregate::Aggregate;
use command_api::domain::inventory::StockItem;
use platform::config::{EventLogBackend, Secret, Settings};
use platform::testing::{self, TestAdapter};
use quickstore::system::System;
use quickstore::write_side::{Credentials, WriteSide, WriteSideOptions};
use reqwest::StatusCode;
use schemas::{AnyEvent, Context, EventEnvelope};
use serde_json::{json, Value};

pub const REGISTRY_ENV: &str = "QS_SCHEMA_REGISTRY_URL";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret";
pub const PASSWORD: &str = "correct horse battery";
pub const APPROVE: &str = "4242 4242 4242 4242";
pub const DECLINE: &str = "4000 0000 0000 0002";
pub const NO_ANSWER: &str = "4000 0000 0000 0119";
pub const ANSWER_BY_WEBHOOK: &str = "4000 0000 0000 3220";

/// The settings for `adapter`: a fresh prefix on the real broker (and the
/// real registry), or a fresh embedded directory.
pub fn settings(adapter: TestAdapter, dir: &std::path::Path) -> Result<Settings> {
    let mut s = Settings {
        data_dir: dir.to_path_buf(),
        partitions: 3,
        topic_prefix: testing::unique_prefix("ws"),
        payment_webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
        ..Settings::default()
    };
    if adapter == TestAdapter::Kafka {
        s.event_log = EventLogBackend::Kafka;
        s.kafka_bootstrap = testing::kafka_bootstrap()?;
        s.schema_registry_url = Some(std::env::var(REGISTRY_ENV).ok().filter(|v| !v.is_empty()).with_context(|| {
            format!("{REGISTRY_ENV} is not set: the Kafka cases need a schema registry (deploy/test.sh starts one)")
        })?);
    }
    Ok(s)
}

pub struct TestApp {
    pub system: System,
    pub side: Option<WriteSide>,
    pub url: String,
    pub http: reqwest::Client,
    /// Added to the wall clock: tests move time forward by raising it.
    pub clock_offset: Arc<AtomicI64>,
    options: WriteSideOptions,
    admin: Option<String>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(adapter: TestAdapter) -> Result<TestApp> {
    spawn_app_with(adapter, |_| {}).await
}

pub async fn spawn_app_with(
    adapter: TestAdapter,
    tweak: impl FnOnce(&mut WriteSideOptions),
) -> Result<TestApp> {
    let dir = tempfile::tempdir()?;
    let system = System::connect(settings(adapter, dir.path())?).await?;
    let offset = Arc::new(AtomicI64::new(0));
    let mut options = WriteSideOptions::from_settings(&system);
    options.listen = "127.0.0.1:0".into();
    options.credentials = Credentials::Memory;
    options.fast_password_hashing = true;
    options.instance = uuid::Uuid::new_v4().simple().to_string();
    options.api.outcome_wait = Duration::from_secs(20);
    // One key store for the app's whole life (restarts too); a read side
    // started beside it shares it (`TestApp::keys`).
    options.keys = Some({
        let store: Arc<dyn platform::readstore::ReadStore> =
            Arc::new(platform::readstore::EmbeddedStore::in_memory()?);
        quickstore::customers_cmd::key_store(&store).await?
    });
    {
        let offset = Arc::clone(&offset);
        let wall = quickstore::write_side::system_clock();
        options.clock = Arc::new(move || wall() + offset.load(Ordering::SeqCst));
    }
    tweak(&mut options);
    let side = WriteSide::start(&system, options.clone()).await?;
    Ok(TestApp {
        system,
        url: side.api_url()?,
        side: Some(side),
        http: reqwest::Client::new(),
        clock_offset: offset,
        options,
        admin: None,
        _dir: dir,
    })
}

impl TestApp {
    pub async fn stop(mut self) -> Result<()> {
        if let Some(side) = self.side.take() {
            side.stop().await?;
        }
        Ok(())
    }

    /// Stops the write side gracefully and starts it again on the same log
    /// (what a deploy or a crash-and-restart does to the saga's timers).
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(side) = self.side.take() {
            side.stop().await?;
        }
        let side = WriteSide::start(&self.system, self.options.clone()).await?;
        self.url = side.api_url()?;
        self.side = Some(side);
        self.admin = None;
        Ok(())
    }

    /// Command processors of their own beside this app (which may run
    /// without any): the same log, clock and instance, every other role off.
    pub async fn start_processors(&self) -> Result<WriteSide> {
        let mut options = self.options.clone();
        options.roles = quickstore::write_side::WriteRoles {
            command_api: false,
            command_processors: true,
            sagas: false,
        };
        WriteSide::start(&self.system, options).await
    }

    /// The customers' data keys the command API seals with.
    pub fn keys(&self) -> Option<Arc<platform::pii::KeyStore>> {
        self.options.keys.clone()
    }

    pub fn advance(&self, by: Duration) {
        self.clock_offset
            .fetch_add(i64::try_from(by.as_millis()).unwrap(), Ordering::SeqCst);
    }

    /// POST/PUT/DELETE `path` with `body`, as `token`, with `key`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(k) = key {
            request = request.header("idempotency-key", k);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Result<(StatusCode, Value)> {
        self.send(reqwest::Method::POST, path, Some(token), None, Some(body))
            .await
    }

    /// A request that must succeed (2xx).
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> Result<Value> {
        let (status, value) = self
            .send(method, path, Some(token), None, Some(body))
            .await?;
        if !status.is_success() {
            bail!("{path}: {status} {value}");
        }
        Ok(value)
    }

    /// A new customer: (id, access token).
    pub async fn customer(&self, name: &str) -> Result<(String, String)> {
        let email = format!(
            "{name}-{}@example.com",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (status, v) = self
            .send(
                reqwest::Method::POST,
                "/auth/register",
                None,
                None,
                Some(json!({"email": email, "password": PASSWORD, "display_name": name})),
            )
            .await?;
        if status != StatusCode::CREATED {
            bail!("register: {status} {v}");
        }
        Ok((
            v["customer_id"].as_str().unwrap().to_owned(),
            v["access_token"].as_str().unwrap().to_owned(),
        ))
    }

    async fn login(&self, email: &str) -> Result<String> {
        let (status, v) = self
            .send(
                reqwest::Method::POST,
                "/auth/login",
                None,
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await?;
        if status != StatusCode::OK {
            bail!("login {email}: {status} {v}");
        }
        Ok(v["access_token"].as_str().unwrap().to_owned())
    }

    /// An admin's token (created on first use).
    pub async fn admin(&mut self) -> Result<String> {
        if let Some(t) = &self.admin {
            return Ok(t.clone());
        }
        let state = self.side.as_ref().unwrap().api_state()?;
        quickstore::seed::user(
            state,
            "admin@test.local",
            PASSWORD,
            "Admin",
            &[platform::auth::Role::Customer, platform::auth::Role::Admin],
        )
        .await?;
        let token = self.login("admin@test.local").await?;
        self.admin = Some(token.clone());
        Ok(token)
    }

    /// A user with `roles`, made directly in the credential store: (id, token).
    pub async fn user(
        &self,
        name: &str,
        roles: &[platform::auth::Role],
    ) -> Result<(String, String)> {
        let email = format!("{name}@users.local");
        let state = self.side.as_ref().unwrap().api_state()?;
        let id = quickstore::seed::user(state, &email, PASSWORD, name, roles).await?;
        Ok((id, self.login(&email).await?))
    }

    /// A courier: (id, token).
    pub async fn courier(&self, name: &str) -> Result<(String, String)> {
        let email = format!("{name}@couriers.local");
        let state = self.side.as_ref().unwrap().api_state()?;
        let id = quickstore::seed::user(
            state,
            &email,
            PASSWORD,
            name,
            &[
                platform::auth::Role::Customer,
                platform::auth::Role::Courier,
            ],
        )
        .await?;
        Ok((id, self.login(&email).await?))
    }

    /// A product with `stock` units, through the API as admin.
    pub async fn product(&mut self, sku: &str, price_minor: i64, stock: i64) -> Result<()> {
        let admin = self.admin().await?;
        self.ok(reqwest::Method::POST, "/products", &admin,
            json!({"sku": sku, "name": format!("Product {sku}"), "category": "test", "price_minor": price_minor, "currency": "EUR"})).await?;
        if stock > 0 {
            self.ok(
                reqwest::Method::POST,
                &format!("/stock/{sku}/restock"),
                &admin,
                json!({"quantity": stock}),
            )
            .await?;
        }
        Ok(())
    }

    /// Places an order; (status, body).
    pub async fn place_order(
        &self,
        token: &str,
        lines: &[(&str, i64)],
        card: &str,
    ) -> Result<(StatusCode, Value)> {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(s, q)| json!({"sku": s, "quantity": q}))
            .collect();
        self.post(
            "/orders",
            token,
            json!({
                "lines": lines,
                "shipping_address": address(),
                "payment": {"card_number": card},
            }),
        )
        .await
    }

    /// Every event of `context`: (aggregate id, short type, envelope, event).
    pub async fn events(
        &self,
        context: Context,
    ) -> Result<Vec<(String, String, EventEnvelope, AnyEvent)>> {
        let topic = self.system.topics.events(context);
        let mut out = Vec::new();
        for record in platform::eventlog::read_topic(self.system.log.as_ref(), &topic).await? {
            let (envelope, event) = self
                .system
                .codec
                .decode_event::<AnyEvent>(record.value.as_deref().unwrap_or_default())
                .await?;
            let name = schemas::EventPayload::record_name(&event);
            let short = name.rsplit('.').next().unwrap_or(name).to_owned();
            out.push((envelope.aggregate_id.clone(), short, envelope, event));
        }
        Ok(out)
    }

    /// The short event types of one aggregate, in order.
    pub async fn history(&self, context: Context, id: &str) -> Result<Vec<String>> {
        let mut events: Vec<(i64, String)> = self
            .events(context)
            .await?
            .into_iter()
            .filter(|(a, ..)| a == id)
            .map(|(_, t, e, _)| (e.version, t))
            .collect();
        events.sort();
        Ok(events.into_iter().map(|(_, t)| t).collect())
    }

    /// Waits until the order's history contains `event`.
    pub async fn wait_for(&self, context: Context, id: &str, event: &str) -> Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let history = self.history(context, id).await?;
            if history.iter().any(|t| t == event) {
                return Ok(history);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{context} {id} never got {event}: {history:?}");
            }
            if let Some(name) = self.side.as_ref().and_then(|s| s.failed_worker()) {
                bail!("the {name} stopped while waiting for {event}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The stock item `sku` as its events say.
    pub async fn stock(&self, sku: &str) -> Result<StockItem> {
        let mut item = StockItem::default();
        for (id, _, _, event) in self.events(Context::Inventory).await? {
            if id == sku {
                if let AnyEvent::Inventory(e) = event {
                    item.evolve(&e);
                }
            }
        }
        Ok(item)
    }

    /// Waits until the stock item `sku` satisfies `want` (the saga's
    /// compensations land a moment after the order's last event).
    pub async fn wait_stock(
        &self,
        sku: &str,
        want: impl Fn(&StockItem) -> bool,
    ) -> Result<StockItem> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let item = self.stock(sku).await?;
            if want(&item) {
                return Ok(item);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("stock of {sku} never got there: {item:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many events each events topic holds (to prove nothing was
    /// appended; counted, since Kafka's offsets include transaction markers).
    pub async fn event_ends(&self) -> Result<HashMap<String, i64>> {
        let mut ends = HashMap::new();
        for context in Context::ALL {
            let topic = self.system.topics.events(context);
            let count = platform::eventlog::read_topic(self.system.log.as_ref(), &topic)
                .await?
                .len();
            ends.insert(topic, i64::try_from(count)?);
        }
        Ok(ends)
    }
}

pub fn address() -> Value {
    json!({"recipient": "Ada Lovelace", "line1": "12 Analytical St", "city": "London", "postal_code": "N1 9GU", "country": "GB"})
}
