//! The in-process group coordinator: membership, generations, eager range
//! assignment, liveness expiry, and the fencing checks that gate commits.
//!
//! Everything is behind one `std::sync::Mutex`, held only for short,
//! non-async bookkeeping (never across an `.await`, never across I/O).
//!
//! Liveness: a member is alive while it polls. A member whose last poll is
//! older than `min(session_timeout, max_poll_interval)` is removed by
//! whoever touches the group next — another member's poll, a join, or its
//! own poll/commit — so "A stops polling, B keeps polling, B gets A's
//! partitions" holds even if A never calls anything again.
//!
//! Fencing: a commit (transactional or not) of consumed offsets is admitted
//! only if the member is still in the group, has seen the group's current
//! generation and owns every partition it commits for; a transaction also
//! needs the newest epoch of its transactional id — which is all a
//! transaction without offsets needs (it does not involve the group).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use crate::eventlog::{LogError, TopicPartition};

/// A member's transactional identity: its id and the epoch it got when it
/// joined. A newer member with the same id gets a higher epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnIdentity {
    pub id: String,
    pub epoch: u64,
}

/// What a member learns when it joins.
#[derive(Debug)]
pub(crate) struct Joined {
    pub member_id: String,
    pub gate: Arc<RwLock<()>>,
    pub txn: Option<TxnIdentity>,
}

/// What a member learns when it polls.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Heartbeat {
    /// Nothing changed since the generation the member last saw.
    Current,
    /// A rebalance happened: the member's partitions in `generation`.
    Changed {
        generation: u64,
        assignment: Vec<TopicPartition>,
    },
    /// The member is no longer in the group (timed out).
    Gone,
}

/// Who is asking to commit, for [`Coordinator::admit_commit`].
#[derive(Debug)]
pub(crate) struct CommitRequest<'a> {
    pub group: &'a str,
    pub member_id: &'a str,
    /// The generation whose assignment the member is working on.
    pub generation: u64,
    pub txn: Option<&'a TxnIdentity>,
}

#[derive(Debug, Default)]
pub(crate) struct Coordinator {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, Group>,
    /// The newest epoch handed out per transactional id (global, as in
    /// Kafka, where transactional ids are cluster-wide).
    txn_epochs: HashMap<String, u64>,
}

#[derive(Debug)]
struct Group {
    generation: u64,
    /// The subscription every member shares: (topic, partition count),
    /// sorted by topic. Empty while the group has no members.
    topics: Vec<(String, i32)>,
    /// Sorted by member id, which is the order range assignment uses.
    members: BTreeMap<String, Member>,
    /// Commits hold it shared from their admission until durable; a member
    /// taking over partitions holds it exclusively while it reads the
    /// committed offsets. See `writer::Op::Commit`.
    gate: Arc<RwLock<()>>,
}

#[derive(Debug)]
struct Member {
    last_seen: Instant,
    timeout: Duration,
    assignment: Vec<TopicPartition>,
}

impl Group {
    fn new() -> Self {
        Self {
            generation: 0,
            topics: Vec::new(),
            members: BTreeMap::new(),
            gate: Arc::new(RwLock::new(())),
        }
    }

    /// Removes members silent past their timeout (except `except`, which is
    /// asking right now); rebalances if any left. Returns whether any did.
    fn expire(&mut self, now: Instant, except: Option<&str>) -> bool {
        let before = self.members.len();
        self.members.retain(|id, m| {
            Some(id.as_str()) == except || now.saturating_duration_since(m.last_seen) <= m.timeout
        });
        let expired = self.members.len() != before;
        if expired {
            tracing::info!(
                remaining = self.members.len(),
                "embedded group coordinator expired silent members"
            );
            self.rebalance();
        }
        expired
    }

    /// Eager rebalance: a new generation and a fresh range assignment (per
    /// topic, partitions split into contiguous ranges over the members in
    /// id order, the first `n % m` members getting one extra) — Kafka's
    /// `RangeAssignor`.
    fn rebalance(&mut self) {
        self.generation += 1;
        if self.members.is_empty() {
            // Let the next member pick a new subscription.
            self.topics.clear();
            return;
        }
        let count = self.members.len();
        for member in self.members.values_mut() {
            member.assignment.clear();
        }
        for (topic, partitions) in &self.topics {
            let partitions = usize::try_from(*partitions).unwrap_or(0);
            let per = partitions / count;
            let extra = partitions % count;
            let mut next = 0usize;
            for (i, member) in self.members.values_mut().enumerate() {
                let len = per + usize::from(i < extra);
                for p in next..next + len {
                    let partition = i32::try_from(p).unwrap_or(i32::MAX);
                    member
                        .assignment
                        .push(TopicPartition::new(topic.clone(), partition));
                }
                next += len;
            }
        }
    }

    fn add(
        &mut self,
        member_id: String,
        topics: &[(String, i32)],
        timeout: Duration,
        now: Instant,
    ) -> Result<(), LogError> {
        if self.members.is_empty() {
            self.topics = topics.to_vec();
        } else if self.topics != topics {
            let current: Vec<&str> = self.topics.iter().map(|(t, _)| t.as_str()).collect();
            let asked: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
            return Err(LogError::Invalid(format!(
                "all members of a group must subscribe to the same topics: the group has {current:?}, this member asked for {asked:?}"
            )));
        }
        self.members.insert(
            member_id,
            Member {
                last_seen: now,
                timeout,
                assignment: Vec::new(),
            },
        );
        self.rebalance();
        Ok(())
    }
}

impl Coordinator {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before it can
        // fail, so a poisoned lock still guards a usable state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The group's state in Kafka's words and its member ids (diagnostics).
    pub fn describe(&self, group_id: &str) -> (String, Vec<String>) {
        let state = self.lock();
        match state.groups.get(group_id) {
            None => ("Dead".to_owned(), Vec::new()),
            Some(group) if group.members.is_empty() => ("Empty".to_owned(), Vec::new()),
            Some(group) => ("Stable".to_owned(), group.members.keys().cloned().collect()),
        }
    }

    /// Adds a new member. `topics` is the subscription with partition
    /// counts, sorted and deduplicated by the caller.
    pub fn join(
        &self,
        group_id: &str,
        member_id: String,
        topics: &[(String, i32)],
        timeout: Duration,
        transactional_id: Option<&str>,
        now: Instant,
    ) -> Result<Joined, LogError> {
        let mut state = self.lock();
        let group = state
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::new);
        group.expire(now, None);
        group.add(member_id.clone(), topics, timeout, now)?;
        let gate = Arc::clone(&group.gate);
        // Like Kafka's InitProducerId: a newer incarnation of a
        // transactional id fences every older one.
        let txn = transactional_id.map(|id| {
            let epoch = state.txn_epochs.entry(id.to_owned()).or_insert(0);
            *epoch += 1;
            TxnIdentity {
                id: id.to_owned(),
                epoch: *epoch,
            }
        });
        Ok(Joined {
            member_id,
            gate,
            txn,
        })
    }

    /// A poll: refreshes the member's liveness (or notices it lapsed),
    /// expires silent members and reports whether the generation moved on
    /// from `seen_generation`.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        seen_generation: u64,
        now: Instant,
    ) -> Heartbeat {
        let mut state = self.lock();
        let Some(group) = state.groups.get_mut(group_id) else {
            return Heartbeat::Gone;
        };
        if !touch(group, member_id, now) {
            return Heartbeat::Gone;
        }
        group.expire(now, Some(member_id));
        if group.generation == seen_generation {
            return Heartbeat::Current;
        }
        let assignment = group
            .members
            .get(member_id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default();
        Heartbeat::Changed {
            generation: group.generation,
            assignment,
        }
    }

    /// Puts a timed-out member back into its group (Kafka consumers rejoin
    /// on the next poll after a `max.poll.interval` expiry).
    pub fn rejoin(
        &self,
        group_id: &str,
        member_id: &str,
        topics: &[(String, i32)],
        timeout: Duration,
        now: Instant,
    ) -> Result<(), LogError> {
        let mut state = self.lock();
        let group = state
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::new);
        group.expire(now, None);
        if group.members.contains_key(member_id) {
            return Ok(());
        }
        group.add(member_id.to_owned(), topics, timeout, now)
    }

    /// Leaves the group at once (`close`).
    pub fn leave(&self, group_id: &str, member_id: &str) {
        let mut state = self.lock();
        if let Some(group) = state.groups.get_mut(group_id) {
            if group.members.remove(member_id).is_some() {
                group.rebalance();
            }
        }
    }

    /// Whether `txn` is still the newest incarnation of its id.
    pub fn check_txn(&self, txn: &TxnIdentity) -> Result<(), LogError> {
        let state = self.lock();
        check_epoch(&state, txn)
    }

    /// The fencing check of a commit; see the module docs. Must be called
    /// while holding the group's gate shared. `partitions` are the ones the
    /// commit writes offsets for (none: only the transactional id counts).
    pub fn admit_commit<'p>(
        &self,
        request: &CommitRequest<'_>,
        partitions: impl IntoIterator<Item = &'p TopicPartition>,
        now: Instant,
    ) -> Result<(), LogError> {
        let mut state = self.lock();
        if let Some(txn) = request.txn {
            check_epoch(&state, txn)?;
        }
        let mut partitions = partitions.into_iter().peekable();
        if partitions.peek().is_none() {
            // No consumed offsets, so the group is not involved: as in Kafka,
            // where only `sendOffsetsToTransaction` carries the generation, a
            // producer-only transaction is fenced by its transactional id.
            return Ok(());
        }
        let member_id = request.member_id;
        let Some(group) = state.groups.get_mut(request.group) else {
            return Err(not_member(request));
        };
        if !touch(group, member_id, now) {
            return Err(not_member(request));
        }
        group.expire(now, Some(member_id));
        if group.generation != request.generation {
            return Err(LogError::Fenced(format!(
                "member {member_id} of group {} works on generation {} but the group is at generation {}",
                request.group, request.generation, group.generation
            )));
        }
        let Some(member) = group.members.get(member_id) else {
            return Err(not_member(request));
        };
        for tp in partitions {
            if !member.assignment.contains(tp) {
                return Err(LogError::Fenced(format!(
                    "member {member_id} of group {} commits for {tp}, which it does not own",
                    request.group
                )));
            }
        }
        Ok(())
    }
}

/// Refreshes `member_id`'s liveness; if it already lapsed, removes it
/// instead (it would have been expired by anyone else touching the group)
/// and returns false. False also when it is not a member at all.
fn touch(group: &mut Group, member_id: &str, now: Instant) -> bool {
    let Some(member) = group.members.get_mut(member_id) else {
        return false;
    };
    if now.saturating_duration_since(member.last_seen) > member.timeout {
        group.members.remove(member_id);
        group.rebalance();
        return false;
    }
    member.last_seen = now;
    true
}

fn check_epoch(state: &State, txn: &TxnIdentity) -> Result<(), LogError> {
    match state.txn_epochs.get(&txn.id) {
        Some(&newest) if newest != txn.epoch => Err(LogError::ProducerFenced(format!(
            "transactional id `{}` was taken over by a newer member (epoch {newest} > {})",
            txn.id, txn.epoch
        ))),
        _ => Ok(()),
    }
}

fn not_member(request: &CommitRequest<'_>) -> LogError {
    LogError::Fenced(format!(
        "member {} is no longer in group {} (timed out or closed)",
        request.member_id, request.group
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn topics() -> Vec<(String, i32)> {
        vec![("a".to_owned(), 5), ("b".to_owned(), 2)]
    }

    #[test]
    fn range_assignment_splits_each_topic_over_sorted_members() {
        let c = Coordinator::default();
        let now = Instant::now();
        let t = Duration::from_secs(10);
        c.join("g", "m2".into(), &topics(), t, None, now).unwrap();
        c.join("g", "m1".into(), &topics(), t, None, now).unwrap();
        let Heartbeat::Changed {
            generation,
            assignment,
        } = c.heartbeat("g", "m1", 0, now)
        else {
            panic!("expected a rebalance")
        };
        assert_eq!(generation, 2);
        let tp = |t: &str, p| TopicPartition::new(t, p);
        assert_eq!(
            assignment,
            vec![tp("a", 0), tp("a", 1), tp("a", 2), tp("b", 0)]
        );
        let Heartbeat::Changed { assignment, .. } = c.heartbeat("g", "m2", 0, now) else {
            panic!("expected a rebalance")
        };
        assert_eq!(assignment, vec![tp("a", 3), tp("a", 4), tp("b", 1)]);
        assert_eq!(c.heartbeat("g", "m2", 2, now), Heartbeat::Current);
    }

    #[test]
    fn mismatched_subscriptions_are_rejected() {
        let c = Coordinator::default();
        let now = Instant::now();
        let t = Duration::from_secs(10);
        c.join("g", "m1".into(), &topics(), t, None, now).unwrap();
        let other = vec![("a".to_owned(), 5)];
        assert!(matches!(
            c.join("g", "m2".into(), &other, t, None, now),
            Err(LogError::Invalid(_))
        ));
    }

    #[test]
    fn silent_members_are_expired_by_others() {
        let c = Coordinator::default();
        let start = Instant::now();
        let t = Duration::from_millis(100);
        c.join("g", "m1".into(), &topics(), t, None, start).unwrap();
        c.join("g", "m2".into(), &topics(), t, None, start).unwrap();
        let later = start + Duration::from_millis(150);
        let _ = c.heartbeat("g", "m1", 0, start + Duration::from_millis(90));
        let Heartbeat::Changed { assignment, .. } = c.heartbeat("g", "m1", 0, later) else {
            panic!("expected a rebalance")
        };
        assert_eq!(assignment.len(), 7, "m1 owns everything after m2 expired");
        assert_eq!(c.heartbeat("g", "m2", 0, later), Heartbeat::Gone);
    }
}
