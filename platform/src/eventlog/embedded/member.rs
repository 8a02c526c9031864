//! A consumer-group member: positions, polling, rebalance events and the
//! exactly-once transaction buffer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use super::groups::{CommitRequest, Heartbeat, TxnIdentity};
use super::store::{self, ReadSpan};
use super::topics::TopicState;
use super::writer::{Op, Prepared};
use super::{blocking, Inner};
use crate::eventlog::{
    GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit, OutgoingRecord, RecordPosition,
    TopicPartition,
};

/// One owned partition and where this member reads it next.
#[derive(Debug)]
struct Owned {
    tp: TopicPartition,
    topic: Arc<TopicState>,
    position: i64,
}

impl Owned {
    /// Committed records not yet consumed (never negative after a seek past
    /// the end: it just waits).
    fn available(&self) -> i64 {
        (self.topic.end(self.tp.partition).unwrap_or(0) - self.position).max(0)
    }
}

/// The open transaction: buffered records, never written until commit.
#[derive(Debug)]
struct OpenTxn {
    records: Vec<Prepared>,
    /// The generation it was begun in. A rebalance delivered meanwhile
    /// (eager: everything was revoked) dooms it if it commits offsets.
    generation: u64,
}

/// What the member needs to (re)join its group.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub group: String,
    /// (topic, partition count), sorted and deduplicated.
    pub topics: Vec<(String, i32)>,
    /// `min(session_timeout, max_poll_interval)`: silent longer = gone.
    pub timeout: Duration,
}

/// Dropping a member without [`GroupMember::close`] is a crash: it stays in
/// the group (holding its partitions) until its timeout expires, exactly
/// like a killed process. Its open transaction is simply never written.
#[derive(Debug)]
pub(crate) struct EmbeddedMember {
    log: Arc<Inner>,
    sub: Subscription,
    member_id: String,
    gate: Arc<RwLock<()>>,
    txn_identity: Option<TxnIdentity>,
    /// The last generation whose assignment this member applied (0 = none
    /// yet: the first poll delivers `Assigned`).
    generation: u64,
    owned: Vec<Owned>,
    /// Where the next fetch starts its round over `owned` (fairness).
    round_robin: usize,
    txn: Option<OpenTxn>,
}

impl EmbeddedMember {
    pub fn new(
        log: Arc<Inner>,
        sub: Subscription,
        member_id: String,
        gate: Arc<RwLock<()>>,
        txn_identity: Option<TxnIdentity>,
    ) -> Self {
        Self {
            log,
            sub,
            member_id,
            gate,
            txn_identity,
            generation: 0,
            owned: Vec::new(),
            round_robin: 0,
            txn: None,
        }
    }

    /// How often a waiting poll wakes to heartbeat and re-check the group:
    /// well inside the timeout, so a member blocked in `poll` stays alive.
    fn tick(&self) -> Duration {
        self.log
            .options
            .poll_tick
            .min(self.sub.timeout / 3)
            .max(Duration::from_millis(1))
    }

    /// Heartbeats; on a rebalance returns `Revoked`/`Assigned`.
    async fn heartbeat(&mut self, now: Instant) -> Result<Vec<GroupEvent>, LogError> {
        let coordinator = &self.log.coordinator;
        let (group, id) = (self.sub.group.as_str(), self.member_id.as_str());
        match coordinator.heartbeat(group, id, self.generation, now) {
            Heartbeat::Current => Ok(Vec::new()),
            Heartbeat::Changed {
                generation,
                assignment,
            } => self.apply(generation, assignment).await,
            Heartbeat::Gone => {
                // We were timed out (we did not poll in time). Like a Kafka
                // consumer after max.poll.interval, rejoin on this poll: the
                // app sees everything revoked, then its new assignment.
                tracing::info!(group, member = id, "member timed out; rejoining its group");
                coordinator.rejoin(group, id, &self.sub.topics, self.sub.timeout, now)?;
                match coordinator.heartbeat(group, id, self.generation, Instant::now()) {
                    Heartbeat::Changed {
                        generation,
                        assignment,
                    } => self.apply(generation, assignment).await,
                    Heartbeat::Current => Ok(Vec::new()),
                    Heartbeat::Gone => Err(LogError::Fenced(format!(
                        "member {id} could not rejoin group {group}"
                    ))),
                }
            }
        }
    }

    /// Applies the assignment of `generation`: eager protocol, so
    /// everything owned is revoked and the new set starts from the group's
    /// committed offsets.
    async fn apply(
        &mut self,
        generation: u64,
        assignment: Vec<TopicPartition>,
    ) -> Result<Vec<GroupEvent>, LogError> {
        // Wait for commits admitted under earlier generations to land, so
        // the offsets read below include them (see writer::Op::Commit).
        let gate = Arc::clone(&self.gate).write_owned().await;
        let shared = Arc::clone(&self.log.shared);
        let group = self.sub.group.clone();
        let tps = assignment.clone();
        let committed = blocking(move || store::read_offsets(&shared.db, &group, &tps)).await?;
        drop(gate);

        // Fallible work first: the member's state changes only once it can
        // deliver both events.
        let mut owned = Vec::with_capacity(assignment.len());
        for tp in &assignment {
            let topic = self.log.shared.topics.get_tp(tp)?;
            let position = committed.get(tp).map_or(0, |c| c.next_offset);
            owned.push(Owned {
                tp: tp.clone(),
                topic,
                position,
            });
        }
        let mut events = Vec::with_capacity(2);
        if !self.owned.is_empty() {
            events.push(GroupEvent::Revoked(
                self.owned.iter().map(|o| o.tp.clone()).collect(),
            ));
        }
        events.push(GroupEvent::Assigned(assignment));
        self.owned = owned;
        self.round_robin = 0;
        self.generation = generation;
        Ok(events)
    }

    /// Up to `max_records` available records, fairly over the owned
    /// partitions; empty (without touching the database) when none has
    /// new data.
    async fn fetch(&mut self, max_records: usize) -> Result<Vec<LogRecord>, LogError> {
        let with_data = self.owned.iter().filter(|o| o.available() > 0).count();
        if max_records == 0 || with_data == 0 {
            return Ok(Vec::new());
        }
        // Each partition with data gets an equal share (rounded up); the
        // starting partition rotates so none is starved by a busy one.
        let quota = max_records.div_ceil(with_data);
        let n = self.owned.len();
        let mut remaining = max_records;
        let mut plan = Vec::with_capacity(with_data);
        let mut spans = Vec::with_capacity(with_data);
        for i in 0..n {
            let idx = (self.round_robin + i) % n;
            let owned = &self.owned[idx];
            let available = usize::try_from(owned.available()).unwrap_or(usize::MAX);
            let take = available.min(quota).min(remaining);
            if take == 0 {
                continue;
            }
            plan.push(idx);
            spans.push(ReadSpan {
                topic: Arc::clone(&owned.topic),
                partition: owned.tp.partition,
                from: owned.position,
                until: owned.position + owned.available(),
                count: take,
            });
            remaining -= take;
            if remaining == 0 {
                break;
            }
        }
        self.round_robin = (self.round_robin + 1) % n;

        // Where each span ends: a span that yields fewer records than asked
        // read everything up to its end (holes of a compacted topic), so
        // the position moves there — else it would look "available" forever.
        let span_ends: Vec<(usize, i64, usize)> = plan
            .iter()
            .zip(&spans)
            .map(|(&idx, span)| (idx, span.until, span.count))
            .collect();
        let shared = Arc::clone(&self.log.shared);
        let records = blocking(move || store::read_spans(&shared.db, &spans)).await?;
        // Records come back span by span (= plan order); advance each
        // partition's position past the last record read from it.
        let mut step = 0;
        for record in &records {
            while let Some(&idx) = plan.get(step) {
                let owned = &mut self.owned[idx];
                if owned.tp.partition == record.partition && owned.tp.topic == record.topic {
                    owned.position = record.offset + 1;
                    break;
                }
                step += 1;
            }
        }
        for (idx, until, asked) in span_ends {
            let owned = &mut self.owned[idx];
            let read = records
                .iter()
                .filter(|r| r.partition == owned.tp.partition && r.topic == owned.tp.topic)
                .count();
            if read < asked {
                owned.position = owned.position.max(until);
            }
        }
        Ok(records)
    }

    /// The fencing check of both commit paths (see `groups.rs`); returns
    /// the gate guard the write must carry until it is durable.
    async fn admit(
        &self,
        generation: u64,
        offsets: &[OffsetCommit],
        txn: Option<&TxnIdentity>,
    ) -> Result<OwnedRwLockReadGuard<()>, LogError> {
        let gate = Arc::clone(&self.gate).read_owned().await;
        let request = CommitRequest {
            group: &self.sub.group,
            member_id: &self.member_id,
            generation,
            txn,
        };
        let tps = offsets.iter().map(|o| &o.tp);
        self.log
            .coordinator
            .admit_commit(&request, tps, Instant::now())?;
        Ok(gate)
    }
}

#[async_trait]
impl GroupMember for EmbeddedMember {
    fn member_id(&self) -> String {
        self.member_id.clone()
    }

    async fn poll(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<GroupEvent>, LogError> {
        let deadline = Instant::now() + timeout;
        let tick = self.tick();
        let mut next_heartbeat = Instant::now();
        // Our own handle, so the notification borrow does not pin `self`.
        let shared = Arc::clone(&self.log.shared);
        loop {
            // Register for the append notification before looking at the
            // ends, so an append in between still wakes us.
            let notified = shared.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();

            let now = Instant::now();
            if now >= next_heartbeat {
                next_heartbeat = now + tick;
                let events = self.heartbeat(now).await?;
                if !events.is_empty() {
                    // Rebalance events come alone; records follow on the
                    // next poll, after the app restored its state (as with
                    // Kafka, where the fetch follows the assignment).
                    return Ok(events);
                }
            }
            let records = self.fetch(max_records).await?;
            if !records.is_empty() {
                return Ok(vec![GroupEvent::Records(records)]);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = tokio::time::Instant::from_std(deadline.min(next_heartbeat));
            let _ = tokio::time::timeout_at(wake, notified).await;
        }
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().map(|o| o.tp.clone()).collect()
    }

    fn positions(&self) -> Vec<(TopicPartition, Option<i64>)> {
        // No markers here: the position is where the next fetch starts.
        self.owned
            .iter()
            .map(|o| (o.tp.clone(), Some(o.position)))
            .collect()
    }

    async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::Invalid(format!(
                "cannot seek {tp} to negative offset {offset}"
            )));
        }
        let owned = self
            .owned
            .iter_mut()
            .find(|o| &o.tp == tp)
            .ok_or_else(|| LogError::NotAssigned(tp.clone()))?;
        owned.position = offset;
        Ok(())
    }

    async fn commit_offsets(&mut self, offsets: &[OffsetCommit]) -> Result<(), LogError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let gate = self.admit(self.generation, offsets, None).await?;
        let op = Op::Commit {
            records: Vec::new(),
            group: self.sub.group.clone(),
            offsets: offsets.to_vec(),
            gate: Some(gate),
        };
        self.log.writer.submit(op).await.map(|_| ())
    }

    async fn begin(&mut self) -> Result<(), LogError> {
        let identity = self
            .txn_identity
            .as_ref()
            .ok_or(LogError::NotTransactional)?;
        self.log.coordinator.check_txn(identity)?;
        if self.txn.is_some() {
            return Err(LogError::Invalid("a transaction is already open".into()));
        }
        self.txn = Some(OpenTxn {
            records: Vec::new(),
            generation: self.generation,
        });
        Ok(())
    }

    fn send(&mut self, record: OutgoingRecord) -> Result<(), LogError> {
        let txn = self.txn.as_mut().ok_or(LogError::NoTransaction)?;
        // Validate now so the caller learns of a bad topic/partition at the
        // faulty send, not at commit.
        txn.records.push(self.log.prepare(&record)?);
        Ok(())
    }

    async fn commit_transaction(
        &mut self,
        offsets: &[OffsetCommit],
    ) -> Result<Vec<RecordPosition>, LogError> {
        // Taken out first: whatever happens below, the transaction is over.
        let txn = self.txn.take().ok_or(LogError::NoTransaction)?;
        // Only offsets tie a transaction to the group (see `groups.rs`).
        if !offsets.is_empty() && txn.generation != self.generation {
            return Err(LogError::Fenced(format!(
                "member {} saw a rebalance (generation {} -> {}) during its transaction",
                self.member_id, txn.generation, self.generation
            )));
        }
        // The records were validated at send; the check below decides
        // whether any of it may become visible.
        let gate = match self
            .admit(txn.generation, offsets, self.txn_identity.as_ref())
            .await
        {
            Ok(gate) => gate,
            Err(e) => {
                tracing::warn!(member = %self.member_id, error = %e, "transaction fenced; discarded");
                return Err(e);
            }
        };
        if txn.records.is_empty() && offsets.is_empty() {
            return Ok(Vec::new());
        }
        let op = Op::Commit {
            records: txn.records,
            group: self.sub.group.clone(),
            offsets: offsets.to_vec(),
            gate: Some(gate),
        };
        self.log.writer.submit(op).await
    }

    async fn abort_transaction(&mut self) -> Result<(), LogError> {
        self.txn = None;
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<(), LogError> {
        self.log.coordinator.leave(&self.sub.group, &self.member_id);
        Ok(())
    }
}
