//! The projector: one consumer group per projection, folding events into
//! the read store.
//!
//! Delivery guarantee: **at-least-once**, made harmless by idempotent
//! writes. Per poll: decode, project, write every mutation, and only then
//! commit the consumed offsets — an offset is stored only after its output
//! is durable. A crash between the writes and the commit redelivers the
//! batch, which writes the same cells with the same timestamps.
//!
//! A store that does not answer is retried with backoff until it does (the
//! offsets are not committed meanwhile, so nothing is lost). An event that
//! cannot be projected (undecodable, refused by the projection or by the
//! store) is retried a few times, then sent to `<projection>.dlq` with why,
//! and its key is parked: later events of that key go to the dead-letter
//! topic too, so a read model never applies a key's events out of order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use platform::eventlog::{
    EventLog, GroupConfig, GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit,
    OutgoingRecord, Producer,
};
use platform::readstore::{Mutation, ReadStore, ReadStoreError};
use schemas::{AnyEvent, AvroCodec, OrderFulfillmentStep, TopicNames};
use tokio::sync::watch;

use crate::projection::{Input, Projected, Projection};

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// `<prefix>projector.<name>` (a rebuild uses its own group).
    pub group_id: String,
    /// The table generation written.
    pub generation: u32,
    pub max_batch: usize,
    pub poll_timeout: Duration,
    /// Attempts before an event is a poison event.
    pub attempts: u32,
    /// First backoff while the store is unavailable (doubles, capped at 5 s).
    pub backoff: Duration,
}

impl ProjectorConfig {
    pub fn new(topics: &TopicNames, projection: &dyn Projection) -> Self {
        Self {
            group_id: format!("{}projector.{}", topics.prefix, projection.name()),
            generation: 1,
            max_batch: 1000,
            poll_timeout: Duration::from_millis(50),
            attempts: 3,
            backoff: Duration::from_millis(100),
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
}

/// Counters for metrics, lag and benchmarks.
#[derive(Debug, Default, Clone)]
pub struct ProjectorStats {
    pub events: u64,
    pub mutations: u64,
    pub batches: u64,
    pub dead_letters: u64,
    pub store_retries: u64,
    /// Next offset per (topic, partition) whose output is durable.
    pub positions: HashMap<(String, i32), i64>,
}

pub struct Projector {
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    store: Arc<dyn ReadStore>,
    projection: Arc<dyn Projection>,
    topics: TopicNames,
    config: ProjectorConfig,
    parked: HashSet<Vec<u8>>,
    dead_letters: Option<Box<dyn Producer>>,
    stats: ProjectorStats,
    progress: Option<watch::Sender<ProjectorStats>>,
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
        Self {
            log,
            codec,
            store,
            projection,
            topics,
            config,
            parked: HashSet::new(),
            dead_letters: None,
            stats: ProjectorStats::default(),
            progress: None,
        }
    }

    pub fn with_progress(mut self, progress: watch::Sender<ProjectorStats>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs until `shutdown` (finishing the batch in hand).
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
        let mut group = GroupConfig::new(
            self.config.group_id.clone(),
            self.projection.topics(&self.topics),
        );
        group.client_id = self.config.group_id.clone();
        let mut member = self.log.join_group(group).await?;
        while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
            let polled = member
                .poll(self.config.max_batch, self.config.poll_timeout)
                .await?;
            let mut records = Vec::new();
            for event in polled {
                match event {
                    GroupEvent::Records(r) => records.extend(r),
                    // Parked keys are per partition owner: a new owner
                    // learns them again from the poison events' retries.
                    GroupEvent::Revoked(_) | GroupEvent::Assigned(_) => self.parked.clear(),
                }
            }
            if records.is_empty() {
                continue;
            }
            self.batch(&mut member, &records, &shutdown).await?;
        }
        member.close().await?;
        Ok(self.stats)
    }

    async fn batch(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        records: &[LogRecord],
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let mut mutations: Vec<Mutation> = Vec::new();
        for record in records {
            if self.parked.contains(&record.key) {
                self.dead_letter(
                    record,
                    "parked: an earlier event of this key is in the dead-letter topic",
                )
                .await?;
                continue;
            }
            match self.project(record).await {
                Ok(m) => mutations.extend(m),
                Err(why) => {
                    self.parked.insert(record.key.clone());
                    self.dead_letter(record, &why).await?;
                }
            }
        }
        let generation = self.config.generation;
        for m in &mut mutations {
            m.generation = generation;
        }
        let count = mutations.len();
        self.retrying(shutdown, |store| {
            let store = Arc::clone(store);
            let mutations = mutations.clone();
            async move { store.write(&mutations).await }
        })
        .await?;
        // Durable: now the offsets may move.
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        for r in records {
            let e = next.entry((r.topic.clone(), r.partition)).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
        let offsets: Vec<OffsetCommit> = next
            .iter()
            .map(|((topic, partition), offset)| OffsetCommit {
                tp: platform::eventlog::TopicPartition::new(topic.clone(), *partition),
                next_offset: *offset,
                metadata: String::new(),
            })
            .collect();
        member.commit_offsets(&offsets).await?;
        self.stats.events += records.len() as u64;
        self.stats.mutations += count as u64;
        self.stats.batches += 1;
        self.stats.positions.extend(next);
        if let Some(p) = &self.progress {
            p.send_replace(self.stats.clone());
        }
        Ok(())
    }

    /// Decodes and projects one record; `Err(why)` for a poison event
    /// (after the retries: a decode that fails for a registry outage is
    /// not poison, it is retried as an outage).
    async fn project(&self, record: &LogRecord) -> Result<Vec<Mutation>, String> {
        let Some(bytes) = record.value.as_deref() else {
            return Ok(Vec::new());
        };
        let mut last = String::new();
        for attempt in 0..self.config.attempts.max(1) {
            let input = if record.topic == self.topics.saga_events(schemas::ORDER_FULFILLMENT) {
                self.codec
                    .decode_named::<OrderFulfillmentStep>(bytes)
                    .await
                    .map(Input::SagaStep)
            } else {
                self.codec
                    .decode_event::<AnyEvent>(bytes)
                    .await
                    .map(|(envelope, event)| Input::Event { envelope, event })
            };
            match input {
                Ok(input) => {
                    let projected = Projected {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                        input,
                    };
                    match self.projection.project(&projected) {
                        Ok(m) => return Ok(m),
                        Err(e) => last = format!("projection: {e}"),
                    }
                }
                Err(e) => last = format!("decoding: {e}"),
            }
            tokio::time::sleep(self.config.backoff * (attempt + 1)).await;
        }
        Err(last)
    }

    async fn dead_letter(&mut self, record: &LogRecord, why: &str) -> Result<(), ProjectorError> {
        let topic = dead_letter_topic(&self.topics, self.projection.name());
        if self.dead_letters.is_none() {
            self.log
                .create_topics(&[platform::eventlog::TopicSpec::new(
                    topic.clone(),
                    1,
                    platform::eventlog::Cleanup::KeepForever,
                )])
                .await?;
            self.dead_letters = Some(self.log.producer(&self.config.group_id).await?);
        }
        tracing::warn!(
            projection = self.projection.name(),
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
        .with_header("dlq.reason", why.as_bytes().to_vec())
        .with_header("dlq.topic", record.topic.clone())
        .with_header("dlq.partition", record.partition.to_string())
        .with_header("dlq.offset", record.offset.to_string());
        for h in &record.headers {
            out = out.with_header(h.key.clone(), h.value.clone());
        }
        if let Some(producer) = &self.dead_letters {
            producer.send(out).await?;
        }
        self.stats.dead_letters += 1;
        Ok(())
    }

    /// Runs `op` until it succeeds, backing off while the store is
    /// unavailable; an invalid request or a shutdown ends it.
    async fn retrying<F, Fut>(
        &mut self,
        shutdown: &watch::Receiver<bool>,
        op: F,
    ) -> Result<(), ProjectorError>
    where
        F: Fn(&Arc<dyn ReadStore>) -> Fut,
        Fut: std::future::Future<Output = Result<(), ReadStoreError>>,
    {
        let mut backoff = self.config.backoff;
        loop {
            match op(&self.store).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retriable() && !*shutdown.borrow() => {
                    self.stats.store_retries += 1;
                    tracing::warn!(projection = self.projection.name(), error = %e, "read store unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
