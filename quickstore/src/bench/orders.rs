//! `quickstore bench orders`: orders driven to completion per second
//! through the HTTP API (simulated gateway, simulated couriers that assign,
//! pick up and deliver at once), with place-order latency — on the embedded
//! log and on real Kafka, each beside baselines measured in the same run on
//! the same log and the same HTTP stack:
//!
//! - raw produce-ack latency: one record (the size of a PlaceOrder command)
//!   through the log's producer, awaited, at the same concurrency;
//! - HTTP no-op latency: `GET /healthz` on the same server, same concurrency.
//!
//! Closed loop: `--clients` customers each place orders back to back; the
//! throughput is completed sagas over the time from the first order to the
//! last completion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use platform::config::{EventLogBackend, Settings};
use platform::eventlog::{Cleanup, OutgoingRecord, TopicSpec};
use serde::Serialize;
use serde_json::json;

use super::load::percentile;
use crate::cli::BenchOrdersArgs;
use crate::system::System;
use crate::write_side::{Credentials, WriteSide, WriteSideOptions};

/// One backend's figures.
#[derive(Debug, Clone, Serialize)]
pub struct OrdersBenchReport {
    pub backend: String,
    pub cores: usize,
    pub partitions: i32,
    pub clients: usize,
    pub orders: usize,
    /// Completed sagas per second (place → delivered → completed).
    pub sagas_per_sec: f64,
    pub place_order_p50_ms: f64,
    pub place_order_p99_ms: f64,
    pub raw_produce_ack_p50_ms: f64,
    pub raw_produce_ack_p99_ms: f64,
    pub http_noop_p50_ms: f64,
    pub http_noop_p99_ms: f64,
    /// place-order p99 / raw produce-ack p99 (target ≤ 2).
    pub place_p99_over_raw_p99: f64,
    /// Commands decided and events appended per completed order.
    pub commands_per_order: f64,
    pub events_per_order: f64,
    /// Sagas that had not completed when the measurement ended.
    pub incomplete: u64,
}

pub async fn run(settings: Settings, args: BenchOrdersArgs) -> Result<()> {
    let backends: Vec<EventLogBackend> = match args.backend.as_str() {
        "embedded" => vec![EventLogBackend::Embedded],
        "kafka" => vec![EventLogBackend::Kafka],
        "both" => vec![EventLogBackend::Embedded, EventLogBackend::Kafka],
        other => bail!("--backend {other}: expected embedded, kafka or both"),
    };
    if backends.contains(&EventLogBackend::Kafka) && std::env::var("QS_KAFKA_BOOTSTRAP").is_err() {
        bail!(
            "bench orders on Kafka needs a real broker: set QS_KAFKA_BOOTSTRAP=host:port \
             (deploy/kafka/start.sh starts one), or pass --backend embedded"
        );
    }
    let orders = args.orders.unwrap_or(if args.quick { 300 } else { 20_000 });
    let clients = args.clients.unwrap_or(if args.quick { 16 } else { 64 });
    ensure!(
        orders > 0 && clients > 0,
        "--orders and --clients must be positive"
    );
    let mut reports = Vec::new();
    for backend in backends {
        let report = one_backend(&settings, backend, orders, clients, args.quick).await?;
        print_report(&report);
        // Quick mode checks the report is complete and sane, not the numbers.
        ensure!(
            report.incomplete == 0
                && report.sagas_per_sec > 0.0
                && report.place_order_p99_ms > 0.0
                && report.raw_produce_ack_p99_ms > 0.0
                && report.http_noop_p99_ms > 0.0,
            "the {} benchmark is incomplete: {report:?}",
            report.backend
        );
        reports.push(report);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_report(r: &OrdersBenchReport) {
    println!(
        "{:<9} {:>6} orders  {:>8.0} sagas/s  place p50 {:>6.2} ms p99 {:>7.2} ms | raw produce-ack p50 {:>6.2} p99 {:>7.2} ms (p99 ratio {:.2}) | http no-op p50 {:.2} p99 {:.2} ms | {:.1} commands, {:.1} events per order{}",
        r.backend, r.orders, r.sagas_per_sec, r.place_order_p50_ms, r.place_order_p99_ms,
        r.raw_produce_ack_p50_ms, r.raw_produce_ack_p99_ms, r.place_p99_over_raw_p99,
        r.http_noop_p50_ms, r.http_noop_p99_ms, r.commands_per_order, r.events_per_order,
        if r.incomplete > 0 { format!(" — {} incomplete", r.incomplete) } else { String::new() }
    );
}

/// A running write side for a benchmark: its own data dir and topic
/// prefix, simulated couriers, a shop with stock to spare and one
/// registered customer per client.
#[derive(Debug)]
pub struct OrderRig {
    pub system: System,
    pub side: WriteSide,
    pub url: String,
    pub http: reqwest::Client,
    /// (customer id, access token), one per client.
    pub customers: Vec<(String, String)>,
    pub skus: Vec<String>,
    dir: std::path::PathBuf,
}

impl OrderRig {
    pub async fn start(base: &Settings, backend: EventLogBackend, clients: usize) -> Result<Self> {
        let dir = tempfile_dir()?;
        let mut settings = base.clone();
        settings.event_log = backend;
        settings.data_dir = dir.clone();
        settings.topic_prefix =
            format!("bench-{}.", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        if backend == EventLogBackend::Kafka {
            settings.kafka_bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP")
                .context("QS_KAFKA_BOOTSTRAP (deploy/test-env.sh up starts a broker)")?;
        } else {
            settings.schema_registry_url = None;
        }
        let system = System::connect_for_bench(settings).await?;
        let mut options = WriteSideOptions::from_settings(&system);
        options.listen = "127.0.0.1:0".into();
        options.credentials = Credentials::Memory;
        options.fast_password_hashing = true;
        options.instance = uuid::Uuid::new_v4().simple().to_string();
        options.simulated_couriers = (1..=4).map(|i| format!("bench-courier-{i}")).collect();
        options.api.outcome_wait = Duration::from_secs(60);
        let side = WriteSide::start(&system, options).await?;
        let url = side.api_url()?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(64) * 2)
            .timeout(Duration::from_secs(120))
            .build()?;
        // The shop: SKUs with stock to spare, one customer per client.
        let skus: Vec<String> = (0..32).map(|i| format!("BENCH-{i}")).collect();
        for sku in &skus {
            crate::seed::product(side.api_state()?, sku, sku, "bench", 100, 1_000_000).await?;
        }
        let mut customers = Vec::new();
        for i in 0..clients {
            let v: serde_json::Value = http
                .post(format!("{url}/auth/register"))
                .json(&json!({"email": format!("client{i}@bench.local"), "password": "bench-password-1", "display_name": format!("client {i}")}))
                .send().await?.error_for_status()?.json().await?;
            customers.push((
                v["customer_id"].as_str().unwrap_or_default().to_owned(),
                v["access_token"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        Ok(Self {
            system,
            side,
            url,
            http,
            customers,
            skus,
            dir,
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.system.settings.event_log {
            EventLogBackend::Embedded => "embedded",
            EventLogBackend::Kafka => "kafka",
        }
    }

    /// Places the `i`-th order (a rotating customer and SKU, the approving
    /// test card); its id once the command API answered 201.
    pub fn place_order(
        &self,
        i: usize,
    ) -> impl std::future::Future<Output = Result<String>> + Send + 'static {
        let (token, sku) = (
            self.customers[i % self.customers.len()].1.clone(),
            self.skus[(i * 7) % self.skus.len()].clone(),
        );
        let request = self
            .http
            .post(format!("{}/orders", self.url))
            .bearer_auth(token)
            .json(&json!({
                "lines": [{"sku": sku, "quantity": 1}],
                "shipping_address": {"recipient": "Bench", "line1": "1 Load St", "city": "Berlin", "postal_code": "10115", "country": "DE"},
                "payment": {"card_number": "4242 4242 4242 4242"},
            }));
        async move {
            let response = request.send().await?;
            let status = response.status();
            if status != reqwest::StatusCode::CREATED {
                bail!(
                    "place order: {status} {}",
                    response.text().await.unwrap_or_default()
                );
            }
            let body: serde_json::Value = response.json().await?;
            Ok(body["order_id"].as_str().unwrap_or_default().to_owned())
        }
    }

    /// Sagas completed so far.
    pub fn completed(&self) -> u64 {
        self.side.saga_progress.borrow().completed
    }

    pub async fn wait_completed(&self, target: u64, limit: Duration) -> Result<u64> {
        wait_completed(&self.side, target, limit).await
    }

    /// (commands decided, events appended) by every processor so far.
    pub fn processor_totals(&self) -> (u64, u64) {
        processor_totals(&self.side)
    }

    pub async fn stop(self) -> Result<()> {
        self.side.stop().await?;
        drop(self.system);
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

async fn one_backend(
    base: &Settings,
    backend: EventLogBackend,
    orders: usize,
    clients: usize,
    quick: bool,
) -> Result<OrdersBenchReport> {
    let rig = OrderRig::start(base, backend, clients).await?;
    let (system, url, http) = (&rig.system, rig.url.clone(), rig.http.clone());

    // Baseline 1: HTTP no-op on the same server.
    let noop = closed_loop(clients, orders.min(5_000), {
        let (http, url) = (http.clone(), url.clone());
        move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(format!("{url}/healthz"))
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(())
            }
        }
    })
    .await?;
    // Baseline 2: raw produce-ack on the same log.
    let raw_topic = format!("{}bench.raw", system.topics.prefix);
    system
        .log
        .create_topics(&[TopicSpec::new(
            raw_topic.clone(),
            system.settings.partitions,
            Cleanup::Delete {
                retention: Duration::from_secs(3600),
            },
        )])
        .await?;
    let producer = Arc::new(system.log.producer("bench-raw").await?);
    let payload = vec![7u8; 420];
    let raw = closed_loop(clients, orders.min(20_000), {
        let (producer, topic, payload) =
            (Arc::clone(&producer), raw_topic.clone(), payload.clone());
        move |i| {
            let (producer, topic, payload) =
                (Arc::clone(&producer), topic.clone(), payload.clone());
            async move {
                producer
                    .send(OutgoingRecord::new(topic, format!("k{i}"), payload))
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    drop(producer);

    // Warm up, then measure.
    let rig = Arc::new(rig);
    let warmup = (clients * 2).min(orders);
    place_orders(&rig, warmup, clients).await?;
    rig.wait_completed(warmup as u64, Duration::from_secs(120))
        .await?;
    let stats_before = rig.processor_totals();
    let saga_before = rig.completed();
    let started = Instant::now();
    let latencies = place_orders(&rig, orders, clients).await?;
    let limit = if quick {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(900)
    };
    let completed = rig
        .wait_completed(saga_before + orders as u64, limit)
        .await?;
    let elapsed = started.elapsed();
    let done = completed.saturating_sub(saga_before);
    let stats_after = rig.processor_totals();
    Arc::into_inner(rig)
        .context("the order rig is still shared")?
        .stop()
        .await?;

    let place_p99 = percentile(&latencies, 0.99);
    let raw_p99 = percentile(&raw, 0.99);
    Ok(OrdersBenchReport {
        backend: match backend {
            EventLogBackend::Embedded => "embedded".into(),
            EventLogBackend::Kafka => "kafka".into(),
        },
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        partitions: base.partitions,
        clients,
        orders,
        sagas_per_sec: done as f64 / elapsed.as_secs_f64(),
        place_order_p50_ms: percentile(&latencies, 0.5),
        place_order_p99_ms: place_p99,
        raw_produce_ack_p50_ms: percentile(&raw, 0.5),
        raw_produce_ack_p99_ms: raw_p99,
        http_noop_p50_ms: percentile(&noop, 0.5),
        http_noop_p99_ms: percentile(&noop, 0.99),
        place_p99_over_raw_p99: if raw_p99 > 0.0 {
            place_p99 / raw_p99
        } else {
            0.0
        },
        commands_per_order: (stats_after.0 - stats_before.0) as f64 / done.max(1) as f64,
        events_per_order: (stats_after.1 - stats_before.1) as f64 / done.max(1) as f64,
        incomplete: (orders as u64).saturating_sub(done),
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "quickstore-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn processor_totals(side: &WriteSide) -> (u64, u64) {
    side.processor_progress
        .iter()
        .fold((0, 0), |(c, e), (_, rx)| {
            let s = *rx.borrow();
            (c + s.commands, e + s.events)
        })
}

async fn wait_completed(side: &WriteSide, target: u64, limit: Duration) -> Result<u64> {
    let deadline = Instant::now() + limit;
    let mut progress = side.saga_progress.clone();
    loop {
        let completed = progress.borrow().completed;
        if completed >= target || Instant::now() > deadline {
            return Ok(completed);
        }
        if let Some(name) = side.failed_worker() {
            bail!("the {name} stopped during the benchmark");
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), progress.changed()).await;
    }
}

/// `count` operations over `clients` concurrent loops; their latencies, sorted.
async fn closed_loop<F, Fut>(clients: usize, count: usize, op: F) -> Result<Vec<Duration>>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, op) = (Arc::clone(&next), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                op(i).await?;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_unstable();
    Ok(all)
}

async fn place_orders(rig: &Arc<OrderRig>, count: usize, clients: usize) -> Result<Vec<Duration>> {
    closed_loop(clients, count, {
        let rig = Arc::clone(rig);
        move |i| {
            let order = rig.place_order(i);
            async move { order.await.map(|_| ()) }
        }
    })
    .await
}
