//! `quickstore bench memory` for the roles other than the command
//! processor (ADR 0023): the projectors, the saga worker, the command
//! API's price book and the query API, each in a child process of its own
//! at N aggregates of the kind that role holds or reads.
//!
//! Every child fills its input first (streamed in chunks, so the filling
//! costs no memory per aggregate), then starts a sampler thread reading
//! its own `VmRSS` every 100 ms while the role works through the input,
//! and reports that peak. What each role is given:
//!
//! - **projectors**: N orders' `OrderPlaced` in `orders.events`; the orders
//!   projector (the projectors role's component) runs from offset 0 until
//!   its positions reach the ends, writing the read store (the CQL node on
//!   `kafka`, a fresh keyspace dropped after; the embedded store otherwise).
//! - **sagas**: N orders that start and end: each order's `OrderPlaced`,
//!   then a refusal of each of its stock reservations on the saga's reply
//!   topic, which rejects the saga (terminal, so forgotten). The orders
//!   arrive in chunks (the replies of a chunk after the worker has started
//!   its sagas), so at most one chunk of sagas is live at once — live
//!   sagas are held in memory by design.
//! - **command-api**: N products' `ProductCreated` in `catalog.events`;
//!   the command API's [`PriceBook`] loads them all (it holds every price:
//!   expected linear).
//! - **query-api**: N orders' rows in the read store (written through the
//!   store port, before sampling), then a fixed number of
//!   `GET /orders/{id}` over random ids through the query API's router.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use command_api::pricebook::PriceBook;
use futures::StreamExt as _;
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};
use platform::eventlog::kafka::KafkaLog;
use platform::eventlog::{EventLog, OutgoingRecord};
use platform::readstore::{CqlStore, EmbeddedStore, Mutation, ReadStore};
use projectors::projection::Projection as _;
use projectors::projections::orders::OrdersProjection;
use sagas::fulfillment::outgoing::Outgoing;
use sagas::fulfillment::{FulfillmentWorker, WorkerConfig, WorkerStats};
use schemas::catalog::{CatalogEvent, ProductCreated};
use schemas::orders::OrdersEvent;
use schemas::{
    AnyEvent, AvroCodec, CommandOutcome, CommandStatus, Context, EventEnvelope, TopicNames,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::memory::status_kib;
use super::projections::{order_placed, projected, run_projector, QueryServer};
use crate::cli::BenchMemoryChildArgs;
use crate::system::System;

/// Every role `bench memory` measures, in report order.
pub const ROLES: [&str; 5] = [
    "command-processor",
    "projectors",
    "sagas",
    "command-api",
    "query-api",
];

/// Records produced per chunk while filling.
const CHUNK: u64 = 5_000;
/// Orders per saga chunk: at most this many sagas are live at once.
const SAGA_CHUNK: u64 = 2_000;
/// `GET /orders/{id}` requests the query-API child makes, whatever N.
const QUERY_REQUESTS: usize = 1_000;
/// 2026-01-01T00:00:00Z, the synthetic events' time base.
const BASE_MS: i64 = 1_767_225_600_000;

/// What one role is given per aggregate, what it is expected to keep, and
/// why (one line each, for the report).
pub fn describe(role: &str) -> (&'static str, &'static str, &'static str) {
    match role {
        "command-processor" => (
            "counter aggregates, one command each",
            "flat",
            "aggregate state lives in the local aggregate store; memory holds a bounded cache \
             (QS_PROCESSOR_CACHE_AGGREGATES)",
        ),
        "projectors" => (
            "orders, one OrderPlaced each",
            "flat",
            "rows live in the read store; memory holds one batch and the input positions",
        ),
        "sagas" => (
            "orders placed then rejected (every reservation refused), in chunks of 2,000",
            "flat",
            "ended sagas are forgotten; live sagas are held in memory by design, bounded by \
             arrival rate × saga deadline (here at most one chunk)",
        ),
        "command-api" => (
            "catalog products, one ProductCreated each",
            "linear",
            "the price book keeps every product's price in memory (by design: prices are taken \
             at the edge without a read)",
        ),
        "query-api" => (
            "orders in the read store; 1,000 GET /orders/{id} over random ids",
            "flat",
            "every read goes to the store; nothing per order is kept",
        ),
        _ => ("", "", ""),
    }
}

/// One role at one N.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolePoint {
    pub aggregates: u64,
    /// The highest `VmRSS` sampled (every 100 ms) while the role worked.
    pub peak_rss_kib: u64,
    /// `VmRSS` once the input was in place, before the role started.
    pub rss_before_kib: u64,
    /// `VmHWM`: the child's peak over the whole run, filling included.
    pub peak_hwm_kib: u64,
    /// How long the role took to work through its input.
    pub seconds: f64,
}

/// One role over every N.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleMemory {
    pub role: String,
    /// What N counts for this role.
    pub aggregates_are: String,
    pub points: Vec<RolePoint>,
    /// peak RSS(largest N) / peak RSS(smallest N).
    pub rss_ratio: f64,
    /// largest N / smallest N.
    pub aggregates_ratio: f64,
    /// (peak RSS(largest N) − peak RSS(smallest N)) / (largest N −
    /// smallest N), in bytes; noise-dominated when the Ns are small.
    pub bytes_per_aggregate: f64,
    /// `flat` (rss_ratio < 2) or `linear` (RSS at least doubled).
    pub verdict: String,
    /// What the design says the role should do: `flat` or `linear`.
    pub expected: String,
    pub note: String,
}

impl RoleMemory {
    pub fn new(role: &str, points: Vec<RolePoint>) -> Self {
        let (are, expected, note) = describe(role);
        let (rss_ratio, aggregates_ratio, bytes_per_aggregate) =
            match (points.first(), points.last()) {
                (Some(first), Some(last)) if last.aggregates > first.aggregates => (
                    last.peak_rss_kib as f64 / first.peak_rss_kib.max(1) as f64,
                    last.aggregates as f64 / first.aggregates as f64,
                    (last.peak_rss_kib as f64 - first.peak_rss_kib as f64) * 1024.0
                        / (last.aggregates - first.aggregates) as f64,
                ),
                _ => (1.0, 1.0, 0.0),
            };
        Self {
            role: role.into(),
            aggregates_are: are.into(),
            points,
            rss_ratio,
            aggregates_ratio,
            bytes_per_aggregate,
            verdict: if rss_ratio >= 2.0 { "linear" } else { "flat" }.into(),
            expected: expected.into(),
            note: note.into(),
        }
    }
}

/// Samples this process's `VmRSS` on a thread of its own (not a task: a
/// busy runtime must not delay the samples) and keeps the highest.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(status_kib("VmRSS")));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(status_kib("VmRSS"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.fetch_max(status_kib("VmRSS"), Ordering::Relaxed);
        self.peak.load(Ordering::Relaxed)
    }
}

/// The id of synthetic order `i`: derived, never stored, so holding the
/// ids costs the child nothing per order.
fn order_id(i: u64) -> String {
    uuid::Uuid::from_u128((0x0bde_u128 << 112) | u128::from(i)).to_string()
}

/// The log, registry and read store of one child: fresh topics (and a
/// fresh keyspace on CQL, dropped by [`Installation::tear_down`]).
struct Installation {
    system: System,
    store: Option<Arc<dyn ReadStore>>,
    cql: Option<Arc<CqlStore>>,
}

impl Installation {
    async fn open(base: &Settings, args: &BenchMemoryChildArgs, read_store: bool) -> Result<Self> {
        let short = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let mut settings = base.clone();
        settings.data_dir = args.dir.clone();
        settings.topic_prefix = format!("bench-mem-{short}.");
        settings.partitions = args.partitions;
        let log: Arc<dyn EventLog> = match args.backend.as_str() {
            "kafka" => {
                settings.event_log = EventLogBackend::Kafka;
                settings.kafka_bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP")
                    .context("bench memory on kafka needs QS_KAFKA_BOOTSTRAP")?;
                settings.read_store = ReadStoreBackend::Cql;
                settings.cql_keyspace = format!("qs_benchmem_{short}");
                if let Ok(points) = std::env::var("QS_CQL_CONTACT_POINTS") {
                    settings.cql_contact_points = points;
                }
                Arc::new(KafkaLog::connect(settings.kafka())?)
            }
            "embedded" => {
                settings.event_log = EventLogBackend::Embedded;
                settings.read_store = ReadStoreBackend::Embedded;
                settings.schema_registry_url = None;
                super::memory::child_embedded_log(&args.dir)?
            }
            other => bail!("--backend {other}: expected kafka or embedded"),
        };
        let registry = super::memory::child_registry(&settings)?;
        let codec = Arc::new(AvroCodec::new(Arc::clone(&registry)));
        let topics = TopicNames::new(settings.topic_prefix.clone());
        let system = System {
            settings: settings.clone(),
            log,
            registry,
            codec,
            topics,
        };
        system.ensure_contract().await?;
        system
            .log
            .create_topics(&crate::write_side::saga_topics(&system))
            .await?;
        let (store, cql) = if !read_store {
            (None, None)
        } else if settings.read_store == ReadStoreBackend::Cql {
            let cql = Arc::new(CqlStore::connect(settings.cql()?).await.with_context(|| {
                format!(
                    "connecting to the CQL node at {} (QS_CQL_CONTACT_POINTS)",
                    settings.cql_contact_points
                )
            })?);
            (Some(Arc::clone(&cql) as Arc<dyn ReadStore>), Some(cql))
        } else {
            let store = EmbeddedStore::open(args.dir.join("readstore"))?;
            (Some(Arc::new(store) as Arc<dyn ReadStore>), None)
        };
        if let Some(store) = &store {
            store.ensure_tables(OrdersProjection.tables(), 1).await?;
            projectors::generations::ensure(store.as_ref()).await?;
        }
        Ok(Self { system, store, cql })
    }

    fn store(&self) -> Result<Arc<dyn ReadStore>> {
        self.store.clone().context("this role has no read store")
    }

    async fn tear_down(self) {
        if let Some(cql) = &self.cql {
            if let Err(e) = cql.drop_keyspace().await {
                eprintln!("bench memory: dropping {}: {e}", cql.keyspace());
            }
        }
    }
}

/// `quickstore bench memory-child --role <not the processor>`.
pub async fn run_child(settings: Settings, args: BenchMemoryChildArgs) -> Result<()> {
    let role = args.role.as_str();
    let needs_store = matches!(role, "projectors" | "query-api");
    let installation = Installation::open(&settings, &args, needs_store).await?;
    let result = match role {
        "projectors" => projectors_point(&installation, args.aggregates).await,
        "sagas" => sagas_point(&installation, args.aggregates).await,
        "command-api" => command_api_point(&installation, args.aggregates).await,
        "query-api" => query_api_point(&installation, args.aggregates).await,
        other => Err(anyhow::anyhow!(
            "--role {other}: expected one of {}",
            ROLES.join(", ")
        )),
    };
    installation.tear_down().await;
    let point = result?;
    write_point(&args.out, &point)
}

fn write_point(out: &Path, point: &RolePoint) -> Result<()> {
    std::fs::write(out, serde_json::to_vec(point)?)
        .with_context(|| format!("writing {}", out.display()))
}

/// Produces `records(i)` for every i in `from..to`, 1,000 in flight.
async fn produce<F>(log: &dyn EventLog, client: &str, from: u64, to: u64, record: F) -> Result<()>
where
    F: Fn(u64) -> Result<OutgoingRecord>,
{
    let producer = log.producer(client).await?;
    let producer = &producer;
    let mut at = from;
    while at < to {
        let end = (at + CHUNK).min(to);
        let records: Vec<OutgoingRecord> = (at..end).map(&record).collect::<Result<_>>()?;
        let mut sends = futures::stream::iter(records)
            .map(|r| async move { producer.send(r).await })
            .buffer_unordered(1_000);
        while let Some(sent) = sends.next().await {
            sent?;
        }
        at = end;
    }
    Ok(())
}

/// Order `i`'s sealed `OrderPlaced` for `orders.events`.
fn placed_record(system: &System, i: u64) -> Result<OutgoingRecord> {
    let topic = system.topics.events(Context::Orders);
    let (mut envelope, event) = order_placed(&order_id(i), usize::try_from(i)?);
    let bytes = system
        .codec
        .encode_sealed_event(&topic, &mut envelope, &event)?;
    Ok(OutgoingRecord::new(topic, envelope.aggregate_id, bytes))
}

async fn projectors_point(installation: &Installation, n: u64) -> Result<RolePoint> {
    let system = &installation.system;
    produce(system.log.as_ref(), "bench-memory-orders", 0, n, |i| {
        placed_record(system, i)
    })
    .await?;
    let rss_before = status_kib("VmRSS");
    let sampler = RssSampler::start();
    let started = Instant::now();
    // A projector that stops (fenced after a session timeout on a loaded
    // machine) is started again from its committed positions, as the
    // `projections run` service does; the sampler runs on across restarts.
    let mut restarts = 0;
    let run = loop {
        match run_projector(system, installation.store()?, Duration::from_secs(3_600)).await {
            Ok(run) => break run,
            Err(e) if restarts < 3 => {
                restarts += 1;
                eprintln!("bench memory: the projector stopped ({e:#}); starting it again");
            }
            Err(e) => return Err(e),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let peak = sampler.finish();
    ensure!(
        run.reached_end && run.stats.dead_letters == 0,
        "the projector did not project every order: {:?}",
        run.stats
    );
    Ok(point(n, peak, rss_before, seconds))
}

fn point(n: u64, peak: u64, rss_before: u64, seconds: f64) -> RolePoint {
    RolePoint {
        aggregates: n,
        peak_rss_kib: peak,
        rss_before_kib: rss_before,
        peak_hwm_kib: status_kib("VmHWM"),
        seconds,
    }
}

/// The refusal of each of order `i`'s stock reservations, as the
/// inventory context's processor would reply to the saga.
fn refusals(system: &System, i: u64) -> Result<Vec<OutgoingRecord>> {
    let id = order_id(i);
    let (_, event) = order_placed(&id, usize::try_from(i)?);
    let AnyEvent::Orders(OrdersEvent::OrderPlaced(placed)) = event else {
        bail!("order {i}: not an OrderPlaced");
    };
    let topic = system.topics.saga_replies(schemas::ORDER_FULFILLMENT);
    placed
        .lines
        .iter()
        .map(|line| {
            let command_id = Outgoing::command_id(&id, &format!("reserve/{}", line.line_no));
            let outcome = CommandOutcome {
                command_id,
                aggregate_type: "StockItem".into(),
                aggregate_id: line.sku.clone(),
                correlation_id: id.clone(),
                status: CommandStatus::Rejected,
                version: 0,
                event_count: 0,
                error_code: Some("out_of_stock".into()),
                error_message: Some("bench: nothing in stock".into()),
                decided_at: BASE_MS + i as i64,
                event_types: Vec::new(),
            };
            let bytes = system
                .codec
                .encode_record(&topic, CommandOutcome::FULL_NAME, &outcome)?;
            Ok(OutgoingRecord::new(topic.clone(), id.clone(), bytes))
        })
        .collect()
}

async fn sagas_point(installation: &Installation, n: u64) -> Result<RolePoint> {
    let system = &installation.system;
    let clock: sagas::fulfillment::Clock = Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    });
    let (progress_tx, mut progress) = watch::channel(WorkerStats::default());
    let (stop, stopped) = watch::channel(false);
    let worker = FulfillmentWorker::new(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        &system.topics,
        WorkerConfig::new(&system.topics, "bench-memory"),
        clock,
    )
    .with_progress(progress_tx);
    let rss_before = status_kib("VmRSS");
    let sampler = RssSampler::start();
    let started = Instant::now();
    let handle = tokio::spawn(worker.run(stopped));
    let deadline = started + Duration::from_secs(3_600);
    let (mut inputs, mut at) = (0u64, 0u64);
    let result: Result<()> = async {
        while at < n {
            let end = (at + SAGA_CHUNK).min(n);
            // The chunk's orders first; their refusals once the worker has
            // started every one of those sagas (a refusal before its saga
            // would be ignored and leave the saga live).
            produce(system.log.as_ref(), "bench-memory-orders", at, end, |i| {
                placed_record(system, i)
            })
            .await?;
            inputs += end - at;
            let target = inputs;
            wait_for(&mut progress, &handle, deadline, |s| s.inputs >= target).await?;
            let replies: Vec<OutgoingRecord> = (at..end)
                .map(|i| refusals(system, i))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect();
            inputs += replies.len() as u64;
            let producer = system.log.producer("bench-memory-replies").await?;
            let producer = &producer;
            let mut sends = futures::stream::iter(replies)
                .map(|r| async move { producer.send(r).await })
                .buffer_unordered(1_000);
            while let Some(sent) = sends.next().await {
                sent?;
            }
            wait_for(&mut progress, &handle, deadline, |s| s.rejected >= end).await?;
            at = end;
        }
        Ok(())
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let peak = sampler.finish();
    let _ = stop.send(true);
    let stats = tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .context("the saga worker did not stop")???;
    result?;
    ensure!(
        stats.rejected >= n,
        "not every saga ended: {stats:?} for {n} orders"
    );
    Ok(point(n, peak, rss_before, seconds))
}

/// Waits until the worker's counters satisfy `done`.
async fn wait_for<T>(
    progress: &mut watch::Receiver<WorkerStats>,
    worker: &tokio::task::JoinHandle<T>,
    deadline: Instant,
    done: impl Fn(&WorkerStats) -> bool,
) -> Result<()> {
    loop {
        let stats = *progress.borrow_and_update();
        if done(&stats) {
            return Ok(());
        }
        if worker.is_finished() || Instant::now() > deadline {
            bail!("the saga worker did not keep up: {stats:?}");
        }
        tokio::select! {
            _ = progress.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Product `i`'s sealed `ProductCreated` for `catalog.events`.
fn product_record(system: &System, i: u64) -> Result<OutgoingRecord> {
    let topic = system.topics.events(Context::Catalog);
    let sku = format!("BENCH-SKU-{i:09}");
    let command = uuid::Uuid::from_u128((0xca7a_u128 << 112) | u128::from(i)).to_string();
    let mut envelope = EventEnvelope {
        event_id: uuid::Uuid::from_u128((0xca7e_u128 << 112) | u128::from(i)).to_string(),
        aggregate_type: "Product".into(),
        aggregate_id: sku.clone(),
        version: 1,
        occurred_at: BASE_MS + i as i64,
        command_id: command.clone(),
        correlation_id: command.clone(),
        causation_id: command,
        actor: "bench".into(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    };
    let event = AnyEvent::Catalog(CatalogEvent::ProductCreated(ProductCreated {
        sku: sku.clone(),
        name: format!("Bench product {i}"),
        description: None,
        category: "bench".into(),
        price_minor: 100 + (i % 10_000) as i64,
        currency: "EUR".into(),
    }));
    let bytes = system
        .codec
        .encode_sealed_event(&topic, &mut envelope, &event)?;
    Ok(OutgoingRecord::new(topic, sku, bytes))
}

async fn command_api_point(installation: &Installation, n: u64) -> Result<RolePoint> {
    let system = &installation.system;
    produce(system.log.as_ref(), "bench-memory-catalog", 0, n, |i| {
        product_record(system, i)
    })
    .await?;
    let rss_before = status_kib("VmRSS");
    let sampler = RssSampler::start();
    let started = Instant::now();
    let book = PriceBook::start(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        &system.topics,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = sampler.finish();
    ensure!(
        book.len() as u64 == n,
        "the price book holds {} products, expected {n}",
        book.len()
    );
    Ok(point(n, peak, rss_before, seconds))
}

async fn query_api_point(installation: &Installation, n: u64) -> Result<RolePoint> {
    let system = &installation.system;
    let store = installation.store()?;
    // The read store as the orders projector leaves it, written through
    // the port in batches (not sampled: the writing is not the role).
    let projection = OrdersProjection;
    let mut at = 0u64;
    while at < n {
        let end = (at + 500).min(n);
        let mut mutations: Vec<Mutation> = Vec::new();
        for i in at..end {
            mutations.extend(projection.project(&projected(&order_id(i), usize::try_from(i)?))?);
        }
        // The generation the projector writes and the query API serves.
        for m in &mut mutations {
            m.generation = projectors::generations::FIRST_GENERATION;
        }
        store.write(&mutations).await?;
        at = end;
    }
    let rss_before = status_kib("VmRSS");
    let sampler = RssSampler::start();
    let started = Instant::now();
    let server = QueryServer::start(&system.settings, Arc::clone(&store)).await?;
    let n_usize = usize::try_from(n)?;
    // The ids to ask for: a fixed number, whatever N.
    let ids: Arc<Vec<String>> = Arc::new(
        (0..QUERY_REQUESTS)
            .map(|k| order_id(super::load::pick(k, n_usize) as u64))
            .collect(),
    );
    let op = server.get_order_op(&ids);
    let mut requests = futures::stream::iter(0..QUERY_REQUESTS)
        .map(|k| op(k))
        .buffer_unordered(16);
    let mut failed = None;
    while let Some(done) = requests.next().await {
        if let (Err(e), None) = (done, &failed) {
            failed = Some(e);
        }
    }
    server.stop().await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = sampler.finish();
    if let Some(e) = failed {
        return Err(e.context("GET /orders/{id}"));
    }
    Ok(point(n, peak, rss_before, seconds))
}
