//! Rebuilding a projection into a new table generation, without downtime.
//!
//! 1. **Own the group.** The new generation is the serving one + 1 (or
//!    the one asked for; it must be newer). The rebuild projects in the
//!    new generation's own group, `<prefix>projector.<name>.g<new>`, the
//!    group the live service continues in after the switch. Before
//!    anything else the rebuild joins that group alone and waits until it
//!    owns every input partition: that proves no other rebuild of this
//!    generation is running (its projector would hold partitions), and
//!    while this member stays in the group no other can start. If another
//!    member holds partitions (a crashed attempt's member, until its
//!    session times out; or a concurrent rebuild) it waits, and gives up
//!    after `reset_timeout` — having touched nothing.
//! 2. **Prepare, still owning the group.** The new generation's tables are
//!    dropped if they exist — a half-done earlier attempt — and created
//!    empty; what that attempt parked is unparked. Then each partition's
//!    start offset is committed (an earlier attempt may have committed
//!    offsets there) and the member leaves: the projector starts from the
//!    beginning, and the group name stays the one the service derives
//!    from the generation number (no attempt suffix to record anywhere).
//! 3. **Building**: until the projector has passed the ends captured at
//!    the start; **CatchingUp**: until it is within `max_lag` of the live
//!    ends.
//! 4. **Hand-off** ([`crate::generations`]): the live projectors of the
//!    old generation are asked to pause and acknowledge their positions;
//!    the rebuild catches up to the ends read after that, so the new
//!    generation holds everything a reader could have seen in the old one.
//! 5. **Switch** ([`generations::switch`]): readers move to the new
//!    generation; the rebuild's projector stops (its offsets committed);
//!    the services see the pointer move and continue the new generation
//!    from those offsets. The hand-off lease is **not released**: it runs
//!    out on its own, at least a second after the switch (the switch must
//!    land that long before the lease ends). Released, the old
//!    generation's projectors would resume at once and could run ahead of
//!    the new generation — nobody writes it between the rebuild's last
//!    batch and the service's move — while readers that cached the old
//!    pointer (up to a second) still read the old generation: a row seen
//!    there could vanish after their switch. The services do not wait for
//!    the lease: a paused projector stops as soon as its service asks
//!    (having seen the pointer move), and the service starts the new
//!    generation; only an old-generation projector outside a service
//!    resumes, when the lease runs out.
//! 6. Unless `keep_old`, after `drop_after` (longer than the readers'
//!    refresh of the pointer) the old generation's tables are dropped.
//!
//! Safe while the live service runs: the two never write the same table
//! generation at the same time, except the new one right after the switch,
//! where both write the same idempotent cells. Two rebuilds of the same
//! generation cannot both run: the second waits for the group in step 1
//! and gives up without touching the first one's tables.
//!
//! Delivery guarantee: the projector's — at-least-once, idempotent writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::eventlog::{Cleanup, EventLog, GroupConfig, OffsetCommit, TopicPartition, TopicSpec};
use platform::readstore::ReadStore;
use schemas::{AvroCodec, TopicNames};
use tokio::sync::watch;

use crate::dlq;
use crate::generations;
use crate::projection::Projection;
use crate::runtime::{
    dead_letter_topic, group_id, now_ms, Projector, ProjectorConfig, ProjectorError,
    ProjectorStats, Role,
};

#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The generation to build (default: serving + 1).
    pub generation: Option<u32>,
    /// How close (in offsets, summed over the input partitions) to the
    /// live ends the rebuild must get before it hands off.
    pub max_lag: u64,
    /// Keep the old generation's tables after the switch.
    pub keep_old: bool,
    /// How long after the switch the old tables are dropped.
    pub drop_after: Duration,
    /// How long the old generation's projectors pause for the hand-off.
    pub handoff_lease: Duration,
    /// How long to wait for their acknowledgements (partitions nobody
    /// acknowledges by then are taken as idle).
    pub handoff_grace: Duration,
    /// How long to wait to own every partition of the group to reset it.
    pub reset_timeout: Duration,
    pub max_batch: usize,
    pub dead_letter_replication: i16,
    pub dead_letter_min_insync: Option<i16>,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self {
            generation: None,
            max_lag: 0,
            keep_old: false,
            drop_after: Duration::from_secs(30),
            handoff_lease: Duration::from_secs(8),
            handoff_grace: Duration::from_secs(3),
            reset_timeout: Duration::from_secs(60),
            max_batch: 1000,
            dead_letter_replication: 1,
            dead_letter_min_insync: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebuildPhase {
    /// Dropping a half-done attempt, resetting the group.
    #[default]
    Preparing,
    /// Up to the ends captured at the start.
    Building,
    /// Up to the live ends.
    CatchingUp,
    /// Old generation paused; the last stretch.
    HandingOff,
    Switched,
    DroppedOld,
}

/// Where a rebuild is. `done`/`total` count offsets of the input
/// partitions (records, plus transaction markers on Kafka).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RebuildProgress {
    pub phase: RebuildPhase,
    pub old_generation: u32,
    pub new_generation: u32,
    pub done: u64,
    pub total: u64,
    pub events: u64,
    pub events_per_s: f64,
    pub eta: Option<Duration>,
    /// ms since the epoch, once switched.
    pub switched_at: Option<i64>,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub projection: String,
    pub old_generation: u32,
    pub new_generation: u32,
    /// ms since the epoch.
    pub switched_at: i64,
    pub events: u64,
    pub dead_letters: u64,
    pub dropped_old: bool,
}

fn tp_key(tp: &TopicPartition) -> (String, i32) {
    (tp.topic.clone(), tp.partition)
}

/// Every partition of `topics`.
async fn partitions(
    log: &dyn EventLog,
    topics: &[String],
) -> Result<Vec<TopicPartition>, ProjectorError> {
    let mut out = Vec::new();
    for topic in topics {
        for p in 0..log.partition_count(topic).await? {
            out.push(TopicPartition::new(topic.clone(), p));
        }
    }
    Ok(out)
}

async fn ends(
    log: &dyn EventLog,
    tps: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>, ProjectorError> {
    let mut out = HashMap::new();
    for tp in tps {
        out.insert(tp.clone(), log.end_offset(tp).await?);
    }
    Ok(out)
}

/// Makes `group` start from the beginning of every partition of `topics`
/// (see the module doc). It joins the group but processes nothing: the
/// records a poll returns are dropped and only the start offsets are
/// committed (delivery: none — it is not a consumer of the records).
pub async fn reset_group(
    log: &dyn EventLog,
    group: &str,
    topics: Vec<String>,
    timeout: Duration,
) -> Result<(), ProjectorError> {
    reset_group_owning(log, group, topics, timeout, async { Ok(()) }).await
}

/// [`reset_group`], running `while_owned` once this member owns every
/// partition of the group (so no other member — a concurrent rebuild of
/// the same generation — is in it) and before it commits and leaves.
/// The member does not poll meanwhile, so `while_owned` must end well
/// within the group's liveness bound (`max_poll_interval`; the session
/// timeout on the embedded log); if it does not, the commit is refused and
/// the reset fails (nothing is lost: a retried rebuild prepares again).
async fn reset_group_owning<F>(
    log: &dyn EventLog,
    group: &str,
    topics: Vec<String>,
    timeout: Duration,
    while_owned: F,
) -> Result<(), ProjectorError>
where
    F: std::future::Future<Output = Result<(), ProjectorError>>,
{
    let tps = partitions(log, &topics).await?;
    let mut config = GroupConfig::new(group.to_owned(), topics);
    config.client_id = format!("{group}.reset");
    let mut member = log.join_group(config).await?;
    let deadline = Instant::now() + timeout;
    let owned = loop {
        // Records polled here are not processed and not committed.
        member.poll(1, Duration::from_millis(200)).await?;
        let assignment = member.assignment();
        if tps.iter().all(|tp| assignment.contains(tp)) {
            break Ok(());
        }
        if Instant::now() >= deadline {
            break Err(ProjectorError::Timeout(format!(
                "could not own every partition of group {group} to reset it within {} s \
                 (another member holds some: a crashed rebuild's, until its session times \
                 out, or a rebuild of this projection running elsewhere)",
                timeout.as_secs()
            )));
        }
    };
    let result = match owned {
        Ok(()) => match while_owned.await {
            Ok(()) => {
                let mut commits = Vec::with_capacity(tps.len());
                for tp in &tps {
                    commits.push(OffsetCommit {
                        tp: tp.clone(),
                        next_offset: log.start_offset(tp).await?,
                        metadata: "reset by a rebuild".into(),
                    });
                }
                // Admitted only while this member still owns them all.
                member.commit_offsets(&commits).await.map_err(Into::into)
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let closed = member.close().await;
    result?;
    closed?;
    Ok(())
}

const PROJECTOR_STOPPED: &str = "the rebuild's projector stopped unexpectedly";

/// A running rebuild projector and how to read it.
struct Running {
    stats: watch::Receiver<ProjectorStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<ProjectorStats, ProjectorError>>,
}

impl Running {
    fn failed(&mut self) -> Option<ProjectorError> {
        if !self.task.is_finished() {
            return None;
        }
        Some(ProjectorError::Invalid(PROJECTOR_STOPPED.into()))
    }

    async fn finish(self) -> Result<ProjectorStats, ProjectorError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ProjectorError::Invalid(format!(
                "the rebuild's projector panicked: {e}"
            ))),
        }
    }
}

struct Tracker<'a> {
    progress: &'a watch::Sender<RebuildProgress>,
    started: Instant,
    starts: HashMap<TopicPartition, i64>,
}

impl Tracker<'_> {
    /// Offsets done toward `targets` (per partition, capped), and their total.
    fn measure(
        &self,
        stats: &ProjectorStats,
        targets: &HashMap<TopicPartition, i64>,
    ) -> (u64, u64, bool) {
        let (mut done, mut total, mut reached) = (0i64, 0i64, true);
        for (tp, end) in targets {
            let start = self.starts.get(tp).copied().unwrap_or(0);
            let position = stats.positions.get(&tp_key(tp)).copied();
            total += (end - start).max(0);
            match position {
                Some(p) => {
                    done += (p.min(*end) - start).max(0);
                    reached &= p >= *end;
                }
                // Unknown: reached only if there is nothing to read.
                None => reached &= *end <= start,
            }
        }
        (
            u64::try_from(done).unwrap_or(0),
            u64::try_from(total).unwrap_or(0),
            reached,
        )
    }

    fn report(&self, phase: RebuildPhase, stats: &ProjectorStats, done: u64, total: u64) {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = stats.events as f64 / elapsed;
        let offset_rate = done as f64 / elapsed;
        let eta = (offset_rate > 0.0)
            .then(|| Duration::from_secs_f64(total.saturating_sub(done) as f64 / offset_rate));
        self.progress.send_modify(|p| {
            p.phase = phase;
            p.done = done;
            p.total = total;
            p.events = stats.events;
            p.events_per_s = rate;
            p.eta = eta;
        });
    }

    fn phase(&self, phase: RebuildPhase) {
        self.progress.send_modify(|p| p.phase = phase);
    }
}

/// Waits until the projector has passed `targets` (or fails).
async fn reach(
    running: &mut Running,
    tracker: &Tracker<'_>,
    phase: RebuildPhase,
    targets: &HashMap<TopicPartition, i64>,
    deadline: Option<Instant>,
) -> Result<bool, ProjectorError> {
    loop {
        let stats = running.stats.borrow_and_update().clone();
        let (done, total, reached) = tracker.measure(&stats, targets);
        tracker.report(phase, &stats, done, total);
        if reached {
            return Ok(true);
        }
        if let Some(e) = running.failed() {
            return Err(e);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), running.stats.changed()).await;
    }
}

/// Rebuilds `projection` into a new generation and switches readers to it
/// (see the module doc). Progress goes to `progress`.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    store: Arc<dyn ReadStore>,
    projection: Arc<dyn Projection>,
    topics: TopicNames,
    options: RebuildOptions,
    progress: watch::Sender<RebuildProgress>,
) -> Result<RebuildReport, ProjectorError> {
    let name = projection.name();
    generations::ensure(store.as_ref()).await?;
    let old = generations::serving(store.as_ref(), name).await?;
    let new = options.generation.unwrap_or(old + 1);
    if new <= old {
        return Err(ProjectorError::Invalid(format!(
            "{name}: generation {new} is not newer than the serving generation {old}"
        )));
    }
    progress.send_modify(|p| {
        *p = RebuildProgress {
            phase: RebuildPhase::Preparing,
            old_generation: old,
            new_generation: new,
            ..RebuildProgress::default()
        }
    });
    let tables = projection.tables();
    let mut dlq_spec = TopicSpec::new(dead_letter_topic(&topics, name), 1, Cleanup::KeepForever);
    dlq_spec.replication_factor = options.dead_letter_replication;
    dlq_spec.min_insync_replicas = options.dead_letter_min_insync;
    log.create_topics(&[dlq_spec.clone()]).await?;
    let dlq_tp = TopicPartition::new(dlq_spec.name.clone(), 0);
    let inputs = projection.topics(&topics);
    let group = group_id(&topics, name, new);
    // A half-done earlier attempt leaves rows (and parked keys) behind:
    // dropped — but only while owning the new generation's group, which
    // proves no other rebuild of this generation is running (its projector
    // would hold partitions of the group) and keeps one from starting
    // meanwhile (its reset waits for the group). Dropping first would
    // empty the tables under a concurrent rebuild that is already
    // building them.
    let prepare = async {
        store.drop_tables(tables, new).await?;
        store.ensure_tables(tables, new).await?;
        let dlq_end = log.end_offset(&dlq_tp).await?;
        if dlq_end > 0 {
            dlq::clear_parked(store.as_ref(), name, new, dlq_end).await?;
        }
        Ok(())
    };
    reset_group_owning(
        log.as_ref(),
        &group,
        inputs.clone(),
        options.reset_timeout,
        prepare,
    )
    .await?;

    let tps = partitions(log.as_ref(), &inputs).await?;
    let mut starts = HashMap::new();
    for tp in &tps {
        starts.insert(tp.clone(), log.start_offset(tp).await?);
    }
    let captured = ends(log.as_ref(), &tps).await?;

    let mut config = ProjectorConfig::new(&topics, projection.as_ref(), new);
    config.role = Role::Rebuild;
    config.max_batch = options.max_batch;
    config.dead_letter_replication = options.dead_letter_replication;
    config.dead_letter_min_insync = options.dead_letter_min_insync;
    let (stats_tx, stats) = watch::channel(ProjectorStats::default());
    let (stop, stopped) = watch::channel(false);
    let projector = Projector::new(
        Arc::clone(&log),
        Arc::clone(&codec),
        Arc::clone(&store),
        Arc::clone(&projection),
        topics.clone(),
        config,
    )
    .with_progress(stats_tx);
    let mut running = Running {
        stats,
        stop,
        task: tokio::spawn(projector.run(stopped)),
    };
    let tracker = Tracker {
        progress: &progress,
        started: Instant::now(),
        starts,
    };
    tracing::info!(projection = name, old, new, %group, "rebuilding");
    let switched = build_and_switch(
        &mut running,
        &tracker,
        log.as_ref(),
        store.as_ref(),
        name,
        new,
        &tps,
        &captured,
        &options,
    )
    .await;
    let switched_at = match switched {
        Ok(at) => at,
        Err(e) => {
            let finished = running.finish().await;
            // The projector's own error says more than "it stopped".
            return Err(match (e, finished) {
                (ProjectorError::Invalid(m), Err(real)) if m == PROJECTOR_STOPPED => real,
                (e, _) => e,
            });
        }
    };
    // The service continues from these committed offsets.
    let last = running.finish().await?;
    progress.send_modify(|p| {
        p.phase = RebuildPhase::Switched;
        p.switched_at = Some(switched_at);
    });
    tracing::info!(projection = name, old, new, switched_at, "switched");

    let mut dropped_old = false;
    if !options.keep_old {
        tokio::time::sleep(options.drop_after).await;
        store.drop_tables(tables, old).await?;
        // The old generation's parked keys go with its tables.
        let dlq_end = log.end_offset(&dlq_tp).await?;
        if dlq_end > 0 {
            dlq::clear_parked(store.as_ref(), name, old, dlq_end).await?;
        }
        dropped_old = true;
        tracker.phase(RebuildPhase::DroppedOld);
        tracing::info!(
            projection = name,
            generation = old,
            "dropped the old generation"
        );
    }
    Ok(RebuildReport {
        projection: name.to_owned(),
        old_generation: old,
        new_generation: new,
        switched_at,
        events: last.events,
        dead_letters: last.dead_letters,
        dropped_old,
    })
}

/// Building, catching up, hand-off, switch; returns the switch time.
#[allow(clippy::too_many_arguments)]
async fn build_and_switch(
    running: &mut Running,
    tracker: &Tracker<'_>,
    log: &dyn EventLog,
    store: &dyn ReadStore,
    name: &str,
    new: u32,
    tps: &[TopicPartition],
    captured: &HashMap<TopicPartition, i64>,
    options: &RebuildOptions,
) -> Result<i64, ProjectorError> {
    reach(running, tracker, RebuildPhase::Building, captured, None).await?;
    let mut attempts = 0;
    loop {
        // Catching up: within max_lag of the live ends.
        loop {
            let live = ends(log, tps).await?;
            let stats = running.stats.borrow_and_update().clone();
            let (done, total, _) = tracker.measure(&stats, &live);
            tracker.report(RebuildPhase::CatchingUp, &stats, done, total);
            if total.saturating_sub(done) <= options.max_lag {
                break;
            }
            if let Some(e) = running.failed() {
                return Err(e);
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), running.stats.changed()).await;
        }
        // Hand-off: pause the old generation, then pass what it exposed.
        tracker.phase(RebuildPhase::HandingOff);
        let handoff =
            generations::request_handoff(store, name, new, options.handoff_lease, now_ms()).await?;
        let grace = Instant::now() + options.handoff_grace;
        loop {
            let acks = generations::handoff_acks(store, name, handoff.id).await?;
            if tps.iter().all(|tp| acks.contains_key(tp)) || Instant::now() >= grace {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Every paused projector's output is at or before these ends.
        let targets = ends(log, tps).await?;
        // Leave a margin: the switch must land while the lease holds.
        let margin = Duration::from_secs(1);
        let left = u64::try_from(handoff.until - now_ms()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_millis(left).saturating_sub(margin);
        if reach(
            running,
            tracker,
            RebuildPhase::HandingOff,
            &targets,
            Some(deadline),
        )
        .await?
        {
            let at = now_ms();
            generations::switch(store, name, new, at).await?;
            // The lease is NOT released: it runs out on its own (at least
            // `margin` after the switch). Released now, the old
            // generation's projectors would resume at once and could run
            // ahead of the new generation (the rebuild's projector stops
            // here; the service continues the new generation only once it
            // has read the pointer) while readers that cached the old
            // pointer (up to a second) still read the old generation —
            // they could see a row and then lose it after their switch.
            // Kept, the old projectors stay paused until their service,
            // seeing the pointer move, stops them and starts the new
            // generation (a pause ends on a stop request, not only on
            // expiry); a projector of the old generation outside a
            // service resumes when the lease expires.
            return Ok(at);
        }
        generations::release_handoff(store, name, &handoff).await?;
        attempts += 1;
        if attempts >= 5 {
            return Err(ProjectorError::Timeout(format!(
                "{name}: the rebuild could not catch up within the hand-off lease ({} s) five times",
                options.handoff_lease.as_secs()
            )));
        }
        tracing::warn!(
            projection = name,
            "the hand-off lease ran out before the rebuild caught up; trying again"
        );
    }
}
