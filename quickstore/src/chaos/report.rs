//! Quiescence (every order the client placed has ended, lag 0) and the
//! run's report: a human summary and the same as JSON.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use super::checker::CheckerVerdict;
use super::client::ClientFigures;
use super::faults::FaultFigures;
use super::load::{Expect, Load, LoadFigures};
use super::roles::RoleKind;

/// How the run came to rest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quiescence {
    /// Every placed order terminal and every consumer group's lag 0.
    pub reached: bool,
    pub waited_s: f64,
    pub completed: u64,
    pub cancelled: u64,
    /// Placed, but not terminal in the query API at the end.
    pub not_terminal: u64,
    /// Placed (the API said so), but the query API never heard of it.
    pub missing: u64,
    /// Ended otherwise than the client's actions imply (delivered but
    /// cancelled, declined but completed, …).
    pub unexpected_outcomes: u64,
    /// A few examples of each problem.
    pub examples: Vec<String>,
    /// Every consumer group's pending records at the end (`quickstore
    /// status`): the lag less transaction markers and aborted records.
    pub lag: Option<i64>,
    /// Dead letters not yet retried.
    pub dead_letters_pending: Option<u64>,
    /// Consumer groups still behind at the end: `group: lag N, M members`
    /// (a group with lag and no member is a worker that died inside a
    /// process that did not).
    pub groups_behind: Vec<String>,
}

/// Waits (bounded by `deadline`, at most 5 min) until every order the
/// client placed is COMPLETED or CANCELLED in the query API and the lag is 0.
pub async fn quiesce(
    load: &Load,
    exe: &Path,
    env: &[(String, String)],
    dir: &Path,
    deadline: Instant,
) -> Quiescence {
    let started = Instant::now();
    let until = deadline.min(started + Duration::from_secs(300));
    let orders = load.placed_orders();
    loop {
        let mut q = Quiescence::default();
        let statuses: Vec<(String, Option<String>)> = futures::stream::iter(orders.keys().cloned())
            .map(|id| async move {
                let reply = load
                    .client
                    .query(
                        &load.admin,
                        &format!("/orders/{id}"),
                        Duration::from_secs(20),
                    )
                    .await;
                let status = reply
                    .filter(|r| r.status == 200)
                    .and_then(|r| r.body["status"].as_str().map(str::to_owned));
                (id, status)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (id, status) in statuses {
            let expect = orders
                .get(&id)
                .map(|o| o.expect)
                .unwrap_or(Expect::Terminal);
            match status.as_deref() {
                Some("COMPLETED") => {
                    q.completed += 1;
                    if expect == Expect::Cancelled {
                        q.unexpected_outcomes += 1;
                        q.examples
                            .push(format!("{id}: expected CANCELLED, is COMPLETED"));
                    }
                }
                Some("CANCELLED") => {
                    q.cancelled += 1;
                    if expect == Expect::Completed {
                        q.unexpected_outcomes += 1;
                        q.examples.push(format!("{id}: delivered, but CANCELLED"));
                    }
                }
                Some(other) => {
                    q.not_terminal += 1;
                    q.examples.push(format!("{id}: still {other}"));
                }
                None => {
                    q.missing += 1;
                    q.examples.push(format!("{id}: not in the query API"));
                }
            }
        }
        q.examples.truncate(20);
        let (lag, dead, behind) = status(exe, env, dir).await;
        q.lag = lag;
        q.dead_letters_pending = dead;
        q.groups_behind = behind;
        q.reached = q.not_terminal == 0 && q.missing == 0 && lag == Some(0);
        q.waited_s = started.elapsed().as_secs_f64();
        if q.reached || Instant::now() > until {
            return q;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// A group's pending records (`quickstore status`): its lag less the
/// transaction markers and aborted records a read_committed member never
/// receives — the work really left.
fn pending(g: &Value) -> i64 {
    g["pending"].as_i64().unwrap_or_default()
}

/// `quickstore status --json`: the summed lag and pending dead letters.
async fn status(
    exe: &Path,
    env: &[(String, String)],
    dir: &Path,
) -> (Option<i64>, Option<u64>, Vec<String>) {
    let mut command = tokio::process::Command::new(exe);
    super::nodes::clear_qs_env(&mut command);
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("QS_DATA_DIR", dir.join("status"))
        .args(["status", "--json"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(60), command.output()).await else {
        return (
            None,
            None,
            vec!["quickstore status did not answer within 60 s".into()],
        );
    };
    let Ok(status) = serde_json::from_slice::<Value>(&out.stdout) else {
        let err: String = String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(300)
            .collect();
        return (None, None, vec![format!("quickstore status failed: {err}")]);
    };
    let behind = status["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter(|g| pending(g) > 0)
                .map(|g| {
                    format!(
                        "{}: {} records pending, {} members",
                        g["group"].as_str().unwrap_or("?"),
                        pending(g),
                        g["members"].as_array().map_or(0, Vec::len)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let lag = status["groups"]
        .as_array()
        .map(|groups| groups.iter().map(pending).sum());
    let dead = status["dead_letters"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["pending"].as_u64()).sum());
    (lag, dead, behind)
}

/// The invariants the run promises.
#[derive(Debug, Clone, Serialize)]
pub struct Invariants {
    /// Commands that never got a final answer, accepted orders the read
    /// side never saw, and commands the checker found consumed without an
    /// outcome in the log.
    pub lost_commands: u64,
    pub duplicate_events: u64,
    pub version_gaps: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerFigures {
    pub commands: u64,
    /// No final answer within the client's deadline (retries included).
    pub without_outcome: u64,
    /// Of those, acknowledged with a 202 (durable in the log): lost.
    pub accepted_without_outcome: u64,
    pub by_status: BTreeMap<u16, u64>,
    /// Up to 20 commands without a final answer: key, what, attempts and
    /// what the last attempt got.
    pub unanswered: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    /// Why not ok, in words.
    pub problems: Vec<String>,
    pub seed: u64,
    pub orders_target: u64,
    pub duration_s: f64,
    pub load: LoadFigures,
    pub client: ClientFigures,
    pub ledger: LedgerFigures,
    pub faults: FaultFigures,
    pub unexpected_exits: Vec<String>,
    pub quiescence: Quiescence,
    pub checker: Option<CheckerVerdict>,
    pub invariants: Invariants,
}

impl Report {
    pub fn new(
        seed: u64,
        orders_target: u64,
        load: &Load,
        faults: FaultFigures,
        fault_error: Option<String>,
        quiescence: Quiescence,
        checker: Result<CheckerVerdict, String>,
    ) -> Self {
        let entries = load
            .client
            .ledger
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let mut by_status = BTreeMap::new();
        let mut without_outcome = 0;
        let mut accepted_without_outcome = 0;
        let mut unanswered = Vec::new();
        for e in &entries {
            match e.status {
                Some(s) => *by_status.entry(s).or_insert(0) += 1,
                None => {
                    without_outcome += 1;
                    accepted_without_outcome += u64::from(e.accepted);
                    if unanswered.len() < 20 {
                        unanswered.push(format!(
                            "{} ({}): {} attempts, {}, last: {}",
                            e.key,
                            e.what,
                            e.attempts,
                            if e.accepted {
                                "acknowledged (202)"
                            } else {
                                "never acknowledged"
                            },
                            e.last_attempt
                        ));
                    }
                }
            }
        }
        let ledger = LedgerFigures {
            commands: entries.len() as u64,
            without_outcome,
            accepted_without_outcome,
            by_status,
            unanswered,
        };
        let load_figures = load.stats.figures();
        let mut problems = Vec::new();
        if let Some(e) = fault_error {
            problems.push(format!("faults: {e}"));
        }
        let (checker, duplicate_events, version_gaps, missing_outcomes) = match checker {
            Ok(v) => {
                if !v.ok {
                    problems.push(format!(
                        "checker ({}) not clean: exit {:?}, {} findings {:?}",
                        v.tool, v.exit_code, v.findings_total, v.findings_by_kind
                    ));
                }
                let dup = v.count("duplicate-event-id");
                let gaps = v.count("version-gap") + v.count("version-out-of-order");
                let missing = v.count("missing-outcome");
                (Some(v), dup, gaps, missing)
            }
            Err(e) => {
                problems.push(format!("the checker could not run: {e}"));
                (None, 0, 0, 0)
            }
        };
        let invariants = Invariants {
            lost_commands: ledger.accepted_without_outcome + quiescence.missing + missing_outcomes,
            duplicate_events,
            version_gaps,
        };
        if invariants.lost_commands > 0 {
            problems.push(format!(
                "{} lost commands ({} acknowledged but never answered, {} accepted orders missing from the read side, {} consumed without an outcome)",
                invariants.lost_commands, ledger.accepted_without_outcome, quiescence.missing, missing_outcomes
            ));
        }
        let never_acknowledged = ledger.without_outcome - ledger.accepted_without_outcome;
        if never_acknowledged > 0 {
            // Not lost (never in the log), but the system did not take a
            // command for the client's whole deadline: a liveness failure.
            problems.push(format!(
                "{never_acknowledged} commands never acknowledged within the client's deadline: {}",
                ledger.unanswered.join("; ")
            ));
        }
        if !quiescence.reached {
            problems.push(format!(
                "no quiescence: {} orders not terminal, {} missing, pending {:?}",
                quiescence.not_terminal, quiescence.missing, quiescence.lag
            ));
        }
        let stuck = load
            .stuck_flows
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        if !stuck.is_empty() {
            problems.push(format!(
                "{} courier flows gave up (their orders wait for a courier for good): {}",
                load_figures.courier_flows_stuck,
                stuck.join("; ")
            ));
        }
        if quiescence.unexpected_outcomes > 0 {
            problems.push(format!(
                "{} orders ended otherwise than the client's actions imply",
                quiescence.unexpected_outcomes
            ));
        }
        if load_figures.orders_placed < orders_target {
            problems.push(format!(
                "only {} of {orders_target} orders placed",
                load_figures.orders_placed
            ));
        }
        for kind in RoleKind::ALL {
            if faults.kills.get(&kind).copied().unwrap_or_default() == 0 {
                problems.push(format!("no {} was killed", kind.name()));
            }
        }
        for (what, n) in [
            ("broker restart", faults.broker_restarts),
            ("CQL outage", faults.cql_outages),
            ("zombie", faults.zombies),
        ] {
            if n == 0 {
                problems.push(format!("no {what} happened"));
            }
        }
        Self {
            ok: problems.is_empty(),
            problems,
            seed,
            orders_target,
            duration_s: 0.0,
            load: load_figures,
            client: load.client.stats.figures(),
            ledger,
            faults,
            unexpected_exits: Vec::new(),
            quiescence,
            checker,
            invariants,
        }
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let l = &self.load;
        let q = &self.quiescence;
        let f = &self.faults;
        let kills: Vec<String> = f
            .kills
            .iter()
            .map(|(k, n)| format!("{} ×{n}", k.name()))
            .collect();
        let mut out = format!(
            "chaos report (seed {}, {:.0}s)\n\
             orders:    {} placed ({} direct, {} checkout; {} declined cards, {} cancels requested), {} refused\n\
             outcomes:  {} completed, {} cancelled, {} not terminal, {} missing, {} unexpected\n\
             courier:   {} assigned, {} picked up, {} delivered, {} failed, {} stuck; {} browses\n\
             faults:    kills [{}], {} broker restarts, {} CQL outages, {} zombies (fenced in log: {})\n\
             client:    {} requests, {} retries, {} 5xx ({} of them 503), {} connection errors, {} 202s\n\
             ledger:    {} commands, {} without an answer ({} of them acknowledged)\n\
             rest:      pending {:?}, dead letters pending {:?}, after {:.0}s\n\
             exits:     {} unexpected (restarted)\n\
             invariants: {} lost commands, {} duplicate events, {} version gaps\n",
            self.seed,
            self.duration_s,
            l.orders_placed,
            l.direct_orders,
            l.checkout_orders,
            l.declined_cards,
            l.cancels_requested,
            l.orders_refused,
            q.completed,
            q.cancelled,
            q.not_terminal,
            q.missing,
            q.unexpected_outcomes,
            l.courier_assigned,
            l.courier_picked_up,
            l.courier_delivered,
            l.courier_failed,
            l.courier_flows_stuck,
            l.browses,
            kills.join(", "),
            f.broker_restarts,
            f.cql_outages,
            f.zombies,
            f.zombie_fenced_in_log,
            self.client.requests,
            self.client.retries,
            self.client.server_errors_5xx,
            self.client.unavailable_503,
            self.client.connection_errors,
            self.client.pending_202,
            self.ledger.commands,
            self.ledger.without_outcome,
            self.ledger.accepted_without_outcome,
            q.lag,
            q.dead_letters_pending,
            q.waited_s,
            self.unexpected_exits.len(),
            self.invariants.lost_commands,
            self.invariants.duplicate_events,
            self.invariants.version_gaps,
        );
        match &self.checker {
            Some(c) => out.push_str(&format!(
                "checker:   {} → {} ({} events, {} aggregates, {} findings)\n",
                c.tool,
                if c.ok { "clean" } else { "FINDINGS" },
                c.events_checked,
                c.aggregates_checked,
                c.findings_total
            )),
            None => out.push_str("checker:   could not run\n"),
        }
        if self.ok {
            out.push_str("verdict:   OK\n");
        } else {
            out.push_str("verdict:   FAILED\n");
            for p in &self.problems {
                out.push_str(&format!("  - {p}\n"));
            }
            for e in &q.examples {
                out.push_str(&format!("  · {e}\n"));
            }
            for g in &q.groups_behind {
                out.push_str(&format!("  · behind: {g}\n"));
            }
        }
        out
    }
}
