//! The projector service: every projection on its serving generation.
//!
//! Per projection a supervisor task reads the serving generation
//! ([`generations::serving`]) and runs a live [`Projector`] for it. It
//! polls the pointer every `pointer_poll`; when a rebuild switched, it
//! stops the old projector (which finishes its batch and leaves its group)
//! and starts one on the new generation — in that generation's group, so
//! it continues from the rebuild's committed offsets. The old projector is
//! usually paused for the rebuild's hand-off then (the rebuild keeps the
//! lease after the switch, see [`crate::rebuild`]); a pause ends on the
//! stop request, so the move does not wait for the lease. A projector that
//! fails (a non-retriable error) is logged and restarted after a backoff:
//! one projection's failure never stops the others or the service.
//!
//! Delivery guarantee: the projectors' — at-least-once with idempotent
//! writes, offsets committed only after the output is durable.
//!
//! **Status** ([`ProjectorService::watch`]), refreshed every
//! `status_interval`: per projection the serving generation, counters and
//! the lag — per input partition, the partition's read_committed end
//! ([`EventLog::end_offset`]) minus the projector's next position, summed.
//! The position is the consumer's own ([`platform::eventlog::GroupMember::positions`]),
//! which on Kafka moves past transaction markers, so the lag is exactly 0
//! once everything is projected; partitions the projector has not reported
//! yet count from the group's committed offsets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use platform::eventlog::{EventLog, TopicPartition};
use platform::readstore::ReadStore;
use schemas::{AvroCodec, TopicNames};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::generations;
use crate::projection::Projection;
use crate::runtime::{group_id, Projector, ProjectorConfig, ProjectorStats, Role};

/// How the service runs its projectors.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How often the serving generation is read.
    pub pointer_poll: Duration,
    /// How often the status (lag) is refreshed.
    pub status_interval: Duration,
    /// Wait before restarting a projector that failed.
    pub restart_backoff: Duration,
    /// The projectors' settings (group and generation are set per run).
    pub max_batch: usize,
    pub poll_timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub control_interval: Duration,
    pub dead_letter_replication: i16,
    pub dead_letter_min_insync: Option<i16>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            pointer_poll: Duration::from_millis(500),
            status_interval: Duration::from_secs(1),
            restart_backoff: Duration::from_secs(2),
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

/// One projection as the service runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    /// The generation its projector writes (0 until known).
    pub generation: u32,
    pub group: String,
    /// Whether a projector is running (not between a failure and its
    /// restart).
    pub running: bool,
    /// Paused for a rebuild's hand-off.
    pub paused: bool,
    /// Since the service started (across generations and restarts).
    pub events: u64,
    pub dead_letters: u64,
    pub store_retries: u64,
    pub parked: usize,
    pub restarts: u32,
    pub last_error: Option<String>,
    /// Sum of [`Self::lag_by_partition`]; `None` until first measured.
    pub lag: Option<u64>,
    pub lag_by_partition: BTreeMap<TopicPartition, u64>,
}

/// Every projection of the service, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStatus {
    pub projections: BTreeMap<String, ProjectionStatus>,
    /// How many times the lags were measured: a caller that needs a lag
    /// measured after some point waits for this to move past its value
    /// then.
    pub measured: u64,
}

impl ServiceStatus {
    /// The total lag, if every projection's is known.
    pub fn lag(&self) -> Option<u64> {
        self.projections.values().map(|p| p.lag).sum()
    }
}

/// What a supervisor shares with the status task.
#[derive(Debug, Default)]
struct Shared {
    status: ProjectionStatus,
    /// Counters of the finished projector runs (added to the current one).
    base: ProjectorStats,
    current: ProjectorStats,
}

type Slots = Arc<Vec<(Arc<dyn Projection>, Mutex<Shared>)>>;

pub struct ProjectorService {
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    store: Arc<dyn ReadStore>,
    topics: TopicNames,
    config: ServiceConfig,
    slots: Slots,
    status: watch::Sender<ServiceStatus>,
    measured: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ProjectorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectorService")
            .field(
                "projections",
                &self.slots.iter().map(|(p, _)| p.name()).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // The data is plain counters: still valid after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProjectorService {
    /// A service for `projections` (e.g. [`crate::projections::all`]).
    pub fn new(
        log: Arc<dyn EventLog>,
        codec: Arc<AvroCodec>,
        store: Arc<dyn ReadStore>,
        topics: TopicNames,
        projections: Vec<Arc<dyn Projection>>,
        config: ServiceConfig,
    ) -> Self {
        let slots: Vec<(Arc<dyn Projection>, Mutex<Shared>)> = projections
            .into_iter()
            .map(|p| {
                let shared = Shared {
                    status: ProjectionStatus {
                        name: p.name().to_owned(),
                        ..ProjectionStatus::default()
                    },
                    ..Shared::default()
                };
                (p, Mutex::new(shared))
            })
            .collect();
        let (status, _) = watch::channel(ServiceStatus::default());
        let service = Self {
            log,
            codec,
            store,
            topics,
            config,
            slots: Arc::new(slots),
            status,
            measured: std::sync::atomic::AtomicU64::new(0),
        };
        service.refresh_status();
        service
    }

    /// The status now.
    pub fn status(&self) -> ServiceStatus {
        self.status.borrow().clone()
    }

    /// The status as it changes.
    pub fn watch(&self) -> watch::Receiver<ServiceStatus> {
        self.status.subscribe()
    }

    /// Runs every projection until `shutdown` turns true (or its sender is
    /// dropped); then stops each projector after its batch and returns.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        let mut supervisors: Vec<JoinHandle<()>> = Vec::new();
        for index in 0..self.slots.len() {
            let supervisor = Supervisor {
                log: Arc::clone(&self.log),
                codec: Arc::clone(&self.codec),
                store: Arc::clone(&self.store),
                topics: self.topics.clone(),
                config: self.config.clone(),
                slots: Arc::clone(&self.slots),
                index,
            };
            supervisors.push(tokio::spawn(supervisor.run(shutdown.clone())));
        }
        let mut shutdown = shutdown;
        let mut tick = tokio::time::interval(self.config.status_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.measure().await,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        for s in supervisors {
            if let Err(e) = s.await {
                tracing::error!(error = %e, "a projection supervisor panicked");
            }
        }
        self.measure().await;
    }

    /// Runs the service on its own task until `stop()`.
    pub fn spawn(self) -> RunningService {
        let (stop, shutdown) = watch::channel(false);
        let service = Arc::new(self);
        let running = Arc::clone(&service);
        let task = tokio::spawn(async move { running.run(shutdown).await });
        RunningService {
            service,
            stop,
            task,
        }
    }

    /// Reads every input partition's end once (shared between projections
    /// reading the same topics) and publishes the status with lags.
    async fn measure(&self) {
        let mut wanted: HashSet<TopicPartition> = HashSet::new();
        let mut per_projection: Vec<Vec<TopicPartition>> = Vec::new();
        for (projection, _) in self.slots.iter() {
            let mut tps = Vec::new();
            for topic in projection.topics(&self.topics) {
                match self.log.partition_count(&topic).await {
                    Ok(n) => tps.extend((0..n).map(|p| TopicPartition::new(topic.clone(), p))),
                    Err(e) => tracing::debug!(%topic, error = %e, "partition count"),
                }
            }
            wanted.extend(tps.iter().cloned());
            per_projection.push(tps);
        }
        let log = &self.log;
        let ends: HashMap<TopicPartition, i64> = futures::stream::iter(wanted)
            .map(|tp| async move {
                let end = log.end_offset(&tp).await;
                (tp, end)
            })
            .buffer_unordered(8)
            .filter_map(|(tp, end)| async move { end.ok().map(|e| (tp, e)) })
            .collect()
            .await;
        // Partitions the projector has not reported: the group's commits.
        for ((projection, slot), tps) in self.slots.iter().zip(&per_projection) {
            let (group, known): (String, HashSet<(String, i32)>) = {
                let shared = lock(slot);
                (
                    shared.status.group.clone(),
                    shared.current.positions.keys().cloned().collect(),
                )
            };
            let missing: Vec<TopicPartition> = tps
                .iter()
                .filter(|tp| !known.contains(&(tp.topic.clone(), tp.partition)))
                .cloned()
                .collect();
            let mut fallback = HashMap::new();
            if !missing.is_empty() && !group.is_empty() {
                match self.log.committed_offsets(&group, &missing).await {
                    Ok(c) => {
                        fallback = c.into_iter().map(|(tp, c)| (tp, c.next_offset)).collect();
                    }
                    Err(e) => {
                        tracing::debug!(projection = projection.name(), error = %e, "committed offsets")
                    }
                }
            }
            let mut shared = lock(slot);
            let mut lags = BTreeMap::new();
            let mut complete = !group.is_empty();
            for tp in tps {
                let Some(end) = ends.get(tp) else {
                    complete = false;
                    continue;
                };
                let position = shared
                    .current
                    .positions
                    .get(&(tp.topic.clone(), tp.partition))
                    .copied()
                    .or_else(|| fallback.get(tp).copied())
                    .unwrap_or(0);
                lags.insert(tp.clone(), u64::try_from(end - position).unwrap_or(0));
            }
            shared.status.lag = complete.then(|| lags.values().sum());
            let m = platform::telemetry::metrics();
            if let Some(lag) = shared.status.lag {
                m.projection_lag
                    .with_label_values(&[projection.name()])
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
            for (tp, lag) in &lags {
                m.consumer_lag
                    .with_label_values(&[
                        group.as_str(),
                        tp.topic.as_str(),
                        &tp.partition.to_string(),
                    ])
                    .set(i64::try_from(*lag).unwrap_or(i64::MAX));
            }
            shared.status.lag_by_partition = lags;
        }
        self.measured
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.refresh_status();
    }

    fn refresh_status(&self) {
        let mut status = ServiceStatus {
            measured: self.measured.load(std::sync::atomic::Ordering::SeqCst),
            ..ServiceStatus::default()
        };
        for (projection, slot) in self.slots.iter() {
            let shared = lock(slot);
            let mut s = shared.status.clone();
            s.events = shared.base.events + shared.current.events;
            s.dead_letters = shared.base.dead_letters + shared.current.dead_letters;
            s.store_retries = shared.base.store_retries + shared.current.store_retries;
            s.parked = shared.current.parked;
            s.paused = shared.current.paused;
            let dlq = &platform::telemetry::metrics().dlq_size;
            dlq.with_label_values(&[projection.name(), "parked_keys"])
                .set(i64::try_from(s.parked).unwrap_or(i64::MAX));
            dlq.with_label_values(&[projection.name(), "dead_letters"])
                .set(i64::try_from(s.dead_letters).unwrap_or(i64::MAX));
            status.projections.insert(projection.name().to_owned(), s);
        }
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }
}

/// A service running on its own task.
#[derive(Debug)]
pub struct RunningService {
    service: Arc<ProjectorService>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningService {
    pub fn status(&self) -> ServiceStatus {
        self.service.status()
    }

    pub fn watch(&self) -> watch::Receiver<ServiceStatus> {
        self.service.watch()
    }

    /// Stops every projector after its batch; returns when all left.
    pub async fn stop(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.stop.send(true);
        self.task.await
    }
}

/// Follows one projection's serving generation.
struct Supervisor {
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    store: Arc<dyn ReadStore>,
    topics: TopicNames,
    config: ServiceConfig,
    slots: Slots,
    index: usize,
}

enum Ended {
    Shutdown,
    Moved,
    Failed(String),
}

impl Supervisor {
    fn projection(&self) -> Arc<dyn Projection> {
        Arc::clone(&self.slots[self.index].0)
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        lock(&self.slots[self.index].1)
    }

    async fn serving(&self, shutdown: &watch::Receiver<bool>) -> Option<u32> {
        let name = self.projection().name();
        let mut backoff = Duration::from_millis(100);
        loop {
            let read = async {
                generations::ensure(self.store.as_ref()).await?;
                generations::serving(self.store.as_ref(), name).await
            };
            match read.await {
                Ok(g) => return Some(g),
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "reading the serving generation; retrying");
                    let mut shutdown = shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    if *shutdown.borrow() || shutdown.has_changed().is_err() {
                        return None;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn run(self, shutdown: watch::Receiver<bool>) {
        let projection = self.projection();
        let name = projection.name();
        loop {
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                break;
            }
            let Some(generation) = self.serving(&shutdown).await else {
                break;
            };
            match self.run_generation(generation, &shutdown).await {
                Ended::Shutdown => break,
                Ended::Moved => {}
                Ended::Failed(error) => {
                    tracing::error!(projection = name, generation, error = %error, "projector failed; restarting after a backoff");
                    {
                        let mut shared = self.shared();
                        shared.status.running = false;
                        shared.status.restarts += 1;
                        shared.status.last_error = Some(error);
                    }
                    let mut shutdown = shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.restart_backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        self.shared().status.running = false;
    }

    /// Runs a projector of `generation` until shutdown, a pointer move or
    /// a failure.
    async fn run_generation(&self, generation: u32, shutdown: &watch::Receiver<bool>) -> Ended {
        let projection = self.projection();
        let name = projection.name();
        let mut config = ProjectorConfig::new(&self.topics, projection.as_ref(), generation);
        config.role = Role::Live;
        config.max_batch = self.config.max_batch;
        config.poll_timeout = self.config.poll_timeout;
        config.attempts = self.config.attempts;
        config.backoff = self.config.backoff;
        config.control_interval = self.config.control_interval;
        config.dead_letter_replication = self.config.dead_letter_replication;
        config.dead_letter_min_insync = self.config.dead_letter_min_insync;
        {
            let mut shared = self.shared();
            let finished = std::mem::take(&mut shared.current);
            shared.base.events += finished.events;
            shared.base.dead_letters += finished.dead_letters;
            shared.base.store_retries += finished.store_retries;
            shared.status.generation = generation;
            shared.status.group = group_id(&self.topics, name, generation);
            shared.status.running = true;
        }
        tracing::info!(projection = name, generation, "projecting");
        let (progress, mut stats) = watch::channel(ProjectorStats::default());
        let (stop, stopped) = watch::channel(false);
        let projector = Projector::new(
            Arc::clone(&self.log),
            Arc::clone(&self.codec),
            Arc::clone(&self.store),
            Arc::clone(&projection),
            self.topics.clone(),
            config,
        )
        .with_progress(progress);
        let mut task = tokio::spawn(projector.run(stopped));
        let mut shutdown = shutdown.clone();
        let mut pointer = tokio::time::interval(self.config.pointer_poll);
        pointer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stats_open = true;
        let ended = loop {
            tokio::select! {
                result = &mut task => {
                    // It only ends by itself on an error (or a panic).
                    break match result {
                        Ok(Ok(_)) => Ended::Failed("the projector stopped unexpectedly".into()),
                        Ok(Err(e)) => Ended::Failed(e.to_string()),
                        Err(e) => Ended::Failed(format!("the projector panicked: {e}")),
                    };
                }
                changed = stats.changed(), if stats_open => {
                    if changed.is_err() {
                        stats_open = false;
                    } else {
                        let current = stats.borrow_and_update().clone();
                        self.shared().current = current;
                    }
                }
                _ = pointer.tick() => {
                    match generations::serving(self.store.as_ref(), name).await {
                        Ok(g) if g != generation => {
                            tracing::info!(projection = name, from = generation, to = g, "the serving generation moved");
                            break Ended::Moved;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(projection = name, error = %e, "reading the serving generation"),
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break Ended::Shutdown;
                    }
                }
            }
        };
        if !matches!(ended, Ended::Failed(_)) {
            // Finish the batch in hand, commit, leave the group.
            let _ = stop.send(true);
            match task.await {
                Ok(Ok(last)) => self.shared().current = last,
                Ok(Err(e)) => {
                    tracing::warn!(projection = name, generation, error = %e, "projector stopped with an error")
                }
                Err(e) => {
                    tracing::error!(projection = name, generation, error = %e, "projector panicked")
                }
            }
        } else {
            let current = stats.borrow().clone();
            self.shared().current = current;
        }
        ended
    }
}
