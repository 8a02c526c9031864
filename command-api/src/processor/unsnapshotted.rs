//! Which aggregates of one partition have events no snapshot covers yet,
//! oldest first — what the snapshot policy and the restore checkpoint ask.
//!
//! With snapshots every few versions (not after every change) most recently
//! touched aggregates are here, tens of thousands per partition, and the
//! processor asks after every batch "which are older than the lag bound?"
//! and "what is the oldest?". A map alone answers both by scanning it all;
//! the queue beside it, in offset order, answers from its front.

use std::collections::{HashMap, VecDeque};

/// Aggregate id → the offset of its first unsnapshotted event, with the
/// same entries in offset order.
///
/// The queue may hold *stale* entries (an aggregate snapshotted since, or
/// marked again at a later offset); they are skipped and dropped as they
/// reach the front. Invariant: the front entry, if any, is live — so
/// [`Self::oldest`] is one look.
#[derive(Debug, Default)]
pub(crate) struct Unsnapshotted {
    first: HashMap<String, i64>,
    by_offset: VecDeque<(i64, String)>,
}

impl Unsnapshotted {
    /// `id` has an event at `offset` that no snapshot covers. Only its
    /// first such event counts. Offsets arrive in increasing order (a
    /// partition's events, committed batch after batch or replayed).
    pub fn mark(&mut self, id: &str, offset: i64) {
        if !self.first.contains_key(id) {
            self.first.insert(id.to_owned(), offset);
            self.by_offset.push_back((offset, id.to_owned()));
        }
    }

    /// `id` was snapshotted at its latest version.
    pub fn clear(&mut self, id: &str) {
        if self.first.remove(id).is_some() {
            self.drop_stale_front();
        }
    }

    /// The offset of the oldest unsnapshotted event, if any.
    pub fn oldest(&self) -> Option<i64> {
        self.by_offset.front().map(|(offset, _)| *offset)
    }

    /// Up to `cap` aggregates whose first unsnapshotted event lags `end`
    /// by more than `lag` offsets, oldest first.
    pub fn lagging(&self, end: i64, lag: i64, cap: usize) -> Vec<String> {
        self.by_offset
            .iter()
            .take_while(|(offset, _)| end - offset > lag)
            .filter(|(offset, id)| self.first.get(id) == Some(offset))
            .map(|(_, id)| id.clone())
            .take(cap)
            .collect()
    }

    /// Aggregates with unsnapshotted events.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    fn drop_stale_front(&mut self) {
        while let Some((offset, id)) = self.by_offset.front() {
            if self.first.get(id) == Some(offset) {
                break;
            }
            self.by_offset.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_unsnapshotted_event_of_an_aggregate_counts() {
        let mut u = Unsnapshotted::default();
        u.mark("a", 5);
        u.mark("a", 9);
        u.mark("b", 7);
        assert_eq!(u.oldest(), Some(5));
        assert_eq!(u.len(), 2);
        assert_eq!(u.lagging(20, 10, 10), vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(u.lagging(16, 10, 10), vec!["a".to_owned()]);
    }

    #[test]
    fn a_snapshot_clears_the_aggregate_and_the_oldest_moves_on() {
        let mut u = Unsnapshotted::default();
        u.mark("a", 1);
        u.mark("b", 2);
        u.mark("c", 3);
        u.clear("b");
        assert_eq!(u.oldest(), Some(1));
        u.clear("a");
        // b's entry was stale behind a's: both gone from the front.
        assert_eq!(u.oldest(), Some(3));
        assert_eq!(u.lagging(100, 0, 10), vec!["c".to_owned()]);
        u.clear("c");
        assert_eq!(u.oldest(), None);
        assert_eq!(u.len(), 0);
    }

    #[test]
    fn an_aggregate_marked_again_after_its_snapshot_counts_from_the_new_event() {
        let mut u = Unsnapshotted::default();
        u.mark("a", 1);
        u.mark("b", 2);
        u.clear("b");
        u.mark("b", 10);
        u.clear("a");
        assert_eq!(u.oldest(), Some(10));
        // The stale (2, b) entry is not reported as lagging.
        assert_eq!(u.lagging(100, 0, 10), vec!["b".to_owned()]);
    }

    #[test]
    fn lagging_takes_at_most_cap_oldest_first() {
        let mut u = Unsnapshotted::default();
        for i in 0..10 {
            u.mark(&format!("x{i}"), i);
        }
        assert_eq!(u.lagging(100, 0, 3), vec!["x0", "x1", "x2"]);
        assert!(u.lagging(5, 10, 3).is_empty());
    }
}
