//! Orders driven to completion at fixed arrival rates that step up until
//! the system stops keeping up — the knee — with place-order ack latency,
//! end-to-end latency (place-order to "COMPLETED" in the query API) and the
//! projectors' lag per step; then, at the highest rate that held, the raw
//! produce-ack and HTTP no-op baselines at that same rate.
//!
//! Open loop: the `k`-th order of a step is sent at `start + k / rate`
//! whatever the earlier ones are doing ([`open_loop`]), so a stall shows up
//! in the latency of every order it delays (no coordinated omission), and a
//! system that cannot keep up builds a backlog that the achieved rate
//! shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use futures::FutureExt as _;
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};
use platform::eventlog::{Cleanup, OutgoingRecord, TopicSpec};
use platform::readstore::{CqlStore, ReadStore};
use serde::Serialize;
use tokio::sync::Mutex;

use super::load::{cpu_delta, open_loop, percentile, process_cpu, LatencyReport, Op};
use super::orders::OrderRig;
use super::stages::{self, StageLatency};
use crate::read_side::{ReadSide, ReadSideOptions};

/// What the driver does.
#[derive(Debug, Clone)]
pub struct StepPlan {
    /// Offered arrival rates (orders/s), in increasing order; the driver
    /// stops after the first step that does not hold.
    pub rates: Vec<f64>,
    /// Seconds of arrivals per step.
    pub seconds: f64,
    /// A step holds while its place-order p99 stays under this.
    pub ack_p99_bound_ms: f64,
    /// Customers placing the orders (tokens are per customer).
    pub clients: usize,
    /// Orders per step whose end-to-end time is measured (polled in the
    /// query API every 10 ms; the poll costs load, so only a sample).
    pub e2e_samples: usize,
}

impl StepPlan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                rates: vec![10.0, 20.0],
                seconds: 2.0,
                ack_p99_bound_ms: 60_000.0,
                clients: 8,
                e2e_samples: 10,
            }
        } else {
            Self {
                rates: vec![50.0, 100.0, 200.0, 400.0, 800.0, 1_600.0, 3_200.0, 6_400.0],
                seconds: 10.0,
                ack_p99_bound_ms: 1_000.0,
                clients: 256,
                e2e_samples: 40,
            }
        }
    }
}

/// One arrival rate's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LoadStep {
    pub offered_per_sec: f64,
    pub orders: u64,
    /// Orders whose saga completed before the step's drain deadline.
    pub completed: u64,
    /// Completions per second over the span from the step's first
    /// completion to its last (≈ offered while the system keeps up).
    pub achieved_per_sec: f64,
    /// Place-order: from the scheduled send to the 201.
    pub ack: LatencyReport,
    /// Place-order to "COMPLETED" in the query API (a sample of orders).
    pub e2e_samples: u64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    /// The projectors' largest total lag seen during the step (events).
    pub projector_lag_max: u64,
    /// Events the projectors wrote per second during the step.
    pub projector_events_per_sec: f64,
    /// Process CPU (every role, the load generator too) per completed order.
    pub cpu_us_per_order: Option<f64>,
    /// Commands decided and events appended per completed order.
    pub commands_per_order: f64,
    pub events_per_order: f64,
    /// Where the step's time went, hop by hop ([`super::stages`]).
    pub stages: Vec<StageLatency>,
    /// Whether it kept up: no error, everything completed, achieved ≥ 90 %
    /// of offered and the ack p99 under the bound.
    pub held: bool,
}

/// The whole sweep on one target, with the baselines at the knee's rate.
#[derive(Debug, Clone, Serialize)]
pub struct StepsReport {
    pub backend: String,
    pub steps: Vec<LoadStep>,
    /// The highest offered rate that held (the knee is the step after it);
    /// the first step's rate if none held.
    pub reference_rate: f64,
    /// Raw produce-ack (one PlaceOrder-sized record through the log's
    /// producer) at `reference_rate`, open loop.
    pub raw_produce_ack: LatencyReport,
    /// `GET /healthz` on the command API's server stack at `reference_rate`.
    pub http_noop: LatencyReport,
}

impl StepsReport {
    /// The step measured at `reference_rate`.
    pub fn reference_step(&self) -> Option<&LoadStep> {
        self.steps
            .iter()
            .find(|s| s.offered_per_sec == self.reference_rate)
    }

    /// The best completion rate any step achieved.
    pub fn max_achieved(&self) -> f64 {
        self.steps
            .iter()
            .map(|s| s.achieved_per_sec)
            .fold(0.0, f64::max)
    }
}

/// Runs the sweep on `backend` (with the read side on `read_store`).
pub async fn measure(
    base: &Settings,
    backend: EventLogBackend,
    read_store: ReadStoreBackend,
    plan: &StepPlan,
) -> Result<StepsReport> {
    let mut settings = base.clone();
    settings.read_store = read_store;
    let short = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    settings.cql_keyspace = format!("qs_bench_{short}");
    let rig = Arc::new(OrderRig::start(&settings, backend, plan.clients).await?);
    let (store, cql): (Arc<dyn ReadStore>, Option<Arc<CqlStore>>) = match read_store {
        ReadStoreBackend::Embedded => (
            crate::system::connect_read_store(&rig.system.settings).await?,
            None,
        ),
        ReadStoreBackend::Cql => {
            let cql = Arc::new(CqlStore::connect(rig.system.settings.cql()?).await?);
            (Arc::clone(&cql) as Arc<dyn ReadStore>, Some(cql))
        }
    };
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", rig.url));
    options.service.status_interval = Duration::from_millis(200);
    let read_side = ReadSide::start(&rig.system, store, options).await?;
    let result = sweep(&rig, &read_side, plan).await;
    read_side.stop().await?;
    if let Some(cql) = cql {
        if let Err(e) = cql.drop_keyspace().await {
            eprintln!("bench: dropping {}: {e}", cql.keyspace());
        }
    }
    Arc::into_inner(rig)
        .context("the order rig is still shared")?
        .stop()
        .await?;
    result
}

async fn sweep(rig: &Arc<OrderRig>, read_side: &ReadSide, plan: &StepPlan) -> Result<StepsReport> {
    let backend = rig.backend_name();
    // Warm-up (connections, JIT, first transactions), not counted.
    let warm = plan.rates[0].min(20.0);
    run_step(rig, read_side, plan, warm, 1.0, 0).await?;
    let mut steps = Vec::new();
    for (k, &rate) in plan.rates.iter().enumerate() {
        eprintln!(
            "bench ({backend}): orders at {rate}/s for {} s",
            plan.seconds
        );
        let step = run_step(rig, read_side, plan, rate, plan.seconds, k as u64 + 1).await?;
        eprintln!(
            "bench ({backend}): {rate}/s offered → {:.0}/s completed, ack p99 {:.1} ms, \
             end-to-end p99 {:.0} ms, {}",
            step.achieved_per_sec,
            step.ack.p99_ms,
            step.e2e_p99_ms,
            if step.held { "held" } else { "the knee" }
        );
        for s in &step.stages {
            eprintln!(
                "bench ({backend}):   {:<40} n={:<7} mean {:>8.1} ms  p50 {:>8.1} ms  p99 {:>8.1} ms",
                s.stage, s.count, s.mean_ms, s.p50_ms, s.p99_ms
            );
        }
        let held = step.held;
        steps.push(step);
        if !held {
            break;
        }
    }
    let reference_rate = steps
        .iter()
        .filter(|s| s.held)
        .map(|s| s.offered_per_sec)
        .fold(plan.rates[0], f64::max);
    eprintln!("bench ({backend}): raw produce-ack and HTTP no-op at {reference_rate}/s");
    let duration = Duration::from_secs_f64(plan.seconds);
    let raw_produce_ack = open_loop(reference_rate, duration, 90, raw_produce_op(rig).await?)
        .await?
        .report();
    let http_noop = open_loop(reference_rate, duration, 91, noop_op(rig))
        .await?
        .report();
    Ok(StepsReport {
        backend: backend.into(),
        steps,
        reference_rate,
        raw_produce_ack,
        http_noop,
    })
}

async fn run_step(
    rig: &Arc<OrderRig>,
    read_side: &ReadSide,
    plan: &StepPlan,
    rate: f64,
    seconds: f64,
    stream: u64,
) -> Result<LoadStep> {
    let orders = ((rate * seconds).round() as u64).max(1);
    let every = (orders as usize / plan.e2e_samples.max(1)).max(1);
    let e2e: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let query = read_side.url();
    let (c0, totals0, cpu0) = (rig.completed(), rig.processor_totals(), process_cpu());
    let events0 = projector_events(read_side);
    let stages0 = stages::reading();
    // Completions over time: the first and the last one of this step.
    let drain = Duration::from_secs_f64((seconds * 2.0).max(20.0));
    let watcher = tokio::spawn(watch_completions(
        rig.side.saga_progress.clone(),
        c0,
        orders,
        Duration::from_secs_f64(seconds) + drain + Duration::from_secs(5),
    ));
    let lag_max = Arc::new(AtomicU64::new(0));
    let lag = tokio::spawn(watch_lag(read_side.watch(), Arc::clone(&lag_max)));
    let op: Op = {
        let (rig, e2e, query) = (Arc::clone(rig), Arc::clone(&e2e), query.clone());
        Arc::new(move |i| {
            let placed = rig.place_order(i);
            let sample = i % every == 0;
            let (rig, e2e, query) = (Arc::clone(&rig), Arc::clone(&e2e), query.clone());
            async move {
                let sent = Instant::now();
                let id = placed.await?;
                if sample {
                    let token = rig.customers[i % rig.customers.len()].1.clone();
                    let http = rig.http.clone();
                    // Detached: the ack latency stops at the 201.
                    tokio::spawn(async move {
                        if let Ok(()) = until_completed(&http, &query, &id, &token).await {
                            e2e.lock().await.push(sent.elapsed());
                        }
                    });
                }
                Ok(())
            }
            .boxed()
        })
    };
    let ack = open_loop(rate, Duration::from_secs_f64(seconds), stream, op).await?;
    let completed = rig
        .wait_completed(c0 + orders, drain)
        .await?
        .saturating_sub(c0);
    let span = watcher.await?;
    lag.abort();
    let lag_max = lag_max.load(Ordering::Relaxed);
    let step_elapsed = span.map(|s| s.2);
    // The sampled end-to-end polls finish shortly after the completions.
    let deadline = Instant::now() + Duration::from_secs(10);
    while e2e.lock().await.len() < (orders as usize).div_ceil(every) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = cpu_delta(cpu0, process_cpu());
    let totals1 = rig.processor_totals();
    let events1 = projector_events(read_side);
    let stages = stages::between(&stages0, &stages::reading());
    let ack = ack.report();
    let mut e2e = e2e.lock().await.clone();
    e2e.sort_unstable();
    let achieved = match span {
        Some((first, last, _)) if completed > 1 && last > first => {
            (completed - 1) as f64 / last.duration_since(first).as_secs_f64()
        }
        _ => 0.0,
    };
    let elapsed = step_elapsed.unwrap_or_else(|| Duration::from_secs_f64(seconds));
    let done = completed.max(1) as f64;
    Ok(LoadStep {
        offered_per_sec: rate,
        orders,
        completed,
        achieved_per_sec: achieved,
        e2e_samples: e2e.len() as u64,
        e2e_p50_ms: percentile(&e2e, 0.5),
        e2e_p99_ms: percentile(&e2e, 0.99),
        projector_lag_max: lag_max,
        projector_events_per_sec: events1.saturating_sub(events0) as f64
            / elapsed.as_secs_f64().max(1e-9),
        cpu_us_per_order: cpu.map(|c| c.as_secs_f64() * 1e6 / done),
        commands_per_order: totals1.0.saturating_sub(totals0.0) as f64 / done,
        events_per_order: totals1.1.saturating_sub(totals0.1) as f64 / done,
        stages,
        held: ack.errors == 0
            && completed == orders
            && achieved >= 0.9 * rate
            && ack.p99_ms <= plan.ack_p99_bound_ms,
        ack,
    })
}

fn projector_events(read_side: &ReadSide) -> u64 {
    read_side
        .status()
        .projections
        .values()
        .map(|p| p.events)
        .sum()
}

/// (first completion, last completion, from the watch's start to the last
/// completion) of `orders` sagas after `c0`; `None` if none completed
/// within the step's bound.
async fn watch_completions(
    mut progress: tokio::sync::watch::Receiver<sagas::fulfillment::WorkerStats>,
    c0: u64,
    orders: u64,
    limit: Duration,
) -> Option<(Instant, Instant, Duration)> {
    let started = Instant::now();
    let mut first = None;
    let mut last = None;
    let deadline = started + limit;
    while Instant::now() < deadline {
        let completed = progress.borrow_and_update().completed.saturating_sub(c0);
        if completed > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if completed > 0 {
            last = Some(Instant::now());
        }
        if completed >= orders {
            break;
        }
        if tokio::time::timeout(Duration::from_secs(5), progress.changed())
            .await
            .is_ok_and(|r| r.is_err())
        {
            break;
        }
    }
    Some((first?, last?, last?.duration_since(started)))
}

/// Keeps `max` at the largest total projector lag seen (sampled at each
/// status update) until aborted.
async fn watch_lag(
    status: Option<tokio::sync::watch::Receiver<projectors::service::ServiceStatus>>,
    max: Arc<AtomicU64>,
) {
    let Some(mut status) = status else {
        return;
    };
    loop {
        let lag = status.borrow_and_update().lag().unwrap_or(0);
        max.fetch_max(lag, Ordering::Relaxed);
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// Polls `GET /orders/{id}` until its status is COMPLETED (bounded).
async fn until_completed(http: &reqwest::Client, query: &str, id: &str, token: &str) -> Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        let response = http
            .get(format!("{query}/orders/{id}"))
            .bearer_auth(token)
            .send()
            .await?;
        if response.status().is_success() {
            let order: serde_json::Value = response.json().await?;
            if order["status"] == "COMPLETED" {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "order {id} never completed");
        tokio::time::sleep(poll_pause(started.elapsed())).await;
    }
}

/// How long an end-to-end sample waits before it asks again: 10 ms, then
/// a twentieth of the time it has waited, at most 100 ms — so a sample is
/// late by at most 5 % (or 10 ms). A fixed 10 ms made the measurement the
/// load: once orders took seconds, 100 samples polling every 10 ms were
/// ~10,000 authenticated reads/s, which saturated the two cores and
/// collapsed the very sweep they measured (2026-12-07, knee at 50/s).
fn poll_pause(waited: Duration) -> Duration {
    (waited / 20).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

/// One PlaceOrder-sized record through the log's own producer, awaited.
async fn raw_produce_op(rig: &OrderRig) -> Result<Op> {
    let system = &rig.system;
    let topic = format!("{}bench.raw", system.topics.prefix);
    system
        .log
        .create_topics(&[TopicSpec::new(
            topic.clone(),
            system.settings.partitions,
            Cleanup::Delete {
                retention: Duration::from_secs(3600),
            },
        )])
        .await?;
    let producer = Arc::new(system.log.producer("bench-raw").await?);
    let payload: Arc<[u8]> = vec![7u8; 420].into();
    Ok(Arc::new(move |i| {
        let (producer, topic, payload) =
            (Arc::clone(&producer), topic.clone(), Arc::clone(&payload));
        async move {
            producer
                .send(OutgoingRecord::new(
                    topic,
                    format!("k{i}"),
                    payload.to_vec(),
                ))
                .await?;
            Ok(())
        }
        .boxed()
    }))
}

/// `GET /healthz` on the command API's server (same router and layers).
fn noop_op(rig: &OrderRig) -> Op {
    let (http, url) = (rig.http.clone(), rig.url.clone());
    Arc::new(move |_| {
        let request = http.get(format!("{url}/healthz"));
        async move {
            request.send().await?.error_for_status()?;
            Ok(())
        }
        .boxed()
    })
}
