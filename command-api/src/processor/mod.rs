//! The command processor: the single writer of the aggregates whose keys
//! live in the command partitions it owns.
//!
//! Delivery guarantee: **exactly-once**. For each batch of polled commands
//! the events, outcome records, saga replies and snapshots are produced and
//! the consumed command offsets committed in ONE log transaction. A crash
//! before the commit leaves nothing visible and the commands are consumed
//! again by the next owner; a zombie (a member the group has moved on from)
//! is fenced at commit and its batch discarded.
//!
//! State per owned partition: the aggregates (restored on assignment from
//! the `<context>.snapshots` changelog, then the events after the checkpoint
//! committed with the command offset), and a window of recent outcomes so a
//! duplicate command id is answered with its first outcome. The aggregates
//! live in a local on-disk store with a bounded cache in front
//! ([`store`], ADR 0020): memory does not grow with their number.

mod batch;
mod consult;
mod partition;
mod restore;
mod store;
mod unsnapshotted;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use platform::eventlog::{
    EventLog, GroupConfig, GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit,
    TopicPartition,
};
use schemas::AvroCodec;
use tokio::sync::watch;
use tracing::Instrument;

use crate::aggregate::Aggregate;
use crate::topology::CommandTopology;
pub use consult::{ConsultError, Consultant, Consultation};
use partition::PartitionState;
pub use store::StoreError;
use store::{AggregateStore, StoreSettings};

/// Aggregates kept decoded in memory per processor (every owned partition
/// together); the rest are on the local disk.
pub use platform::config::DEFAULT_PROCESSOR_CACHE_AGGREGATES as DEFAULT_CACHE_AGGREGATES;

/// Infrastructure timestamps (outcome `decided_at`, snapshot `taken_at`).
/// Domain time never comes from here: it is the command's `issued_at`.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, in ms since the Unix epoch.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// Tuning and identity of one processor instance.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// The consumer group (one per context): `<prefix><context>.command-processor`.
    pub group_id: String,
    /// Stable per instance (e.g. per pod ordinal): a restarted instance
    /// fences its previous incarnation.
    pub transactional_id: String,
    pub client_id: String,
    /// Commands per transaction at most.
    pub max_batch: usize,
    /// How long a poll waits for the first command.
    pub poll_timeout: Duration,
    /// Snapshot an aggregate every this many versions (1 = after every
    /// change, the fastest restore; larger = fewer records per command).
    /// Default 100: most aggregates (an order, a payment, a shipment) end
    /// below it and are snapshotted once, by `max_unsnapshotted_lag`, not
    /// after each of their few changes (ADR 0025).
    pub snapshot_every: i64,
    /// An aggregate whose unsnapshotted events lag the partition end by more
    /// than this many offsets is snapshotted regardless, so restores stay
    /// bounded.
    pub max_unsnapshotted_lag: i64,
    /// How many recent outcomes per partition are kept for duplicate detection.
    pub dedup_window: usize,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
    pub transaction_timeout: Duration,
    /// Where the local aggregate store goes (a fresh subdirectory
    /// `<context>/<instance>-…` per run); `None` = the system's temp
    /// directory. Scratch: the log is the truth, so a lost directory costs
    /// a restore, never data.
    pub state_dir: Option<PathBuf>,
    /// Aggregates kept decoded in memory (all owned partitions together);
    /// the others are read from the local store when a command needs them.
    pub cache_aggregates: usize,
    /// redb's page cache for the local store.
    pub store_page_cache_bytes: usize,
}

impl ProcessorConfig {
    pub fn new(group_id: impl Into<String>, transactional_id: impl Into<String>) -> Self {
        let transactional_id = transactional_id.into();
        Self {
            group_id: group_id.into(),
            client_id: transactional_id.clone(),
            transactional_id,
            max_batch: 500,
            poll_timeout: Duration::from_millis(100),
            snapshot_every: 100,
            max_unsnapshotted_lag: 10_000,
            dedup_window: 10_000,
            session_timeout: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
            transaction_timeout: Duration::from_secs(30),
            state_dir: None,
            cache_aggregates: DEFAULT_CACHE_AGGREGATES,
            store_page_cache_bytes: 16 * 1024 * 1024,
        }
    }

    fn store_settings(&self, topology: &CommandTopology) -> StoreSettings {
        StoreSettings {
            root: self
                .state_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("quickstore-processor-state")),
            context: topology.context.clone(),
            instance: self.transactional_id.clone(),
            cache_aggregates: self.cache_aggregates,
            page_cache_bytes: self.store_page_cache_bytes,
        }
    }

    fn group_config(&self, topology: &CommandTopology) -> GroupConfig {
        let mut config = GroupConfig::new(self.group_id.clone(), vec![topology.commands.clone()])
            .transactional(self.transactional_id.clone());
        config.client_id = self.client_id.clone();
        config.session_timeout = self.session_timeout;
        config.max_poll_interval = self.max_poll_interval;
        config.transaction_timeout = self.transaction_timeout;
        config
    }
}

/// Infrastructure failures the processor cannot recover from by itself.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("restoring {partition}: {reason}")]
    Restore {
        partition: TopicPartition,
        reason: String,
    },
    #[error("encoding: {0}")]
    Codec(#[from] schemas::CodecError),
    #[error(transparent)]
    Consult(#[from] ConsultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProcessorError {
    /// Whether rejoining and restoring from the log can get past it. A
    /// producer fenced by a newer instance of ours, a version gap or a topic
    /// mismatch cannot: those stop the processor loudly.
    pub fn is_recoverable(&self) -> bool {
        match self {
            ProcessorError::Log(LogError::Fenced(_)) => true,
            ProcessorError::Log(e) => e.is_retriable(),
            ProcessorError::Codec(schemas::CodecError::Registry(_)) => true,
            ProcessorError::Consult(_) => true,
            // The local disk failing: stop, and let the restart restore
            // into a fresh directory (the log holds everything).
            ProcessorError::Codec(_)
            | ProcessorError::Restore { .. }
            | ProcessorError::Store(_) => false,
        }
    }
}

/// Counters a caller (bench, metrics) can read after a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessorStats {
    pub commands: u64,
    pub events: u64,
    pub transactions: u64,
    pub aborted_batches: u64,
    /// Every partition assigned so far is restored (readiness: false
    /// until the first assignment, and while rejoining).
    pub restored: bool,
}

/// A command processor for aggregate `A`.
pub struct CommandProcessor<A: Aggregate> {
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    topology: CommandTopology,
    config: ProcessorConfig,
    clock: Clock,
    partitions: HashMap<i32, PartitionState<A>>,
    /// The aggregates of every owned partition, a cache of the log.
    store: AggregateStore<A>,
    stats: ProcessorStats,
    /// Receives the counters after every committed transaction.
    progress: Option<watch::Sender<ProcessorStats>>,
    /// Asked before deciding, when the aggregate needs outside facts.
    consultant: Option<Arc<dyn Consultant<A>>>,
}

impl<A: Aggregate> std::fmt::Debug for CommandProcessor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandProcessor")
            .field("aggregate", &A::TYPE)
            .field("config", &self.config)
            .field("partitions", &self.partitions.keys().collect::<Vec<_>>())
            .field("store", &self.store)
            .finish()
    }
}

impl<A: Aggregate> CommandProcessor<A> {
    pub fn new(
        log: Arc<dyn EventLog>,
        codec: Arc<AvroCodec>,
        topology: CommandTopology,
        config: ProcessorConfig,
        clock: Clock,
    ) -> Self {
        let store = AggregateStore::new(config.store_settings(&topology));
        Self {
            log,
            codec,
            topology,
            config,
            clock,
            partitions: HashMap::new(),
            store,
            stats: ProcessorStats::default(),
            progress: None,
            consultant: None,
        }
    }

    /// Asks `consultant` for the facts of every command before deciding it.
    pub fn with_consultant(mut self, consultant: Arc<dyn Consultant<A>>) -> Self {
        self.consultant = Some(consultant);
        self
    }

    /// Publishes the counters after every committed transaction (metrics,
    /// benchmarks).
    pub fn with_progress(mut self, progress: watch::Sender<ProcessorStats>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs until `shutdown` turns true (then finishes the batch in hand,
    /// leaves the group and returns) or an unrecoverable error.
    pub async fn run(
        mut self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<ProcessorStats, ProcessorError> {
        self.check_co_partitioning().await?;
        let mut member = self.join().await?;
        // No `select!` around `poll`: cancelling a poll could drop records
        // or rebalance events it had already taken from the log. The poll
        // timeout is short, so checking between polls is prompt enough.
        // A dropped sender counts as a shutdown request, too.
        while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
            match self.step(&mut member).await {
                Ok(()) => {}
                Err(e) if e.is_recoverable() => {
                    // Fenced (the group moved on), a transient broker or
                    // registry failure: forget everything in memory, rejoin
                    // as a new member and restore from the log.
                    tracing::warn!(error = %e, "recovering: rejoining the group");
                    self.set_restored(false);
                    self.partitions.clear();
                    self.store.forget_all()?;
                    let _ = member.close().await;
                    member = loop {
                        tokio::time::sleep(
                            self.config.poll_timeout.max(Duration::from_millis(200)),
                        )
                        .await;
                        match self.join().await {
                            Ok(member) => break member,
                            // The broker may still be coming back.
                            Err(e) if e.is_recoverable() && !*shutdown.borrow() => {
                                tracing::warn!(error = %e, "rejoining failed; retrying");
                            }
                            Err(e) => return Err(e),
                        }
                    };
                }
                Err(e) => return Err(e),
            }
        }
        member.close().await?;
        Ok(self.stats)
    }

    /// Publishes whether the owned partitions are restored (`/readyz`).
    fn set_restored(&mut self, restored: bool) {
        self.stats.restored = restored;
        if let Some(progress) = &self.progress {
            progress.send_replace(self.stats);
        }
    }

    async fn join(&self) -> Result<Box<dyn GroupMember>, ProcessorError> {
        Ok(self
            .log
            .join_group(self.config.group_config(&self.topology))
            .await?)
    }

    /// One poll and whatever it asks for: restores, revocations, a batch.
    async fn step(&mut self, member: &mut Box<dyn GroupMember>) -> Result<(), ProcessorError> {
        let events = member
            .poll(self.config.max_batch, self.config.poll_timeout)
            .await?;
        let mut commands: Vec<LogRecord> = Vec::new();
        for event in events {
            match event {
                GroupEvent::Revoked(tps) => {
                    self.process(member, std::mem::take(&mut commands)).await?;
                    // Whatever we hold for them is stale the moment another
                    // member may write them.
                    for tp in tps {
                        self.partitions.remove(&tp.partition);
                        self.store.forget(tp.partition)?;
                    }
                }
                GroupEvent::Assigned(tps) => {
                    self.process(member, std::mem::take(&mut commands)).await?;
                    for tp in tps {
                        self.restore_partition(&tp).await?;
                    }
                    self.set_restored(true);
                }
                GroupEvent::Records(records) => {
                    platform::telemetry::metrics().record_waits(
                        &format!("command-processor/{}", self.topology.context),
                        &records,
                    );
                    commands.extend(records);
                }
            }
        }
        self.process(member, commands).await
    }

    /// Co-partitioning is what makes partition p of the command topic the
    /// whole truth about the aggregates keyed to p: refuse to run without it.
    async fn check_co_partitioning(&self) -> Result<(), ProcessorError> {
        let t = &self.topology;
        for topic in [&t.commands, &t.events, &t.snapshots, &t.outcomes] {
            let actual = self.log.partition_count(topic).await?;
            if actual != t.partitions {
                return Err(ProcessorError::Log(LogError::TopicMismatch {
                    topic: topic.clone(),
                    expected: t.partitions,
                    actual,
                }));
            }
        }
        Ok(())
    }

    /// One transaction for a batch of commands (no-op for an empty batch).
    async fn process(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        commands: Vec<LogRecord>,
    ) -> Result<(), ProcessorError> {
        if commands.is_empty() {
            return Ok(());
        }
        match self.process_once(member, &commands).await {
            Ok(()) => Ok(()),
            Err(ProcessorError::Log(LogError::TransactionAborted(reason))) => {
                // Not fenced, just failed: rewind to the committed offsets
                // and rebuild state, then the next poll redelivers.
                tracing::warn!(%reason, "transaction aborted; rewinding");
                self.stats.aborted_batches += 1;
                self.rewind(member).await
            }
            Err(e) => {
                self.stats.aborted_batches += 1;
                Err(e)
            }
        }
    }

    async fn rewind(&mut self, member: &mut Box<dyn GroupMember>) -> Result<(), ProcessorError> {
        let assigned = member.assignment();
        let committed = self
            .log
            .committed_offsets(&self.config.group_id, &assigned)
            .await?;
        self.partitions.clear();
        self.store.forget_all()?;
        for tp in &assigned {
            let offset = match committed.get(tp) {
                Some(c) => c.next_offset,
                None => self.log.start_offset(tp).await?,
            };
            member.seek(tp, offset).await?;
            self.restore_partition(tp).await?;
        }
        Ok(())
    }

    async fn process_once(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        commands: &[LogRecord],
    ) -> Result<(), ProcessorError> {
        let mut batch = batch::Batch::<A>::default();
        let started = std::time::Instant::now();
        // The transaction is not one trace's hop (it carries commands of
        // many): its own span, linked to the span of every command in it.
        let span = tracing::info_span!(
            "command.transaction",
            context = %self.topology.context,
            commands = commands.len(),
        );
        for record in commands {
            platform::telemetry::propagation::link_to(&span, &record.headers);
        }
        member.begin().instrument(span.clone()).await?;
        let result = self
            .fill_batch(member, commands, &mut batch)
            .instrument(span.clone())
            .await;
        if let Err(e) = result {
            let _ = member.abort_transaction().await;
            return Err(e);
        }
        let offsets = self.offsets_to_commit(commands);
        let positions = member.commit_transaction(&offsets).instrument(span).await?;
        let m = platform::telemetry::metrics();
        let context = self.topology.context.as_str();
        m.command_transaction_duration
            .with_label_values(&[context])
            .observe(started.elapsed().as_secs_f64());
        m.command_batch_size
            .with_label_values(&[context])
            .observe(commands.len() as f64);
        for (command_type, outcome) in &batch.tally {
            m.commands
                .with_label_values(&[context, command_type.as_str(), outcome])
                .inc();
        }
        self.stats.transactions += 1;
        self.stats.commands += commands.len() as u64;
        self.stats.events += batch.event_count() as u64;
        // The log has it: now (and only now) it is the partitions' state.
        // A store that cannot take it stops the processor (never decide
        // from state that is behind the log).
        batch.apply(
            &mut self.partitions,
            &mut self.store,
            &positions,
            self.config.dedup_window,
        )?;
        if let Some(progress) = &self.progress {
            progress.send_replace(self.stats);
        }
        Ok(())
    }

    fn offsets_to_commit(&self, commands: &[LogRecord]) -> Vec<OffsetCommit> {
        let mut next: HashMap<i32, i64> = HashMap::new();
        for c in commands {
            let e = next.entry(c.partition).or_insert(0);
            *e = (*e).max(c.offset + 1);
        }
        next.into_iter()
            .map(|(partition, next_offset)| OffsetCommit {
                tp: TopicPartition::new(self.topology.commands.clone(), partition),
                next_offset,
                metadata: self
                    .partitions
                    .get(&partition)
                    .map(|s| s.checkpoint().encode())
                    .unwrap_or_default(),
            })
            .collect()
    }
}
