//! A counter context on one adapter: topics, codec, command sending, and
//! reading back what the processors wrote.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use command_api::processor::{system_clock, CommandProcessor, ProcessorConfig, ProcessorStats};
use command_api::testkit::counter::{self, Counter, CounterIncremented, IncrementCounter};
use command_api::topology::CommandTopology;
use platform::eventlog::{EventLog, OutgoingRecord, Producer};
use platform::testing::{self, TestAdapter};
use schemas::registry::{
    ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};
use schemas::{
    AvroCodec, CommandEnvelope, CommandOutcome, CommandStatus, EventEnvelope, TopicNames,
};
use tokio::sync::watch;

pub const PARTITIONS: i32 = 4;
pub const REGISTRY_ENV: &str = "QS_SCHEMA_REGISTRY_URL";

/// Everything a child process needs to join the same context.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FixtureSpec {
    pub adapter: String,
    pub prefix: String,
    pub data_dir: std::path::PathBuf,
}

pub struct Fixture {
    pub spec: FixtureSpec,
    pub log: Arc<dyn EventLog>,
    pub codec: Arc<AvroCodec>,
    pub topology: CommandTopology,
    producer: Box<dyn Producer>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub async fn new(adapter: TestAdapter) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let spec = FixtureSpec {
            adapter: adapter.name().to_owned(),
            prefix: testing::unique_prefix("proc"),
            data_dir: dir.path().to_path_buf(),
        };
        let mut fixture = Self::open(spec).await?;
        fixture.log.create_topics(&fixture.topology.specs()).await?;
        fixture._dir = Some(dir);
        Ok(fixture)
    }

    /// Opens an existing fixture (a child process, or after a restart).
    pub async fn open(spec: FixtureSpec) -> Result<Self> {
        let adapter = TestAdapter::parse(&spec.adapter).context("unknown adapter")?;
        let log = testing::open_log(adapter, &spec.data_dir)?;
        // Kafka runs use the real registry over HTTP, so that separate
        // processes agree on schema ids; the embedded twin keeps its
        // registry in the data dir, as `quickstore dev` does.
        let registry: Arc<dyn SchemaRegistry> = match adapter {
            TestAdapter::Kafka => {
                let url = std::env::var(REGISTRY_ENV).map_err(|_| {
                    anyhow::anyhow!(
                        "{REGISTRY_ENV} is not set: the Kafka runs need a schema registry. Run \
                         `deploy/test.sh`, which starts one, or export the URL of yours"
                    )
                })?;
                Arc::new(ConfluentRegistry::new(ConfluentRegistryConfig::new(url))?)
            }
            TestAdapter::Embedded => {
                Arc::new(EmbeddedRegistry::open(spec.data_dir.join("registry"))?)
            }
        };
        let codec = Arc::new(AvroCodec::new(registry));
        let topics = TopicNames::new(spec.prefix.clone());
        let topology = CommandTopology::new(&topics, counter::CONTEXT, PARTITIONS);
        counter::register_schemas(&codec, &topology).await?;
        let producer = log.producer("processor-test").await?;
        Ok(Self {
            spec,
            log,
            codec,
            topology,
            producer,
            _dir: None,
        })
    }

    pub fn processor_config(&self, instance: &str) -> ProcessorConfig {
        let mut config = ProcessorConfig::new(
            format!("{}counters.command-processor", self.spec.prefix),
            format!("{}counters.command-processor.{instance}", self.spec.prefix),
        );
        config.session_timeout = Duration::from_millis(1500);
        config.max_poll_interval = Duration::from_millis(3000);
        config.transaction_timeout = Duration::from_secs(5);
        config.max_batch = 100;
        // Smaller than most cases' aggregate count, so every case also runs
        // with aggregates evicted to (and read back from) the local store.
        config.cache_aggregates = 8;
        config.state_dir = Some(self.spec.data_dir.join("processor-state"));
        config
    }

    /// Starts a processor task; returns its shutdown switch and handle.
    pub fn spawn_processor(
        &self,
        config: ProcessorConfig,
    ) -> (
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<ProcessorStats, command_api::processor::ProcessorError>>,
    ) {
        let (stop, stopped) = watch::channel(false);
        let processor = CommandProcessor::<Counter>::new(
            Arc::clone(&self.log),
            Arc::clone(&self.codec),
            self.topology.clone(),
            config,
            system_clock(),
        );
        (stop, tokio::spawn(processor.run(stopped)))
    }

    pub fn command(
        &self,
        command_id: &str,
        counter_id: &str,
        by: i64,
        expected_version: Option<i64>,
    ) -> Result<OutgoingRecord> {
        let envelope = CommandEnvelope {
            command_id: command_id.to_owned(),
            aggregate_type: "Counter".to_owned(),
            aggregate_id: counter_id.to_owned(),
            expected_version,
            issued_at: 1_700_000_000_000,
            correlation_id: command_id.to_owned(),
            causation_id: command_id.to_owned(),
            actor: "tester".to_owned(),
            reply_to: None,
        };
        let bytes = self.codec.encode_command(
            &self.topology.commands,
            &envelope,
            &IncrementCounter { by },
        )?;
        Ok(OutgoingRecord::new(
            self.topology.commands.clone(),
            counter_id.to_owned(),
            bytes,
        ))
    }

    pub async fn send(
        &self,
        command_id: &str,
        counter_id: &str,
        by: i64,
        expected_version: Option<i64>,
    ) -> Result<()> {
        self.producer
            .send(self.command(command_id, counter_id, by, expected_version)?)
            .await?;
        Ok(())
    }

    pub async fn send_record(&self, record: OutgoingRecord) -> Result<()> {
        self.producer.send(record).await?;
        Ok(())
    }

    pub async fn outcomes(&self) -> Result<Vec<CommandOutcome>> {
        let mut out = Vec::new();
        for r in read_all(self.log.as_ref(), &self.topology.outcomes).await? {
            out.push(
                self.codec
                    .decode_record(r.value.as_deref().unwrap_or_default())
                    .await?,
            );
        }
        Ok(out)
    }

    /// Waits until every id in `command_ids` has an outcome.
    pub async fn wait_for_outcomes(
        &self,
        command_ids: &HashSet<String>,
        timeout: Duration,
    ) -> Result<Vec<CommandOutcome>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let outcomes = self.outcomes().await?;
            let seen: HashSet<&String> = outcomes.iter().map(|o| &o.command_id).collect();
            let missing = command_ids.iter().filter(|id| !seen.contains(id)).count();
            if missing == 0 {
                return Ok(outcomes);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{missing} of {} commands have no outcome after {timeout:?}",
                    command_ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The restore checkpoints the processors committed (offset metadata).
    pub async fn checkpoints(&self, group: &str) -> Result<Vec<String>> {
        let tps: Vec<_> = (0..PARTITIONS)
            .map(|p| platform::eventlog::TopicPartition::new(self.topology.commands.clone(), p))
            .collect();
        let committed = self.log.committed_offsets(group, &tps).await?;
        Ok(committed.into_values().map(|c| c.metadata).collect())
    }

    pub async fn events(&self) -> Result<Vec<(EventEnvelope, CounterIncremented)>> {
        let mut out = Vec::new();
        for r in read_all(self.log.as_ref(), &self.topology.events).await? {
            out.push(
                self.codec
                    .decode_event(r.value.as_deref().unwrap_or_default())
                    .await?,
            );
        }
        Ok(out)
    }

    /// The invariants of the event log for counters: per counter versions
    /// 1..n with no gap, no duplicate event id, one event per accepted
    /// command, an intact hash chain, totals that add up. Returns totals.
    pub async fn check_log(&self) -> Result<BTreeMap<String, i64>> {
        let events = self.events().await?;
        let mut ids = HashSet::new();
        let mut by_counter: BTreeMap<String, Vec<(EventEnvelope, CounterIncremented)>> =
            BTreeMap::new();
        for (envelope, event) in events {
            ensure!(
                ids.insert(envelope.event_id.clone()),
                "duplicate event id {}",
                envelope.event_id
            );
            by_counter
                .entry(envelope.aggregate_id.clone())
                .or_default()
                .push((envelope, event));
        }
        let mut commands_with_events = HashSet::new();
        let mut totals = BTreeMap::new();
        for (counter_id, mut events) in by_counter {
            events.sort_by_key(|(e, _)| e.version);
            let mut total = 0i64;
            let mut prev_hash: Vec<u8> = Vec::new();
            for (i, (envelope, event)) in events.iter().enumerate() {
                let expected = i64::try_from(i)? + 1;
                ensure!(
                    envelope.version == expected,
                    "{counter_id}: version {} where {expected} was due (gap or duplicate)",
                    envelope.version
                );
                ensure!(
                    envelope.prev_hash == prev_hash,
                    "{counter_id} v{}: broken hash chain",
                    envelope.version
                );
                ensure!(
                    schemas::hash_chain::verify(envelope, event)?,
                    "{counter_id} v{}: hash does not match",
                    envelope.version
                );
                ensure!(
                    commands_with_events.insert(envelope.command_id.clone()),
                    "command {} produced two events",
                    envelope.command_id
                );
                total += event.by;
                ensure!(
                    event.total == total,
                    "{counter_id} v{}: total {} != running sum {total}",
                    envelope.version,
                    event.total
                );
                prev_hash = envelope.hash.clone();
            }
            totals.insert(counter_id, total);
        }
        let outcomes = self.outcomes().await?;
        let accepted: HashMap<&String, &CommandOutcome> = outcomes
            .iter()
            .filter(|o| o.status == CommandStatus::Accepted)
            .map(|o| (&o.command_id, o))
            .collect();
        ensure!(
            accepted.len() == commands_with_events.len(),
            "{} accepted commands but {} commands with events",
            accepted.len(),
            commands_with_events.len()
        );
        Ok(totals)
    }
}

pub async fn read_all(
    log: &dyn EventLog,
    topic: &str,
) -> Result<Vec<platform::eventlog::LogRecord>> {
    use futures::StreamExt;
    let mut out = Vec::new();
    for p in 0..log.partition_count(topic).await? {
        let tp = platform::eventlog::TopicPartition::new(topic, p);
        let end = log.end_offset(&tp).await?;
        let mut stream = log.read_range(tp, 0, end);
        while let Some(r) = stream.next().await {
            out.push(r?);
        }
    }
    Ok(out)
}
