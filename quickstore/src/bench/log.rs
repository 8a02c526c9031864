//! `quickstore bench log`: command append throughput against a raw rdkafka
//! transactional produce loop, on the same broker, in the same run.
//!
//! Both sides write the same records: per command, the processor appends an
//! event, an outcome and a snapshot in transactions of `--batch` commands;
//! the baseline produces byte-identical records to the same number of
//! topics in transactions of the same size, with nothing else to do. The
//! processor also consumes the commands, decodes them, decides, encodes,
//! and commits the consumed offsets with each transaction — that overhead
//! is what the ratio measures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use command_api::processor::{system_clock, CommandProcessor, ProcessorConfig, ProcessorStats};
use command_api::testkit::counter::{self, Counter, CounterIncremented, IncrementCounter};
use command_api::topology::CommandTopology;
use futures::StreamExt;
use platform::config::Settings;
use platform::eventlog::kafka::{KafkaConfig, KafkaLog};
use platform::eventlog::{EventLog, OutgoingRecord};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use schemas::registry::{
    ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};
use schemas::{
    AggregateSnapshot, AvroCodec, CommandEnvelope, CommandOutcome, CommandStatus, EventEnvelope,
    TopicNames,
};
use serde::Serialize;
use tokio::sync::watch;

use super::load::{cpu_delta, process_cpu};
use crate::cli::BenchLogArgs;

/// The report, also written as JSON with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct LogBenchReport {
    /// `kafka` (raw baseline: an rdkafka transactional producer) or
    /// `embedded` (raw baseline: the embedded log's own transactions).
    pub log: String,
    pub cores: usize,
    pub commands: u64,
    pub batch: usize,
    pub partitions: i32,
    pub records_per_command: u32,
    pub bytes_per_command: usize,
    pub raw_commands_per_sec: f64,
    pub raw_records_per_sec: f64,
    pub processor_commands_per_sec: f64,
    pub processor_records_per_sec: f64,
    /// Process CPU (every thread) per command, raw loop and processor.
    pub raw_cpu_us_per_command: Option<f64>,
    pub processor_cpu_us_per_command: Option<f64>,
    /// processor / raw, commands per second. Target: >= 0.5.
    pub ratio: f64,
}

/// What one measurement does.
#[derive(Debug, Clone, Copy)]
pub struct LogPlan {
    pub commands: u64,
    pub batch: usize,
    pub aggregates: u64,
}

impl LogPlan {
    pub fn new(quick: bool) -> Self {
        Self {
            commands: if quick { 3_000 } else { 100_000 },
            batch: 500,
            aggregates: 1_000,
        }
    }
}

/// Which log: the real broker or the embedded twin (in a temp dir).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Kafka,
    Embedded,
}

pub async fn run(settings: Settings, args: BenchLogArgs) -> Result<()> {
    let target = match args.backend.as_str() {
        "kafka" => LogTarget::Kafka,
        "embedded" => LogTarget::Embedded,
        other => bail!("--backend {other}: expected kafka or embedded"),
    };
    if target == LogTarget::Kafka
        && std::env::var("QS_KAFKA_BOOTSTRAP").is_err()
        && settings.event_log != platform::config::EventLogBackend::Kafka
    {
        bail!(
            "bench log measures a real broker: set QS_KAFKA_BOOTSTRAP=host:port (deploy/kafka/start.sh \
             starts one and prints it), or pass --backend embedded"
        );
    }
    let mut plan = LogPlan::new(args.quick);
    plan.commands = args.records.unwrap_or(plan.commands);
    plan.batch = args.batch;
    plan.aggregates = args.aggregates;
    let report = measure(&settings, target, plan).await?;
    print_report(&report);
    if args.quick || cfg!(debug_assertions) {
        println!(
            "(quick mode or a debug build: this run checks the report, its figures mean nothing; \
             run `cargo run --release -p quickstore -- bench log` for numbers)"
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    ensure!(
        report.ratio.is_finite() && report.ratio > 0.0,
        "the report is not sane: {report:?}"
    );
    Ok(())
}

/// The raw baseline and the command processor on one log, same records.
pub async fn measure(
    settings: &Settings,
    target: LogTarget,
    plan: LogPlan,
) -> Result<LogBenchReport> {
    let LogPlan {
        commands,
        batch,
        aggregates,
    } = plan;
    ensure!(
        commands > 0 && batch > 0 && aggregates > 0,
        "--records, --batch and --aggregates must be positive"
    );
    let mut settings = settings.clone();
    let data_dir = std::env::temp_dir().join(format!(
        "quickstore-bench-log-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut kafka = settings.kafka();
    let log: Arc<dyn EventLog> = match target {
        LogTarget::Kafka => {
            kafka.bootstrap_servers = std::env::var("QS_KAFKA_BOOTSTRAP")
                .unwrap_or_else(|_| settings.kafka_bootstrap.clone());
            Arc::new(KafkaLog::connect(kafka.clone())?)
        }
        LogTarget::Embedded => {
            settings.event_log = platform::config::EventLogBackend::Embedded;
            settings.data_dir = data_dir.clone();
            crate::system::connect_log(&settings)?
        }
    };
    let result = measure_on(&settings, target, &kafka, log, plan).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn measure_on(
    settings: &Settings,
    target: LogTarget,
    kafka: &KafkaConfig,
    log: Arc<dyn EventLog>,
    plan: LogPlan,
) -> Result<LogBenchReport> {
    let LogPlan {
        commands,
        batch,
        aggregates,
    } = plan;
    let registry: Arc<dyn SchemaRegistry> = match (&settings.schema_registry_url, target) {
        (Some(url), LogTarget::Kafka) => Arc::new(ConfluentRegistry::new(
            ConfluentRegistryConfig::new(url.clone()),
        )?),
        // One process: an in-memory registry keeps ids consistent.
        _ => Arc::new(EmbeddedRegistry::in_memory()),
    };
    let codec = Arc::new(AvroCodec::new(registry));
    let prefix = format!(
        "bench-{}.",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let topics = TopicNames::new(prefix.clone());
    let mut topology = CommandTopology::new(&topics, counter::CONTEXT, settings.partitions);
    topology.replication_factor = settings.replication_factor;
    log.create_topics(&topology.specs()).await?;
    counter::register_schemas(&codec, &topology).await?;

    let name = match target {
        LogTarget::Kafka => "kafka",
        LogTarget::Embedded => "embedded",
    };
    eprintln!(
        "bench log ({name}): {commands} commands, batch {batch}, {} partitions",
        settings.partitions
    );
    let sample = sample_records(&codec, &topology)?;
    let bytes_per_command: usize = sample.iter().map(|(_, b)| b.len()).sum();

    // (a) The raw baseline: the same records, appended transactionally.
    let baseline_topics: Vec<String> = (0..sample.len())
        .map(|i| format!("{prefix}baseline-{i}"))
        .collect();
    // Each baseline topic is configured like the processor's topic its
    // records go to (events kept, outcomes deleted after a week, snapshots
    // compacted): the embedded log compacts as it writes, so a snapshot
    // costs it more than an event, and the baseline must pay that too.
    let processor_specs = topology.specs();
    let baseline_specs = baseline_topics
        .iter()
        .zip(&sample)
        .map(|(t, (processor_topic, _))| {
            let mut s = processor_specs
                .iter()
                .find(|s| &s.name == processor_topic)
                .cloned()
                .with_context(|| format!("{processor_topic} is not a topic of the topology"))?;
            s.name = t.clone();
            Ok(s)
        })
        .collect::<Result<Vec<_>>>()?;
    log.create_topics(&baseline_specs).await?;
    let raw = |n: u64| {
        let (log, topics, sample) = (Arc::clone(&log), baseline_topics.clone(), sample.clone());
        async move {
            match target {
                LogTarget::Kafka => {
                    raw_transactional_loop(kafka, &topics, &sample, n, batch, aggregates).await
                }
                LogTarget::Embedded => {
                    raw_port_transactions(log.as_ref(), &topics, &sample, n, batch, aggregates)
                        .await
                }
            }
        }
    };
    // Warm the log (the broker's JIT, page cache, transaction coordinator)
    // first, so the baseline is not penalised for running first.
    raw((commands / 5).clamp(1, 5_000)).await?;
    let cpu0 = process_cpu();
    let raw_elapsed = raw(commands).await?;
    let raw_cpu = cpu_delta(cpu0, process_cpu());

    // (b) The command processor appending the same records.
    fill_commands(log.as_ref(), &codec, &topology, commands, aggregates).await?;
    let processed = processor_run(&log, &codec, &topology, commands, batch).await?;

    let records_per_command = u32::try_from(sample.len()).unwrap_or(u32::MAX);
    let raw_cps = commands as f64 / raw_elapsed.as_secs_f64();
    let proc_cps = processed.0 as f64 / processed.1.as_secs_f64();
    let per = |cpu: Option<Duration>, n: u64| cpu.map(|c| c.as_secs_f64() * 1e6 / n.max(1) as f64);
    Ok(LogBenchReport {
        log: name.into(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        commands,
        batch,
        partitions: settings.partitions,
        records_per_command,
        bytes_per_command,
        raw_commands_per_sec: raw_cps,
        raw_records_per_sec: raw_cps * f64::from(records_per_command),
        processor_commands_per_sec: proc_cps,
        processor_records_per_sec: proc_cps * f64::from(records_per_command),
        raw_cpu_us_per_command: per(raw_cpu, commands),
        processor_cpu_us_per_command: per(processed.2, processed.0),
        ratio: proc_cps / raw_cps,
    })
}

fn print_report(r: &LogBenchReport) {
    println!("| measurement | commands/s | records/s |");
    println!("| --- | ---: | ---: |");
    println!(
        "| (a) {} | {:.0} | {:.0} |",
        if r.log == "kafka" {
            "raw rdkafka transactional produce"
        } else {
            "raw embedded-log transactions"
        },
        r.raw_commands_per_sec,
        r.raw_records_per_sec
    );
    println!(
        "| (b) command processor | {:.0} | {:.0} |",
        r.processor_commands_per_sec, r.processor_records_per_sec
    );
    println!();
    println!(
        "ratio (b)/(a): {:.2}  (target >= 0.5; {} records and {} bytes per command, batch {}, {} partitions, {} cores)",
        r.ratio, r.records_per_command, r.bytes_per_command, r.batch, r.partitions, r.cores
    );
}

/// One command's worth of output records, encoded exactly as the
/// processor encodes them: (topic, bytes).
fn sample_records(codec: &AvroCodec, topology: &CommandTopology) -> Result<Vec<(String, Vec<u8>)>> {
    let mut envelope = EventEnvelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        aggregate_type: "Counter".into(),
        aggregate_id: "agg-000001".into(),
        version: 42,
        occurred_at: 1_767_225_600_000,
        command_id: "cmd-000000001".into(),
        correlation_id: "cmd-000000001".into(),
        causation_id: "cmd-000000001".into(),
        actor: "bench".into(),
        prev_hash: vec![7; 32],
        hash: Vec::new(),
    };
    let event = CounterIncremented { by: 1, total: 42 };
    schemas::hash_chain::seal(&mut envelope, &event)?;
    let outcome = CommandOutcome {
        command_id: "cmd-000000001".into(),
        aggregate_type: "Counter".into(),
        aggregate_id: "agg-000001".into(),
        correlation_id: "cmd-000000001".into(),
        status: CommandStatus::Accepted,
        version: 42,
        event_count: 1,
        error_code: None,
        error_message: None,
        decided_at: 1_767_225_600_000,
        event_types: vec!["CounterIncremented".to_owned()],
    };
    let snapshot = AggregateSnapshot {
        aggregate_type: "Counter".into(),
        aggregate_id: "agg-000001".into(),
        version: 42,
        last_hash: envelope.hash.clone(),
        state_json: serde_json::to_string(&Counter { total: 42 })?,
        taken_at: 1_767_225_600_000,
    };
    Ok(vec![
        (
            topology.events.clone(),
            codec.encode_event(&topology.events, &envelope, &event)?,
        ),
        (
            topology.outcomes.clone(),
            codec.encode_record(&topology.outcomes, CommandOutcome::FULL_NAME, &outcome)?,
        ),
        (
            topology.snapshots.clone(),
            codec.encode_record(&topology.snapshots, AggregateSnapshot::FULL_NAME, &snapshot)?,
        ),
    ])
}

async fn raw_transactional_loop(
    kafka: &KafkaConfig,
    topics: &[String],
    sample: &[(String, Vec<u8>)],
    commands: u64,
    batch: usize,
    aggregates: u64,
) -> Result<Duration> {
    let producer: FutureProducer = kafka
        .client_config()
        .set(
            "transactional.id",
            format!("bench-raw-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        // The same tuning as the processor's producer, so the ratio
        // compares work, not configuration.
        .set(
            "retry.backoff.ms",
            platform::eventlog::kafka::TXN_RETRY_BACKOFF_MS,
        )
        .set("partitioner", "murmur2_random")
        .create()?;
    let timeout = Duration::from_secs(30);
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.init_transactions(timeout)).await??;
    let keys: Vec<String> = (0..aggregates).map(|a| format!("agg-{a:06}")).collect();
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < commands {
        producer.begin_transaction()?;
        let n = (commands - sent).min(batch as u64);
        let mut deliveries = Vec::with_capacity(n as usize * sample.len());
        for i in 0..n {
            let key = &keys[((sent + i) % aggregates) as usize];
            for (topic, (_, bytes)) in topics.iter().zip(sample) {
                let record = FutureRecord::to(topic).key(key).payload(bytes);
                match producer.send_result(record) {
                    Ok(d) => deliveries.push(d),
                    Err((e, _)) => bail!("raw produce failed: {e}"),
                }
            }
        }
        // Delivery reports first, then commit: the same order as the
        // processor's adapter, which sidesteps rdkafka's 100 ms flush poll.
        for d in deliveries {
            if let Ok(Err((e, _))) = d.await {
                bail!("raw delivery failed: {e}");
            }
        }
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.commit_transaction(timeout)).await??;
        sent += n;
    }
    Ok(started.elapsed())
}

/// The embedded twin of the raw loop: the same records in transactions of
/// the same size through the log port's own transactional member (no
/// consuming, no offsets, no deciding) — what the embedded log costs
/// without the processor.
async fn raw_port_transactions(
    log: &dyn EventLog,
    topics: &[String],
    sample: &[(String, Vec<u8>)],
    commands: u64,
    batch: usize,
    aggregates: u64,
) -> Result<Duration> {
    let group = format!("bench-raw-{}", uuid::Uuid::new_v4().simple());
    let mut config = platform::eventlog::GroupConfig::new(group.clone(), vec![topics[0].clone()]);
    config.transactional_id = Some(group);
    let mut member = log.join_group(config).await?;
    let keys: Vec<String> = (0..aggregates).map(|a| format!("agg-{a:06}")).collect();
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < commands {
        member.begin().await?;
        let n = (commands - sent).min(batch as u64);
        for i in 0..n {
            let key = &keys[((sent + i) % aggregates) as usize];
            for (topic, (_, bytes)) in topics.iter().zip(sample) {
                member.send(OutgoingRecord::new(
                    topic.clone(),
                    key.clone(),
                    bytes.clone(),
                ))?;
            }
        }
        member.commit_transaction(&[]).await?;
        sent += n;
    }
    let elapsed = started.elapsed();
    member.close().await?;
    Ok(elapsed)
}

/// The `i`-th benchmark command: `IncrementCounter { by: 1 }` for the
/// counter `aggregate_id`, encoded for the command topic.
pub(super) fn increment_record(
    codec: &AvroCodec,
    topology: &CommandTopology,
    i: u64,
    aggregate_id: String,
) -> Result<OutgoingRecord> {
    let id = format!("cmd-{i:09}");
    let envelope = CommandEnvelope {
        command_id: id.clone(),
        aggregate_type: "Counter".into(),
        aggregate_id,
        expected_version: None,
        issued_at: 1_767_225_600_000,
        correlation_id: id.clone(),
        causation_id: id,
        actor: "bench".into(),
        reply_to: None,
    };
    let bytes = codec.encode_command(&topology.commands, &envelope, &IncrementCounter { by: 1 })?;
    Ok(OutgoingRecord::new(
        topology.commands.clone(),
        envelope.aggregate_id,
        bytes,
    ))
}

async fn fill_commands(
    log: &dyn EventLog,
    codec: &AvroCodec,
    topology: &CommandTopology,
    commands: u64,
    aggregates: u64,
) -> Result<()> {
    let producer = log.producer("bench-commands").await?;
    let records: Vec<OutgoingRecord> = (0..commands)
        .map(|i| increment_record(codec, topology, i, format!("agg-{:06}", i % aggregates)))
        .collect::<Result<_>>()?;
    let producer = &producer;
    let mut sends = futures::stream::iter(records)
        .map(|r| async move { producer.send(r).await })
        .buffer_unordered(2_000);
    while let Some(result) = sends.next().await {
        result?;
    }
    Ok(())
}

/// Runs the processor over the pre-filled command topic. The clock starts
/// at the first committed transaction (joining the group is a one-off that
/// a long-running processor does not pay per command) and stops when every
/// command is committed. Returns (commands timed, elapsed).
async fn processor_run(
    log: &Arc<dyn EventLog>,
    codec: &Arc<AvroCodec>,
    topology: &CommandTopology,
    commands: u64,
    batch: usize,
) -> Result<(u64, Duration, Option<Duration>)> {
    let mut config = ProcessorConfig::new(
        format!("{}.command-processor", topology.commands),
        format!("{}.command-processor.bench", topology.commands),
    );
    config.max_batch = batch;
    // A snapshot per command, as the raw loop writes one: the ratio
    // compares the same output (the default snapshots far less often).
    config.snapshot_every = 1;
    let (progress_tx, mut progress) = watch::channel(ProcessorStats::default());
    let (stop, stopped) = watch::channel(false);
    let processor = CommandProcessor::<Counter>::new(
        Arc::clone(log),
        Arc::clone(codec),
        topology.clone(),
        config,
        system_clock(),
    )
    .with_progress(progress_tx);
    let handle = tokio::spawn(processor.run(stopped));
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, u64, Option<Duration>)> = None;
    let finished = loop {
        tokio::select! {
            changed = progress.changed() => changed.context("the processor stopped")?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let stats = *progress.borrow();
        if stats.commands > 0 && first.is_none() {
            first = Some((Instant::now(), stats.commands, process_cpu()));
        }
        if stats.commands >= commands {
            break (Instant::now(), process_cpu());
        }
        if handle.is_finished() || Instant::now() > deadline {
            bail!("the processor did not finish: {stats:?}");
        }
    };
    let _ = stop.send(true);
    handle.await??;
    let (t0, c0, cpu0) = first.context("no transaction was committed")?;
    let timed = commands - c0;
    ensure!(
        timed > 0,
        "every command was processed in the first transaction; raise --records"
    );
    Ok((
        timed,
        finished.0.duration_since(t0),
        cpu_delta(cpu0, finished.1),
    ))
}
