//! The event-log port: what every QuickStore service may assume about the log.
//!
//! The semantics (which the conformance suite in `platform/tests/conformance`
//! pins down for every adapter):
//!
//! - **Topics and partitions.** A record's partition is
//!   [`crate::partitioner::partition_for_key`] of its key unless the record
//!   names one; offsets in a partition only grow. Offsets may have gaps (Kafka
//!   spends offsets on transaction markers), so code never assumes `n+1`.
//! - **Reads are read_committed.** Records of an aborted or still-open
//!   transaction are never returned, by [`EventLog::read_range`] or by a
//!   [`GroupMember`].
//! - **Exactly-once transactions.** A [`GroupMember`] configured with a
//!   transactional id can `begin`, `send` records to any topics, and
//!   `commit_transaction` with the offsets it consumed: the records and the
//!   offsets become visible together or not at all. A member that lost its
//!   partitions in a rebalance it did not take part in (a *zombie*) gets
//!   [`LogError::Fenced`] and nothing of its transaction becomes visible.
//! - **Consumer groups.** Partitions of the subscribed topics are shared
//!   among the members; a member learns of changes through
//!   [`GroupEvent::Revoked`] / [`GroupEvent::Assigned`] returned by `poll`
//!   — these are the rebalance callbacks, delivered in order on the polling
//!   task (as Kafka's Java client calls its listener from inside `poll`):
//!   no record of a partition follows its `Revoked`. A newly assigned
//!   partition resumes from the group's committed offset (or the start).
//! - **Live tails.** [`EventLog::follow`] reads every partition of a topic
//!   from its read_committed end as of the call, live, without a group:
//!   what commits after the call arrives, what commits before does not.
//! - **A crashed member** (dropped without [`GroupMember::close`], or a
//!   killed process) keeps its partitions until its session times out; its
//!   open transaction never becomes visible.

pub mod embedded;
mod error;
pub mod kafka;
mod types;

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use error::LogError;
pub use types::{
    Cleanup, CommittedOffset, GroupConfig, GroupDescription, GroupEvent, GroupMemberDescription,
    Header, LogRecord, OffsetCommit, OutgoingRecord, RecordPosition, TopicDescription,
    TopicPartition, TopicSpec,
};

/// Now as Unix milliseconds, the clock of record timestamps (a record sent
/// without one is stamped with it; consumers measure waits against it). 0
/// for a clock before 1970.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The log: topic administration, range reads, producers and group members.
#[async_trait]
pub trait EventLog: Send + Sync + Debug + 'static {
    /// Creates the topics that do not exist yet. An existing topic with the
    /// same partition count is fine; a different count is
    /// [`LogError::TopicMismatch`] (co-partitioning would silently break).
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError>;

    /// Names of every topic that exists (in any order).
    async fn list_topics(&self) -> Result<Vec<String>, LogError>;

    /// Number of partitions of `topic`.
    async fn partition_count(&self, topic: &str) -> Result<i32, LogError>;

    /// Partitions, replication factor and effective configs of `topic`
    /// ([`LogError::UnknownTopic`] if it does not exist): what operators
    /// compare with the [`TopicSpec`] the topic should have.
    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, LogError>;

    /// The state and members of consumer group `group` as its coordinator
    /// sees them now (state `Dead` and no members for a group it does not
    /// know). Diagnostics only: nothing decides on it.
    async fn describe_group(&self, group: &str) -> Result<GroupDescription, LogError>;

    /// The first offset of `tp` whose record timestamp is at or after
    /// `timestamp_ms` (Kafka's offsets-for-times), or the partition's
    /// [`EventLog::end_offset`] when no record is that late.
    async fn offset_for_time(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<i64, LogError>;

    /// The read_committed end of a partition: the offset after the last
    /// record a read_committed reader can see now (Kafka's last stable
    /// offset).
    async fn end_offset(&self, tp: &TopicPartition) -> Result<i64, LogError>;

    /// The first offset still stored in a partition.
    async fn start_offset(&self, tp: &TopicPartition) -> Result<i64, LogError>;

    /// read_committed records of `tp` with `from <= offset < until`, in
    /// offset order. The stream ends at `until` or at the partition's end as
    /// of the call, whichever comes first. Used for restore and replay.
    fn read_range(
        &self,
        tp: TopicPartition,
        from: i64,
        until: i64,
    ) -> BoxStream<'static, Result<LogRecord, LogError>>;

    /// A live tail of every partition `topic` has at the call,
    /// read_committed: records committed after the call arrive as they
    /// commit, each partition in offset order (no order across partitions).
    /// The command API follows `command-outcomes` with it to answer the
    /// requests it sent.
    ///
    /// The start is fixed before this returns: each partition's
    /// [`EventLog::end_offset`] (read_committed end) as of the call. So a
    /// caller can send a request right after and be sure its outcome is
    /// delivered, and nothing committed before the call is replayed — except
    /// that on Kafka records committed before the call that sit behind a
    /// transaction still open at the call (above the last stable offset)
    /// arrive too: a follower must tolerate records it did not wait for.
    ///
    /// No consumer group and no commits: it is a reader that operators
    /// never see in `kafka-consumer-groups`, and it costs the group
    /// coordinator nothing. The stream ends only when dropped (which stops
    /// the reader within a poll interval) or after yielding an error (the
    /// caller follows again, from the then current end). An error is
    /// yielded only when the tail cannot go on from where it is (a fatal
    /// client, a truncated log, a deleted topic): a broker restart or a
    /// dropped connection is not one, and the tail resumes from its own
    /// position, missing nothing.
    async fn follow(
        &self,
        topic: &str,
    ) -> Result<BoxStream<'static, Result<LogRecord, LogError>>, LogError>;

    /// The offsets `group` has committed for `partitions` (absent = none).
    async fn committed_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, CommittedOffset>, LogError>;

    /// An idempotent, non-transactional producer (the command API's).
    async fn producer(&self, client_id: &str) -> Result<Box<dyn Producer>, LogError>;

    /// Joins `config.group_id` as a new member.
    async fn join_group(&self, config: GroupConfig) -> Result<Box<dyn GroupMember>, LogError>;
}

/// Appends single records outside any consumer transaction.
#[async_trait]
pub trait Producer: Send + Sync + Debug {
    /// Appends `record`; resolves once it is durable (acks=all) with its
    /// position.
    async fn send(&self, record: OutgoingRecord) -> Result<RecordPosition, LogError>;
}

/// One member of a consumer group. Owned by one task; not shared.
#[async_trait]
pub trait GroupMember: Send + Debug {
    /// The member id the group knows this member by (diagnostics).
    fn member_id(&self) -> String;

    /// Waits up to `timeout` for something to happen and returns it:
    /// rebalance events first, then at most `max_records` records.
    async fn poll(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<GroupEvent>, LogError>;

    /// Partitions this member owns now.
    fn assignment(&self) -> Vec<TopicPartition>;

    /// The consume position of every owned partition: the offset of the
    /// next record `poll` would return. It moves past what `poll` skips
    /// without returning — on Kafka the commit/abort markers of
    /// transactions, which take offsets of their own — so once a member
    /// has consumed everything, its position equals
    /// [`EventLog::end_offset`] (a position computed as "last record's
    /// offset + 1" stays behind a trailing marker forever). `None` for a
    /// partition whose position the member does not know yet (Kafka: it
    /// has not fetched from it since it was assigned). A local call: no
    /// round trip to the log.
    fn positions(&self) -> Vec<(TopicPartition, Option<i64>)>;

    /// Moves the consume position of an owned partition (e.g. back to the
    /// committed offset after an aborted transaction).
    async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), LogError>;

    /// At-least-once: commits consumed offsets outside any transaction.
    async fn commit_offsets(&mut self, offsets: &[OffsetCommit]) -> Result<(), LogError>;

    /// Starts a transaction. Needs `GroupConfig::transactional_id`.
    async fn begin(&mut self) -> Result<(), LogError>;

    /// Adds a record to the open transaction.
    fn send(&mut self, record: OutgoingRecord) -> Result<(), LogError>;

    /// Commits the open transaction together with `offsets` (the next
    /// offset to consume, per partition) under this member's group
    /// generation. Returns the positions of the records sent, in send order.
    /// [`LogError::Fenced`] when this member is a zombie (the group moved
    /// on): nothing is visible, rejoin. [`LogError::ProducerFenced`] when a
    /// newer instance took the transactional id: stop.
    async fn commit_transaction(
        &mut self,
        offsets: &[OffsetCommit],
    ) -> Result<Vec<RecordPosition>, LogError>;

    /// Discards the open transaction (no-op if none).
    async fn abort_transaction(&mut self) -> Result<(), LogError>;

    /// Leaves the group cleanly so its partitions move at once.
    async fn close(self: Box<Self>) -> Result<(), LogError>;
}

/// Every committed record of `topic`, partition by partition, each in
/// offset order (replay, export, checks). Loads the whole topic: for
/// large topics stream [`EventLog::read_range`] instead.
pub async fn read_topic(log: &dyn EventLog, topic: &str) -> Result<Vec<LogRecord>, LogError> {
    use futures::StreamExt;
    let mut out = Vec::new();
    for partition in 0..log.partition_count(topic).await? {
        let tp = TopicPartition::new(topic, partition);
        let end = log.end_offset(&tp).await?;
        let mut stream = log.read_range(tp, 0, end);
        while let Some(record) = stream.next().await {
            out.push(record?);
        }
    }
    Ok(out)
}

/// How long adapters wait for broker round trips they cannot make async.
pub(crate) const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(30);
