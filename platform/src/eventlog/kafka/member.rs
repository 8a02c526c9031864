//! A consumer-group member, optionally with an exactly-once transactional
//! producer bound to it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::convert::{
    blocking, kafka_error, to_kafka_headers, to_log_record, transaction_error, whole_ms,
};
use super::KafkaLog;
use crate::eventlog::{
    GroupConfig, GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit, OutgoingRecord,
    RecordPosition, TopicPartition,
};

/// See [`TransactionalProducer::create`]: the retry backoff between
/// back-to-back transactions.
pub const TXN_RETRY_BACKOFF_MS: &str = "10";

/// `fetch.wait.max.ms` of group members and followers: librdkafka's
/// default, stated (see [`KafkaMember::join`]).
pub(super) const FETCH_WAIT_MAX_MS: &str = "500";

/// librdkafka calls the rebalance callbacks from inside `poll`, on the
/// polling thread; we queue them as events so `poll` returns them in order
/// with the records.
#[derive(Default)]
struct MemberContext {
    events: Mutex<Vec<GroupEvent>>,
}

impl MemberContext {
    fn push(&self, event: GroupEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    fn take(&self) -> Vec<GroupEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    /// rdkafka's default asks librdkafka which rebalance protocol is in use
    /// — a request to the group thread with no timeout, which never answers
    /// while the consumer is closing: the revoke that `BaseConsumer`'s drop
    /// serves then hangs forever (seen when a processor stops during its
    /// first join). We configure the `range` strategy, which is eager, so
    /// assign/unassign are right without asking.
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr;
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            other => Rebalance::Error(rdkafka::error::KafkaError::Rebalance(other.into())),
        };
        self.pre_rebalance(base_consumer, &rebalance);
        let applied = match &rebalance {
            Rebalance::Assign(tpl) => base_consumer.assign(tpl),
            Rebalance::Revoke(_) | Rebalance::Error(_) => base_consumer.unassign(),
        };
        if let Err(e) = applied {
            tracing::warn!(error = %e, "applying a rebalance failed");
        }
        self.post_rebalance(base_consumer, &rebalance);
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.push(GroupEvent::Revoked(partitions_of(tpl)));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.push(GroupEvent::Assigned(partitions_of(tpl))),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

pub(super) struct KafkaMember {
    log: KafkaLog,
    config: GroupConfig,
    member_id: String,
    consumer: Arc<BaseConsumer<MemberContext>>,
    assignment: Vec<TopicPartition>,
    /// The group generation/member id as of the poll that returned the
    /// records being processed. Committing with it — not with the current
    /// metadata — is what lets the coordinator reject a zombie.
    polled_metadata: Option<Arc<ConsumerGroupMetadata>>,
    /// Set when a poll left the group and dropped records librdkafka had
    /// already handed over (its application positions are past them);
    /// cleared by the next assignment, which resets those positions.
    positions_stale: bool,
    transaction: Option<TransactionalProducer>,
}

struct TransactionalProducer {
    producer: FutureProducer,
    in_transaction: bool,
    /// A fatal error (a newer instance took our transactional id) poisons
    /// the producer for good: re-initialising would fence the newer
    /// instance in turn, so every later call answers `ProducerFenced`.
    poisoned: bool,
    pending: Vec<(String, DeliveryFuture)>,
}

impl std::fmt::Debug for KafkaMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMember")
            .field("group", &self.config.group_id)
            .field("member_id", &self.member_id)
            .field("assignment", &self.assignment)
            .finish_non_exhaustive()
    }
}

impl KafkaMember {
    pub(super) async fn join(log: KafkaLog, config: GroupConfig) -> Result<Self, LogError> {
        let session_ms = config.session_timeout.as_millis().max(1);
        // librdkafka insists on max.poll.interval >= session timeout.
        let max_poll_ms = config.max_poll_interval.as_millis().max(session_ms);
        let heartbeat_ms = (session_ms / 3).max(50);
        let consumer: BaseConsumer<MemberContext> = log
            .config()
            .client_config()
            .set("group.id", &config.group_id)
            .set("client.id", &config.client_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", session_ms.to_string())
            .set("heartbeat.interval.ms", heartbeat_ms.to_string())
            .set("max.poll.interval.ms", max_poll_ms.to_string())
            // Eager protocol: a rebalance revokes everything first, which is
            // what makes "drop state on Revoked, restore on Assigned" safe.
            .set("partition.assignment.strategy", "range")
            // How long the broker parks a fetch that finds nothing. It
            // answers the moment a record becomes readable (for
            // read_committed: when the transaction's marker lands), so this
            // costs no latency — measured: a committed record reaches a
            // read_committed consumer in ~5 ms with 500 as with 10. What it
            // costs is idle work: every member re-fetches this often from
            // every broker, and at 20 ms the ~20 members of a system kept
            // the broker busy doing nothing (docs/performance.md, "Idle
            // cost"). The price of a long wait is a seek or rebalance
            // waiting for the parked fetch; those are rare.
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
            .create_with_context(MemberContext::default())
            .map_err(|e| kafka_error("creating a consumer", &e))?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| kafka_error("subscribe", &e))?;

        let transaction = match &config.transactional_id {
            Some(id) => Some(TransactionalProducer::create(&log, &config, id).await?),
            None => None,
        };
        Ok(Self {
            member_id: format!("{}-{}", config.client_id, uuid::Uuid::new_v4()),
            log,
            config,
            consumer: Arc::new(consumer),
            assignment: Vec::new(),
            polled_metadata: None,
            positions_stale: false,
            transaction,
        })
    }

    fn transaction_mut(&mut self) -> Result<&mut TransactionalProducer, LogError> {
        self.transaction.as_mut().ok_or(LogError::NotTransactional)
    }
}

impl TransactionalProducer {
    async fn create(log: &KafkaLog, config: &GroupConfig, id: &str) -> Result<Self, LogError> {
        let txn_ms = config.transaction_timeout.as_millis().max(1000);
        let producer: FutureProducer = log
            .config()
            .client_config()
            .set("client.id", &config.client_id)
            .set("transactional.id", id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("transaction.timeout.ms", txn_ms.to_string())
            // librdkafka requires socket.timeout.ms <= transaction.timeout.ms.
            .set("socket.timeout.ms", txn_ms.min(60_000).to_string())
            .set("linger.ms", "1")
            // Right after a commit the broker is still writing the previous
            // transaction's markers and answers the next AddPartitionsToTxn
            // with CONCURRENT_TRANSACTIONS, which the client retries after a
            // backoff. A short retry.backoff.ms keeps other retries short
            // too; for this one librdkafka 2.12 was still seen waiting
            // ~20 ms (debug=eos), as the Java client does
            // (docs/performance.md).
            .set("retry.backoff.ms", TXN_RETRY_BACKOFF_MS)
            .set("partitioner", "murmur2_random")
            .create()
            .map_err(|e| kafka_error("creating a transactional producer", &e))?;
        let init = producer.clone();
        let timeout = log.config().operation_timeout;
        blocking(move || {
            init.init_transactions(timeout)
                .map_err(|e| transaction_error("init_transactions", &e))
        })
        .await?;
        Ok(Self {
            producer,
            in_transaction: false,
            poisoned: false,
            pending: Vec::new(),
        })
    }
}

/// One blocking poll round: collects rebalance events and records in the
/// order librdkafka delivered them.
fn poll_blocking(
    consumer: &BaseConsumer<MemberContext>,
    max_records: usize,
    timeout: Duration,
) -> Result<(Vec<GroupEvent>, Option<ConsumerGroupMetadata>), LogError> {
    let deadline = Instant::now() + timeout;
    let mut out: Vec<GroupEvent> = Vec::new();
    let mut records: Vec<LogRecord> = Vec::new();
    let mut left_group = false;
    loop {
        // Wait in short slices so rebalance events are reported promptly;
        // once something arrived only drain what is already fetched.
        let wait = if records.is_empty() && out.is_empty() {
            whole_ms(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            )
        } else {
            Duration::ZERO
        };
        let polled = consumer.poll(wait);
        for event in consumer.context().take() {
            if let GroupEvent::Revoked(revoked) = &event {
                // Records of a revoked partition can no longer be committed
                // by us; the next owner re-reads them from the committed offset.
                records.retain(|r| {
                    !revoked
                        .iter()
                        .any(|tp| tp.topic == r.topic && tp.partition == r.partition)
                });
            }
            if !records.is_empty() {
                out.push(GroupEvent::Records(std::mem::take(&mut records)));
            }
            out.push(event);
        }
        match polled {
            Some(Ok(message)) => {
                records.push(to_log_record(&message));
                if records.len() >= max_records {
                    break;
                }
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PollExceeded))) => {
                // We were too slow and left the group: whatever this round
                // fetched can no longer be committed by us, and the group
                // metadata read after leaving carries no generation the
                // coordinator would check. Drop both; librdkafka rejoins on
                // the next poll and reports the new assignment.
                tracing::warn!("max.poll.interval exceeded: this member left its group");
                left_group = true;
                records.clear();
                for event in out.iter_mut() {
                    if let GroupEvent::Records(rs) = event {
                        rs.clear();
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
                if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
                    return Err(kafka_error("consumer", &e));
                }
            }
            None => {
                if !records.is_empty() || !out.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    if !records.is_empty() {
        out.push(GroupEvent::Records(records));
    }
    out.retain(|e| !matches!(e, GroupEvent::Records(rs) if rs.is_empty()));
    let metadata = if left_group {
        None
    } else {
        consumer.group_metadata()
    };
    Ok((out, metadata))
}

#[async_trait]
impl GroupMember for KafkaMember {
    fn member_id(&self) -> String {
        self.member_id.clone()
    }

    async fn poll(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<GroupEvent>, LogError> {
        let consumer = Arc::clone(&self.consumer);
        let max_records = max_records.max(1);
        let (events, metadata) =
            blocking(move || poll_blocking(&consumer, max_records, timeout)).await?;
        for event in &events {
            match event {
                GroupEvent::Revoked(tps) => self.assignment.retain(|tp| !tps.contains(tp)),
                GroupEvent::Assigned(tps) => {
                    self.positions_stale = false;
                    for tp in tps {
                        if !self.assignment.contains(tp) {
                            self.assignment.push(tp.clone());
                        }
                    }
                }
                GroupEvent::Records(_) => {}
            }
        }
        if metadata.is_none() {
            // Left the group during this poll: nothing polled before can be
            // committed any more.
            self.polled_metadata = None;
            self.positions_stale = true;
        } else if events
            .iter()
            .any(|e| matches!(e, GroupEvent::Records(_) | GroupEvent::Assigned(_)))
            || self.polled_metadata.is_none()
        {
            // Records, or a new assignment (a member may commit positions of
            // partitions it was just given before any record arrives — the
            // saga's timers do): this generation's metadata is the one to
            // commit with.
            self.polled_metadata = metadata.map(Arc::new);
        }
        Ok(events)
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.clone()
    }

    fn positions(&self) -> Vec<(TopicPartition, Option<i64>)> {
        // librdkafka's application position (rd_kafka_position, local
        // state): the offset after the last message handed to the app —
        // and after control messages, which librdkafka consumes without
        // handing them over but whose offsets it stores (see
        // rd_kafka_op_handle_std), so it passes a transaction's commit
        // marker once the app has polled past it.
        if self.positions_stale {
            // Past records that were dropped, not returned: unknown until
            // the new assignment resets them.
            return self
                .assignment
                .iter()
                .map(|tp| (tp.clone(), None))
                .collect();
        }
        let known = match self.consumer.position() {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((TopicPartition::new(e.topic(), e.partition()), o)),
                    _ => None,
                })
                .collect::<std::collections::HashMap<_, _>>(),
            Err(e) => {
                tracing::debug!(error = %e, "reading consumer positions");
                std::collections::HashMap::new()
            }
        };
        self.assignment
            .iter()
            .map(|tp| (tp.clone(), known.get(tp).copied()))
            .collect()
    }

    async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), LogError> {
        if !self.assignment.contains(tp) {
            return Err(LogError::NotAssigned(tp.clone()));
        }
        let consumer = Arc::clone(&self.consumer);
        let tp = tp.clone();
        let timeout = self.log.config().operation_timeout;
        blocking(move || {
            consumer
                .seek(&tp.topic, tp.partition, Offset::Offset(offset), timeout)
                .map_err(|e| kafka_error(&tp.to_string(), &e))
        })
        .await
    }

    async fn commit_offsets(&mut self, offsets: &[OffsetCommit]) -> Result<(), LogError> {
        let tpl = offsets_list(offsets)?;
        let consumer = Arc::clone(&self.consumer);
        blocking(move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| kafka_error("commit offsets", &e))
        })
        .await
    }

    async fn begin(&mut self) -> Result<(), LogError> {
        let txn = self.transaction_mut()?;
        if txn.poisoned {
            return Err(LogError::ProducerFenced(
                "this member's transactional id belongs to a newer instance".into(),
            ));
        }
        if txn.in_transaction {
            return Err(LogError::Invalid("a transaction is already open".into()));
        }
        txn.producer.begin_transaction().map_err(|e| {
            let err = transaction_error("begin_transaction", &e);
            if matches!(err, LogError::ProducerFenced(_)) {
                txn.poisoned = true;
            }
            err
        })?;
        txn.in_transaction = true;
        Ok(())
    }

    fn send(&mut self, record: OutgoingRecord) -> Result<(), LogError> {
        let txn = self.transaction_mut()?;
        if !txn.in_transaction {
            return Err(LogError::NoTransaction);
        }
        let mut future_record = FutureRecord::to(&record.topic)
            .key(&record.key)
            .headers(to_kafka_headers(&record.headers));
        if let Some(value) = &record.value {
            future_record = future_record.payload(value);
        }
        if let Some(p) = record.partition {
            future_record = future_record.partition(p);
        }
        if let Some(ts) = record.timestamp_ms {
            future_record = future_record.timestamp(ts);
        }
        let mut future_record = Some(future_record);
        loop {
            let Some(r) = future_record.take() else {
                return Err(LogError::Kafka("record lost while queueing".into()));
            };
            match txn.producer.send_result(r) {
                Ok(delivery) => {
                    txn.pending.push((record.topic.clone(), delivery));
                    return Ok(());
                }
                // The local queue is full: let librdkafka drain it a little.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    future_record = Some(r);
                    txn.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(transaction_error(&record.topic, &e)),
            }
        }
    }

    async fn commit_transaction(
        &mut self,
        offsets: &[OffsetCommit],
    ) -> Result<Vec<RecordPosition>, LogError> {
        let timeout = self.log.config().operation_timeout;
        let metadata = self.polled_metadata.clone();
        let assignment = self.assignment.clone();
        let txn = self.transaction_mut()?;
        if !txn.in_transaction {
            return Err(LogError::NoTransaction);
        }
        // Wait for every record's delivery report BEFORE committing: rdkafka's
        // `commit_transaction` flushes first, and its flush parks in a
        // 100 ms poll whenever anything is outstanding — a fixed 100 ms per
        // transaction. Awaiting the reports (served by the producer's poll
        // thread as acks arrive) leaves nothing for that flush to wait on.
        let pending = std::mem::take(&mut txn.pending);
        let mut positions = Vec::with_capacity(pending.len());
        let mut result = Ok(());
        for (topic, delivery) in pending {
            match delivery.await {
                Ok(Ok(d)) => positions.push(RecordPosition {
                    topic,
                    partition: d.partition,
                    offset: d.offset,
                }),
                Ok(Err((e, _))) => {
                    result = Err(transaction_error("delivery", &e));
                    break;
                }
                Err(_) => {
                    result = Err(LogError::TransactionAborted("delivery report lost".into()));
                    break;
                }
            }
        }
        if result.is_ok() {
            result = commit_blocking(txn, offsets, metadata, &assignment, timeout).await;
        }
        txn.in_transaction = false;
        if let Err(err) = result {
            if matches!(err, LogError::ProducerFenced(_)) {
                txn.poisoned = true;
            }
            let producer = txn.producer.clone();
            // Abort so the next transaction can start (for a poisoned
            // producer this fails too, and nothing more is sent anyway).
            let _ = blocking(move || {
                producer
                    .abort_transaction(timeout)
                    .map_err(|e| transaction_error("abort", &e))
            })
            .await;
            return Err(err);
        }
        Ok(positions)
    }

    async fn abort_transaction(&mut self) -> Result<(), LogError> {
        let timeout = self.log.config().operation_timeout;
        let txn = self.transaction_mut()?;
        if !txn.in_transaction {
            return Ok(());
        }
        txn.pending.clear();
        txn.in_transaction = false;
        let producer = txn.producer.clone();
        let result = blocking(move || {
            producer
                .abort_transaction(timeout)
                .map_err(|e| transaction_error("abort", &e))
        })
        .await;
        if let Err(LogError::ProducerFenced(_)) = &result {
            txn.poisoned = true;
        }
        result
    }

    async fn close(self: Box<Self>) -> Result<(), LogError> {
        let mut this = self;
        if this.transaction.as_ref().is_some_and(|t| t.in_transaction) {
            let _ = this.abort_transaction().await;
        }
        let consumer = Arc::clone(&this.consumer);
        drop(this);
        // Dropping the last handle closes the consumer, which leaves the
        // group at once (a crash would leave it to the session timeout).
        blocking(move || {
            consumer.unsubscribe();
            drop(consumer);
            Ok(())
        })
        .await
    }
}

async fn commit_blocking(
    txn: &TransactionalProducer,
    offsets: &[OffsetCommit],
    metadata: Option<Arc<ConsumerGroupMetadata>>,
    assignment: &[TopicPartition],
    timeout: Duration,
) -> Result<(), LogError> {
    if let Some(o) = offsets.iter().find(|o| !assignment.contains(&o.tp)) {
        return Err(LogError::Fenced(format!(
            "{} is not assigned to this member",
            o.tp
        )));
    }
    let tpl = offsets_list(offsets)?;
    let producer = txn.producer.clone();
    blocking(move || {
        if !offsets_empty(&tpl) {
            let Some(metadata) = metadata else {
                return Err(LogError::Fenced(
                    "no valid group metadata: this member left its group since it polled".into(),
                ));
            };
            retrying("send_offsets_to_transaction", || {
                producer.send_offsets_to_transaction(&tpl, &metadata, timeout)
            })?;
        }
        retrying("commit_transaction", || {
            producer.commit_transaction(timeout)
        })
    })
    .await
}

/// librdkafka's rule for transactional calls: a retriable error means "call
/// again" (the operation may still be in flight; aborting now would fail
/// and wedge the producer), an abortable one means "abort", a fatal one
/// means the producer is done.
fn retrying(
    what: &str,
    mut call: impl FnMut() -> rdkafka::error::KafkaResult<()>,
) -> Result<(), LogError> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 0;
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "{what}: retrying");
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            }
            Err(e) => return Err(transaction_error(what, &e)),
        }
    }
}

fn offsets_empty(tpl: &TopicPartitionList) -> bool {
    tpl.count() == 0
}

fn offsets_list(offsets: &[OffsetCommit]) -> Result<TopicPartitionList, LogError> {
    let mut tpl = TopicPartitionList::new();
    for o in offsets {
        tpl.add_partition_offset(&o.tp.topic, o.tp.partition, Offset::Offset(o.next_offset))
            .map_err(|e| kafka_error(&o.tp.to_string(), &e))?;
        if let Some(mut elem) = tpl.find_partition(&o.tp.topic, o.tp.partition) {
            elem.set_metadata(o.metadata.clone());
        }
    }
    Ok(tpl)
}
