//! The saga worker: a consumer-group member over the saga's inputs.
//!
//! Delivery guarantee: **exactly-once per step**. A poll's inputs, the
//! steps they cause (`sagas.order-fulfillment.events`), the commands those
//! steps send and the consumed offsets are one log transaction. A crash
//! before the commit leaves nothing; the next owner restores each saga from
//! its last step and consumes the same inputs again, producing the same
//! steps with the same (deterministic) command ids.
//!
//! Every input topic is keyed by the order id (payments and shipments use
//! the order id as their own; replies are keyed by the correlation id,
//! which the saga sets to the order id), and all are co-partitioned, so
//! the owner of partition p sees every input of the sagas that live in p.
//!
//! Timers are the deadlines stored in the steps: on assignment they are
//! rebuilt from the restored sagas, so a deadline fires after a restart
//! too. A timer fires in a transaction that also commits the partition's
//! input position: a zombie that lost the partition is fenced at commit
//! and cannot fire it twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use platform::eventlog::{
    EventLog, GroupConfig, GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit,
    OutgoingRecord, TopicPartition,
};
use schemas::hash_chain::event_hash;
use schemas::orders::{OrdersCommand, PlaceOrder};
use schemas::{
    AnyCommand, AvroCodec, CodecError, CommandEnvelope, EventEnvelope, NamedRecord,
    OrderFulfillmentStep, SagaCommand, TopicNames,
};
use tokio::sync::watch;
use tracing::Instrument;

use super::inputs::{route, InputTopics, Routed};
use super::outgoing::Outgoing;
use super::state::{FulfillmentState, FulfillmentTimeouts, Input, Transition};

/// Infrastructure time in ms since the epoch; handed to the pure saga as data.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The saga's actor in envelopes.
pub const SAGA_ACTOR: &str = "system:order-fulfillment";
/// Aggregate type of the saga's steps.
pub const SAGA_TYPE: &str = "OrderFulfillment";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `<prefix>sagas.order-fulfillment`.
    pub group_id: String,
    pub transactional_id: String,
    pub max_batch: usize,
    pub poll_timeout: Duration,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
    pub transaction_timeout: Duration,
    pub timeouts: FulfillmentTimeouts,
}

impl WorkerConfig {
    pub fn new(topics: &TopicNames, instance: &str) -> Self {
        Self {
            group_id: format!("{}sagas.{}", topics.prefix, schemas::ORDER_FULFILLMENT),
            transactional_id: format!(
                "{}sagas.{}.{instance}",
                topics.prefix,
                schemas::ORDER_FULFILLMENT
            ),
            max_batch: 1000,
            poll_timeout: Duration::from_millis(50),
            session_timeout: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
            transaction_timeout: Duration::from_secs(30),
            timeouts: FulfillmentTimeouts::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("encoding: {0}")]
    Codec(#[from] CodecError),
    #[error("saga state of {order_id}: {reason}")]
    State { order_id: String, reason: String },
    /// A step, a rejoin or a leave took longer than the group's poll
    /// interval: the member is wedged (seen after a broker restart: a
    /// producer fenced while aborting, its client stuck), so the worker
    /// stops and the process is restarted by its supervisor.
    #[error("the saga worker stalled: {0} took longer than {1:?}")]
    Stalled(&'static str, Duration),
}

impl SagaError {
    pub fn is_recoverable(&self) -> bool {
        match self {
            SagaError::Log(LogError::Fenced(_)) => true,
            SagaError::Log(e) => e.is_retriable(),
            SagaError::Codec(CodecError::Registry(_)) => true,
            SagaError::Codec(_) | SagaError::State { .. } | SagaError::Stalled(..) => false,
        }
    }
}

/// `work`, or [`SagaError::Stalled`] once `bound` has passed.
async fn bounded<T>(
    bound: Duration,
    what: &'static str,
    work: impl std::future::Future<Output = Result<T, SagaError>>,
) -> Result<T, SagaError> {
    tokio::time::timeout(bound, work)
        .await
        .unwrap_or(Err(SagaError::Stalled(what, bound)))
}

/// The `step` label of a stage (`reserving_stock`).
fn stage_label(stage: super::state::Stage) -> &'static str {
    use super::state::Stage;
    match stage {
        Stage::ReservingStock => "reserving_stock",
        Stage::AuthorizingPayment => "authorizing_payment",
        Stage::SchedulingShipment => "scheduling_shipment",
        Stage::AwaitingPickup => "awaiting_pickup",
        Stage::InTransit => "in_transit",
        Stage::Completed => "completed",
        Stage::Rejected => "rejected",
        Stage::Cancelled => "cancelled",
    }
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerStats {
    pub inputs: u64,
    pub steps: u64,
    pub commands: u64,
    pub timers_fired: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub rejected: u64,
    pub transactions: u64,
}

#[derive(Debug, Clone)]
struct Instance {
    state: FulfillmentState,
    version: i64,
    last_hash: Vec<u8>,
}

#[derive(Debug, Default)]
struct PartitionSagas {
    sagas: HashMap<String, Instance>,
    /// (deadline, order id) of waiting sagas.
    timers: BTreeSet<(i64, String)>,
}

impl PartitionSagas {
    fn put(&mut self, order_id: &str, instance: Instance) {
        self.timers.retain(|(_, id)| id != order_id);
        if instance.state.stage.is_terminal() {
            // Ended sagas are forgotten: memory holds only live orders. A
            // late input for one finds no saga and changes nothing.
            self.sagas.remove(order_id);
            return;
        }
        if let Some(deadline) = instance.state.deadline_at {
            self.timers.insert((deadline, order_id.to_owned()));
        }
        self.sagas.insert(order_id.to_owned(), instance);
    }
}

/// The order-fulfillment saga worker.
pub struct FulfillmentWorker {
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    inputs: InputTopics,
    steps_topic: String,
    topics: TopicNames,
    config: WorkerConfig,
    clock: Clock,
    partitions: HashMap<i32, PartitionSagas>,
    /// Next offset to consume per input partition (for timer commits).
    positions: HashMap<TopicPartition, i64>,
    stats: WorkerStats,
    progress: Option<watch::Sender<WorkerStats>>,
    /// What this worker last added to `quickstore_saga_instances`, by
    /// (state, step): the gauge is the sum over the process's workers.
    reported: HashMap<(&'static str, &'static str), i64>,
}

impl std::fmt::Debug for FulfillmentWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FulfillmentWorker")
            .field("config", &self.config)
            .field("partitions", &self.partitions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Staged changes of one transaction.
#[derive(Default)]
struct Batch {
    staged: HashMap<(i32, String), Instance>,
    stats: WorkerStats,
}

impl FulfillmentWorker {
    pub fn new(
        log: Arc<dyn EventLog>,
        codec: Arc<AvroCodec>,
        topics: &TopicNames,
        config: WorkerConfig,
        clock: Clock,
    ) -> Self {
        Self {
            log,
            codec,
            inputs: InputTopics::new(topics),
            steps_topic: topics.saga_events(schemas::ORDER_FULFILLMENT),
            topics: topics.clone(),
            config,
            clock,
            partitions: HashMap::new(),
            positions: HashMap::new(),
            stats: WorkerStats::default(),
            progress: None,
            reported: HashMap::new(),
        }
    }

    pub fn with_progress(mut self, progress: watch::Sender<WorkerStats>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs until `shutdown` turns true (finishing the batch in hand) or
    /// an unrecoverable error.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) -> Result<WorkerStats, SagaError> {
        let result = self.run_until(shutdown).await;
        // A stopped worker holds no instances.
        self.partitions.clear();
        self.publish_instances();
        result
    }

    async fn run_until(
        &mut self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<WorkerStats, SagaError> {
        self.check_co_partitioning().await?;
        // Every call on the member is bounded by the poll interval: past
        // it the group has dropped us anyway, and a member that does not
        // come back is wedged (librdkafka calls that never return after a
        // fatal producer error) — only a new process recovers from that.
        let bound = self.config.max_poll_interval;
        let mut member = bounded(bound, "joining the group", self.join()).await?;
        while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
            match bounded(bound, "a step", self.step(&mut member)).await {
                Ok(()) => {}
                Err(e) if e.is_recoverable() => {
                    tracing::warn!(error = %e, "saga worker recovering: rejoining the group");
                    self.partitions.clear();
                    self.positions.clear();
                    self.publish_instances();
                    // A failed leave is the old member's problem; a stalled
                    // one is the process's.
                    let left = bounded(bound, "leaving the group", async {
                        Ok(member.close().await?)
                    })
                    .await;
                    if let Err(stalled @ SagaError::Stalled(..)) = left {
                        return Err(stalled);
                    }
                    member = loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        match bounded(bound, "rejoining the group", self.join()).await {
                            Ok(m) => break m,
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
        bounded(bound, "leaving the group", async {
            Ok(member.close().await?)
        })
        .await?;
        Ok(self.stats)
    }

    async fn join(&self) -> Result<Box<dyn GroupMember>, SagaError> {
        let mut config = GroupConfig::new(self.config.group_id.clone(), self.inputs.all())
            .transactional(self.config.transactional_id.clone());
        config.client_id = self.config.transactional_id.clone();
        config.session_timeout = self.config.session_timeout;
        config.max_poll_interval = self.config.max_poll_interval;
        config.transaction_timeout = self.config.transaction_timeout;
        Ok(self.log.join_group(config).await?)
    }

    async fn check_co_partitioning(&self) -> Result<(), SagaError> {
        let expected = self.log.partition_count(&self.inputs.orders).await?;
        let mut topics = self.inputs.all();
        topics.push(self.steps_topic.clone());
        for topic in topics {
            let actual = self.log.partition_count(&topic).await?;
            if actual != expected {
                return Err(LogError::TopicMismatch {
                    topic,
                    expected,
                    actual,
                }
                .into());
            }
        }
        Ok(())
    }

    async fn step(&mut self, member: &mut Box<dyn GroupMember>) -> Result<(), SagaError> {
        let events = member
            .poll(self.config.max_batch, self.config.poll_timeout)
            .await?;
        // Instances change with inputs, rebalances and due deadlines only:
        // recount then, not on every idle poll.
        let changes = !events.is_empty() || !self.due_timers((self.clock)()).is_empty();
        let mut records: Vec<LogRecord> = Vec::new();
        for event in events {
            match event {
                GroupEvent::Revoked(tps) => {
                    self.process(member, std::mem::take(&mut records)).await?;
                    for tp in tps {
                        self.positions.remove(&tp);
                        if tp.topic == self.inputs.orders {
                            self.partitions.remove(&tp.partition);
                        }
                    }
                }
                GroupEvent::Assigned(tps) => {
                    self.process(member, std::mem::take(&mut records)).await?;
                    let committed = self
                        .log
                        .committed_offsets(&self.config.group_id, &tps)
                        .await?;
                    for tp in &tps {
                        let next = match committed.get(tp) {
                            Some(c) => c.next_offset,
                            None => self.log.start_offset(tp).await?,
                        };
                        self.positions.insert(tp.clone(), next);
                    }
                    for tp in tps {
                        if tp.topic == self.inputs.orders {
                            self.restore(tp.partition).await?;
                        }
                    }
                }
                GroupEvent::Records(batch) => {
                    platform::telemetry::metrics().record_waits("saga/order-fulfillment", &batch);
                    records.extend(batch);
                }
            }
        }
        self.process(member, records).await?;
        if changes {
            self.publish_instances();
        }
        Ok(())
    }

    /// Recounts the live instances by (state, step) and moves
    /// `quickstore_saga_instances` by the difference to the last report.
    fn publish_instances(&mut self) {
        let mut now: HashMap<(&'static str, &'static str), i64> = HashMap::new();
        for sagas in self.partitions.values() {
            for instance in sagas.sagas.values() {
                let state = if instance.state.deadline_at.is_some() {
                    "waiting"
                } else {
                    "active"
                };
                *now.entry((state, stage_label(instance.state.stage)))
                    .or_insert(0) += 1;
            }
        }
        let gauge = &platform::telemetry::metrics().saga_instances;
        let keys: std::collections::HashSet<_> =
            now.keys().chain(self.reported.keys()).copied().collect();
        for key in keys {
            let delta =
                now.get(&key).copied().unwrap_or(0) - self.reported.get(&key).copied().unwrap_or(0);
            let g = gauge.with_label_values(&[schemas::ORDER_FULFILLMENT, key.0, key.1]);
            if delta != 0 {
                g.add(delta);
            }
        }
        self.reported = now;
    }

    /// Rebuilds the live sagas of partition `p` from their last steps.
    async fn restore(&mut self, p: i32) -> Result<(), SagaError> {
        let tp = TopicPartition::new(self.steps_topic.clone(), p);
        let end = self.log.end_offset(&tp).await?;
        let start = self.log.start_offset(&tp).await?;
        let mut latest: HashMap<String, Instance> = HashMap::new();
        let mut stream = self.log.read_range(tp, start, end);
        while let Some(record) = stream.next().await {
            let record = record?;
            let Some(bytes) = record.value.as_deref() else {
                continue;
            };
            let step: OrderFulfillmentStep = self.codec.decode_named(bytes).await?;
            let order_id = step.envelope.aggregate_id.clone();
            let state: FulfillmentState =
                serde_json::from_str(&step.state_json).map_err(|e| SagaError::State {
                    order_id: order_id.clone(),
                    reason: e.to_string(),
                })?;
            latest.insert(
                order_id,
                Instance {
                    state,
                    version: step.envelope.version,
                    last_hash: step.envelope.hash,
                },
            );
        }
        let mut sagas = PartitionSagas::default();
        for (order_id, instance) in latest {
            sagas.put(&order_id, instance);
        }
        tracing::info!(
            partition = p,
            live = sagas.sagas.len(),
            timers = sagas.timers.len(),
            "restored order-fulfillment sagas"
        );
        self.partitions.insert(p, sagas);
        Ok(())
    }

    /// One transaction: the inputs, then any due timers.
    async fn process(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        records: Vec<LogRecord>,
    ) -> Result<(), SagaError> {
        let now = (self.clock)();
        let due = self.due_timers(now);
        if records.is_empty() && due.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        member.begin().await?;
        let result = self.fill(member, &records, &due, now, &mut batch).await;
        if let Err(e) = result {
            let _ = member.abort_transaction().await;
            return Err(e);
        }
        let offsets = self.offsets(&records, &due);
        member.commit_transaction(&offsets).await?;
        for o in offsets {
            self.positions.insert(o.tp, o.next_offset);
        }
        for ((p, order_id), instance) in batch.staged {
            if let Some(sagas) = self.partitions.get_mut(&p) {
                sagas.put(&order_id, instance);
            }
        }
        let s = &mut self.stats;
        s.inputs += batch.stats.inputs;
        s.steps += batch.stats.steps;
        s.commands += batch.stats.commands;
        s.timers_fired += batch.stats.timers_fired;
        s.completed += batch.stats.completed;
        s.cancelled += batch.stats.cancelled;
        s.rejected += batch.stats.rejected;
        s.transactions += 1;
        if let Some(progress) = &self.progress {
            progress.send_replace(self.stats);
        }
        Ok(())
    }

    fn due_timers(&self, now: i64) -> Vec<(i32, String)> {
        let mut due = Vec::new();
        for (p, sagas) in &self.partitions {
            for (deadline, order_id) in &sagas.timers {
                if *deadline > now {
                    break;
                }
                due.push((*p, order_id.clone()));
            }
        }
        due
    }

    async fn fill(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        records: &[LogRecord],
        due: &[(i32, String)],
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), SagaError> {
        for record in records {
            batch.stats.inputs += 1;
            // The saga step continues the trace of the event or reply that
            // caused it; the commands it sends carry this span on.
            let span = tracing::info_span!(
                "saga.step",
                otel.name = "order-fulfillment step",
                otel.kind = "consumer",
                saga = schemas::ORDER_FULFILLMENT,
                messaging.destination.name = %record.topic,
                messaging.kafka.partition = record.partition,
                messaging.kafka.offset = record.offset,
            );
            platform::telemetry::continue_from(&span, &record.headers);
            let routed = route(&self.codec, &self.inputs, record)
                .instrument(span.clone())
                .await?;
            let _entered = span.enter();
            let _trace = platform::telemetry::propagation::handling(&record.headers);
            match routed {
                Routed::Ignored => {}
                Routed::CartCheckedOut { envelope, event } => {
                    self.place_checked_out_order(member, &envelope, event, now)?;
                    batch.stats.commands += 1;
                }
                Routed::Saga {
                    order_id,
                    cause_id,
                    input,
                } => {
                    let cause_ref =
                        format!("{}/{}@{}", record.topic, record.partition, record.offset);
                    self.advance(
                        member,
                        batch,
                        record.partition,
                        &order_id,
                        &input,
                        &cause_id,
                        &cause_ref,
                        now,
                    )?;
                }
            }
        }
        for (p, order_id) in due {
            let deadline = self
                .current(batch, *p, order_id)
                .and_then(|i| i.state.deadline_at);
            if deadline.is_some_and(|d| d <= now) {
                // A deadline starts a trace of its own: nothing upstream
                // caused it.
                let span = tracing::info_span!(
                    "saga.deadline",
                    saga = schemas::ORDER_FULFILLMENT,
                    order_id = %order_id,
                );
                let _entered = span.enter();
                let _trace = platform::telemetry::propagation::handling(&[]);
                batch.stats.timers_fired += 1;
                let cause_ref = format!("deadline {}", deadline.unwrap_or_default());
                self.advance(
                    member,
                    batch,
                    *p,
                    order_id,
                    &Input::DeadlinePassed,
                    &cause_ref,
                    &cause_ref,
                    now,
                )?;
            }
        }
        Ok(())
    }

    fn current(&self, batch: &Batch, p: i32, order_id: &str) -> Option<Instance> {
        batch
            .staged
            .get(&(p, order_id.to_owned()))
            .cloned()
            .or_else(|| self.partitions.get(&p)?.sagas.get(order_id).cloned())
    }

    #[allow(clippy::too_many_arguments)]
    fn advance(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        batch: &mut Batch,
        p: i32,
        order_id: &str,
        input: &Input,
        cause_id: &str,
        cause_ref: &str,
        now: i64,
    ) -> Result<(), SagaError> {
        let (mut instance, transition) = match self.current(batch, p, order_id) {
            Some(mut instance) => {
                let Some(t) = instance.state.handle(input, now, &self.config.timeouts) else {
                    if instance.state.deadline_at.is_none() {
                        // A passed deadline the saga no longer waits on.
                        batch.staged.insert((p, order_id.to_owned()), instance);
                    }
                    return Ok(());
                };
                (instance, t)
            }
            None => match FulfillmentState::start(input, now) {
                Some((state, t)) => (
                    Instance {
                        state,
                        version: 0,
                        last_hash: Vec::new(),
                    },
                    t,
                ),
                None => return Ok(()),
            },
        };
        self.record_step(
            member,
            p,
            &mut instance,
            input,
            &transition,
            cause_id,
            cause_ref,
            now,
        )?;
        batch.stats.steps += 1;
        batch.stats.commands += transition.commands.len() as u64;
        match instance.state.stage {
            super::state::Stage::Completed => batch.stats.completed += 1,
            super::state::Stage::Cancelled => batch.stats.cancelled += 1,
            super::state::Stage::Rejected => batch.stats.rejected += 1,
            _ => {}
        }
        batch.staged.insert((p, order_id.to_owned()), instance);
        Ok(())
    }

    /// Appends the step (sealed into the saga's hash chain) and sends its
    /// commands.
    #[allow(clippy::too_many_arguments)]
    fn record_step(
        &self,
        member: &mut Box<dyn GroupMember>,
        p: i32,
        instance: &mut Instance,
        input: &Input,
        transition: &Transition,
        cause_id: &str,
        cause_ref: &str,
        now: i64,
    ) -> Result<(), SagaError> {
        let order_id = instance.state.order_id.clone();
        let version = instance.version + 1;
        let state_json = serde_json::to_string(&instance.state).map_err(|e| SagaError::State {
            order_id: order_id.clone(),
            reason: e.to_string(),
        })?;
        let mut step = OrderFulfillmentStep {
            envelope: EventEnvelope {
                event_id: uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_OID,
                    format!("order-fulfillment/{order_id}/step/{version}").as_bytes(),
                )
                .to_string(),
                aggregate_type: SAGA_TYPE.to_owned(),
                aggregate_id: order_id.clone(),
                version,
                occurred_at: now,
                command_id: cause_id.to_owned(),
                correlation_id: order_id.clone(),
                causation_id: cause_id.to_owned(),
                actor: SAGA_ACTOR.to_owned(),
                prev_hash: instance.last_hash.clone(),
                hash: Vec::new(),
            },
            cause: input.cause(),
            cause_ref: cause_ref.to_owned(),
            stage: instance.state.stage.wire(),
            commands: transition
                .commands
                .iter()
                .map(|c| SagaCommand {
                    command_id: c.command_id.clone(),
                    command_type: c.command_type().to_owned(),
                    aggregate_type: c.aggregate_type.to_owned(),
                    aggregate_id: c.aggregate_id.clone(),
                })
                .collect(),
            deadline_at: instance.state.deadline_at,
            note: transition.note.clone(),
            state_json,
        };
        // Same chain rule as aggregates: SHA-256(prev ‖ body with an empty hash).
        let mut canonical = Vec::with_capacity(512);
        if !step.write_record(&mut canonical) {
            return Err(CodecError::UnknownRecord(OrderFulfillmentStep::FULL_NAME.into()).into());
        }
        step.envelope.hash = event_hash(&step.envelope.prev_hash, &canonical).to_vec();
        let bytes = self.codec.encode_named(&self.steps_topic, &step)?;
        let mut out = OutgoingRecord::new(self.steps_topic.clone(), order_id.clone(), bytes)
            .with_header("event_type", OrderFulfillmentStep::FULL_NAME)
            .with_header("aggregate_type", SAGA_TYPE)
            .with_header("aggregate_id", order_id.clone())
            .with_header("event_id", step.envelope.event_id.clone());
        out.partition = Some(p);
        out.timestamp_ms = Some(now);
        platform::telemetry::inject_current(&mut out.headers);
        member.send(out)?;
        for command in &transition.commands {
            self.send_command(
                member,
                command,
                &order_id,
                &step.envelope.event_id,
                SAGA_ACTOR,
                true,
                now,
            )?;
        }
        instance.version = version;
        instance.last_hash = step.envelope.hash;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn send_command(
        &self,
        member: &mut Box<dyn GroupMember>,
        command: &Outgoing,
        correlation_id: &str,
        causation_id: &str,
        actor: &str,
        reply: bool,
        now: i64,
    ) -> Result<(), SagaError> {
        let topic = self.topics.commands(command.context);
        let envelope = CommandEnvelope {
            command_id: command.command_id.clone(),
            aggregate_type: command.aggregate_type.to_owned(),
            aggregate_id: command.aggregate_id.clone(),
            expected_version: None,
            issued_at: now,
            correlation_id: correlation_id.to_owned(),
            causation_id: causation_id.to_owned(),
            actor: actor.to_owned(),
            reply_to: reply.then(|| self.inputs.replies.clone()),
        };
        let bytes = self
            .codec
            .encode_command(&topic, &envelope, &command.command)?;
        let mut out = OutgoingRecord::new(topic, command.aggregate_id.clone(), bytes)
            .with_header("command_type", command.command_type())
            .with_header("aggregate_type", command.aggregate_type)
            .with_header("command_id", command.command_id.clone())
            .with_header("correlation_id", correlation_id.to_owned());
        platform::telemetry::inject_current(&mut out.headers);
        member.send(out)?;
        Ok(())
    }

    /// The checkout policy: a checked-out cart places its order, on behalf
    /// of the customer who checked out (so the order's ownership rule holds).
    fn place_checked_out_order(
        &self,
        member: &mut Box<dyn GroupMember>,
        envelope: &EventEnvelope,
        event: schemas::orders::CartCheckedOut,
        now: i64,
    ) -> Result<(), SagaError> {
        let order_id = event.order_id.clone();
        let command = Outgoing {
            context: schemas::Context::Orders,
            aggregate_type: "Order",
            aggregate_id: order_id.clone(),
            command_id: Outgoing::command_id(&order_id, &format!("checkout/{}", envelope.event_id)),
            command: AnyCommand::Orders(OrdersCommand::PlaceOrder(PlaceOrder {
                customer_id: envelope.aggregate_id.clone(),
                lines: event.lines,
                shipping_address: event.shipping_address,
                totals: event.totals,
                payment_token: event.payment_token,
            })),
        };
        // The order id is the correlation: the order's events and its saga
        // carry it from here on.
        let _ = now;
        self.send_command(
            member,
            &command,
            &order_id,
            &envelope.event_id,
            &envelope.actor,
            false,
            envelope.occurred_at,
        )
    }

    fn offsets(&self, records: &[LogRecord], due: &[(i32, String)]) -> Vec<OffsetCommit> {
        let mut next: HashMap<TopicPartition, i64> = HashMap::new();
        for r in records {
            let e = next.entry(r.topic_partition()).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
        // A timer-only transaction still commits the partition's position,
        // so the group's generation check fences a zombie firing it.
        for (p, _) in due {
            let tp = TopicPartition::new(self.inputs.orders.clone(), *p);
            if let std::collections::hash_map::Entry::Vacant(slot) = next.entry(tp) {
                if let Some(position) = self.positions.get(slot.key()) {
                    let position = *position;
                    slot.insert(position);
                }
            }
        }
        next.into_iter()
            .map(|(tp, next_offset)| OffsetCommit {
                tp,
                next_offset,
                metadata: String::new(),
            })
            .collect()
    }
}
