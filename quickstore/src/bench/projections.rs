//! `quickstore bench projections`: the read side — the orders projector's
//! throughput and the query API's read-by-id latency, each beside a raw
//! baseline measured in the same run on the same store.
//!
//! Per backend (`embedded`: embedded log + embedded read store in a temp
//! dir; `cql`: real Kafka + the real CQL node, a fresh topic prefix and a
//! fresh keyspace that is dropped at the end):
//!
//! 1. **Input**: `--events` valid `OrderPlaced` events (distinct order ids,
//!    1–3 lines, version 1, sealed into their hash chain as the command
//!    processor seals them) appended to the orders events topic before
//!    anything is measured.
//! 2. **Projector**: the orders projection's [`Projector`] (generation 1, a
//!    fresh group) from offset 0 until its positions reach every
//!    partition's end. The clock starts at its first batch (joining the
//!    group is a one-off) and stops when the positions reach the ends.
//! 3. **Raw write baseline**, the same number of rows on the same store,
//!    run once before and once after the projector (the faster counts, so
//!    neither side is favoured by running first or last):
//!    - `cql`: one prepared `INSERT … USING TIMESTAMP ?` into a table
//!      shaped like `orders_by_id` in the same keyspace, through the
//!      `scylla` driver directly, at CqlStore's write concurrency;
//!    - `embedded`: the very mutations the projection makes, written
//!      straight through `EmbeddedStore::write` (into another table
//!      generation) in batches of the projector's batch size — so the
//!      ratio is what the projector adds: log reads, Avro decoding,
//!      projecting, offset commits.
//! 4. **Query by id at a fixed rate**: `GET /orders/{id}` on the query API
//!    (served in process over the same store, tokens verified with a fixed
//!    in-process key) at `--rate` requests per second, open loop, latency
//!    measured from each request's *scheduled* send time (no coordinated
//!    omission); beside a raw select by key at the same rate
//!    (`SELECT … WHERE order_id = ?` prepared, or `EmbeddedStore::get`).
//!    The two loads alternate in slices, so what the store does in the
//!    background after the writes lands on both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use futures::{FutureExt as _, StreamExt as _};
use platform::auth::{MemoryCredentialStore, Role, SigningKeys, TokenIssuer};
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};
use platform::eventlog::{OutgoingRecord, TopicPartition};
use platform::readstore::cql::WRITE_CONCURRENCY;
use platform::readstore::{
    CqlConfig, CqlStore, EmbeddedStore, Mutation, ReadStore, Row, TableDef, Value,
};
use projectors::projection::{Input, Projected, Projection};
use projectors::projections::orders::{OrdersProjection, ORDERS_BY_ID};
use projectors::runtime::{Projector, ProjectorConfig, ProjectorStats};
use query_api::{QueryConfig, QueryState, VerifierSource};
use schemas::orders::{OrderLine, OrderPlaced, OrderTotals, OrdersEvent};
use schemas::{AnyEvent, Context, EventEnvelope, PostalAddress};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Statement;
use scylla::value::CqlTimestamp;
use serde::Serialize;
use tokio::sync::watch;

use super::consume::ConsumeReport;
use super::load::{cpu_delta, open_loop, pick, process_cpu, LatencyReport, Op, Samples};
use crate::cli::BenchProjectionsArgs;
use crate::system::System;

/// One backend's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionsBenchReport {
    pub backend: String,
    pub cores: usize,
    pub partitions: i32,
    /// `OrderPlaced` events in the log.
    pub events: u64,
    /// Events appended per second while filling the log (context only).
    pub append_events_per_sec: f64,
    /// The projector's batch size (`ProjectorConfig::max_batch`).
    pub max_batch: usize,
    /// Mean events per batch the projector wrote.
    pub events_per_batch: f64,
    /// Row writes (mutations) per event.
    pub rows_per_event: f64,
    pub projector_reached_end: bool,
    pub projector_dead_letters: u64,
    /// Events timed (those after the projector's first batch).
    pub projector_timed_events: u64,
    pub projector_elapsed_s: f64,
    pub projector_events_per_sec: f64,
    pub projector_rows_per_sec: f64,
    /// Process CPU time (user + system, every thread) per projected event;
    /// `None` where `/proc/self/stat` cannot be read.
    pub projector_cpu_us_per_event: Option<f64>,
    /// Rows each raw write run wrote (= the rows the projector wrote).
    pub raw_rows: u64,
    /// Row writes in flight at once in the raw run (cql: CqlStore's
    /// `WRITE_CONCURRENCY`; embedded: 1, one batch per `write`).
    pub raw_write_concurrency: usize,
    pub raw_rows_per_sec_before: f64,
    pub raw_rows_per_sec_after: f64,
    /// The faster of the two raw runs.
    pub raw_rows_per_sec: f64,
    /// Process CPU time per raw row (of the faster run).
    pub raw_cpu_us_per_row: Option<f64>,
    /// projector rows/s ÷ raw rows/s. Target: ≥ 0.5.
    pub write_ratio: f64,
    pub query_rate: f64,
    pub query_seconds: f64,
    /// `GET /orders/{id}` through the query API.
    pub query: LatencyReport,
    /// A raw read of the same row by key, same store, same rate.
    pub raw_get: LatencyReport,
    /// query p99 ÷ raw get p99.
    pub query_p99_over_raw_p99: f64,
    /// `GET /customers/{id}/orders` (first page, newest first) at the same
    /// rate, open loop.
    pub by_customer: LatencyReport,
    /// The raw consume baseline: the projector's input read back with
    /// nothing decoded or written (rdkafka on Kafka, the port embedded).
    pub raw_consume: ConsumeReport,
    /// projector events/s ÷ raw consume records/s.
    pub consume_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Cql,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Cql => "cql",
        }
    }
}

/// What one run measures (from the flags, or the mode's defaults).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub events: usize,
    pub rate: f64,
    pub seconds: f64,
    pub quick: bool,
}

pub async fn run(settings: Settings, args: BenchProjectionsArgs) -> Result<()> {
    let backends = match args.backend.as_str() {
        "embedded" => vec![Backend::Embedded],
        "cql" => vec![Backend::Cql],
        "both" => vec![Backend::Embedded, Backend::Cql],
        other => bail!("--backend {other}: expected embedded, cql or both"),
    };
    if backends.contains(&Backend::Cql) {
        let missing: Vec<&str> = ["QS_KAFKA_BOOTSTRAP", "QS_CQL_CONTACT_POINTS"]
            .into_iter()
            .filter(|v| std::env::var(v).is_err())
            .collect();
        if !missing.is_empty() {
            bail!(
                "bench projections on `cql` measures real servers: set {} (`deploy/test-env.sh up` \
                 starts a Kafka broker and a CQL node and writes both variables to \
                 /tmp/quickstore-run/test-env: `source` it), or pass --backend embedded",
                missing.join(" and ")
            );
        }
    }
    let plan = Plan {
        events: args
            .events
            .unwrap_or(if args.quick { 2_000 } else { 200_000 }),
        rate: args
            .rate
            .unwrap_or(if args.quick { 200.0 } else { 5_000.0 }),
        seconds: args.seconds.unwrap_or(if args.quick { 2.0 } else { 10.0 }),
        quick: args.quick,
    };
    ensure!(
        plan.events > 0 && plan.rate > 0.0 && plan.seconds > 0.0,
        "--events, --rate and --seconds must be positive"
    );
    let mut reports = Vec::new();
    for backend in backends {
        let report = one_backend(&settings, backend, plan).await?;
        print_report(&report);
        reports.push(report);
    }
    if plan.quick || cfg!(debug_assertions) {
        println!(
            "(quick mode or a debug build: this run checks the report, its figures mean nothing; \
             run `cargo build --release -p quickstore && ./target/release/quickstore bench \
             projections` for numbers)"
        );
    }
    // Written before the checks, so a run that failed them can be studied.
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    for report in &reports {
        check_complete(report)?;
    }
    Ok(())
}

/// Quick mode checks the report is complete and sane, not the numbers.
fn check_complete(r: &ProjectionsBenchReport) -> Result<()> {
    let positive = [
        r.append_events_per_sec,
        r.events_per_batch,
        r.rows_per_event,
        r.projector_elapsed_s,
        r.projector_events_per_sec,
        r.projector_rows_per_sec,
        r.raw_rows_per_sec_before,
        r.raw_rows_per_sec_after,
        r.raw_rows_per_sec,
        r.write_ratio,
        r.query.achieved_rate,
        r.query.p50_ms,
        r.query.p99_ms,
        r.query.p999_ms,
        r.raw_get.achieved_rate,
        r.raw_get.p50_ms,
        r.raw_get.p99_ms,
        r.raw_get.p999_ms,
        r.query_p99_over_raw_p99,
        r.by_customer.p99_ms,
        r.raw_consume.records_per_sec,
        r.consume_ratio,
    ];
    ensure!(
        r.projector_reached_end
            && r.projector_dead_letters == 0
            && r.projector_timed_events > 0
            && r.raw_rows > 0
            && r.query.requests > 0
            && r.query.errors == 0
            && r.raw_get.requests > 0
            && r.raw_get.errors == 0
            && r.by_customer.requests > 0
            && r.by_customer.errors == 0
            && positive.iter().all(|x| x.is_finite() && *x > 0.0)
            && r.projector_cpu_us_per_event
                .is_none_or(|x| x.is_finite() && x > 0.0),
        "the {} benchmark is incomplete: {r:?}",
        r.backend
    );
    Ok(())
}

fn print_report(r: &ProjectionsBenchReport) {
    let cpu = |c: Option<f64>, unit: &str| {
        c.map(|c| format!(", {c:.1} CPU-µs/{unit}"))
            .unwrap_or_default()
    };
    println!(
        "{:<9} {} events | projector {:.0} events/s {:.0} rows/s{} | raw write {:.0} rows/s \
         (before {:.0}, after {:.0}){} | write ratio {:.2} (target >= 0.5) | GET /orders/{{id}} \
         at {:.0}/s: p50 {:.2} p99 {:.2} p99.9 {:.2} ms, {} errors{} | raw get at {:.0}/s: p50 \
         {:.2} p99 {:.2} p99.9 {:.2} ms, {} errors{} | p99 ratio {:.2}",
        r.backend,
        r.events,
        r.projector_events_per_sec,
        r.projector_rows_per_sec,
        cpu(r.projector_cpu_us_per_event, "event"),
        r.raw_rows_per_sec,
        r.raw_rows_per_sec_before,
        r.raw_rows_per_sec_after,
        cpu(r.raw_cpu_us_per_row, "row"),
        r.write_ratio,
        r.query.achieved_rate,
        r.query.p50_ms,
        r.query.p99_ms,
        r.query.p999_ms,
        r.query.errors,
        cpu(r.query.cpu_us_per_request, "request"),
        r.raw_get.achieved_rate,
        r.raw_get.p50_ms,
        r.raw_get.p99_ms,
        r.raw_get.p999_ms,
        r.raw_get.errors,
        cpu(r.raw_get.cpu_us_per_request, "request"),
        r.query_p99_over_raw_p99,
    );
}

/// The store under test, with what its baselines need.
enum Store {
    Embedded(Arc<EmbeddedStore>),
    Cql {
        store: Arc<CqlStore>,
        /// A session of the driver itself, for the raw baselines.
        raw: Arc<Session>,
    },
}

impl Store {
    fn port(&self) -> Arc<dyn ReadStore> {
        match self {
            Store::Embedded(s) => Arc::clone(s) as Arc<dyn ReadStore>,
            Store::Cql { store, .. } => Arc::clone(store) as Arc<dyn ReadStore>,
        }
    }
}

/// The mode's defaults.
impl Plan {
    pub fn new(quick: bool) -> Self {
        Self {
            events: if quick { 2_000 } else { 200_000 },
            rate: if quick { 200.0 } else { 5_000.0 },
            seconds: if quick { 2.0 } else { 10.0 },
            quick,
        }
    }
}

/// Every read-side figure on one backend (fresh topics, keyspace, dirs).
pub async fn one_backend(
    base: &Settings,
    backend: Backend,
    plan: Plan,
) -> Result<ProjectionsBenchReport> {
    let dir = std::env::temp_dir().join(format!(
        "quickstore-bench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let short = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let mut settings = base.clone();
    settings.data_dir = dir.clone();
    settings.topic_prefix = format!("bench-{short}.");
    match backend {
        Backend::Embedded => {
            settings.event_log = EventLogBackend::Embedded;
            settings.read_store = ReadStoreBackend::Embedded;
            settings.schema_registry_url = None;
        }
        Backend::Cql => {
            settings.event_log = EventLogBackend::Kafka;
            settings.kafka_bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP")?;
            settings.read_store = ReadStoreBackend::Cql;
            settings.cql_keyspace = format!("qs_bench_{short}");
        }
    }
    let store = match backend {
        Backend::Embedded => Store::Embedded(Arc::new(EmbeddedStore::open(dir.join("readstore"))?)),
        Backend::Cql => {
            let config = settings.cql()?;
            let store = CqlStore::connect(config.clone()).await.with_context(|| {
                format!(
                    "connecting to the CQL node at {} (QS_CQL_CONTACT_POINTS)",
                    settings.cql_contact_points
                )
            })?;
            Store::Cql {
                store: Arc::new(store),
                raw: Arc::new(raw_session(&config).await?),
            }
        }
    };
    let result = measure(&settings, backend, &store, plan).await;
    // Tear down whatever happened: the keyspace (topics stay, like every
    // benchmark's: the event-log port has no delete), the temp dir.
    if let Store::Cql { store, .. } = &store {
        if let Err(e) = store.drop_keyspace().await {
            eprintln!("bench projections: dropping {}: {e}", store.keyspace());
        }
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    settings: &Settings,
    backend: Backend,
    store: &Store,
    plan: Plan,
) -> Result<ProjectionsBenchReport> {
    let system = System::connect_for_bench(settings.clone()).await?;
    let projection = OrdersProjection;
    let inputs = projection.topics(&system.topics);
    let specs: Vec<_> = system
        .contract_topics()
        .into_iter()
        .filter(|s| inputs.contains(&s.name))
        .collect();
    ensure!(
        specs.len() == inputs.len(),
        "the orders projection reads topics outside the contract: {inputs:?}"
    );
    system.log.create_topics(&specs).await?;
    system.codec.register_contract(&system.topics).await?;
    let port = store.port();
    port.ensure_tables(projection.tables(), 1).await?;
    projectors::generations::ensure(port.as_ref()).await?;
    eprintln!(
        "bench projections ({}): {} events, {} partitions, topic prefix {}{}",
        backend.name(),
        plan.events,
        settings.partitions,
        system.topics.prefix,
        match store {
            Store::Cql { store, .. } => format!(
                ", keyspace {} at {}, registry {}",
                store.keyspace(),
                settings.cql_contact_points,
                settings
                    .schema_registry_url
                    .as_deref()
                    .unwrap_or("in memory")
            ),
            Store::Embedded(_) => String::new(),
        }
    );

    // 1. The input.
    let orders = Orders::new(plan.events);
    let appended = append_events(&system, &orders).await?;
    eprintln!("bench projections ({}): raw consume", backend.name());
    let raw_consume = super::consume::raw_consume(
        settings,
        system.log.as_ref(),
        backend == Backend::Cql,
        &system.topics.events(Context::Orders),
        plan.events as u64,
        ProjectorConfig::new(&system.topics, &projection, 1).max_batch,
    )
    .await?;
    let rows_per_event = projection.project(&orders.projected(0))?.len();
    let rows = plan.events * rows_per_event;
    let max_batch = ProjectorConfig::new(&system.topics, &projection, 1).max_batch;

    // 2 and 3: raw, projector, raw again.
    eprintln!("bench projections ({}): raw writes", backend.name());
    // A warm-up first. Each run writes its own table generation (the
    // projector's is 1), so no run finds another's rows.
    raw_writes(store, &orders, rows.min(20_000), max_batch, 2).await?;
    let before = raw_writes(store, &orders, rows, max_batch, 3).await?;
    eprintln!("bench projections ({}): projector", backend.name());
    let limit = Duration::from_secs(if plan.quick { 120 } else { 1_800 });
    let projected = run_projector(&system, port.clone(), limit).await?;
    eprintln!("bench projections ({}): raw writes again", backend.name());
    let after = raw_writes(store, &orders, rows, max_batch, 4).await?;
    let best = if before.rows_per_sec() >= after.rows_per_sec() {
        &before
    } else {
        &after
    };
    let stats = &projected.stats;
    ensure!(
        stats.mutations == rows as u64,
        "the projector wrote {} rows, expected {rows}",
        stats.mutations
    );

    // 4. Query by id and the raw read, at the same rate, in alternating
    //    slices: whatever the store does in the background after the
    //    writes (memtable flushes, compactions) lands on both alike.
    eprintln!(
        "bench projections ({}): GET /orders/{{id}} and the raw read at {}/s, {} s each",
        backend.name(),
        plan.rate,
        plan.seconds
    );
    let server = QueryServer::start(&system.settings, port.clone()).await?;
    let ids = Arc::new(orders.ids.clone());
    let query_op = server.get_order_op(&ids);
    let raw_op = raw_get_op(store, &ids).await?;
    let customer_op = server.customer_orders_op();
    let slices: u32 = if plan.quick { 2 } else { 5 };
    let slice = Duration::from_secs_f64(plan.seconds / f64::from(slices));
    // Warm-ups (connections, caches, the generation cache), not counted.
    let warm = Duration::from_secs_f64((plan.seconds / 4.0).min(1.0));
    open_loop(plan.rate, warm, 0, query_op.clone()).await?;
    open_loop(plan.rate, warm, 1, raw_op.clone()).await?;
    let (mut query, mut raw_get) = (Samples::default(), Samples::default());
    for k in 0..u64::from(slices) {
        query.extend(open_loop(plan.rate, slice, 2 + 2 * k, query_op.clone()).await?);
        raw_get.extend(open_loop(plan.rate, slice, 3 + 2 * k, raw_op.clone()).await?);
    }
    // Orders by customer at the same rate, after the by-id slices.
    let by_customer = open_loop(
        plan.rate,
        Duration::from_secs_f64(plan.seconds),
        100,
        customer_op,
    )
    .await?
    .report();
    server.stop().await?;
    let (query, raw_get) = (query.report(), raw_get.report());

    let projector_rows_per_sec = projected.timed_rows as f64 / projected.elapsed.as_secs_f64();
    Ok(ProjectionsBenchReport {
        backend: backend.name().into(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        partitions: settings.partitions,
        events: plan.events as u64,
        append_events_per_sec: plan.events as f64 / appended.as_secs_f64(),
        max_batch,
        events_per_batch: stats.events as f64 / stats.batches.max(1) as f64,
        rows_per_event: stats.mutations as f64 / stats.events.max(1) as f64,
        projector_reached_end: projected.reached_end,
        projector_dead_letters: stats.dead_letters,
        projector_timed_events: projected.timed_events,
        projector_elapsed_s: projected.elapsed.as_secs_f64(),
        projector_events_per_sec: projected.timed_events as f64 / projected.elapsed.as_secs_f64(),
        projector_rows_per_sec,
        projector_cpu_us_per_event: projected
            .cpu
            .map(|c| c.as_secs_f64() * 1e6 / projected.timed_events.max(1) as f64),
        raw_rows: rows as u64,
        raw_write_concurrency: match store {
            Store::Embedded(_) => 1,
            Store::Cql { .. } => WRITE_CONCURRENCY,
        },
        raw_rows_per_sec_before: before.rows_per_sec(),
        raw_rows_per_sec_after: after.rows_per_sec(),
        raw_rows_per_sec: best.rows_per_sec(),
        raw_cpu_us_per_row: best
            .cpu
            .map(|c| c.as_secs_f64() * 1e6 / best.rows.max(1) as f64),
        write_ratio: projector_rows_per_sec / best.rows_per_sec(),
        query_rate: plan.rate,
        query_seconds: plan.seconds,
        query_p99_over_raw_p99: if raw_get.p99_ms > 0.0 {
            query.p99_ms / raw_get.p99_ms
        } else {
            0.0
        },
        consume_ratio: projected.timed_events as f64
            / projected.elapsed.as_secs_f64()
            / raw_consume.records_per_sec.max(1e-9),
        raw_consume,
        by_customer,
        query,
        raw_get,
    })
}

// ---------------------------------------------------------------------------
// The input: synthetic but valid OrderPlaced events.

/// 2026-01-01T00:00:00Z: the events' occurrence times count up from here.
const BASE_MS: i64 = 1_767_225_600_000;
const CUSTOMERS: usize = 5_000;
const SKUS: [(&str, i64); 7] = [
    ("MUG-1", 1299),
    ("TEA-GREEN-100G", 849),
    ("SPOON-SET-4", 1999),
    ("KETTLE-1L", 3499),
    ("COASTER-6", 699),
    ("BEANS-ESPRESSO-1KG", 2450),
    ("FILTER-PAPER-100", 399),
];
/// Lines and address depend on the order's index modulo this (3 line
/// counts × 7 SKUs), so the raw baseline can reuse their JSON.
const VARIANTS: usize = 21;

/// The orders of one run: ids, and everything else derived from the index.
#[derive(Debug, Clone)]
struct Orders {
    ids: Vec<String>,
}

impl Orders {
    fn new(count: usize) -> Self {
        // UUIDv7, like the command API's order ids.
        Self {
            ids: (0..count)
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect(),
        }
    }

    fn customer(i: usize) -> String {
        format!("bench-customer-{:05}", i % CUSTOMERS)
    }

    fn lines(i: usize) -> Vec<OrderLine> {
        let v = i % VARIANTS;
        (0..1 + v % 3)
            .map(|k| {
                let (sku, price) = SKUS[(v + k) % SKUS.len()];
                OrderLine {
                    line_no: i32::try_from(k + 1).unwrap_or(1),
                    sku: sku.into(),
                    quantity: i32::try_from(1 + (v + k) % 4).unwrap_or(1),
                    unit_price_minor: price,
                    currency: "EUR".into(),
                }
            })
            .collect()
    }

    fn address(i: usize) -> PostalAddress {
        PostalAddress {
            recipient: format!("Bench Customer {}", i % VARIANTS),
            line1: format!("{} Load Street", 1 + i % VARIANTS),
            line2: i.is_multiple_of(2).then(|| "Flat 2".to_owned()),
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "DE".into(),
        }
    }

    fn totals(lines: &[OrderLine]) -> OrderTotals {
        let subtotal: i64 = lines
            .iter()
            .map(|l| l.unit_price_minor * i64::from(l.quantity))
            .sum();
        OrderTotals {
            subtotal_minor: subtotal,
            shipping_minor: 499,
            tax_minor: subtotal * 19 / 119,
            total_minor: subtotal + 499,
            currency: "EUR".into(),
        }
    }

    /// Order `i`'s `OrderPlaced` with its envelope (version 1; the hash is
    /// set when it is sealed).
    fn event(&self, i: usize) -> (EventEnvelope, AnyEvent) {
        order_placed(&self.ids[i], i)
    }

    /// Order `i`'s event as the projector hands it to the projection.
    fn projected(&self, i: usize) -> Projected {
        projected(&self.ids[i], i)
    }
}

/// The `OrderPlaced` of order `i` with id `id`, and its envelope (version
/// 1; the hash is set when it is sealed). `bench memory` derives ids from
/// the index instead of holding them, hence a function of both.
pub(super) fn order_placed(id: &str, i: usize) -> (EventEnvelope, AnyEvent) {
    let customer = Orders::customer(i);
    let command = uuid::Uuid::from_u128((0x5eed_u128 << 112) | i as u128).to_string();
    let lines = Orders::lines(i);
    let totals = Orders::totals(&lines);
    let envelope = EventEnvelope {
        event_id: uuid::Uuid::from_u128((0xe7e0_u128 << 112) | i as u128).to_string(),
        aggregate_type: "Order".into(),
        aggregate_id: id.to_owned(),
        version: 1,
        occurred_at: BASE_MS + i as i64,
        command_id: command.clone(),
        correlation_id: command.clone(),
        causation_id: command,
        actor: format!("customer:{customer}"),
        // The first event of an aggregate links to nothing.
        prev_hash: Vec::new(),
        hash: Vec::new(),
    };
    let event = AnyEvent::Orders(OrdersEvent::OrderPlaced(OrderPlaced {
        customer_id: customer,
        lines,
        shipping_address: Orders::address(i),
        totals,
        payment_token: Some("tok_sim_4242".into()),
    }));
    (envelope, event)
}

/// Order `i`'s `OrderPlaced` as the projector hands it to the projection.
pub(super) fn projected(id: &str, i: usize) -> Projected {
    let (envelope, event) = order_placed(id, i);
    Projected {
        topic: String::new(),
        partition: 0,
        offset: i as i64,
        input: Input::Event { envelope, event },
    }
}

/// Appends every order's sealed, encoded `OrderPlaced` to the orders
/// events topic (the producer batches them: linger on Kafka, group
/// commits on the embedded log). Returns how long it took.
async fn append_events(system: &System, orders: &Orders) -> Result<Duration> {
    let producer = system.log.producer("bench-projections-fill").await?;
    let topic = system.topics.events(Context::Orders);
    let (producer, topic, codec) = (&producer, &topic, &system.codec);
    let started = Instant::now();
    let mut sends = futures::stream::iter(0..orders.ids.len())
        .map(|i| async move {
            let (mut envelope, event) = orders.event(i);
            let bytes = codec.encode_sealed_event(topic, &mut envelope, &event)?;
            producer
                .send(OutgoingRecord::new(
                    topic.clone(),
                    envelope.aggregate_id,
                    bytes,
                ))
                .await?;
            Ok::<_, anyhow::Error>(())
        })
        .buffer_unordered(2_000);
    while let Some(sent) = sends.next().await {
        sent?;
    }
    Ok(started.elapsed())
}

// ---------------------------------------------------------------------------
// The projector.

#[derive(Debug)]
pub(super) struct ProjectorRun {
    pub(super) stats: ProjectorStats,
    pub(super) reached_end: bool,
    timed_events: u64,
    timed_rows: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
}

/// Runs the orders projector (generation 1, a fresh group) from offset 0
/// until its positions reach every input partition's end.
pub(super) async fn run_projector(
    system: &System,
    store: Arc<dyn ReadStore>,
    limit: Duration,
) -> Result<ProjectorRun> {
    let projection: Arc<dyn Projection> = Arc::new(OrdersProjection);
    let config = ProjectorConfig::new(&system.topics, projection.as_ref(), 1);
    let mut ends = Vec::new();
    for topic in projection.topics(&system.topics) {
        for partition in 0..system.log.partition_count(&topic).await? {
            let tp = TopicPartition::new(topic.clone(), partition);
            let end = system.log.end_offset(&tp).await?;
            ends.push(((topic.clone(), partition), end));
        }
    }
    let reached = |stats: &ProjectorStats| {
        ends.iter()
            .all(|(tp, end)| stats.positions.get(tp).copied().unwrap_or(0) >= *end)
    };
    let (progress_tx, mut progress) = watch::channel(ProjectorStats::default());
    let (stop, stopped) = watch::channel(false);
    let projector = Projector::new(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        store,
        projection,
        system.topics.clone(),
        config,
    )
    .with_progress(progress_tx);
    let spawned = (Instant::now(), process_cpu());
    let handle = tokio::spawn(projector.run(stopped));
    let deadline = Instant::now() + limit;
    // (when, CPU time, events, rows) at the first batch seen.
    let mut first: Option<(Instant, Option<Duration>, u64, u64)> = None;
    let (finished, cpu_end, last) = loop {
        let alive = tokio::select! {
            changed = progress.changed() => changed.is_ok(),
            _ = tokio::time::sleep(Duration::from_millis(250)) => true,
        };
        let stats = progress.borrow_and_update().clone();
        let now = Instant::now();
        if first.is_none() && stats.events > 0 {
            first = Some((now, process_cpu(), stats.events, stats.mutations));
        }
        if reached(&stats) {
            break (now, process_cpu(), stats);
        }
        if !alive || handle.is_finished() || now > deadline {
            let _ = stop.send(true);
            let ended = tokio::time::timeout(Duration::from_secs(10), handle).await;
            bail!(
                "the projector did not reach the end of its input ({stats:?}); it ended with \
                 {ended:?}"
            );
        }
    };
    let _ = stop.send(true);
    let stats = handle.await??;
    // The first batch includes joining the group and the first fetch: time
    // from it when later batches follow, from the start otherwise.
    let (timed_events, timed_rows, elapsed, cpu) = match first {
        Some((t0, cpu0, e0, m0)) if last.events > e0 => (
            last.events - e0,
            last.mutations - m0,
            finished.duration_since(t0),
            cpu_delta(cpu0, cpu_end),
        ),
        _ => (
            last.events,
            last.mutations,
            finished.duration_since(spawned.0),
            cpu_delta(spawned.1, cpu_end),
        ),
    };
    Ok(ProjectorRun {
        reached_end: reached(&stats) || reached(&last),
        stats,
        timed_events,
        timed_rows,
        elapsed,
        cpu,
    })
}
// ---------------------------------------------------------------------------
// The raw write baseline.

/// A table shaped like `orders_by_id` for the raw CQL inserts.
const RAW_ORDERS: TableDef = TableDef {
    name: "bench_raw_orders_by_id",
    ..ORDERS_BY_ID
};

#[derive(Debug)]
struct RawWrites {
    rows: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
}

impl RawWrites {
    fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Writes `rows` rows the raw way into table generation `generation` (not
/// 1, the projector's).
async fn raw_writes(
    store: &Store,
    orders: &Orders,
    rows: usize,
    batch: usize,
    generation: u32,
) -> Result<RawWrites> {
    match store {
        Store::Embedded(store) => embedded_raw_writes(store, orders, rows, batch, generation).await,
        Store::Cql { store, raw } => cql_raw_writes(store, raw, orders, rows, generation).await,
    }
}

/// The projection's own mutations, written straight through
/// `EmbeddedStore::write`, one call per projector batch (`batch` events'
/// worth). Only the writes are timed: making the mutations is the
/// projector's work, not the baseline's.
async fn embedded_raw_writes(
    store: &EmbeddedStore,
    orders: &Orders,
    rows: usize,
    batch: usize,
    generation: u32,
) -> Result<RawWrites> {
    let projection = OrdersProjection;
    store.ensure_tables(projection.tables(), generation).await?;
    let (mut written, mut elapsed, mut cpu) = (0usize, Duration::ZERO, Some(Duration::ZERO));
    let mut i = 0;
    while written < rows {
        let mut mutations: Vec<Mutation> = Vec::with_capacity(batch * 3);
        for _ in 0..batch {
            mutations.extend(projection.project(&orders.projected(i % orders.ids.len()))?);
            i += 1;
        }
        mutations.truncate(rows - written);
        for m in &mut mutations {
            m.generation = generation;
        }
        let (t, c) = (Instant::now(), process_cpu());
        store.write(&mutations).await?;
        elapsed += t.elapsed();
        cpu = cpu.and_then(|sum| Some(sum + cpu_delta(c, process_cpu())?));
        written += mutations.len();
    }
    Ok(RawWrites {
        rows: written as u64,
        elapsed,
        cpu,
    })
}

/// Per `orders_by_id` row variant: (lines JSON, address JSON, total).
fn raw_templates() -> Result<Vec<(String, String, i64)>> {
    (0..VARIANTS)
        .map(|v| {
            let lines = Orders::lines(v);
            Ok((
                serde_json::to_string(&lines)?,
                serde_json::to_string(&Orders::address(v))?,
                Orders::totals(&lines).total_minor,
            ))
        })
        .collect()
}

/// One prepared `INSERT … USING TIMESTAMP ?` through the driver, `rows`
/// rows, `WRITE_CONCURRENCY` in flight — what `CqlStore::write` does per
/// batch, without the port: no per-call CQL text, statement cache,
/// `Value` conversion, batch boundaries, log reads or decoding.
async fn cql_raw_writes(
    store: &CqlStore,
    session: &Session,
    orders: &Orders,
    rows: usize,
    generation: u32,
) -> Result<RawWrites> {
    let keyspace = store.keyspace();
    store
        .execute_ddl(&RAW_ORDERS.create_cql(keyspace, generation))
        .await?;
    let columns = [
        "order_id",
        "customer_id",
        "status",
        "placed_at",
        "status_at",
        "total_minor",
        "currency",
        "lines_json",
        "shipping_address_json",
        "order_version",
    ];
    let insert = prepare(
        session,
        format!(
            "INSERT INTO {keyspace}.{} ({}) VALUES ({}) USING TIMESTAMP ?",
            RAW_ORDERS.physical_name(generation),
            columns.join(", "),
            vec!["?"; columns.len()].join(", ")
        ),
    )
    .await?;
    let templates = raw_templates()?;
    let (insert, templates) = (&insert, &templates);
    let n = orders.ids.len();
    let (started, cpu0) = (Instant::now(), process_cpu());
    let mut inserts = futures::stream::iter(0..rows)
        .map(|j| {
            let i = j % n;
            // As many distinct keys as the projector's rows.
            let id = format!("{}-{}", orders.ids[i], j / n);
            let (lines, address, total) = &templates[i % VARIANTS];
            let at = CqlTimestamp(BASE_MS + i as i64);
            let values = (
                id,
                Orders::customer(i),
                "PLACED",
                at,
                at,
                *total,
                "EUR",
                lines.as_str(),
                address.as_str(),
                1i64,
                1i64,
            );
            async move { session.execute_unpaged(insert, values).await }
        })
        .buffer_unordered(WRITE_CONCURRENCY);
    while let Some(done) = inserts.next().await {
        done.context("raw insert")?;
    }
    Ok(RawWrites {
        rows: rows as u64,
        elapsed: started.elapsed(),
        cpu: cpu_delta(cpu0, process_cpu()),
    })
}

async fn raw_session(config: &CqlConfig) -> Result<Session> {
    // The store's own settings: the same consistency and request timeout.
    platform::readstore::cql::session_builder(config)
        .build()
        .await
        .with_context(|| format!("connecting to {:?}", config.contact_points))
}

async fn prepare(session: &Session, cql: String) -> Result<PreparedStatement> {
    let mut statement = Statement::new(cql.clone());
    // Like CqlStore's statements (every write carries its timestamp).
    statement.set_is_idempotent(true);
    session
        .prepare(statement)
        .await
        .with_context(|| format!("preparing {cql}"))
}

// ---------------------------------------------------------------------------
// Reads at a fixed rate.

/// The query API over the store, with an admin token minted in process.
pub(super) struct QueryServer {
    url: String,
    token: Arc<str>,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl QueryServer {
    pub(super) async fn start(settings: &Settings, store: Arc<dyn ReadStore>) -> Result<Self> {
        let keys = Arc::new(SigningKeys::generate()?);
        let issuer = TokenIssuer::new(
            keys,
            Arc::new(MemoryCredentialStore::new()),
            settings.auth_issuer.clone(),
            settings.auth_audience.clone(),
        )
        // Longer than any run, so no request meets an expired token.
        .with_ttls(Duration::from_secs(6 * 3600), Duration::from_secs(6 * 3600));
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let token = issuer.sign_access("bench-admin", &[Role::Admin], i64::try_from(now_s)?)?;
        let state = QueryState::new(
            store,
            VerifierSource::fixed(issuer.verifier()?),
            QueryConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(query_api::serve(
            listener,
            query_api::router(state),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1_024)
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            url,
            token: token.expose().into(),
            http,
            stop,
            server,
        })
    }

    /// `GET /orders/{id}` of a random projected order; 200 or an error.
    pub(super) fn get_order_op(&self, ids: &Arc<Vec<String>>) -> Op {
        let (http, url, token, ids) = (
            self.http.clone(),
            self.url.clone(),
            Arc::clone(&self.token),
            Arc::clone(ids),
        );
        Arc::new(move |i| {
            let request = http
                .get(format!("{url}/orders/{}", ids[pick(i, ids.len())]))
                .bearer_auth(&*token);
            async move {
                let response = request.send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                ensure!(
                    status == reqwest::StatusCode::OK,
                    "GET /orders/{{id}}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            }
            .boxed()
        })
    }

    /// `GET /customers/{id}/orders` of a random bench customer (first page).
    fn customer_orders_op(&self) -> Op {
        let (http, url, token) = (self.http.clone(), self.url.clone(), Arc::clone(&self.token));
        Arc::new(move |i| {
            let customer = Orders::customer(pick(i, CUSTOMERS));
            let request = http
                .get(format!("{url}/customers/{customer}/orders"))
                .bearer_auth(&*token);
            async move {
                let response = request.send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                ensure!(
                    status == reqwest::StatusCode::OK,
                    "GET /customers/{{id}}/orders: {status} {}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            }
            .boxed()
        })
    }

    pub(super) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .context("the query API did not stop")???;
        Ok(())
    }
}

/// A raw read of a random projected order's `orders_by_id` row, straight
/// from the store: the prepared select through the driver, or
/// `EmbeddedStore::get`. A missing row is an error.
async fn raw_get_op(store: &Store, ids: &Arc<Vec<String>>) -> Result<Op> {
    let ids = Arc::clone(ids);
    Ok(match store {
        Store::Embedded(store) => {
            let store = Arc::clone(store);
            Arc::new(move |i| {
                let (store, ids) = (Arc::clone(&store), Arc::clone(&ids));
                async move {
                    let key = Row::from([(
                        "order_id".to_owned(),
                        Value::Text(ids[pick(i, ids.len())].clone()),
                    )]);
                    let row = store.get(&ORDERS_BY_ID, 1, &key).await?;
                    ensure!(row.is_some(), "raw get: no row");
                    Ok(())
                }
                .boxed()
            })
        }
        Store::Cql { store, raw } => {
            let columns: Vec<&str> = ORDERS_BY_ID.all_columns().map(|c| c.name).collect();
            let select = Arc::new(
                prepare(
                    raw,
                    format!(
                        "SELECT {} FROM {}.{} WHERE order_id = ?",
                        columns.join(", "),
                        store.keyspace(),
                        ORDERS_BY_ID.physical_name(1)
                    ),
                )
                .await?,
            );
            let raw = Arc::clone(raw);
            Arc::new(move |i| {
                let (raw, select, ids) = (Arc::clone(&raw), Arc::clone(&select), Arc::clone(&ids));
                async move {
                    let id = ids[pick(i, ids.len())].as_str();
                    let result = raw.execute_unpaged(&select, (id,)).await?;
                    let rows = result.into_rows_result()?;
                    // Decode the row like any client would.
                    let decoded = rows
                        .rows::<scylla::value::Row>()?
                        .collect::<Result<Vec<_>, _>>()?;
                    ensure!(decoded.len() == 1, "raw get: {} rows", decoded.len());
                    Ok(())
                }
                .boxed()
            })
        }
    })
}
