//! `quickstore bench memory`: each role's resident memory at N distinct
//! aggregates, for N = 10,000 and 1,000,000 (1,000 and 10,000 with
//! `--quick`). The verdict is the ratio RSS(largest N) / RSS(smallest N):
//! flat (≈ 1–2) when the role's state lives outside its memory (the
//! processor's local aggregate store and bounded cache, ADR 0020), ≈ the
//! N-ratio if every aggregate were held in memory. This file measures the
//! command processor; the other four roles are in `memory_roles.rs`
//! (ADR 0023), each in the same kind of child process.
//!
//! Each N runs in a child process of its own (`quickstore bench
//! memory-child`, hidden), so one N's peak cannot hide in another's: the
//! child fills the command topic with one command per aggregate (streamed
//! in chunks, so the filling costs no memory per aggregate), then runs one
//! counter-context processor until every command is committed, sampling
//! its own `VmRSS` (/proc/self/status) while it processes. It reports that
//! peak, `VmHWM` (the whole run's peak, filling included) and the RSS
//! before the processor started (the log client, the runtime).
//!
//! On Kafka the child holds the processor and a Kafka client; on the
//! embedded log it also holds the log itself (its redb page cache is set to
//! 32 MiB here so it does not mask the processor's growth).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use command_api::processor::{system_clock, CommandProcessor, ProcessorConfig, ProcessorStats};
use command_api::testkit::counter::{self, Counter};
use command_api::topology::CommandTopology;
use futures::StreamExt;
use platform::config::Settings;
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::kafka::KafkaLog;
use platform::eventlog::{EventLog, OutgoingRecord};
use schemas::registry::{
    ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};
use schemas::{AvroCodec, TopicNames};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::memory_roles::{RoleMemory, RolePoint, ROLES};
use crate::cli::{BenchMemoryArgs, BenchMemoryChildArgs};

/// What to measure.
#[derive(Debug, Clone)]
pub struct MemorySettings {
    /// `kafka` (needs QS_KAFKA_BOOTSTRAP in the environment) or `embedded`.
    pub backend: String,
    /// The command processor's distinct aggregates per point, smallest
    /// first.
    pub sizes: Vec<u64>,
    /// The same for the other roles (smaller in quick mode: their children
    /// are slower per aggregate in a debug build — a CQL write per order,
    /// a transaction per saga step).
    pub role_sizes: Vec<u64>,
    /// The processor's `QS_PROCESSOR_CACHE_AGGREGATES`.
    pub cache_aggregates: usize,
    /// Commands per transaction.
    pub batch: usize,
    pub partitions: i32,
    /// The `quickstore` binary to run the children with (default: this
    /// executable, which must then be `quickstore`).
    pub quickstore: Option<PathBuf>,
    /// A child that has not finished by then fails the measurement.
    pub child_timeout: Duration,
    /// The roles to measure (default: every one of `memory_roles::ROLES`).
    pub roles: Vec<String>,
}

impl MemorySettings {
    pub fn new(quick: bool) -> Self {
        Self {
            backend: "kafka".into(),
            sizes: if quick {
                vec![1_000, 10_000]
            } else {
                vec![10_000, 1_000_000]
            },
            cache_aggregates: platform::config::DEFAULT_PROCESSOR_CACHE_AGGREGATES,
            batch: 500,
            partitions: 6,
            quickstore: None,
            child_timeout: Duration::from_secs(if quick { 300 } else { 1_200 }),
            role_sizes: if quick {
                vec![1_000, 3_000]
            } else {
                vec![10_000, 1_000_000]
            },
            roles: ROLES.iter().map(|r| (*r).to_owned()).collect(),
        }
    }
}

/// One N.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryPoint {
    pub aggregates: u64,
    /// The highest `VmRSS` sampled (every 200 ms) while the processor ran.
    pub processor_peak_rss_kib: u64,
    /// `VmHWM`: the child's peak over the whole run, filling included.
    pub peak_hwm_kib: u64,
    /// `VmRSS` before the processor started (runtime, log client).
    pub rss_before_processor_kib: u64,
    pub rss_after_kib: u64,
    /// Processor throughput over the run (joining and restoring included).
    pub commands_per_sec: f64,
    pub seconds: f64,
}

/// The report, serialisable so a whole-system report can include it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryFigures {
    pub backend: String,
    pub partitions: i32,
    pub cache_aggregates: usize,
    pub batch: usize,
    /// The command processor's points (empty when it was not measured).
    pub points: Vec<MemoryPoint>,
    /// processor_peak_rss(largest N) / processor_peak_rss(smallest N):
    /// flat ≈ 1–2, linear ≈ the ratio of the Ns (0 when not measured).
    pub rss_ratio: f64,
    /// largest N / smallest N, for reading `rss_ratio`.
    pub aggregates_ratio: f64,
    /// The roles measured, in `roles` order.
    pub roles_measured: Vec<String>,
    /// Every measured role (the processor included), peak RSS per N.
    #[serde(default)]
    pub roles: Vec<RoleMemory>,
}

/// Runs one child per size and gathers their figures.
pub async fn measure(settings: &MemorySettings) -> Result<MemoryFigures> {
    ensure!(
        !settings.sizes.is_empty()
            && settings.sizes.iter().all(|n| *n > 0)
            && !settings.role_sizes.is_empty()
            && settings.role_sizes.iter().all(|n| *n > 0),
        "give at least one positive number of aggregates"
    );
    ensure!(
        std::path::Path::new("/proc/self/status").exists(),
        "bench memory reads /proc/<pid>/status: it needs Linux"
    );
    if settings.backend == "kafka" && std::env::var("QS_KAFKA_BOOTSTRAP").is_err() {
        bail!(
            "bench memory on Kafka needs a real broker: set QS_KAFKA_BOOTSTRAP=host:port \
             (deploy/kafka/start.sh starts one), or pass --backend embedded"
        );
    }
    if let Some(unknown) = settings.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        bail!("role {unknown}: expected one of {}", ROLES.join(", "));
    }
    let needs_store = settings
        .roles
        .iter()
        .any(|r| r == "projectors" || r == "query-api");
    if settings.backend == "kafka" && needs_store && std::env::var("QS_CQL_CONTACT_POINTS").is_err()
    {
        bail!(
            "bench memory on Kafka measures the projectors and the query API on the CQL node: \
             set QS_CQL_CONTACT_POINTS=host:port (`deploy/test-env.sh up` starts both servers), \
             or pass --backend embedded, or --roles without projectors and query-api"
        );
    }
    let exe = match &settings.quickstore {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("finding the quickstore executable")?,
    };
    let mut points = Vec::new();
    let mut roles = Vec::new();
    for role in ROLES
        .iter()
        .filter(|r| settings.roles.iter().any(|s| s.as_str() == **r))
    {
        if *role == "command-processor" {
            points = processor_points(settings, &exe).await?;
            let as_roles = points
                .iter()
                .map(|p| RolePoint {
                    aggregates: p.aggregates,
                    peak_rss_kib: p.processor_peak_rss_kib,
                    rss_before_kib: p.rss_before_processor_kib,
                    peak_hwm_kib: p.peak_hwm_kib,
                    seconds: p.seconds,
                })
                .collect();
            roles.push(RoleMemory::new(role, as_roles));
        } else {
            roles.push(RoleMemory::new(
                role,
                role_points(settings, &exe, role).await?,
            ));
        }
    }
    let (rss_ratio, aggregates_ratio) = match (points.first(), points.last()) {
        (Some(first), Some(last)) => (
            last.processor_peak_rss_kib as f64 / first.processor_peak_rss_kib.max(1) as f64,
            last.aggregates as f64 / first.aggregates as f64,
        ),
        _ => (0.0, 0.0),
    };
    Ok(MemoryFigures {
        backend: settings.backend.clone(),
        partitions: settings.partitions,
        cache_aggregates: settings.cache_aggregates,
        batch: settings.batch,
        rss_ratio,
        aggregates_ratio,
        points,
        roles_measured: roles.iter().map(|r| r.role.clone()).collect(),
        roles,
    })
}

/// A child process for one point: `bench memory-child --role …`.
fn child_command(
    settings: &MemorySettings,
    exe: &std::path::Path,
    role: &str,
    n: u64,
    dir: &std::path::Path,
    out: &std::path::Path,
) -> tokio::process::Command {
    let mut child = tokio::process::Command::new(exe);
    child
        .args(["bench", "memory-child", "--role", role])
        .args(["--backend", &settings.backend])
        .args(["--aggregates", &n.to_string()])
        .args(["--cache", &settings.cache_aggregates.to_string()])
        .args(["--batch", &settings.batch.to_string()])
        .args(["--partitions", &settings.partitions.to_string()])
        .arg("--dir")
        .arg(dir)
        .arg("--out")
        .arg(out)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    child
}

/// Runs `child` to its end within the settings' timeout.
async fn run_to_end(
    settings: &MemorySettings,
    mut child: tokio::process::Command,
    what: &str,
) -> Result<()> {
    let status = tokio::time::timeout(settings.child_timeout, child.status())
        .await
        .with_context(|| {
            format!(
                "{what} did not finish in {:?}: measure fewer (--sizes)",
                settings.child_timeout
            )
        })??;
    ensure!(status.success(), "the child for {what} failed: {status}");
    Ok(())
}

/// One child per size in `sizes` for `role`, each point read back from the
/// child's JSON and described on stderr by `describe`.
async fn points<P: serde::de::DeserializeOwned>(
    settings: &MemorySettings,
    exe: &std::path::Path,
    role: &str,
    sizes: &[u64],
    describe: impl Fn(&P) -> String,
) -> Result<Vec<P>> {
    let mut points = Vec::new();
    for &n in sizes {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("point.json");
        eprintln!(
            "bench memory: {role}, {n} aggregates on {} …",
            settings.backend
        );
        let child = child_command(settings, exe, role, n, dir.path(), &out);
        run_to_end(settings, child, &format!("{role} at {n} aggregates")).await?;
        let point: P = serde_json::from_slice(
            &std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?,
        )?;
        eprintln!("  {}", describe(&point));
        points.push(point);
    }
    Ok(points)
}

/// One child per size for a role other than the processor.
async fn role_points(
    settings: &MemorySettings,
    exe: &std::path::Path,
    role: &str,
) -> Result<Vec<RolePoint>> {
    points(
        settings,
        exe,
        role,
        &settings.role_sizes,
        |p: &RolePoint| {
            format!(
                "{role} peak RSS {} MiB ({:.1} s)",
                p.peak_rss_kib / 1024,
                p.seconds
            )
        },
    )
    .await
}

/// One child per size for the command processor.
async fn processor_points(
    settings: &MemorySettings,
    exe: &std::path::Path,
) -> Result<Vec<MemoryPoint>> {
    points(
        settings,
        exe,
        "command-processor",
        &settings.sizes,
        |p: &MemoryPoint| {
            format!(
                "processor peak RSS {} MiB, {:.0} commands/s",
                p.processor_peak_rss_kib / 1024,
                p.commands_per_sec
            )
        },
    )
    .await
}

/// The embedded log a child measures with, in `dir`: a 32 MiB page cache,
/// so the log (in the measured process) does not mask the role's growth.
pub(super) fn child_embedded_log(dir: &std::path::Path) -> Result<Arc<dyn EventLog>> {
    let options = EmbeddedOptions {
        cache_size_bytes: 32 * 1024 * 1024,
        ..EmbeddedOptions::default()
    };
    Ok(Arc::new(EmbeddedLog::open(&dir.join("log"), options)?))
}

/// A child's schema registry: the configured one, or one in memory.
pub(super) fn child_registry(settings: &Settings) -> Result<Arc<dyn SchemaRegistry>> {
    Ok(match &settings.schema_registry_url {
        Some(url) => Arc::new(ConfluentRegistry::new(ConfluentRegistryConfig::new(
            url.clone(),
        ))?),
        None => Arc::new(EmbeddedRegistry::in_memory()),
    })
}

/// `quickstore bench memory`.
pub async fn run(args: BenchMemoryArgs) -> Result<()> {
    let mut settings = MemorySettings::new(args.quick);
    settings.backend = args.backend.clone();
    if !matches!(settings.backend.as_str(), "kafka" | "embedded") {
        bail!("--backend {}: expected kafka or embedded", settings.backend);
    }
    if let Some(sizes) = &args.sizes {
        settings.sizes = sizes
            .split(',')
            .map(|s| s.trim().replace('_', "").parse::<u64>())
            .collect::<Result<_, _>>()
            .context("--sizes: comma-separated numbers of aggregates, e.g. 10000,1000000")?;
        settings.role_sizes = settings.sizes.clone();
    }
    if let Some(cache) = args.cache {
        settings.cache_aggregates = cache;
    }
    settings.batch = args.batch;
    settings.partitions = args.partitions;
    if args.roles != "all" {
        settings.roles = args
            .roles
            .split(',')
            .map(|r| match r.trim() {
                "processor" => "command-processor".to_owned(),
                other => other.to_owned(),
            })
            .collect();
    }
    let figures = measure(&settings).await?;
    print_report(&figures);
    if args.quick || cfg!(debug_assertions) {
        println!(
            "(quick mode or a debug build: this run checks the report; run \
             `cargo run --release -p quickstore -- bench memory` for the figures)"
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    ensure!(
        !figures.roles.is_empty()
            && figures
                .roles
                .iter()
                .all(|r| r.points.len() >= 2.min(settings.sizes.len())
                    && r.points.iter().all(|p| p.peak_rss_kib > 0)
                    && r.rss_ratio.is_finite()
                    && r.rss_ratio > 0.0),
        "the report is not sane: {figures:?}"
    );
    Ok(())
}

fn print_report(f: &MemoryFigures) {
    if !f.points.is_empty() {
        print_processor(f);
    }
    println!("\nbench memory: peak RSS of each role on {}", f.backend);
    for r in &f.roles {
        let points: Vec<String> = r
            .points
            .iter()
            .map(|p| format!("{} → {} MiB", p.aggregates, p.peak_rss_kib / 1024))
            .collect();
        println!(
            "  {:<18} {} | ratio {:.2} for {:.0}× | {:.0} B/aggregate | {} (expected {}): {}",
            r.role,
            points.join(", "),
            r.rss_ratio,
            r.aggregates_ratio,
            r.bytes_per_aggregate,
            r.verdict,
            r.expected,
            r.note
        );
    }
}

fn print_processor(f: &MemoryFigures) {
    println!(
        "bench memory: command processor on {}, {} partitions, cache {} aggregates, batch {}",
        f.backend, f.partitions, f.cache_aggregates, f.batch
    );
    println!(
        "{:>12} {:>16} {:>12} {:>16} {:>12} {:>10}",
        "aggregates", "processor RSS", "VmHWM", "RSS before", "commands/s", "seconds"
    );
    for p in &f.points {
        println!(
            "{:>12} {:>12} MiB {:>8} MiB {:>12} MiB {:>12.0} {:>10.1}",
            p.aggregates,
            p.processor_peak_rss_kib / 1024,
            p.peak_hwm_kib / 1024,
            p.rss_before_processor_kib / 1024,
            p.commands_per_sec,
            p.seconds
        );
    }
    println!(
        "RSS ratio {:.2} for {:.0}× the aggregates (flat ≈ 1–2, linear ≈ {:.0})",
        f.rss_ratio, f.aggregates_ratio, f.aggregates_ratio
    );
}

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
pub(super) fn status_kib(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `quickstore bench memory-child`: one N, in this process.
pub async fn run_child(settings: Settings, args: BenchMemoryChildArgs) -> Result<()> {
    if args.role != "command-processor" {
        return super::memory_roles::run_child(settings, args).await;
    }
    let log: Arc<dyn EventLog> = match args.backend.as_str() {
        "kafka" => {
            let mut kafka = settings.kafka();
            if let Ok(bootstrap) = std::env::var("QS_KAFKA_BOOTSTRAP") {
                kafka.bootstrap_servers = bootstrap;
            }
            Arc::new(KafkaLog::connect(kafka)?)
        }
        "embedded" => child_embedded_log(&args.dir)?,
        other => bail!("--backend {other}: expected kafka or embedded"),
    };
    let codec = Arc::new(AvroCodec::new(child_registry(&settings)?));
    let prefix = format!(
        "bench-mem-{}.",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let topics = TopicNames::new(prefix);
    let mut topology = CommandTopology::new(&topics, counter::CONTEXT, args.partitions);
    topology.replication_factor = settings.replication_factor;
    log.create_topics(&topology.specs()).await?;
    counter::register_schemas(&codec, &topology).await?;

    fill(log.as_ref(), &codec, &topology, args.aggregates).await?;
    let rss_before = status_kib("VmRSS");

    let mut config = ProcessorConfig::new(
        format!("{}.command-processor", topology.commands),
        format!("{}.command-processor.bench", topology.commands),
    );
    config.max_batch = args.batch;
    config.cache_aggregates = args.cache;
    config.state_dir = Some(args.dir.join("processor-state"));
    let (progress_tx, mut progress) = watch::channel(ProcessorStats::default());
    let (stop, stopped) = watch::channel(false);
    let processor = CommandProcessor::<Counter>::new(
        Arc::clone(&log),
        Arc::clone(&codec),
        topology.clone(),
        config,
        system_clock(),
    )
    .with_progress(progress_tx);
    let started = Instant::now();
    let handle = tokio::spawn(processor.run(stopped));
    let mut peak = status_kib("VmRSS");
    let deadline = started + Duration::from_secs(3_600);
    loop {
        tokio::select! {
            changed = progress.changed() => changed.context("the processor stopped")?,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        peak = peak.max(status_kib("VmRSS"));
        let stats = *progress.borrow();
        if stats.commands >= args.aggregates {
            break;
        }
        if handle.is_finished() || Instant::now() > deadline {
            bail!("the processor did not finish: {stats:?}");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    peak = peak.max(status_kib("VmRSS"));
    let _ = stop.send(true);
    handle.await??;
    let point = MemoryPoint {
        aggregates: args.aggregates,
        processor_peak_rss_kib: peak,
        peak_hwm_kib: status_kib("VmHWM"),
        rss_before_processor_kib: rss_before,
        rss_after_kib: status_kib("VmRSS"),
        commands_per_sec: args.aggregates as f64 / seconds,
        seconds,
    };
    std::fs::write(&args.out, serde_json::to_vec(&point)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}

/// One command per aggregate, produced in chunks (never all in memory).
async fn fill(
    log: &dyn EventLog,
    codec: &AvroCodec,
    topology: &CommandTopology,
    aggregates: u64,
) -> Result<()> {
    const CHUNK: u64 = 5_000;
    let producer = log.producer("bench-memory-commands").await?;
    let producer = &producer;
    let mut from = 0;
    while from < aggregates {
        let to = (from + CHUNK).min(aggregates);
        let records: Vec<OutgoingRecord> = (from..to)
            .map(|i| super::log::increment_record(codec, topology, i, format!("agg-{i:09}")))
            .collect::<Result<_>>()?;
        let mut sends = futures::stream::iter(records)
            .map(|r| async move { producer.send(r).await })
            .buffer_unordered(1_000);
        while let Some(result) = sends.next().await {
            result?;
        }
        from = to;
    }
    Ok(())
}
