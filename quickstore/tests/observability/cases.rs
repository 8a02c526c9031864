//! The cases: a trace across every hop, the metrics, the probes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use platform::config::{EventLogBackend, Settings};
use platform::eventlog::{read_topic, LogRecord};
use platform::readstore::{CqlConfig, CqlStore, EmbeddedStore, ReadStore};
use platform::telemetry::trace_id_of;
use platform::testing::TestAdapter;
use quickstore::probes::OpsServer;
use quickstore::read_side::{ReadSide, ReadSideOptions};
use quickstore::system::System;
use reqwest::StatusCode;
use schemas::Context;
use serde_json::{json, Value};

use crate::app::{address, spawn_app, TestApp, APPROVE};

/// A fresh read store: in memory, or a keyspace of its own on the CQL
/// node (dropped by [`Store::drop`] at the end of the case).
struct Store {
    store: Arc<dyn ReadStore>,
    cql: Option<Arc<CqlStore>>,
}

impl Store {
    async fn new(adapter: TestAdapter) -> Result<Self> {
        Ok(match adapter {
            TestAdapter::Embedded => Self {
                store: Arc::new(EmbeddedStore::in_memory()?),
                cql: None,
            },
            TestAdapter::Kafka => {
                let keyspace = format!(
                    "qs_test_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let cql = Arc::new(
                    CqlStore::connect(CqlConfig::new(
                        platform::testing::cql_contact_points()?,
                        keyspace,
                    ))
                    .await?,
                );
                Self {
                    store: cql.clone(),
                    cql: Some(cql),
                }
            }
        })
    }

    fn get(&self) -> Arc<dyn ReadStore> {
        Arc::clone(&self.store)
    }

    /// Leaves the shared CQL node as it was.
    async fn drop(self) -> Result<()> {
        if let Some(cql) = self.cql {
            cql.drop_keyspace().await?;
        }
        Ok(())
    }
}

/// The query API and every projector, measuring lag every 250 ms.
async fn read_side(app: &TestApp, store: Arc<dyn ReadStore>) -> Result<ReadSide> {
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.service.pointer_poll = Duration::from_millis(200);
    options.service.status_interval = Duration::from_millis(250);
    options.query.generation_refresh = Duration::from_millis(300);
    ReadSide::start(&app.system, store, options).await
}

/// Waits until every projection has projected everything (lag 0, twice).
async fn caught_up(side: &ReadSide) -> Result<()> {
    let mut watch = side.watch().context("projectors run")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut zero_twice = 0;
    loop {
        let status = watch.borrow_and_update().clone();
        let done = !status.projections.is_empty()
            && status
                .projections
                .values()
                .all(|p| p.running && p.lag == Some(0));
        zero_twice = if done { zero_twice + 1 } else { 0 };
        if zero_twice >= 2 {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "projectors did not catch up"
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), watch.changed()).await;
    }
}

/// A SKU of its own: Kafka cases share one broker.
fn sku() -> String {
    format!("MUG-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Places an order carrying `traceparent` (if any); the order id.
async fn place_order(
    app: &TestApp,
    token: &str,
    sku: &str,
    traceparent: Option<&str>,
) -> Result<String> {
    let mut request = app
        .http
        .post(format!("{}/orders", app.url))
        .bearer_auth(token)
        .json(&json!({
            "lines": [{"sku": sku, "quantity": 1}],
            "shipping_address": address(),
            "payment": {"card_number": APPROVE},
        }));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(
        status == StatusCode::CREATED,
        "place order: {status} {body}"
    );
    Ok(body["order_id"].as_str().context("order_id")?.to_owned())
}

fn header(record: &LogRecord, key: &str) -> String {
    record
        .header(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// The records of `topic` whose key is `key`.
async fn records(app: &TestApp, topic: &str, key: &str) -> Result<Vec<LogRecord>> {
    Ok(read_topic(app.system.log.as_ref(), topic)
        .await?
        .into_iter()
        .filter(|r| r.key == key.as_bytes())
        .collect())
}

/// Finished spans of `trace_id`: name → count.
fn spans_of(trace_id: &str) -> HashMap<String, usize> {
    let mut names = HashMap::new();
    for span in crate::SPANS.get().unwrap().get_finished_spans().unwrap() {
        if span.span_context.trace_id().to_string() == trace_id {
            *names.entry(span.name.to_string()).or_insert(0) += 1;
        }
    }
    names
}

pub async fn one_trace_from_request_to_projection(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let store = Store::new(adapter).await?;
    let side = read_side(&app, store.get()).await?;
    let mug = sku();
    app.product(&mug, 1299, 10).await?;
    let (_, customer) = app.customer("tracy").await?;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let order = place_order(&app, &customer, &mug, Some(&traceparent)).await?;
    // The saga reserves stock and authorizes the payment, then confirms.
    app.wait_for(Context::Orders, &order, "OrderConfirmed")
        .await?;
    caught_up(&side).await?;

    // The spans: HTTP → PlaceOrder → its events' append → saga step →
    // ReserveStock (sent by the saga) → … → projection, one trace.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let wanted = [
        "POST /orders",
        "process PlaceOrder",
        "append events",
        "order-fulfillment step",
        "process ReserveStock",
        "process AuthorizePayment",
        "project orders",
    ];
    loop {
        let names = spans_of(&trace_id);
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|w| !names.contains_key(**w))
            .copied()
            .collect();
        if missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let mut seen: Vec<_> = names.keys().cloned().collect();
            seen.sort();
            bail!("spans of trace {trace_id} missing {missing:?}; seen {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And they nest: the client's span → the request → the command.
    let spans: Vec<_> = crate::SPANS
        .get()
        .unwrap()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect();
    let request = spans.iter().find(|s| s.name == "POST /orders").unwrap();
    ensure!(
        request.parent_span_id.to_string() == "00f067aa0ba902b7",
        "the request's parent is the caller's span: {}",
        request.parent_span_id
    );
    let command = spans
        .iter()
        .find(|s| s.name == "process PlaceOrder")
        .unwrap();
    ensure!(
        command.parent_span_id == request.span_context.span_id(),
        "PlaceOrder's parent is the request"
    );

    // The records of those hops carry the trace in their headers.
    let topics = &app.system.topics;
    let placed = records(&app, &topics.commands(Context::Orders), &order).await?;
    let place = placed
        .iter()
        .find(|r| header(r, "command_type").ends_with("PlaceOrder"))
        .context("the PlaceOrder command record")?;
    ensure!(
        trace_id_of(&place.headers).as_deref() == Some(trace_id.as_str()),
        "PlaceOrder record: {:?}",
        header(place, "traceparent")
    );
    let events = records(&app, &topics.events(Context::Orders), &order).await?;
    let order_placed = events
        .iter()
        .find(|r| header(r, "event_type").ends_with("OrderPlaced"))
        .context("the OrderPlaced record")?;
    ensure!(
        trace_id_of(&order_placed.headers).as_deref() == Some(trace_id.as_str()),
        "OrderPlaced record: {:?}",
        header(order_placed, "traceparent")
    );
    let steps = records(
        &app,
        &topics.saga_events(schemas::ORDER_FULFILLMENT),
        &order,
    )
    .await?;
    ensure!(!steps.is_empty(), "no saga step of {order}");
    ensure!(
        trace_id_of(&steps[0].headers).as_deref() == Some(trace_id.as_str()),
        "first saga step: {:?}",
        header(&steps[0], "traceparent")
    );
    let reserve = read_topic(
        app.system.log.as_ref(),
        &topics.commands(Context::Inventory),
    )
    .await?
    .into_iter()
    .find(|r| {
        header(r, "correlation_id") == order && header(r, "command_type").ends_with("ReserveStock")
    })
    .context("the saga's ReserveStock command")?;
    ensure!(
        trace_id_of(&reserve.headers).as_deref() == Some(trace_id.as_str()),
        "ReserveStock record: {:?}",
        header(&reserve, "traceparent")
    );
    // An outcome record carries it too.
    let outcomes = records(&app, &topics.command_outcomes(), &order).await?;
    ensure!(
        outcomes
            .iter()
            .any(|r| trace_id_of(&r.headers).as_deref() == Some(trace_id.as_str())),
        "no command outcome of {order} carries the trace"
    );

    // A request without `traceparent` starts a trace of its own.
    let other = place_order(&app, &customer, &mug, None).await?;
    let placed = records(&app, &topics.commands(Context::Orders), &other).await?;
    let own = placed.first().and_then(|r| trace_id_of(&r.headers));
    ensure!(
        own.is_some() && own.as_deref() != Some(trace_id.as_str()),
        "a new trace for a request without traceparent: {own:?}"
    );
    side.stop().await?;
    app.stop().await?;
    store.drop().await
}

/// GETs `url` and returns the body.
async fn scrape(http: &reqwest::Client, url: &str) -> Result<String> {
    let response = http.get(format!("{url}/metrics")).send().await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{url}/metrics: {}",
        response.status()
    );
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(ct.starts_with("text/plain"), "content type {ct}");
    Ok(response.text().await?)
}

/// The value of the sample `name{labels}` (labels in the exposition's
/// order: alphabetical), or of the sum of every sample of `name` whose
/// labels contain every `must` pair.
fn sample(text: &str, name: &str, must: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let pairs: BTreeSet<(String, String)> = labels
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        if must
            .iter()
            .all(|(k, v)| pairs.contains(&((*k).to_owned(), (*v).to_owned())))
        {
            *total.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    total
}

fn require(text: &str, name: &str, must: &[(&str, &str)]) -> Result<f64> {
    sample(text, name, must).with_context(|| format!("no {name} with {must:?} in:\n{text}"))
}

pub async fn metrics_exist_and_move(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let store = Store::new(adapter).await?;
    let side = read_side(&app, store.get()).await?;
    let ops = OpsServer::start(
        "127.0.0.1:0",
        quickstore::probes::read_store(quickstore::probes::base(&app.system), store.get()),
    )
    .await?;
    let http = reqwest::Client::new();
    let mug = sku();
    app.product(&mug, 1299, 100).await?;
    let (_, customer) = app.customer("meg").await?;
    let first = place_order(&app, &customer, &mug, None).await?;
    app.wait_for(Context::Orders, &first, "OrderConfirmed")
        .await?;
    caught_up(&side).await?;
    // A query, so the query API's histogram has a route.
    let q = http
        .get(format!("{}/orders/{first}", side.url()))
        .bearer_auth(&customer)
        .send()
        .await?;
    ensure!(
        q.status() == StatusCode::OK,
        "GET /orders/{{id}}: {}",
        q.status()
    );

    let prefix = app.system.topics.prefix.clone();
    let processors = format!("{prefix}orders.command-processor");
    let saga_group = format!("{prefix}sagas.{}", schemas::ORDER_FULFILLMENT);
    let commands_topic = app.system.topics.commands(Context::Orders);
    // The consumer lag sampler runs every 5 s: wait for its first pass.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let before = loop {
        let text = scrape(&http, &app.url).await?;
        if sample(
            &text,
            "quickstore_consumer_lag",
            &[("group", saga_group.as_str())],
        )
        .is_some()
            && sample(
                &text,
                "quickstore_consumer_lag",
                &[("group", processors.as_str())],
            )
            .is_some()
        {
            break text;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no consumer lag sampled:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let http_orders = [
        ("service", "command-api"),
        ("method", "POST"),
        ("route", "/orders"),
        ("status", "201"),
    ];
    let placed = [
        ("context", "orders"),
        ("command_type", "PlaceOrder"),
        ("outcome", "accepted"),
    ];
    let http_before = require(
        &before,
        "quickstore_http_request_duration_seconds_count",
        &http_orders,
    )?;
    let placed_before = require(&before, "quickstore_commands_total", &placed)?;
    let batches_before = require(
        &before,
        "quickstore_command_batch_size_count",
        &[("context", "orders")],
    )?;
    require(
        &before,
        "quickstore_command_transaction_duration_seconds_bucket",
        &[("context", "orders"), ("le", "+Inf")],
    )?;
    require(
        &before,
        "quickstore_consumer_lag",
        &[
            ("group", processors.as_str()),
            ("topic", commands_topic.as_str()),
            ("partition", "0"),
        ],
    )?;
    let sagas_before = require(
        &before,
        "quickstore_saga_instances",
        &[("saga", schemas::ORDER_FULFILLMENT)],
    )?;
    ensure!(
        sagas_before >= 1.0,
        "the first order's saga is live: {sagas_before}"
    );
    require(
        &before,
        "quickstore_projection_lag",
        &[("projection", "orders")],
    )?;
    require(
        &before,
        "quickstore_dlq_size",
        &[("projection", "orders"), ("kind", "parked_keys")],
    )?;
    let projector_group = format!("group=\"{prefix}projector.orders.g");
    ensure!(
        before
            .lines()
            .any(|l| l.starts_with("quickstore_consumer_lag{") && l.contains(&projector_group)),
        "no consumer lag of the orders projector's group in:\n{before}"
    );
    // The query API and the ops listener serve the process's series too,
    // and the query API's requests are timed by route template.
    let query = scrape(&http, &side.url()).await?;
    require(
        &query,
        "quickstore_http_request_duration_seconds_count",
        &[
            ("service", "query-api"),
            ("route", "/orders/{order_id}"),
            ("status", "200"),
        ],
    )?;
    let ops_text = scrape(&http, &ops.url()).await?;
    require(&ops_text, "quickstore_commands_total", &placed)?;

    // Work: three more orders.
    for _ in 0..3 {
        let id = place_order(&app, &customer, &mug, None).await?;
        app.wait_for(Context::Orders, &id, "OrderConfirmed").await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let after = scrape(&http, &app.url).await?;
        let ops_after = scrape(&http, &ops.url()).await?;
        let moved = require(
            &after,
            "quickstore_http_request_duration_seconds_count",
            &http_orders,
        )? >= http_before + 3.0
            && require(&after, "quickstore_commands_total", &placed)? >= placed_before + 3.0
            && require(
                &after,
                "quickstore_command_batch_size_count",
                &[("context", "orders")],
            )? > batches_before
            && require(
                &after,
                "quickstore_saga_instances",
                &[("saga", schemas::ORDER_FULFILLMENT)],
            )? >= sagas_before + 3.0
            && require(
                &ops_after,
                "quickstore_projection_lag",
                &[("projection", "orders")],
            )? == 0.0;
        if moved {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the series did not move as expected:\nbefore:\n{before}\nafter:\n{after}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ops.stop().await?;
    side.stop().await?;
    app.stop().await?;
    store.drop().await
}

async fn get(http: &reqwest::Client, url: &str) -> Result<(StatusCode, Value)> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Polls `url` until it answers `want` (readiness settles after start).
async fn until(http: &reqwest::Client, url: &str, want: StatusCode) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(http, url).await?;
        if status == want {
            return Ok(body);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{url}: {status} {body}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn health_and_readiness(adapter: TestAdapter) -> Result<()> {
    let app = spawn_app(adapter).await?;
    let store = Store::new(adapter).await?;
    let side = read_side(&app, store.get()).await?;
    let ops = OpsServer::start(
        "127.0.0.1:0",
        quickstore::probes::read_store(quickstore::probes::base(&app.system), store.get()),
    )
    .await?;
    let http = reqwest::Client::new();
    for url in [app.url.clone(), side.url(), ops.url()] {
        let (status, body) = get(&http, &format!("{url}/healthz")).await?;
        ensure!(
            status == StatusCode::OK && body["status"] == "ok",
            "{url}/healthz: {status} {body}"
        );
    }
    let ready = until(&http, &format!("{}/readyz", app.url), StatusCode::OK).await?;
    for check in ["event-log", "schema-registry", "command-processors"] {
        ensure!(
            ready["checks"][check] == "ok",
            "command API /readyz: {ready}"
        );
    }
    let ready = until(&http, &format!("{}/readyz", side.url()), StatusCode::OK).await?;
    ensure!(ready["status"] == "ready", "query API /readyz: {ready}");
    let ready = until(&http, &format!("{}/readyz", ops.url()), StatusCode::OK).await?;
    for check in ["event-log", "schema-registry", "read-store"] {
        ensure!(ready["checks"][check] == "ok", "ops /readyz: {ready}");
    }

    // A dependency that does not answer: on Kafka the broker (a bootstrap
    // on a closed port), on the embedded log the registry (a URL on a
    // closed port). The shared servers keep running.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let dir = tempfile::tempdir()?;
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        topic_prefix: platform::testing::unique_prefix("obs"),
        ..Settings::default()
    };
    let unreachable = match adapter {
        TestAdapter::Kafka => {
            settings.event_log = EventLogBackend::Kafka;
            settings.kafka_bootstrap = closed.to_string();
            settings.schema_registry_url = app.system.settings.schema_registry_url.clone();
            "event-log"
        }
        TestAdapter::Embedded => {
            settings.schema_registry_url = Some(format!("http://{closed}"));
            "schema-registry"
        }
    };
    let broken = System::connect(settings).await?;
    let down = OpsServer::start("127.0.0.1:0", quickstore::probes::base(&broken)).await?;
    let (status, body) = get(&http, &format!("{}/readyz", down.url())).await?;
    ensure!(
        status == StatusCode::SERVICE_UNAVAILABLE
            && body["status"] == "not-ready"
            && body["not_ready"] == json!([unreachable])
            && body["checks"][unreachable] == "unavailable",
        "{status} {body}"
    );
    let (status, _) = get(&http, &format!("{}/healthz", down.url())).await?;
    ensure!(status == StatusCode::OK, "alive while not ready: {status}");
    down.stop().await?;
    ops.stop().await?;
    side.stop().await?;
    app.stop().await?;
    store.drop().await
}
