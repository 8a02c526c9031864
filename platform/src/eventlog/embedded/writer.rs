//! The single writer: one OS thread that owns every redb write transaction
//! and group-commits whatever is queued.
//!
//! Why one thread: redb allows one write transaction at a time anyway, and
//! the durable commit (fsync) dominates the cost of a write. The command API
//! sends many records concurrently; draining the queue into one transaction
//! turns N fsyncs into one while keeping each caller's answer "durable when
//! you hear back". Offsets are handed out here too, so a partition's offsets
//! are contiguous and in commit order without any further locking.
//!
//! A log transaction (records + consumed offsets) is one request and so is
//! entirely inside one redb transaction: it becomes durable and visible all
//! at once or not at all. A failed redb commit fails every request of the
//! batch; nothing of it is visible and the reserved offsets are reused.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{oneshot, OwnedRwLockReadGuard};

use super::store::{self, db_err, LATEST, OFFSETS, RECORDS, TOPICS};
use super::topics::TopicState;
use super::Shared;
use crate::eventlog::{LogError, OffsetCommit, RecordPosition, TopicSpec};

/// A record validated and encoded by the caller, ready to be appended.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub topic: Arc<TopicState>,
    pub partition: i32,
    /// The record's key (the compaction index of compacted topics needs it).
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// What a request asks the writer to do.
#[derive(Debug)]
pub(crate) enum Op {
    /// A non-transactional append (`Producer::send`).
    Append(Prepared),
    /// Records and the group's consumed offsets, atomically. Also used for
    /// a plain offset commit (no records).
    Commit {
        records: Vec<Prepared>,
        group: String,
        offsets: Vec<OffsetCommit>,
        /// The group's commit gate, held until the write is durable and
        /// visible, so that a member taking over partitions (which takes
        /// the gate exclusively) cannot read committed offsets this write
        /// is about to change. Travels with the request so that a caller
        /// dropping its future cannot release it early.
        gate: Option<OwnedRwLockReadGuard<()>>,
    },
    /// Create the topics that do not exist yet (its own transaction).
    CreateTopics(Vec<TopicSpec>),
}

impl Op {
    fn record_count(&self) -> usize {
        match self {
            Op::Append(_) => 1,
            Op::Commit {
                records, offsets, ..
            } => records.len() + offsets.len(),
            Op::CreateTopics(_) => 0,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<RecordPosition>, LogError>>;

#[derive(Debug)]
struct Request {
    op: Op,
    reply: Reply,
}

/// The handle to the writer thread. Dropping it lets the thread finish what
/// is queued and waits for it, so that the database file is released when
/// the last `EmbeddedLog` clone goes away (a reopen in the same process
/// works right after).
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(shared: Arc<Shared>, max_batch_records: usize) -> Result<Self, LogError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || run(&shared, &rx, max_batch_records.max(1)))
            .map_err(|e| LogError::Storage(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `op` and waits until it is durable: the positions of the
    /// records appended, in request order.
    pub async fn submit(&self, op: Op) -> Result<Vec<RecordPosition>, LogError> {
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(LogError::Closed)?;
        tx.send(Request { op, reply })
            .map_err(|_| LogError::Closed)?;
        answer.await.map_err(|_| LogError::Closed)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("embedded event log writer thread panicked");
            }
        }
    }
}

fn run(shared: &Shared, rx: &mpsc::Receiver<Request>, max_batch_records: usize) {
    let mut held_back: Option<Request> = None;
    loop {
        let first = match held_back.take() {
            Some(request) => request,
            None => match rx.recv() {
                Ok(request) => request,
                Err(mpsc::RecvError) => return,
            },
        };
        let first = match first.op {
            Op::CreateTopics(specs) => {
                let _ = first
                    .reply
                    .send(create_topics(shared, &specs).map(|()| Vec::new()));
                continue;
            }
            op => Request {
                op,
                reply: first.reply,
            },
        };
        let mut size = first.op.record_count();
        let mut batch = vec![first];
        while size < max_batch_records {
            match rx.try_recv() {
                Ok(request) if matches!(request.op, Op::CreateTopics(_)) => {
                    held_back = Some(request);
                    break;
                }
                Ok(request) => {
                    size += request.op.record_count();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        commit_batch(shared, batch);
    }
}

/// Partitions whose offsets a batch reserved, to publish or roll back.
#[derive(Default)]
struct Touched {
    seen: HashMap<(usize, i32), ()>,
    list: Vec<(Arc<TopicState>, i32)>,
}

impl Touched {
    fn add(&mut self, topic: &Arc<TopicState>, partition: i32) {
        // The Arc's address identifies the topic (one TopicState per name).
        let id = (Arc::as_ptr(topic) as usize, partition);
        if self.seen.insert(id, ()).is_none() {
            self.list.push((Arc::clone(topic), partition));
        }
    }
}

fn commit_batch(shared: &Shared, batch: Vec<Request>) {
    let mut touched = Touched::default();
    match write_batch(shared, &batch, &mut touched) {
        Ok(positions) => {
            // Durable: make it visible, wake pollers, then answer. Gates are
            // released after this (when `batch` drops), i.e. after the
            // records are visible.
            for (topic, partition) in &touched.list {
                topic.publish(*partition);
            }
            shared.notify.notify_waiters();
            for (request, positions) in batch.into_iter().zip(positions) {
                let _ = request.reply.send(Ok(positions));
                release(request.op);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "embedded event log write failed");
            for (topic, partition) in &touched.list {
                topic.rollback(*partition);
            }
            let message = e.to_string();
            for request in batch {
                let _ = request.reply.send(Err(LogError::Storage(message.clone())));
            }
        }
    }
}

/// Lets go of what a request held until it was durable and visible.
fn release(op: Op) {
    if let Op::Commit {
        gate: Some(gate), ..
    } = op
    {
        drop(gate);
    }
}

fn write_batch(
    shared: &Shared,
    batch: &[Request],
    touched: &mut Touched,
) -> Result<Vec<Vec<RecordPosition>>, LogError> {
    let txn = shared.db.begin_write().map_err(db_err)?;
    let mut answers = Vec::with_capacity(batch.len());
    {
        let mut records = txn.open_table(RECORDS).map_err(db_err)?;
        let mut offsets = txn.open_table(OFFSETS).map_err(db_err)?;
        let mut latest = txn.open_table(LATEST).map_err(db_err)?;
        let mut append = |record: &Prepared| -> Result<RecordPosition, LogError> {
            touched.add(&record.topic, record.partition);
            let offset = record.topic.reserve(record.partition)?;
            let name = record.topic.name.as_str();
            records
                .insert((name, record.partition, offset), record.payload.as_slice())
                .map_err(db_err)?;
            if record.topic.compacted {
                // Eager compaction, in the same transaction: the record a
                // key's new value supersedes is deleted, so a restore reads
                // one snapshot per aggregate, not one per change. (Kafka
                // compacts later and partially; readers of a compacted topic
                // take the latest per key either way.)
                let superseded = latest
                    .insert((name, record.partition, record.key.as_slice()), offset)
                    .map_err(db_err)?
                    .map(|old| old.value());
                if let Some(old) = superseded {
                    records
                        .remove((name, record.partition, old))
                        .map_err(db_err)?;
                }
            }
            Ok(RecordPosition {
                topic: name.to_owned(),
                partition: record.partition,
                offset,
            })
        };
        for request in batch {
            match &request.op {
                Op::Append(record) => answers.push(vec![append(record)?]),
                Op::Commit {
                    records: batch_records,
                    group,
                    offsets: commits,
                    ..
                } => {
                    let positions = batch_records
                        .iter()
                        .map(&mut append)
                        .collect::<Result<Vec<_>, _>>()?;
                    for c in commits {
                        offsets
                            .insert(
                                (group.as_str(), c.tp.topic.as_str(), c.tp.partition),
                                (c.next_offset, c.metadata.as_str()),
                            )
                            .map_err(db_err)?;
                    }
                    answers.push(positions);
                }
                // Never batched (see `run`); answer harmlessly if it were.
                Op::CreateTopics(_) => answers.push(Vec::new()),
            }
        }
    }
    txn.commit().map_err(db_err)?;
    Ok(answers)
}

/// Creates the missing topics of `specs` in one transaction; existing ones
/// must have the same partition count. All-or-nothing.
fn create_topics(shared: &Shared, specs: &[TopicSpec]) -> Result<(), LogError> {
    let mut missing: Vec<&TopicSpec> = Vec::new();
    for spec in specs {
        if spec.name.is_empty() {
            return Err(LogError::Invalid("topic name must not be empty".into()));
        }
        if spec.partitions <= 0 {
            return Err(LogError::Invalid(format!(
                "topic `{}` needs at least one partition, got {}",
                spec.name, spec.partitions
            )));
        }
        let existing = match shared.topics.get(&spec.name) {
            Ok(topic) => Some(topic.partition_count()),
            Err(_) => missing
                .iter()
                .find(|m| m.name == spec.name)
                .map(|m| m.partitions),
        };
        match existing {
            Some(actual) if actual != spec.partitions => {
                return Err(LogError::TopicMismatch {
                    topic: spec.name.clone(),
                    expected: spec.partitions,
                    actual,
                });
            }
            Some(_) => {}
            None => missing.push(spec),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let txn = shared.db.begin_write().map_err(db_err)?;
    {
        let mut table = txn.open_table(TOPICS).map_err(db_err)?;
        for spec in &missing {
            let meta = store::encode_topic(spec.partitions, spec.cleanup)?;
            table
                .insert(spec.name.as_str(), meta.as_slice())
                .map_err(db_err)?;
        }
    }
    txn.commit().map_err(db_err)?;
    for spec in missing {
        let ends = vec![0; usize::try_from(spec.partitions).unwrap_or(0)];
        shared
            .topics
            .insert(TopicState::new(spec.name.clone(), &ends, spec.cleanup));
    }
    Ok(())
}
