//! The faults, in two lanes that run beside each other and beside the
//! load: the log side (command processor, command API, saga worker — a
//! zombie and a kill —, the broker restart) and the read side (projectors,
//! query API, the CQL node's outage). In the short run each fault happens
//! once; a soak repeats the lanes, in a seeded random order, until its
//! time is up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use super::nodes::Server;
use super::roles::{wait_ready, Cluster, RoleKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Kill(RoleKind),
    BrokerRestart,
    CqlOutage,
    /// SIGSTOP a saga worker past its session timeout while its twin
    /// runs, then SIGCONT: it must be fenced, not write twice.
    Zombie,
}

/// What was done, for the report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FaultFigures {
    pub kills: BTreeMap<RoleKind, u64>,
    pub broker_restarts: u64,
    pub cql_outages: u64,
    pub zombies: u64,
    /// The zombie's log, after SIGCONT, mentions being fenced or losing
    /// its partitions (what Kafka does to it).
    pub zombie_fenced_in_log: bool,
    /// One line per fault, with its time from the start.
    pub timeline: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FaultSettings {
    pub cql_outage: Duration,
    pub zombie_pause: Duration,
    /// Between two faults of a lane.
    pub gap: Duration,
    pub soak_until: Option<Instant>,
}

pub struct Faults {
    pub cluster: Arc<Mutex<Cluster>>,
    pub kafka: Arc<Server>,
    pub cql: Arc<Server>,
    pub figures: Mutex<FaultFigures>,
    pub settings: FaultSettings,
    pub started: Instant,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

pub const LOG_LANE: [Fault; 5] = [
    Fault::Kill(RoleKind::CommandProcessor),
    Fault::Kill(RoleKind::CommandApi),
    Fault::Zombie,
    Fault::Kill(RoleKind::Sagas),
    Fault::BrokerRestart,
];

pub const READ_LANE: [Fault; 3] = [
    Fault::Kill(RoleKind::Projectors),
    Fault::CqlOutage,
    Fault::Kill(RoleKind::QueryApi),
];

impl Faults {
    /// Runs one lane: once, or (soak) over and over in a shuffled order.
    pub async fn lane(self: Arc<Self>, faults: Vec<Fault>, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut order = faults;
        loop {
            for fault in &order {
                tokio::time::sleep(self.settings.gap).await;
                self.inject(*fault, &mut rng)
                    .await
                    .with_context(|| format!("injecting {fault:?}"))?;
            }
            match self.settings.soak_until {
                Some(until) if Instant::now() < until => order.shuffle(&mut rng),
                _ => return Ok(()),
            }
        }
    }

    fn note(&self, line: String) {
        let at = self.started.elapsed().as_secs_f64();
        println!("chaos [{at:7.1}s] {line}");
        if let Ok(mut f) = self.figures.lock() {
            f.timeline.push(format!("{at:.1}s {line}"));
        }
    }

    fn with_cluster<T>(&self, f: impl FnOnce(&mut Cluster) -> Result<T>) -> Result<T> {
        let mut cluster = self
            .cluster
            .lock()
            .map_err(|_| anyhow!("the cluster lock is poisoned"))?;
        f(&mut cluster)
    }

    async fn inject(&self, fault: Fault, rng: &mut StdRng) -> Result<()> {
        match fault {
            Fault::Kill(kind) => {
                let (index, name) = self.with_cluster(|c| {
                    let all = c.of_kind(kind);
                    let index = all[rng.random_range(0..all.len())];
                    c.kill9(index)?;
                    Ok((index, c.name(index).to_owned()))
                })?;
                self.note(format!("kill -9 {name}"));
                // Down for a moment, as a supervisor's restart delay.
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..3000))).await;
                self.with_cluster(|c| c.restart(index))?;
                wait_ready(&self.cluster, index, Duration::from_secs(180)).await?;
                self.note(format!("{name} restarted and serving"));
                if let Ok(mut f) = self.figures.lock() {
                    *f.kills.entry(kind).or_default() += 1;
                }
            }
            Fault::BrokerRestart => {
                self.note("Kafka broker: stop".into());
                self.kafka.stop_keeping_data().await?;
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.kafka.resume().await?;
                self.note("Kafka broker: back".into());
                if let Ok(mut f) = self.figures.lock() {
                    f.broker_restarts += 1;
                }
            }
            Fault::CqlOutage => {
                self.note("CQL node: stop".into());
                self.cql.stop_keeping_data().await?;
                tokio::time::sleep(self.settings.cql_outage).await;
                self.cql.resume().await?;
                self.note("CQL node: back".into());
                if let Ok(mut f) = self.figures.lock() {
                    f.cql_outages += 1;
                }
            }
            Fault::Zombie => {
                let (index, name, log) = self.with_cluster(|c| {
                    let all = c.of_kind(RoleKind::Sagas);
                    let index = all[rng.random_range(0..all.len())];
                    c.signal_pause(index, true)?;
                    Ok((index, c.name(index).to_owned(), c.log(index).to_path_buf()))
                })?;
                let before = std::fs::read_to_string(&log).unwrap_or_default().len();
                self.note(format!(
                    "SIGSTOP {name} (zombie) for {:?}",
                    self.settings.zombie_pause
                ));
                tokio::time::sleep(self.settings.zombie_pause).await;
                self.with_cluster(|c| c.signal_pause(index, false))?;
                self.note(format!("SIGCONT {name}"));
                // Give it a moment to notice it was fenced / lost its
                // partitions, then read what it said.
                tokio::time::sleep(Duration::from_secs(5)).await;
                let after = std::fs::read_to_string(&log).unwrap_or_default();
                let said = after.get(before..).unwrap_or_default().to_lowercase();
                let fenced = ["fenc", "revoked", "rebalance", "lost", "zombie"]
                    .iter()
                    .any(|w| said.contains(w));
                if let Ok(mut f) = self.figures.lock() {
                    f.zombies += 1;
                    f.zombie_fenced_in_log |= fenced;
                }
            }
        }
        Ok(())
    }
}
