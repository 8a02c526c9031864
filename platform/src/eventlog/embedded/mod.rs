//! The embedded event log: the single-binary twin of Kafka, durable in one
//! directory, with the same port semantics (read_committed, consumer groups,
//! exactly-once transactions with zombie fencing).
//!
//! # Design
//!
//! **Storage** (`store.rs`, `codec.rs`): one [redb] file in the directory.
//! Records live in a B-tree keyed by `(topic, partition, offset)`, topic
//! settings and committed group offsets in two small tables. redb is ACID
//! and copy-on-write: a commit either happened entirely or not at all, and
//! opening the file after a crash (kill -9, power loss) repairs it to the
//! last durable commit. redb also locks the file, so only one process can
//! open the directory; a second open fails with
//! `LogError::Storage("data dir … is in use …")`.
//!
//! **One writer** (`writer.rs`): a dedicated thread owns every write
//! transaction, hands out offsets, and group-commits everything queued
//! (producer sends, transactions, offset commits) with one durable commit
//! (fsync) per batch. Offsets become visible to readers only after that
//! commit returns: in-memory per-partition end offsets (`topics.rs`) are
//! published, then waiting pollers are woken through a `Notify`. Polls thus
//! learn "is there anything new" from an atomic, never from a table scan.
//! Live tails (`follow.rs`) wait on the same `Notify`.
//!
//! **One log transaction = one redb write transaction.** A member's
//! transaction is buffered in memory (`send` only validates and encodes);
//! `commit_transaction` writes its records of every topic plus the consumed
//! offsets in a single redb transaction. Open and aborted transactions are
//! simply never written, so every read is read_committed by construction
//! and a crashed member's open transaction needs no cleanup
//! (`transaction_timeout` has nothing to do here).
//!
//! **Group coordinator** (`groups.rs`, `member.rs`): in memory, one per
//! `EmbeddedLog`. Eager protocol with Kafka's range assignment: every
//! membership change bumps the generation; on its next poll each member
//! gets `Revoked(all it owned)` then `Assigned(its new set)` (a poll that
//! returns rebalance events returns no records; they follow on the next
//! poll), resuming from the group's committed offsets. A member is alive while it polls (a poll
//! waiting for records heartbeats every `poll_tick`); one silent for longer
//! than `min(session_timeout, max_poll_interval)` is removed by whoever
//! touches the group next — another member's poll, a join, or its own next
//! call — so its partitions move even if it never calls again. A timed-out
//! member that polls again rejoins (as a Kafka consumer does).
//! `close()` leaves at once; dropping a member without `close()` is a
//! crash: it keeps its partitions until its timeout.
//!
//! **Fencing.** A transaction must hold the newest epoch of its
//! transactional id (joining with a transactional id fences older members
//! with that id, like Kafka's producer epoch). A commit of consumed offsets
//! (in a transaction or not) is admitted only if, in addition, the member is
//! still in the group, works on the group's current generation (a
//! transaction also must not span a rebalance) and owns every partition it
//! commits offsets for. A transaction without offsets does not involve the
//! group, as in Kafka. Otherwise [`LogError::Fenced`] and nothing of the
//! transaction is written.
//! Admission and the durable write are tied together by a per-group gate:
//! commits hold it shared from the check until visible; a member taking
//! over partitions holds it exclusively while reading committed offsets. So
//! a new owner never starts from offsets that an admitted zombie commit is
//! about to overwrite.
//!
//! # What differs from Kafka
//!
//! - Offsets are contiguous (no transaction markers). Code must still not
//!   rely on it: the Kafka adapter has gaps.
//! - Compaction is eager: writing a key of a `Cleanup::Compact` topic deletes
//!   the record it supersedes in the same transaction (an index of the
//!   latest offset per key makes that a point delete), so compacted
//!   partitions have holes. Kafka compacts later and partially; readers of a
//!   compacted topic take the latest value per key either way. No retention:
//!   `Cleanup::Delete` topics keep every record.
//! - Single process: groups, heartbeats and fencing live in this process's
//!   memory; committed offsets and records are what survives a restart.
//! - Liveness is polling: there is no background heartbeat, so the session
//!   timeout also applies to a live member that does not poll.
//!
//! [redb]: https://docs.rs/redb

mod codec;
mod follow;
mod groups;
mod member;
mod producer;
mod store;
mod topics;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio::sync::Notify;

use self::member::{EmbeddedMember, Subscription};
use self::producer::EmbeddedProducer;
use self::store::ReadSpan;
use self::topics::TopicRegistry;
use self::writer::{Op, Prepared, Writer};
use crate::eventlog::{
    CommittedOffset, EventLog, GroupConfig, GroupDescription, GroupMember, GroupMemberDescription,
    LogError, LogRecord, OutgoingRecord, Producer, TopicDescription, TopicPartition, TopicSpec,
};
use crate::partitioner::partition_for_key;

/// Tuning of the embedded log. The defaults suit `quickstore dev` and tests.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Memory redb may use to cache pages.
    pub cache_size_bytes: usize,
    /// Most records (plus offsets) written by one group commit: bounds the
    /// latency one batch adds to the requests queued behind it.
    pub max_batch_records: usize,
    /// Records per read transaction in `read_range`, so a long replay
    /// neither loads a partition into memory nor pins one snapshot forever.
    pub read_chunk: usize,
    /// How often a waiting `poll` wakes to heartbeat and to notice
    /// rebalances. Capped at a third of each member's timeout.
    pub poll_tick: Duration,
    /// How long `open` waits for the directory's lock when it is held (only
    /// useful in-process, where a just-dropped log may release it a moment
    /// later); then it reports the directory as in use.
    pub lock_wait: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            cache_size_bytes: 256 * 1024 * 1024,
            max_batch_records: 10_000,
            read_chunk: 500,
            poll_tick: Duration::from_millis(50),
            lock_wait: Duration::from_millis(500),
        }
    }
}

/// The embedded event log. Cheap to clone (all clones share one database,
/// writer and group coordinator); the directory is released when the last
/// clone, producer and member are gone.
#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

/// What the writer thread and blocking reads share.
#[derive(Debug)]
pub(crate) struct Shared {
    db: redb::Database,
    topics: TopicRegistry,
    /// Woken after every durable batch.
    notify: Notify,
}

#[derive(Debug)]
pub(crate) struct Inner {
    shared: Arc<Shared>,
    writer: Writer,
    coordinator: groups::Coordinator,
    options: EmbeddedOptions,
    dir: PathBuf,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`. Blocks while it opens
    /// the database (and repairs it after a crash).
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedLog, LogError> {
        let db = store::open(dir, options.cache_size_bytes, options.lock_wait)?;
        let topics = TopicRegistry::default();
        for topic in store::load_topics(&db)? {
            topics.insert(topic);
        }
        let shared = Arc::new(Shared {
            db,
            topics,
            notify: Notify::new(),
        });
        let writer = Writer::spawn(Arc::clone(&shared), options.max_batch_records)?;
        tracing::info!(dir = %dir.display(), "embedded event log open");
        let inner = Inner {
            shared,
            writer,
            coordinator: groups::Coordinator::default(),
            options,
            dir: dir.to_path_buf(),
        };
        Ok(EmbeddedLog {
            inner: Arc::new(inner),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl Inner {
    /// Validates `record` (topic, partition) and encodes it for the writer.
    pub(crate) fn prepare(&self, record: &OutgoingRecord) -> Result<Prepared, LogError> {
        let topic = self.shared.topics.get(&record.topic)?;
        let partition = match record.partition {
            Some(p) => {
                topic.check_partition(p)?;
                p
            }
            None => partition_for_key(&record.key, topic.partition_count()),
        };
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(super::unix_now_ms);
        let payload = codec::encode(
            &record.key,
            record.value.as_deref(),
            &record.headers,
            timestamp_ms,
        )?;
        Ok(Prepared {
            topic,
            partition,
            key: record.key.clone(),
            payload,
        })
    }
}

/// Runs blocking database work off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, LogError>
where
    F: FnOnce() -> Result<T, LogError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| LogError::Storage(format!("blocking storage task failed: {e}")))?
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError> {
        if specs.is_empty() {
            return Ok(());
        }
        self.inner
            .writer
            .submit(Op::CreateTopics(specs.to_vec()))
            .await
            .map(|_| ())
    }

    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        Ok(self.inner.shared.topics.names())
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        Ok(self.inner.shared.topics.get(topic)?.partition_count())
    }

    async fn end_offset(&self, tp: &TopicPartition) -> Result<i64, LogError> {
        self.inner.shared.topics.get_tp(tp)?.end(tp.partition)
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, LogError> {
        let state = self.inner.shared.topics.get(topic)?;
        // One process, one copy: the replication factor and the in-sync
        // minimum are 1. The cleanup is the one the topic was created with,
        // reported in Kafka's config names so one drift check fits both.
        let mut spec = TopicSpec::new(topic, state.partition_count(), state.cleanup);
        spec.min_insync_replicas = Some(1);
        Ok(TopicDescription {
            name: topic.to_owned(),
            partitions: spec.partitions,
            replication_factor: 1,
            configs: spec
                .configs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
    }

    async fn describe_group(&self, group: &str) -> Result<GroupDescription, LogError> {
        let (state, members) = self.inner.coordinator.describe(group);
        Ok(GroupDescription {
            group: group.to_owned(),
            state,
            members: members
                .into_iter()
                .map(|member_id| GroupMemberDescription {
                    member_id,
                    client_id: "-".to_owned(),
                    host: "-".to_owned(),
                })
                .collect(),
        })
    }

    async fn offset_for_time(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<i64, LogError> {
        // No time index: a scan, which is fine for the one-process log.
        let end = self.end_offset(tp).await?;
        let mut records = self.read_range(tp.clone(), 0, end);
        while let Some(record) = records.next().await {
            let record = record?;
            if record.timestamp_ms >= timestamp_ms {
                return Ok(record.offset);
            }
        }
        Ok(end)
    }

    async fn start_offset(&self, tp: &TopicPartition) -> Result<i64, LogError> {
        // Nothing is ever deleted and offsets start at 0.
        self.inner.shared.topics.get_tp(tp)?;
        Ok(0)
    }

    fn read_range(
        &self,
        tp: TopicPartition,
        from: i64,
        until: i64,
    ) -> BoxStream<'static, Result<LogRecord, LogError>> {
        let topic = match self.inner.shared.topics.get_tp(&tp) {
            Ok(topic) => topic,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        // The end as of the call: records appended later are not included.
        let stop = until.min(topic.end(tp.partition).unwrap_or(0));
        let shared = Arc::clone(&self.inner.shared);
        let chunk = i64::try_from(self.inner.options.read_chunk.max(1)).unwrap_or(500);
        let partition = tp.partition;
        stream::try_unfold(from.max(0), move |next| {
            let shared = Arc::clone(&shared);
            let topic = Arc::clone(&topic);
            async move {
                if next >= stop {
                    return Ok(None);
                }
                let count = usize::try_from((stop - next).min(chunk)).unwrap_or(0);
                let span = ReadSpan {
                    topic,
                    partition,
                    from: next,
                    until: stop,
                    count,
                };
                let records =
                    blocking(move || store::read_spans(&shared.db, std::slice::from_ref(&span)))
                        .await?;
                match records.last().map(|r| r.offset + 1) {
                    Some(after) if after > next => Ok(Some((records, after))),
                    // Nothing left in `next..stop` (compaction can leave
                    // holes, never records past the end).
                    _ => Ok(None),
                }
            }
        })
        .map_ok(|records| stream::iter(records.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn follow(
        &self,
        topic: &str,
    ) -> Result<BoxStream<'static, Result<LogRecord, LogError>>, LogError> {
        let topic = self.inner.shared.topics.get(topic)?;
        // The stream holds the database: the directory stays in use until
        // it is dropped, as with a producer or a member.
        follow::follow(
            Arc::clone(&self.inner.shared),
            topic,
            self.inner.options.read_chunk,
            self.inner.options.poll_tick,
        )
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, CommittedOffset>, LogError> {
        let shared = Arc::clone(&self.inner.shared);
        let group = group.to_owned();
        let partitions = partitions.to_vec();
        blocking(move || store::read_offsets(&shared.db, &group, &partitions)).await
    }

    async fn producer(&self, client_id: &str) -> Result<Box<dyn Producer>, LogError> {
        Ok(Box::new(EmbeddedProducer::new(
            Arc::clone(&self.inner),
            client_id,
        )))
    }

    async fn join_group(&self, config: GroupConfig) -> Result<Box<dyn GroupMember>, LogError> {
        if config.topics.is_empty() {
            return Err(LogError::Invalid(format!(
                "group `{}`: a member must subscribe to at least one topic",
                config.group_id
            )));
        }
        let mut names = config.topics.clone();
        names.sort();
        names.dedup();
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            let count = self.inner.shared.topics.get(&name)?.partition_count();
            topics.push((name, count));
        }
        let timeout = config.session_timeout.min(config.max_poll_interval);
        let member_id = format!("{}-{}", config.client_id, uuid::Uuid::new_v4());
        let joined = self.inner.coordinator.join(
            &config.group_id,
            member_id,
            &topics,
            timeout,
            config.transactional_id.as_deref(),
            std::time::Instant::now(),
        )?;
        tracing::debug!(group = %config.group_id, member = %joined.member_id, "member joined");
        let sub = Subscription {
            group: config.group_id,
            topics,
            timeout,
        };
        Ok(Box::new(EmbeddedMember::new(
            Arc::clone(&self.inner),
            sub,
            joined.member_id,
            joined.gate,
            joined.txn,
        )))
    }
}
