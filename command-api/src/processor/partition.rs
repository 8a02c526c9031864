//! The state a processor keeps for one owned command partition.

use std::collections::{HashMap, VecDeque};

use schemas::CommandOutcome;
use serde::{Deserialize, Serialize};

use super::unsnapshotted::Unsnapshotted;
use crate::aggregate::Aggregate;

/// One aggregate as the single writer knows it.
#[derive(Debug, Clone)]
pub(crate) struct AggregateEntry<A> {
    pub state: A,
    pub version: i64,
    pub last_hash: Vec<u8>,
}

impl<A: Aggregate> Default for AggregateEntry<A> {
    fn default() -> Self {
        Self {
            state: A::default(),
            version: 0,
            last_hash: Vec::new(),
        }
    }
}

/// Where a restore of this partition must start reading, stored as the
/// metadata of the committed command offset — so it is committed in the same
/// transaction as the events and snapshots it describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Every event before this offset of the events partition is covered by
    /// a snapshot.
    pub events_from: i64,
    /// Outcomes from this offset on form the duplicate-detection window.
    pub outcomes_from: i64,
}

impl Checkpoint {
    pub fn parse(metadata: &str) -> Self {
        // Unknown or empty metadata (a fresh group) means "from the start":
        // slower, never wrong.
        serde_json::from_str(metadata).unwrap_or_default()
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Everything but the aggregates themselves, which live in the
/// processor's [`super::store::AggregateStore`] (bounded memory). All of it
/// is bounded too: `unsnapshotted` by the snapshot policy (an entry older
/// than `max_unsnapshotted_lag` offsets is snapshotted and dropped), the
/// outcomes by `dedup_window`.
pub(crate) struct PartitionState<A> {
    _aggregate: std::marker::PhantomData<fn() -> A>,
    /// Aggregates whose latest events are not in a snapshot yet, with the
    /// offset of their first such event.
    pub unsnapshotted: Unsnapshotted,
    /// The events partition's end as of the last commit.
    pub events_end: i64,
    /// Recent outcomes by command id, oldest first in `outcome_order` with
    /// their offsets in the outcomes partition.
    pub outcomes: HashMap<String, CommandOutcome>,
    pub outcome_order: VecDeque<(String, i64)>,
    pub outcomes_end: i64,
}

impl<A> std::fmt::Debug for PartitionState<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionState")
            .field("unsnapshotted", &self.unsnapshotted.len())
            .field("events_end", &self.events_end)
            .field("outcomes", &self.outcomes.len())
            .finish()
    }
}

impl<A: Aggregate> PartitionState<A> {
    pub fn new() -> Self {
        Self {
            _aggregate: std::marker::PhantomData,
            unsnapshotted: Unsnapshotted::default(),
            events_end: 0,
            outcomes: HashMap::new(),
            outcome_order: VecDeque::new(),
            outcomes_end: 0,
        }
    }

    pub fn remember_outcome(&mut self, outcome: CommandOutcome, offset: i64, window: usize) {
        if self
            .outcomes
            .insert(outcome.command_id.clone(), outcome.clone())
            .is_none()
        {
            self.outcome_order.push_back((outcome.command_id, offset));
        }
        while self.outcome_order.len() > window {
            if let Some((id, _)) = self.outcome_order.pop_front() {
                self.outcomes.remove(&id);
            }
        }
    }

    /// What a restore would need, given what has been committed so far.
    pub fn checkpoint(&self) -> Checkpoint {
        let events_from = self
            .unsnapshotted
            .oldest()
            .unwrap_or(self.events_end)
            .min(self.events_end);
        let outcomes_from = self
            .outcome_order
            .front()
            .map(|(_, offset)| *offset)
            .unwrap_or(self.outcomes_end);
        Checkpoint {
            events_from,
            outcomes_from,
        }
    }
}
