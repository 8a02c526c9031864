//! The in-memory view of topics: partition counts and per-partition end
//! offsets, so that hot paths (send, poll) never touch the database to
//! validate a record or to learn whether a partition has new data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::eventlog::{Cleanup, LogError, TopicPartition};

/// One topic. Topics are never deleted and their partition count never
/// changes, so an `Arc<TopicState>` cached by a member stays valid forever.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub name: String,
    /// `Cleanup::Compact`: the writer keeps only the latest record per key.
    pub compacted: bool,
    /// What the topic was created with (`describe_topic` reports it).
    pub cleanup: Cleanup,
    partitions: Box<[PartitionState]>,
}

#[derive(Debug)]
struct PartitionState {
    /// The offset after the last durable record: what readers may see.
    /// Published by the writer after its redb commit returns.
    end: AtomicI64,
    /// The next offset the writer will hand out. Only the writer thread
    /// touches it; it runs ahead of `end` while a batch is being built and
    /// is rolled back to `end` if the batch fails.
    next: AtomicI64,
}

impl TopicState {
    /// `ends[p]` is partition p's end offset as found on disk.
    pub fn new(name: String, ends: &[i64], cleanup: Cleanup) -> Self {
        let partitions = ends
            .iter()
            .map(|&end| PartitionState {
                end: AtomicI64::new(end),
                next: AtomicI64::new(end),
            })
            .collect();
        Self {
            name,
            compacted: cleanup == Cleanup::Compact,
            cleanup,
            partitions,
        }
    }

    pub fn partition_count(&self) -> i32 {
        // A topic is created with an i32 count, so this never saturates.
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    fn slot(&self, partition: i32) -> Result<&PartitionState, LogError> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
            .ok_or_else(|| {
                LogError::Invalid(format!(
                    "partition {partition} out of range for topic `{}` ({} partitions)",
                    self.name,
                    self.partitions.len()
                ))
            })
    }

    /// Checks that `partition` exists.
    pub fn check_partition(&self, partition: i32) -> Result<(), LogError> {
        self.slot(partition).map(|_| ())
    }

    /// The committed end of `partition` (contiguous offsets: also the count).
    pub fn end(&self, partition: i32) -> Result<i64, LogError> {
        Ok(self.slot(partition)?.end.load(Ordering::Acquire))
    }

    /// Writer only: hands out the next offset of `partition`.
    pub fn reserve(&self, partition: i32) -> Result<i64, LogError> {
        Ok(self.slot(partition)?.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Writer only: the batch is durable, make its offsets visible.
    pub fn publish(&self, partition: i32) {
        if let Ok(slot) = self.slot(partition) {
            slot.end
                .store(slot.next.load(Ordering::Relaxed), Ordering::Release);
        }
    }

    /// Writer only: the batch failed, forget the offsets it reserved.
    pub fn rollback(&self, partition: i32) {
        if let Ok(slot) = self.slot(partition) {
            slot.next
                .store(slot.end.load(Ordering::Acquire), Ordering::Relaxed);
        }
    }
}

/// All topics by name.
#[derive(Debug, Default)]
pub(crate) struct TopicRegistry {
    topics: RwLock<HashMap<String, Arc<TopicState>>>,
}

impl TopicRegistry {
    pub fn get(&self, name: &str) -> Result<Arc<TopicState>, LogError> {
        self.read()
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))
    }

    /// The topic and a checked partition of `tp`.
    pub fn get_tp(&self, tp: &TopicPartition) -> Result<Arc<TopicState>, LogError> {
        let topic = self.get(&tp.topic)?;
        topic.check_partition(tp.partition)?;
        Ok(topic)
    }

    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    pub fn insert(&self, topic: TopicState) {
        let mut map = self
            .topics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.insert(topic.name.clone(), Arc::new(topic));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<TopicState>>> {
        // Poisoning cannot leave the map half-updated (insert is one call),
        // so a poisoned lock is still a consistent map.
        self.topics
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
