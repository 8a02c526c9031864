//! The projector: one consumer group per projection and table generation,
//! folding events into the read store.
//!
//! Delivery guarantee: **at-least-once**, made harmless by idempotent
//! writes. Per poll: decode and project every record, write every
//! mutation, dead-letter what could not be projected, write its park
//! rows, and only then commit the consumed offsets — an offset is stored
//! only after its output is durable. A crash before the commit
//! redelivers the batch, which writes the same cells with the same
//! timestamps (a record dead-lettered before the crash may be
//! dead-lettered twice).
//!
//! **Pipelined.** Decoding and projecting a batch (the pure half,
//! [`crate::decode`]) costs about as much CPU as writing it, so while a
//! full batch is written (the projector is behind: a rebuild, a catch-up)
//! the next poll — only what the consumer has fetched already, it does not
//! wait — is decoded on a task of its own, on the other core (ADR 0026). Nothing else moves ahead: which records are
//! parked is decided once the batch before is written, with the parked
//! keys as they are then; the next batch's rebalance events are handled
//! after this batch's offsets are committed (without the partitions they
//! revoke); and its offsets are committed only after its own writes. While
//! a batch is ahead the consumer's position is past it, so a batch commits
//! the consumer's position only in the partitions nothing was polled from
//! since; and no batch looks ahead when the control row is due, because a
//! hand-off acknowledges the consumer's positions as durable.
//!
//! **Version rows last.** A batch is written in two phases: first every
//! row without a `*_version` column (and every delete), then — once those
//! are durable — the rows with one (`orders_by_id.order_version`, …).
//! Read-your-writes waits on a version cell and then reads the other
//! tables; the CQL adapter writes one write's mutations concurrently, so
//! without the phases a reader could see the version before the rows of
//! the same event.
//!
//! **A group per generation**: `<prefix>projector.<name>.g<generation>`
//! ([`group_id`]). A rebuild builds generation N+1 in its own group from
//! offset 0 while generation N's group keeps serving. After the switch the
//! live projector continues generation N+1 *from the rebuild's committed
//! offsets* — so whatever arrived between the rebuild's last batch and the
//! switch is projected by the live projector, nothing is lost and nothing
//! is projected from scratch twice.
//!
//! A store that does not answer is retried with backoff until it does (the
//! offsets are not committed meanwhile, so nothing is lost); so is a
//! schema registry that does not answer. An event that cannot be projected
//! (undecodable, or refused by the projection) is retried a few times,
//! then sent to `<prefix>projector.<name>.dlq` with why, and its key is
//! parked: later events of that key go to the dead-letter topic too, so a
//! read model never applies a key's events out of order. An event whose
//! rows the store refuses ([`ReadStoreError::Invalid`] — retrying would
//! fail forever) is handled alike: when the store refuses a batch, the
//! batch is written again record by record, a record whose write is
//! refused is dead-lettered with `store refused: <why>` and its key
//! parked, the other records are written, and the offsets are committed,
//! so the projection keeps going. (Unless the projection's tables of the
//! generation do not answer either — dropped under it: then the projector
//! fails rather than dead-letter everything.) Dead letters are sent after
//! the batch's writes, in record order, so a key's dead letters keep the
//! key's order.
//!
//! Parked keys are rows of [`crate::dlq::PARKED_KEYS`], written before the
//! batch's offsets are committed. The projector loads them when it starts,
//! again on every partition assignment (a rebalance: another instance may
//! have parked keys of the partitions it takes over — reloaded, retried
//! while the store is unavailable, before any record of the assignment is
//! projected) and when another instance's `dlq retry` finished. So a
//! restart or a rebalance keeps a key parked.
//!
//! A [`Role::Live`] projector also reads its projection's control row
//! between batches (at most once per `control_interval`): it runs the
//! retries `dlq retry` requests ([`crate::dlq`]) and pauses while a rebuild
//! of a newer generation hands off ([`crate::generations`]). A pause ends
//! when the lease does (a successful rebuild lets it run out rather than
//! release it) or when the projector is asked to stop — which is how the
//! service moves a paused projector to the new generation as soon as it
//! sees the pointer.
//!
//! **Positions and lag.** [`ProjectorStats::positions`] holds, per owned
//! partition, the next offset whose output is durable, taken from the
//! consumer's own position ([`GroupMember::positions`]) whenever nothing
//! polled is still in flight. On Kafka that position moves past the
//! commit markers of transactions, which take offsets of their own, so at
//! quiescence it equals the partition's end and the lag is exactly 0. The
//! committed offsets follow it (an idle poll commits a position that moved
//! past markers only), so a lag computed from the group's committed
//! offsets by another process reaches 0 too.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::eventlog::{
    Cleanup, EventLog, GroupConfig, GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit,
    OutgoingRecord, Producer, TopicPartition, TopicSpec,
};
use platform::readstore::{ColumnType, Mutation, MutationKind, ReadStore, ReadStoreError, Value};
use schemas::{AvroCodec, TopicNames};
use tokio::sync::watch;

use crate::decode::{stopping, Decoded, Decoder};
use crate::dlq::{self, control_write};
use crate::generations;
use crate::projection::Projection;

/// Why the later events of a parked key are dead-lettered.
pub const PARKED_REASON: &str = "parked: an earlier event of this key is in the dead-letter topic";

/// The consumer group of `projection`'s table generation `generation`.
pub fn group_id(topics: &TopicNames, projection: &str, generation: u32) -> String {
    format!("{}projector.{projection}.g{generation}", topics.prefix)
}

/// What a projector is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows the serving generation (the projector service): runs
    /// `dlq retry` requests and pauses for a newer generation's hand-off.
    Live,
    /// Builds a generation for a rebuild: neither.
    Rebuild,
}

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// [`group_id`]: `<prefix>projector.<name>.g<generation>`.
    pub group_id: String,
    /// The table generation written.
    pub generation: u32,
    pub role: Role,
    pub max_batch: usize,
    pub poll_timeout: Duration,
    /// Attempts before an event is a poison event.
    pub attempts: u32,
    /// First backoff while the store is unavailable (doubles, capped at 5 s).
    pub backoff: Duration,
    /// How often (at most) a live projector reads its control row.
    pub control_interval: Duration,
    /// Replication factor of the dead-letter topic when it is created.
    pub dead_letter_replication: i16,
    /// Its `min.insync.replicas` (`None`: the broker's default), the same
    /// as `quickstore topics apply` sets, so a topic the projector created
    /// shows no drift.
    pub dead_letter_min_insync: Option<i16>,
}

impl ProjectorConfig {
    pub fn new(topics: &TopicNames, projection: &dyn Projection, generation: u32) -> Self {
        Self {
            group_id: group_id(topics, projection.name(), generation),
            generation,
            role: Role::Live,
            max_batch: 1000,
            poll_timeout: Duration::from_millis(50),
            attempts: 3,
            backoff: Duration::from_millis(100),
            control_interval: Duration::from_secs(1),
            dead_letter_replication: 1,
            dead_letter_min_insync: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] ReadStoreError),
    #[error("encoding a dead letter: {0}")]
    DeadLetter(String),
    #[error("{0}")]
    Invalid(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// Asked to stop while waiting for an outage to end (the batch in hand
    /// is not committed; the next run projects it again).
    #[error("stopped during an outage: {0}")]
    Interrupted(String),
}

/// Counters for metrics, lag and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProjectorStats {
    pub events: u64,
    pub mutations: u64,
    pub batches: u64,
    pub dead_letters: u64,
    pub store_retries: u64,
    /// `dlq retry` requests this projector carried out.
    pub retries: u64,
    /// Keys parked now (by this projector's view).
    pub parked: usize,
    /// Paused for a newer generation's hand-off.
    pub paused: bool,
    /// Next offset per owned (topic, partition) whose output is durable.
    pub positions: HashMap<(String, i32), i64>,
}

pub(crate) use platform::eventlog::unix_now_ms as now_ms;

/// Whether `m` writes a version cell (a column named `*_version`), which
/// read-your-writes waits on: such rows are written last.
fn carries_version(m: &Mutation) -> bool {
    matches!(&m.kind, MutationKind::Upsert(row) if row.keys().any(|k| k.ends_with("_version")))
}

/// A key value for a probe read of a table (Cassandra refuses an empty
/// partition key).
fn probe_value(kind: ColumnType) -> Value {
    match kind {
        ColumnType::Text => Value::Text("?".into()),
        ColumnType::BigInt => Value::BigInt(0),
        ColumnType::Int => Value::Int(0),
        ColumnType::Boolean => Value::Boolean(false),
        ColumnType::Timestamp => Value::Timestamp(0),
        ColumnType::Blob => Value::Blob(vec![0]),
    }
}

/// The writes of a batch in their two phases ([`Projector::write_phased`]),
/// appended record by record, so each record's share is a range of each.
#[derive(Debug, Default)]
struct Writes {
    /// No version column (every delete, too): written first.
    plain: Vec<Mutation>,
    /// With a version column: written once `plain` is durable.
    versions: Vec<Mutation>,
    /// The store writes atomically ([`ReadStore::writes_atomically`]):
    /// one phase, everything in `plain`, in one write.
    one_phase: bool,
}

/// One record's writes in [`Writes`].
#[derive(Debug, Clone)]
struct Share {
    plain: Range<usize>,
    versions: Range<usize>,
}

impl Writes {
    /// Empty, in one phase if `store` writes atomically.
    fn for_store(store: &dyn ReadStore) -> Self {
        Self {
            one_phase: store.writes_atomically(),
            ..Self::default()
        }
    }

    fn push(&mut self, mutations: Vec<Mutation>, generation: u32) -> Share {
        let (plain, versions) = (self.plain.len(), self.versions.len());
        for mut m in mutations {
            m.generation = generation;
            if !self.one_phase && carries_version(&m) {
                self.versions.push(m);
            } else {
                self.plain.push(m);
            }
        }
        Share {
            plain: plain..self.plain.len(),
            versions: versions..self.versions.len(),
        }
    }
}

/// What becomes of one record, decided before anything is written.
#[derive(Debug)]
enum Outcome {
    /// Its writes.
    Apply(Share),
    /// Its key is parked: to the dead-letter topic.
    Parked,
    /// Could not be projected: to the dead-letter topic, with why.
    Poison(String),
}

#[derive(Debug)]
struct Step<'a> {
    record: &'a LogRecord,
    /// A retried dead letter's offset ([`dlq::H_RETRY_OF`]).
    retry_of: Option<i64>,
    outcome: Outcome,
}

/// What [`Projector::settle`] did.
#[derive(Debug, Default)]
struct Settled {
    /// The park rows of the records it dead-lettered (still to write).
    parks: Vec<Mutation>,
    /// Per step: whether it was dead-lettered.
    dead: Vec<bool>,
    /// Keys whose writes the store refused (parked now).
    refused: HashSet<Vec<u8>>,
    /// Mutations written.
    written: usize,
}

/// A poll's records, decoded ([`Decoder::project_all`]) but not decided.
#[derive(Debug)]
struct Polled {
    records: Vec<LogRecord>,
    decoded: Vec<Option<Decoded>>,
}

/// A poll made while a batch was written: its records, their decoding
/// (which may have failed: asked to stop during a registry outage), and
/// its rebalance events, handled once that batch is committed.
#[derive(Debug)]
struct Ahead {
    records: Vec<LogRecord>,
    decoded: Result<Vec<Option<Decoded>>, ProjectorError>,
    rebalances: Vec<GroupEvent>,
}

/// A poll's records, apart from its rebalance events; records the poll
/// waits in `waits` (a metric name) if given.
fn split(events: Vec<GroupEvent>, waits: Option<&str>) -> (Vec<LogRecord>, Vec<GroupEvent>) {
    let mut records = Vec::new();
    let mut rebalances = Vec::new();
    for event in events {
        match event {
            GroupEvent::Records(r) => {
                if let Some(metric) = waits {
                    platform::telemetry::metrics().record_waits(metric, &r);
                }
                records.extend(r);
            }
            other => rebalances.push(other),
        }
    }
    (records, rebalances)
}

/// What the consumer polled after a batch, while the batch was written.
#[derive(Debug)]
enum PolledSince<'a> {
    Nothing,
    Batch(&'a Ahead),
    /// The poll failed: what it consumed is unknown.
    Unknown,
}

/// The offsets a batch of `records` may commit once its output is durable,
/// given the consumer's `positions` and what it polled since.
///
/// Everything before a batch's records is in the batch or committed
/// before, so each partition's last record + 1 is durable. So is the
/// consumer's position in a partition nothing was polled from since: it is
/// at or past the batch's last record there, and past transaction markers
/// (or compaction holes) it stepped over, which would otherwise keep the
/// partition's committed offset and lag short of its end until an idle
/// poll — never, under load. A partition the later poll revoked is left
/// out: this member can no longer commit it, and its next owner reads it
/// again from the last commit.
fn durable_offsets(
    records: &[LogRecord],
    positions: &[(TopicPartition, Option<i64>)],
    polled_since: &PolledSince<'_>,
) -> HashMap<TopicPartition, i64> {
    let mut offsets: HashMap<TopicPartition, i64> = HashMap::new();
    for r in records {
        let e = offsets.entry(r.topic_partition()).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let polled: HashSet<TopicPartition> = match polled_since {
        PolledSince::Nothing => HashSet::new(),
        PolledSince::Batch(ahead) => ahead
            .records
            .iter()
            .map(LogRecord::topic_partition)
            .collect(),
        PolledSince::Unknown => return offsets,
    };
    for (tp, position) in positions {
        if polled.contains(tp) {
            continue;
        }
        if let (Some(n), Some(p)) = (offsets.get_mut(tp), position) {
            *n = (*n).max(*p);
        }
    }
    if let PolledSince::Batch(ahead) = polled_since {
        for event in &ahead.rebalances {
            if let GroupEvent::Revoked(tps) = event {
                for tp in tps {
                    offsets.remove(tp);
                }
            }
        }
    }
    offsets
}

pub struct Projector {
    log: Arc<dyn EventLog>,
    decoder: Decoder,
    store: Arc<dyn ReadStore>,
    projection: Arc<dyn Projection>,
    topics: TopicNames,
    config: ProjectorConfig,
    parked: HashSet<Vec<u8>>,
    dead_letters: Option<Box<dyn Producer>>,
    stats: ProjectorStats,
    progress: Option<watch::Sender<ProjectorStats>>,
    /// What this member committed last, per owned partition.
    committed: HashMap<TopicPartition, i64>,
    next_control: Instant,
    /// The `dlq_retry_done` last seen (another instance's retry may have
    /// unparked keys: reload them when it moves).
    retry_done_seen: Option<i64>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("projection", &self.projection.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The dead-letter topic of a projection.
pub fn dead_letter_topic(topics: &TopicNames, projection: &str) -> String {
    topics.dlq(&format!("projector.{projection}"))
}

impl Projector {
    pub fn new(
        log: Arc<dyn EventLog>,
        codec: Arc<AvroCodec>,
        store: Arc<dyn ReadStore>,
        projection: Arc<dyn Projection>,
        topics: TopicNames,
        config: ProjectorConfig,
    ) -> Self {
        let decoder = Decoder::new(
            codec,
            Arc::clone(&projection),
            topics.saga_events(schemas::ORDER_FULFILLMENT),
            config.attempts,
            config.backoff,
        );
        Self {
            log,
            decoder,
            store,
            projection,
            topics,
            config,
            parked: HashSet::new(),
            dead_letters: None,
            stats: ProjectorStats::default(),
            progress: None,
            committed: HashMap::new(),
            next_control: Instant::now(),
            retry_done_seen: None,
        }
    }

    pub fn with_progress(mut self, progress: watch::Sender<ProjectorStats>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs until `shutdown` (finishing the batch in hand), then leaves the
    /// group.
    pub async fn run(
        mut self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<ProjectorStats, ProjectorError> {
        let tables = self.projection.tables();
        let generation = self.config.generation;
        self.retrying(&shutdown, |store| {
            let store = Arc::clone(store);
            async move { store.ensure_tables(tables, generation).await }
        })
        .await?;
        self.retrying(&shutdown, |store| {
            let store = Arc::clone(store);
            async move { generations::ensure(store.as_ref()).await }
        })
        .await?;
        // Up front, so `dlq list` and a retry can read it before anything
        // failed, and the first dead letter needs no admin round trip.
        self.log.create_topics(&[self.dead_letter_spec()]).await?;
        self.reload_parked(&shutdown).await?;
        let mut group = GroupConfig::new(
            self.config.group_id.clone(),
            self.projection.topics(&self.topics),
        );
        group.client_id = self.config.group_id.clone();
        let mut member = self.log.join_group(group).await?;
        let result = self.consume(&mut member, &shutdown).await;
        // Leave the group cleanly either way, so the partitions move at
        // once (what was not committed is redelivered to the next owner).
        let closed = member.close().await;
        result?;
        closed?;
        Ok(self.stats)
    }

    fn dead_letter_spec(&self) -> TopicSpec {
        let mut spec = TopicSpec::new(
            dead_letter_topic(&self.topics, self.projection.name()),
            1,
            Cleanup::KeepForever,
        );
        spec.replication_factor = self.config.dead_letter_replication;
        spec.min_insync_replicas = self.config.dead_letter_min_insync;
        spec
    }

    async fn consume(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        // Polled and decoded while the batch before it was written.
        let mut ahead: Option<Polled> = None;
        while !stopping(shutdown) {
            // The control row needs nothing in flight (a hand-off acks the
            // consumer's positions as durable): a batch does not look
            // ahead when it is due.
            if ahead.is_none() && self.control_due() {
                self.control(member, shutdown).await?;
                self.next_control = Instant::now() + self.config.control_interval;
                if stopping(shutdown) {
                    break;
                }
            }
            let polled = match ahead.take() {
                Some(polled) => polled,
                None => {
                    let events = member
                        .poll(self.config.max_batch, self.config.poll_timeout)
                        .await?;
                    let (records, rebalances) = split(events, self.waits_metric().as_deref());
                    self.rebalanced(rebalances, shutdown).await?;
                    if records.is_empty() {
                        self.idle(member).await?;
                        continue;
                    }
                    let decoded = self
                        .decoder
                        .project_all(&records, &self.parked, shutdown)
                        .await?;
                    Polled { records, decoded }
                }
            };
            ahead = self.batch(member, polled, shutdown).await?;
        }
        Ok(())
    }

    fn control_due(&self) -> bool {
        self.config.role == Role::Live && Instant::now() >= self.next_control
    }

    /// Where a live projector's poll waits are recorded (a rebuild reads
    /// history: its waits say nothing about the live hop).
    fn waits_metric(&self) -> Option<String> {
        (self.config.role == Role::Live).then(|| format!("projector/{}", self.projection.name()))
    }

    /// A poll's rebalance events, in order.
    async fn rebalanced(
        &mut self,
        events: Vec<GroupEvent>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        for event in events {
            match event {
                GroupEvent::Records(_) => {}
                GroupEvent::Revoked(tps) => {
                    for tp in tps {
                        self.stats
                            .positions
                            .remove(&(tp.topic.clone(), tp.partition));
                        self.committed.remove(&tp);
                    }
                    self.publish();
                }
                GroupEvent::Assigned(tps) => self.assigned(&tps, shutdown).await?,
            }
        }
        Ok(())
    }

    /// Newly owned partitions: first the parked keys, reloaded from the
    /// store — another instance may have parked keys of these partitions
    /// since this one loaded them (its park rows are durable before its
    /// offsets moved, so they are there now) — waiting while the store is
    /// unavailable, before any record of the assignment is projected. Then
    /// the positions, from the group's committed offsets (the consumer may
    /// not know its position until it fetched); best effort: only the lag
    /// depends on them.
    async fn assigned(
        &mut self,
        tps: &[TopicPartition],
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        self.reload_parked(shutdown).await?;
        match self.log.committed_offsets(&self.config.group_id, tps).await {
            Ok(committed) => {
                for (tp, c) in committed {
                    self.stats
                        .positions
                        .insert((tp.topic.clone(), tp.partition), c.next_offset);
                    self.committed.insert(tp, c.next_offset);
                }
            }
            Err(e) => tracing::debug!(
                projection = self.projection.name(),
                error = %e,
                "reading committed offsets after an assignment"
            ),
        }
        self.publish();
        Ok(())
    }

    /// Replaces the parked keys with the store's (retried while the store
    /// is unavailable).
    async fn reload_parked(
        &mut self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let name = self.projection.name();
        let generation = self.config.generation;
        self.parked = self
            .retrying(shutdown, |store| {
                let store = Arc::clone(store);
                async move { dlq::parked_keys(store.as_ref(), name, generation).await }
            })
            .await?;
        self.stats.parked = self.parked.len();
        Ok(())
    }

    /// Nothing in flight: every record polled so far is durable and
    /// committed, so the consumer's positions are durable positions. One
    /// that moved past the last commit (only transaction markers were
    /// consumed since) is committed too, at-least-once still: nothing
    /// before it is unprocessed.
    async fn idle(&mut self, member: &mut Box<dyn GroupMember>) -> Result<(), ProjectorError> {
        let mut commits = Vec::new();
        let mut changed = false;
        for (tp, position) in member.positions() {
            let Some(position) = position else { continue };
            if self.committed.get(&tp).is_none_or(|c| *c < position) && position > 0 {
                commits.push(OffsetCommit {
                    tp: tp.clone(),
                    next_offset: position,
                    metadata: String::new(),
                });
            }
            let key = (tp.topic.clone(), tp.partition);
            if self.stats.positions.get(&key) != Some(&position) {
                self.stats.positions.insert(key, position);
                changed = true;
            }
        }
        if !commits.is_empty() {
            member.commit_offsets(&commits).await?;
            for c in commits {
                self.committed.insert(c.tp, c.next_offset);
            }
        }
        if changed {
            self.publish();
        }
        Ok(())
    }

    fn publish(&self) {
        if let Some(p) = &self.progress {
            p.send_if_modified(|current| {
                if *current == self.stats {
                    false
                } else {
                    *current = self.stats.clone();
                    true
                }
            });
        }
    }

    /// Projects `polled` (decoded already; which records are parked is
    /// decided now), writes it, and commits its offsets. Meanwhile — if
    /// `polled` was a full poll and the control row is not due — it polls
    /// the next batch and decodes it on another task: returned, for the
    /// next call.
    async fn batch(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        polled: Polled,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Option<Polled>, ProjectorError> {
        let generation = self.config.generation;
        let Polled { records, decoded } = polled;
        // Decide every record first (nothing is written or dead-lettered
        // yet), keeping each record's writes apart: if the store refuses
        // the batch, it is written again record by record.
        let mut writes = Writes::for_store(self.store.as_ref());
        let mut steps = Vec::with_capacity(records.len());
        for (record, decoded) in records.iter().zip(decoded) {
            let outcome = if self.parked.contains(&record.key) {
                Outcome::Parked
            } else {
                // Not decoded if its key was parked then (and a reload of
                // the parked keys has unparked it since).
                let decoded = match decoded {
                    Some(d) => d,
                    None => self.decoder.project_traced(record, shutdown).await?,
                };
                match decoded {
                    Ok(m) => Outcome::Apply(writes.push(m, generation)),
                    Err(why) => {
                        self.parked.insert(record.key.clone());
                        Outcome::Poison(why)
                    }
                }
            };
            steps.push(Step {
                record,
                retry_of: None,
                outcome,
            });
        }
        // Only a projector that is behind looks ahead: a full poll means
        // more is waiting. One that keeps up gains little from it (small
        // batches), and its committed offsets would always be a batch
        // behind the log's end: a rebuild waiting for lag 0 to hand off
        // (`max_lag` 0) would wait while appends keep coming.
        let behind = records.len() >= self.config.max_batch;
        let look_ahead = behind && !self.control_due() && !stopping(shutdown);
        let next = self.look_ahead(member, look_ahead, shutdown);
        let written = self.settle_batch(&steps, &writes, shutdown);
        let (written, next) = tokio::join!(written, next);
        let written = written?;
        // Durable: now the offsets may move.
        let polled_since = match &next {
            Ok(None) => PolledSince::Nothing,
            Ok(Some(ahead)) => PolledSince::Batch(ahead),
            Err(_) => PolledSince::Unknown,
        };
        let next_offsets = durable_offsets(&records, &member.positions(), &polled_since);
        let offsets: Vec<OffsetCommit> = next_offsets
            .iter()
            .map(|(tp, offset)| OffsetCommit {
                tp: tp.clone(),
                next_offset: *offset,
                metadata: String::new(),
            })
            .collect();
        if !offsets.is_empty() {
            member.commit_offsets(&offsets).await?;
        }
        self.stats.events += records.len() as u64;
        self.stats.mutations += written as u64;
        self.stats.batches += 1;
        self.stats.parked = self.parked.len();
        for (tp, offset) in next_offsets {
            self.stats
                .positions
                .insert((tp.topic.clone(), tp.partition), offset);
            self.committed.insert(tp, offset);
        }
        self.publish();
        let Some(ahead) = next? else {
            return Ok(None);
        };
        self.rebalanced(ahead.rebalances, shutdown).await?;
        if ahead.records.is_empty() {
            return Ok(None);
        }
        Ok(Some(Polled {
            records: ahead.records,
            decoded: ahead.decoded?,
        }))
    }

    /// The next poll, if `wanted` and it finds records already there (it
    /// does not wait), decoded on a task of its own so that the decoding
    /// runs beside the write in hand, on another core.
    fn look_ahead<'a>(
        &self,
        member: &'a mut Box<dyn GroupMember>,
        wanted: bool,
        shutdown: &'a watch::Receiver<bool>,
    ) -> impl Future<Output = Result<Option<Ahead>, ProjectorError>> + 'a {
        let decoder = self.decoder.clone();
        // Decoding skips the keys parked now; the decision that uses it
        // checks the parked keys again.
        let parked = if wanted {
            self.parked.clone()
        } else {
            HashSet::new()
        };
        let waits = self.waits_metric();
        let max_batch = self.config.max_batch;
        async move {
            if !wanted {
                return Ok(None);
            }
            let events = member.poll(max_batch, Duration::ZERO).await?;
            if events.is_empty() {
                return Ok(None);
            }
            let (records, rebalances) = split(events, waits.as_deref());
            let stop = shutdown.clone();
            let (records, decoded) = tokio::spawn(async move {
                let decoded = decoder.project_all(&records, &parked, &stop).await;
                (records, decoded)
            })
            .await
            .map_err(|e| ProjectorError::Invalid(format!("decoding the next batch: {e}")))?;
            Ok(Some(Ahead {
                records,
                decoded,
                rebalances,
            }))
        }
    }

    /// Settles `steps` ([`Self::settle`]) and writes the park rows of what
    /// it dead-lettered; returns the mutations written.
    async fn settle_batch(
        &mut self,
        steps: &[Step<'_>],
        writes: &Writes,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<usize, ProjectorError> {
        let settled = self.settle(steps, writes, shutdown).await?;
        self.parked.extend(settled.refused);
        // The park rows are durable before the offsets move, so a restart
        // (or another instance, after a rebalance) finds the keys parked.
        self.write(shutdown, &settled.parks).await?;
        Ok(settled.written)
    }

    /// Writes what `steps` apply and dead-letters the others, in record
    /// order per key; returns the park rows to write (not written yet).
    ///
    /// The writes go first, all of them at once (in two phases, see
    /// [`Self::write_phased`]). If the store refuses them
    /// ([`ReadStoreError::Invalid`]: a row it will never take, so retrying
    /// the batch would fail forever), they are written again record by
    /// record: a record whose write is refused is dead-lettered (`store
    /// refused: …`) and its key parked, so the key's later records follow
    /// it into the dead-letter topic; the others are written. Dead letters
    /// are sent after the writes, in record order, so a key's dead letters
    /// stay in its order whichever way its records went.
    async fn settle(
        &mut self,
        steps: &[Step<'_>],
        writes: &Writes,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Settled, ProjectorError> {
        let mut settled = Settled {
            dead: vec![false; steps.len()],
            ..Settled::default()
        };
        let refusal = match self
            .write_phased(shutdown, &writes.plain, &writes.versions)
            .await
        {
            Ok(()) => {
                settled.written = writes.plain.len() + writes.versions.len();
                for (i, step) in steps.iter().enumerate() {
                    match &step.outcome {
                        Outcome::Apply(_) => {}
                        Outcome::Parked => self.bury(step, PARKED_REASON, &mut settled).await?,
                        Outcome::Poison(why) => self.bury(step, why, &mut settled).await?,
                    }
                    settled.dead[i] = !matches!(step.outcome, Outcome::Apply(_));
                }
                return Ok(settled);
            }
            Err(ProjectorError::Store(ReadStoreError::Invalid(why))) => why,
            Err(e) => return Err(e),
        };
        tracing::warn!(
            projection = self.projection.name(),
            generation = self.config.generation,
            error = %refusal,
            "the read store refused a batch; writing it record by record"
        );
        let mut tables_checked = false;
        for (i, step) in steps.iter().enumerate() {
            let share = match &step.outcome {
                Outcome::Parked => {
                    self.bury(step, PARKED_REASON, &mut settled).await?;
                    settled.dead[i] = true;
                    continue;
                }
                Outcome::Poison(why) => {
                    self.bury(step, why, &mut settled).await?;
                    settled.dead[i] = true;
                    continue;
                }
                Outcome::Apply(share) => share,
            };
            if settled.refused.contains(&step.record.key) {
                // An earlier record of this key was refused in this batch.
                self.bury(step, PARKED_REASON, &mut settled).await?;
                settled.dead[i] = true;
                continue;
            }
            let plain = &writes.plain[share.plain.clone()];
            let versions = &writes.versions[share.versions.clone()];
            match self.write_phased(shutdown, plain, versions).await {
                Ok(()) => settled.written += plain.len() + versions.len(),
                Err(ProjectorError::Store(ReadStoreError::Invalid(why))) => {
                    if !tables_checked {
                        // A refusal that is not this record's fault (its
                        // tables are gone) must not dead-letter everything.
                        self.check_tables(shutdown).await?;
                        tables_checked = true;
                    }
                    let why = format!("store refused: {why}");
                    self.bury(step, &why, &mut settled).await?;
                    settled.dead[i] = true;
                    settled.refused.insert(step.record.key.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(settled)
    }

    /// Dead-letters `step`'s record with `why` and adds its park row.
    async fn bury(
        &mut self,
        step: &Step<'_>,
        why: &str,
        settled: &mut Settled,
    ) -> Result<(), ProjectorError> {
        let at = self.dead_letter(step.record, why, step.retry_of).await?;
        settled.parks.push(dlq::park(
            self.projection.name(),
            self.config.generation,
            &step.record.key,
            at,
            why,
            now_ms(),
        ));
        Ok(())
    }

    /// Whether the projection's tables of this generation answer (retried
    /// while the store is unavailable): a read of each refused as well
    /// means the tables are missing (dropped), not that a record is bad.
    async fn check_tables(
        &mut self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let generation = self.config.generation;
        for table in self.projection.tables() {
            let partition: platform::readstore::Row = table
                .partition_key
                .iter()
                .map(|c| (c.name.to_owned(), probe_value(c.kind)))
                .collect();
            let probed = self
                .retrying(shutdown, |store| {
                    let store = Arc::clone(store);
                    let partition = partition.clone();
                    async move {
                        store
                            .scan(table, generation, &partition, None, 1)
                            .await
                            .map(|_| ())
                    }
                })
                .await;
            match probed {
                Ok(()) => {}
                Err(ProjectorError::Store(e @ ReadStoreError::Invalid(_))) => {
                    return Err(ProjectorError::Invalid(format!(
                        "the read store refused a batch and {} of generation {generation} \
                         does not answer either: {e}",
                        table.name
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends `record` to the dead-letter topic; returns its offset there.
    async fn dead_letter(
        &mut self,
        record: &LogRecord,
        why: &str,
        retry_of: Option<i64>,
    ) -> Result<i64, ProjectorError> {
        let topic = dead_letter_topic(&self.topics, self.projection.name());
        if self.dead_letters.is_none() {
            self.dead_letters = Some(self.log.producer(&self.config.group_id).await?);
        }
        tracing::warn!(
            projection = self.projection.name(),
            generation = self.config.generation,
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            reason = %why,
            "dead-lettered an event"
        );
        let mut out = OutgoingRecord::new(
            topic,
            record.key.clone(),
            record.value.clone().unwrap_or_default(),
        )
        .with_header(dlq::H_REASON, why.as_bytes().to_vec())
        .with_header(dlq::H_TOPIC, record.topic.clone())
        .with_header(dlq::H_PARTITION, record.partition.to_string())
        .with_header(dlq::H_OFFSET, record.offset.to_string())
        .with_header(dlq::H_GENERATION, self.config.generation.to_string());
        if let Some(of) = retry_of {
            out = out.with_header(dlq::H_RETRY_OF, of.to_string());
        }
        for h in &record.headers {
            out = out.with_header(h.key.clone(), h.value.clone());
        }
        let producer = self
            .dead_letters
            .as_ref()
            .ok_or_else(|| ProjectorError::DeadLetter("no producer".into()))?;
        let position = producer.send(out).await?;
        self.stats.dead_letters += 1;
        Ok(position.offset)
    }

    async fn write(
        &mut self,
        shutdown: &watch::Receiver<bool>,
        mutations: &[Mutation],
    ) -> Result<(), ProjectorError> {
        if mutations.is_empty() {
            return Ok(());
        }
        self.retrying(shutdown, |store| {
            let store = Arc::clone(store);
            async move { store.write(mutations).await }
        })
        .await
    }

    /// Writes `plain` (rows without a `*_version` column, and deletes),
    /// then — only once those are durable — `versions` (rows with one).
    ///
    /// Read-your-writes waits on a row's version cell
    /// (`orders_by_id.order_version`, …) and then reads the aggregate's
    /// other rows (`orders_by_customer`, `order_timeline`, …). The CQL
    /// adapter runs one write's mutations concurrently, so in a single
    /// write the version cell could land before the rows of the same
    /// event, and a reader that saw the version would miss them. Written
    /// last, a version a reader sees vouches for every other row of its
    /// event (and of the events before it).
    ///
    /// A store whose write is atomic (the embedded one) gets one phase
    /// ([`Writes::one_phase`]: `versions` is empty): no reader can see the
    /// version before the rows, and a batch costs one commit (with its
    /// fsync), not two.
    async fn write_phased(
        &mut self,
        shutdown: &watch::Receiver<bool>,
        plain: &[Mutation],
        versions: &[Mutation],
    ) -> Result<(), ProjectorError> {
        self.write(shutdown, plain).await?;
        self.write(shutdown, versions).await
    }

    /// Runs `op` until it succeeds, backing off while the store is
    /// unavailable; an invalid request or a shutdown ends it.
    async fn retrying<T, F, Fut>(
        &mut self,
        shutdown: &watch::Receiver<bool>,
        op: F,
    ) -> Result<T, ProjectorError>
    where
        F: Fn(&Arc<dyn ReadStore>) -> Fut,
        Fut: Future<Output = Result<T, ReadStoreError>>,
    {
        let mut backoff = self.config.backoff;
        loop {
            match op(&self.store).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retriable() && !stopping(shutdown) => {
                    self.stats.store_retries += 1;
                    self.publish();
                    tracing::warn!(projection = self.projection.name(), error = %e, "read store unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Between batches: the control row (hand-off, `dlq retry`).
    async fn control(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let name = self.projection.name();
        let control = match dlq::control(self.store.as_ref(), name).await {
            Ok(c) => c,
            Err(e) if e.is_retriable() => {
                // Next time; the batches themselves wait for the store.
                tracing::debug!(projection = name, error = %e, "reading the control row");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if control.handoff_generation > self.config.generation && now_ms() < control.handoff_until {
            return self.pause(member, shutdown).await;
        }
        if control.retry_requested > control.retry_done && self.coordinates_retries(member.as_ref())
        {
            return self.retry(control, shutdown).await;
        }
        match self.retry_done_seen {
            Some(seen) if seen != control.retry_done => {
                // Another instance retried: it may have unparked keys.
                self.reload_parked(shutdown).await?;
                self.publish();
            }
            _ => {}
        }
        self.retry_done_seen = Some(control.retry_done);
        Ok(())
    }

    /// Whether this member runs the retries: the owner of the first input
    /// topic's partition 0 (one member of the group, whatever the number
    /// of instances).
    fn coordinates_retries(&self, member: &dyn GroupMember) -> bool {
        let first = self
            .projection
            .topics(&self.topics)
            .into_iter()
            .next()
            .map(|t| TopicPartition::new(t, 0));
        first.is_some_and(|tp| member.assignment().contains(&tp))
    }

    /// Paused for a newer generation's hand-off: acknowledge with the
    /// durable positions, then consume nothing until the lease ends (or
    /// the service stops this projector because the pointer moved).
    async fn pause(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let name = self.projection.name();
        let generation = self.config.generation;
        self.stats.paused = true;
        self.publish();
        let mut acked = 0;
        let mut shutdown = shutdown.clone();
        loop {
            let control = match dlq::control(self.store.as_ref(), name).await {
                Ok(c) => c,
                Err(e) if e.is_retriable() => {
                    if stopping(&shutdown) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let now = now_ms();
            if !(control.handoff_generation > generation && now < control.handoff_until) {
                break;
            }
            if control.handoff_id != acked {
                // Nothing is in flight between batches: every position is
                // durable (committed, or only markers behind it).
                let positions: Vec<(TopicPartition, i64)> = member
                    .positions()
                    .into_iter()
                    .filter_map(|(tp, p)| {
                        p.or_else(|| self.committed.get(&tp).copied())
                            .map(|p| (tp, p))
                    })
                    .collect();
                let acks =
                    generations::ack_handoff(name, control.handoff_id, generation, &positions, now);
                self.write(&shutdown, &acks).await?;
                acked = control.handoff_id;
                tracing::info!(
                    projection = name,
                    generation,
                    to = control.handoff_generation,
                    "paused for a rebuild's hand-off"
                );
            }
            let wait = Duration::from_millis(
                u64::try_from((control.handoff_until - now).clamp(1, 250)).unwrap_or(250),
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            if stopping(&shutdown) {
                break;
            }
        }
        self.stats.paused = false;
        self.publish();
        Ok(())
    }

    /// Carries out a `dlq retry` request (see [`crate::dlq`]).
    async fn retry(
        &mut self,
        control: dlq::Control,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let name = self.projection.name();
        let generation = self.config.generation;
        let seq = control.retry_requested;
        let topic = dead_letter_topic(&self.topics, name);
        // Where this generation's retries stopped; a generation that never
        // retried starts from the beginning (older generations' dead
        // letters are skipped below: this generation has its own).
        let from = if control.retried_generation == generation {
            control.retried_upto
        } else {
            0
        };
        let (records, end) = dlq::read_dead_letters(self.log.as_ref(), &topic, from).await?;
        // This generation's dead letters, as the records they hold.
        let originals: Vec<(i64, LogRecord)> = records
            .iter()
            .filter(|dead| dlq::generation_of(dead).is_none_or(|g| g == generation))
            .map(|dead| (dead.offset, dlq::original(dead)))
            .collect();
        let mut retried: HashSet<Vec<u8>> = HashSet::new();
        let mut failed: HashSet<Vec<u8>> = HashSet::new();
        let mut writes = Writes::for_store(self.store.as_ref());
        let mut steps = Vec::with_capacity(originals.len());
        for (offset, original) in &originals {
            retried.insert(original.key.clone());
            // Once one of a key's events fails again, its later ones stay
            // in the dead-letter topic, in order.
            let outcome = if failed.contains(&original.key) {
                Outcome::Parked
            } else {
                match self.decoder.project(original, shutdown).await? {
                    Ok(mutations) => Outcome::Apply(writes.push(mutations, generation)),
                    Err(why) => {
                        failed.insert(original.key.clone());
                        Outcome::Poison(why)
                    }
                }
            };
            steps.push(Step {
                record: original,
                retry_of: Some(*offset),
                outcome,
            });
        }
        // Written like a batch: version rows last, a write the store
        // refuses dead-lettered again (its key stays parked).
        let settled = self.settle(&steps, &writes, shutdown).await?;
        failed.extend(settled.refused.iter().cloned());
        let again = settled.dead.iter().filter(|d| **d).count();
        let ok = i64::try_from(steps.len() - again).unwrap_or(i64::MAX);
        let again = i64::try_from(again).unwrap_or(i64::MAX);
        let unparked: Vec<Vec<u8>> = retried.difference(&failed).cloned().collect();
        // After the retried writes are durable: the parks of what failed
        // again, the unparks of the keys that came back.
        let mut marks = settled.parks;
        marks.extend(
            unparked
                .iter()
                .map(|k| dlq::unpark(name, generation, k, end)),
        );
        self.write(shutdown, &marks).await?;
        for k in &unparked {
            self.parked.remove(k);
        }
        self.parked.extend(failed);
        // Acknowledged only once the writes, the new dead letters and the
        // unparks are durable: a crash before retries the same range.
        let ack = vec![control_write(
            name,
            seq,
            vec![
                ("dlq_retried_upto", Value::BigInt(end)),
                (
                    "dlq_retried_generation",
                    Value::Int(i32::try_from(generation).unwrap_or(i32::MAX)),
                ),
                ("dlq_retry_done", Value::BigInt(seq)),
                ("dlq_last_retry_from", Value::BigInt(from)),
                ("dlq_last_retry_ok", Value::BigInt(ok)),
                ("dlq_last_retry_failed", Value::BigInt(again)),
            ],
        )];
        self.write(shutdown, &ack).await?;
        self.retry_done_seen = Some(seq);
        self.stats.retries += 1;
        self.stats.parked = self.parked.len();
        self.publish();
        tracing::info!(
            projection = name,
            generation,
            request = seq,
            from,
            upto = end,
            succeeded = ok,
            dead_lettered_again = again,
            "retried dead letters"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use platform::readstore::{column, ColumnType as T, Order, TableDef};

    use super::*;
    use crate::projection::{row, text, upsert};

    const BY_ID: TableDef = TableDef {
        name: "things_by_id",
        partition_key: &[column("id", T::Text)],
        clustering: &[],
        columns: &[column("thing_version", T::BigInt), column("name", T::Text)],
    };

    const BY_OWNER: TableDef = TableDef {
        name: "things_by_owner",
        partition_key: &[column("owner", T::Text)],
        clustering: &[(column("id", T::Text), Order::Asc)],
        columns: &[column("name", T::Text)],
    };

    fn by_id(id: &str, version: i64) -> Mutation {
        upsert(
            BY_ID,
            version,
            row([
                ("id", text(id)),
                ("thing_version", Value::BigInt(version)),
                ("name", text("x")),
            ]),
        )
    }

    fn by_owner(id: &str, version: i64) -> Mutation {
        upsert(
            BY_OWNER,
            version,
            row([("owner", text("o")), ("id", text(id)), ("name", text("x"))]),
        )
    }

    fn delete_by_owner(id: &str, version: i64) -> Mutation {
        Mutation {
            table: BY_OWNER,
            generation: 0,
            kind: MutationKind::Delete(row([("owner", text("o")), ("id", text(id))])),
            timestamp: version,
        }
    }

    fn record(partition: i32, offset: i64) -> LogRecord {
        LogRecord {
            topic: "t".into(),
            partition,
            offset,
            key: b"k".to_vec(),
            value: None,
            headers: Vec::new(),
            timestamp_ms: 0,
        }
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn ahead(records: Vec<LogRecord>, rebalances: Vec<GroupEvent>) -> Ahead {
        Ahead {
            decoded: Ok(vec![None; records.len()]),
            records,
            rebalances,
        }
    }

    /// Partitions 0 and 1 in the batch; the consumer stepped past markers
    /// in both (positions 12 and 22) and holds partition 2 too.
    fn batch_and_positions() -> (Vec<LogRecord>, Vec<(TopicPartition, Option<i64>)>) {
        let records = vec![record(0, 9), record(1, 19), record(0, 10)];
        let positions = vec![(tp(0), Some(12)), (tp(1), Some(22)), (tp(2), Some(5))];
        (records, positions)
    }

    #[test]
    fn with_nothing_polled_since_a_batch_commits_the_consumer_positions() {
        let (records, positions) = batch_and_positions();
        let offsets = durable_offsets(&records, &positions, &PolledSince::Nothing);
        // Partition 2 had no record in the batch: left to the idle commit.
        assert_eq!(offsets, HashMap::from([(tp(0), 12), (tp(1), 22)]));
    }

    #[test]
    fn a_partition_polled_since_commits_only_its_last_record() {
        let (records, positions) = batch_and_positions();
        let next = ahead(vec![record(1, 22)], Vec::new());
        let offsets = durable_offsets(&records, &positions, &PolledSince::Batch(&next));
        // Partition 0 was not polled since: its position (past the
        // markers) is durable, even under load.
        assert_eq!(offsets, HashMap::from([(tp(0), 12), (tp(1), 20)]));
    }

    #[test]
    fn a_partition_revoked_since_is_not_committed() {
        let (records, positions) = batch_and_positions();
        let next = ahead(Vec::new(), vec![GroupEvent::Revoked(vec![tp(1)])]);
        let offsets = durable_offsets(&records, &positions, &PolledSince::Batch(&next));
        assert_eq!(offsets, HashMap::from([(tp(0), 12)]));
    }

    #[test]
    fn after_a_failed_poll_only_the_records_count() {
        let (records, positions) = batch_and_positions();
        let offsets = durable_offsets(&records, &positions, &PolledSince::Unknown);
        assert_eq!(offsets, HashMap::from([(tp(0), 11), (tp(1), 20)]));
    }

    #[test]
    fn version_rows_go_to_the_second_phase_and_each_record_keeps_its_share() {
        let mut writes = Writes::default();
        let a = writes.push(vec![by_id("a", 1), by_owner("a", 1)], 3);
        let b = writes.push(vec![delete_by_owner("b", 2), by_id("b", 2)], 3);
        let c = writes.push(vec![by_owner("c", 1)], 3);
        assert!(writes.plain.iter().all(|m| !carries_version(m)));
        assert!(writes.versions.iter().all(carries_version));
        assert_eq!(writes.plain.len(), 3);
        assert_eq!(writes.versions.len(), 2);
        assert!(writes
            .plain
            .iter()
            .chain(&writes.versions)
            .all(|m| m.generation == 3));
        assert_eq!(
            writes.plain[a.plain.clone()],
            [{
                let mut m = by_owner("a", 1);
                m.generation = 3;
                m
            }]
        );
        assert_eq!(writes.versions[a.versions].len(), 1);
        assert!(matches!(
            writes.plain[b.plain.clone()][0].kind,
            MutationKind::Delete(_)
        ));
        assert_eq!(writes.versions[b.versions].len(), 1);
        assert_eq!(writes.plain[c.plain].len(), 1);
        assert!(c.versions.is_empty());
    }

    #[test]
    fn a_store_that_writes_atomically_gets_one_phase_in_record_order() {
        let mut writes = Writes {
            one_phase: true,
            ..Writes::default()
        };
        let a = writes.push(vec![by_id("a", 1), by_owner("a", 1)], 2);
        let b = writes.push(vec![by_id("b", 1)], 2);
        assert!(writes.versions.is_empty());
        assert_eq!(writes.plain.len(), 3);
        assert_eq!((a.plain, b.plain), (0..2, 2..3));
        assert!(carries_version(&writes.plain[0]));
    }

    #[test]
    fn deletes_and_rows_without_a_version_column_are_plain() {
        assert!(carries_version(&by_id("a", 1)));
        assert!(!carries_version(&by_owner("a", 1)));
        assert!(!carries_version(&delete_by_owner("a", 1)));
        // A column called `version` is not a `*_version` column.
        let m = upsert(
            BY_ID,
            1,
            row([("id", text("a")), ("version", Value::BigInt(1))]),
        );
        assert!(!carries_version(&m));
    }
}
