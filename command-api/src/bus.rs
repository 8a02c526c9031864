//! The command bus: how an HTTP request becomes a command on
//! `<context>.commands` and how its outcome comes back.
//!
//! Sending: an idempotent producer, keyed by aggregate id (murmur2, so the
//! command lands on the partition whose processor owns the aggregate).
//! Answers: one live follower of `command-outcomes` per API instance
//! (read_committed: an outcome is visible only once its transaction — with
//! the events — committed). A waiter registers BEFORE the command is sent,
//! so an outcome can't slip past between send and wait.
//!
//! Delivery guarantee of the follower: at-most-once and that is enough — a
//! request whose outcome is missed gets 202 and its status URL, which the
//! bus answers from the outcomes it has seen; and a retry under the same
//! Idempotency-Key sends the same command again, which the processor
//! answers with its first outcome (ADR 0028). Misses are rare: the tail
//! rides out a broker restart in place, so it follows again from the end
//! (a gap) only after an error it cannot go on from.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use platform::eventlog::{EventLog, OutgoingRecord, Producer};
use schemas::{AnyCommand, AvroCodec, CommandEnvelope, CommandOutcome, Context, TopicNames};
use tokio::sync::oneshot;

/// How many recent outcomes the bus keeps for status lookups.
const RECENT_OUTCOMES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the event log: {0}")]
    Log(#[from] platform::eventlog::LogError),
    #[error("encoding the command: {0}")]
    Codec(#[from] schemas::CodecError),
}

/// What became of a submitted command.
#[derive(Debug, Clone)]
pub enum Submitted {
    Decided(CommandOutcome),
    /// Sent, durable, but not decided within the wait: ask again later.
    Pending {
        command_id: String,
    },
}

#[derive(Default)]
struct Outcomes {
    waiters: HashMap<String, Vec<oneshot::Sender<CommandOutcome>>>,
    recent: HashMap<String, CommandOutcome>,
    order: VecDeque<String>,
}

impl Outcomes {
    fn arrived(&mut self, outcome: CommandOutcome) {
        if let Some(waiters) = self.waiters.remove(&outcome.command_id) {
            for w in waiters {
                let _ = w.send(outcome.clone());
            }
        }
        if !self.recent.contains_key(&outcome.command_id) {
            self.order.push_back(outcome.command_id.clone());
            if self.order.len() > RECENT_OUTCOMES {
                if let Some(old) = self.order.pop_front() {
                    self.recent.remove(&old);
                }
            }
            // The first outcome is the one that counts: a duplicate's
            // outcome repeats it.
            self.recent.insert(outcome.command_id.clone(), outcome);
        }
    }
}

/// Sends commands and waits for their outcomes.
pub struct CommandBus {
    producer: Box<dyn Producer>,
    codec: Arc<AvroCodec>,
    topics: TopicNames,
    outcomes: Arc<Mutex<Outcomes>>,
    follower: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for CommandBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandBus")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Drop for CommandBus {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl CommandBus {
    /// Starts following `command-outcomes` from its current end.
    pub async fn start(
        log: Arc<dyn EventLog>,
        codec: Arc<AvroCodec>,
        topics: TopicNames,
        client_id: &str,
    ) -> Result<Self, BusError> {
        let producer = log.producer(client_id).await?;
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let topic = topics.command_outcomes();
        let mut stream = log.follow(&topic).await?;
        let follower = {
            let outcomes = Arc::clone(&outcomes);
            let codec = Arc::clone(&codec);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                loop {
                    while let Some(item) = stream.next().await {
                        let record = match item {
                            Ok(record) => record,
                            Err(e) => {
                                tracing::warn!(error = %e, "following command outcomes failed");
                                break;
                            }
                        };
                        platform::telemetry::metrics()
                            .record_waits("command-api/outcomes", std::slice::from_ref(&record));
                        let Some(bytes) = record.value.as_deref() else {
                            continue;
                        };
                        match codec.decode_named::<CommandOutcome>(bytes).await {
                            Ok(outcome) => {
                                if let Ok(mut o) = outcomes.lock() {
                                    o.arrived(outcome);
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "undecodable command outcome"),
                        }
                    }
                    // Follow again from the end: requests waiting in the gap
                    // get 202 and their status URL, and a retry of theirs
                    // is answered (see the module doc).
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match log.follow(&topic).await {
                        Ok(s) => stream = s,
                        Err(e) => {
                            tracing::warn!(error = %e, "re-following command outcomes failed")
                        }
                    }
                }
            })
        };
        Ok(Self {
            producer,
            codec,
            topics,
            outcomes,
            follower,
        })
    }

    /// Sends `command` and waits up to `wait` for its outcome.
    pub async fn submit(
        &self,
        context: Context,
        envelope: CommandEnvelope,
        command: &AnyCommand,
        wait: Duration,
    ) -> Result<Submitted, BusError> {
        let command_id = envelope.command_id.clone();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut o) = self.outcomes.lock() {
            if let Some(known) = o.recent.get(&command_id) {
                // Already decided (a retry of a request whose answer was
                // lost): the first outcome, nothing sent again.
                return Ok(Submitted::Decided(known.clone()));
            }
            o.waiters.entry(command_id.clone()).or_default().push(tx);
        }
        let topic = self.topics.commands(context);
        let stages = &platform::telemetry::metrics().command_submit;
        let sending = std::time::Instant::now();
        let sent = async {
            let bytes = self.codec.encode_command(&topic, &envelope, command)?;
            let mut record = OutgoingRecord::new(topic, envelope.aggregate_id.clone(), bytes)
                .with_header(
                    "command_type",
                    schemas::CommandPayload::record_name(command),
                )
                .with_header("command_id", command_id.clone())
                .with_header("aggregate_type", envelope.aggregate_type.clone())
                .with_header("correlation_id", envelope.correlation_id.clone());
            // The request's span (the HTTP layer's): the command processor
            // continues this trace.
            platform::telemetry::inject_current(&mut record.headers);
            self.producer.send(record).await?;
            Ok::<(), BusError>(())
        }
        .await;
        if let Err(e) = sent {
            self.forget(&command_id);
            return Err(e);
        }
        let appended = std::time::Instant::now();
        stages
            .with_label_values(&["append"])
            .observe(appended.duration_since(sending).as_secs_f64());
        match Self::received(rx, wait).await {
            Some(outcome) => {
                stages
                    .with_label_values(&["outcome"])
                    .observe(appended.elapsed().as_secs_f64());
                Ok(Submitted::Decided(outcome))
            }
            None => {
                self.forget(&command_id);
                Ok(Submitted::Pending { command_id })
            }
        }
    }

    async fn received(
        rx: oneshot::Receiver<CommandOutcome>,
        wait: Duration,
    ) -> Option<CommandOutcome> {
        tokio::time::timeout(wait, rx).await.ok()?.ok()
    }

    /// The outcome of a command already sent (one answered 202), waiting up
    /// to `wait` for it to arrive.
    pub async fn await_outcome(&self, command_id: &str, wait: Duration) -> Option<CommandOutcome> {
        let (tx, rx) = oneshot::channel();
        {
            let mut o = self.outcomes.lock().ok()?;
            // Checked under the same lock the follower delivers under: an
            // outcome arrives either before (recent) or after (the waiter).
            if let Some(known) = o.recent.get(command_id) {
                return Some(known.clone());
            }
            o.waiters.entry(command_id.to_owned()).or_default().push(tx);
        }
        let outcome = Self::received(rx, wait).await;
        if outcome.is_none() {
            self.forget(command_id);
        }
        outcome
    }

    fn forget(&self, command_id: &str) {
        if let Ok(mut o) = self.outcomes.lock() {
            o.waiters.remove(command_id);
        }
    }

    /// The outcome of `command_id`, if this instance has seen it.
    pub fn outcome(&self, command_id: &str) -> Option<CommandOutcome> {
        self.outcomes.lock().ok()?.recent.get(command_id).cloned()
    }
}
