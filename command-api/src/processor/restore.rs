//! Restoring an owned partition: the snapshot changelog, then the events
//! after the committed checkpoint, then the recent outcomes. The aggregates
//! go into the local store (wiped first: whatever it held is not trusted),
//! in chunks, so a restore's memory does not grow with their number either.

use std::collections::HashMap;

use futures::StreamExt;
use platform::eventlog::TopicPartition;
use schemas::{AggregateSnapshot, CommandOutcome};

use super::partition::{AggregateEntry, Checkpoint, PartitionState};
use super::store::encode_raw;
use super::{CommandProcessor, ProcessorError};
use crate::aggregate::Aggregate;

/// Snapshots decoded per store write while restoring.
const RESTORE_CHUNK: usize = 10_000;

impl<A: Aggregate> CommandProcessor<A> {
    pub(super) async fn restore_partition(
        &mut self,
        command_tp: &TopicPartition,
    ) -> Result<(), ProcessorError> {
        let p = command_tp.partition;
        let committed = self
            .log
            .committed_offsets(&self.config.group_id, std::slice::from_ref(command_tp))
            .await?;
        let checkpoint = committed
            .get(command_tp)
            .map(|c| Checkpoint::parse(&c.metadata))
            .unwrap_or_default();
        let mut state = PartitionState::<A>::new();
        self.partitions.remove(&p);
        self.store.forget(p)?;
        let fail = |tp: &TopicPartition, reason: String| ProcessorError::Restore {
            partition: tp.clone(),
            reason,
        };

        // 1. The latest snapshot of every aggregate (a compacted changelog
        //    may still hold older ones: the highest version wins).
        let snapshots_tp = TopicPartition::new(self.topology.snapshots.clone(), p);
        let end = self.log.end_offset(&snapshots_tp).await?;
        let mut stream = self.log.read_range(snapshots_tp.clone(), 0, end);
        let mut snapshots = 0usize;
        // Chunks of the changelog, merged into the store (highest version
        // wins across chunks too).
        let mut chunk: HashMap<String, (i64, Vec<u8>)> = HashMap::new();
        while let Some(record) = stream.next().await {
            let record = record?;
            let Some(bytes) = record.value.as_deref() else {
                continue;
            };
            let snapshot: AggregateSnapshot = self.codec.decode_named(bytes).await?;
            // Parsed here so a snapshot this code cannot read fails the
            // restore loudly, not the first command that needs it.
            serde_json::from_str::<A>(&snapshot.state_json).map_err(|e| {
                fail(
                    &snapshots_tp,
                    format!("snapshot of {} does not parse: {e}", snapshot.aggregate_id),
                )
            })?;
            let newer = chunk
                .get(&snapshot.aggregate_id)
                .is_none_or(|(version, _)| *version < snapshot.version);
            if newer {
                let value = encode_raw(
                    snapshot.version,
                    &snapshot.last_hash,
                    snapshot.state_json.as_bytes(),
                );
                chunk.insert(snapshot.aggregate_id, (snapshot.version, value));
            }
            snapshots += 1;
            if chunk.len() >= RESTORE_CHUNK {
                self.store.merge_snapshots(p, &chunk)?;
                chunk.clear();
            }
        }
        self.store.merge_snapshots(p, &chunk)?;
        drop(chunk);

        // 2. The events after the checkpoint; those a snapshot already
        //    covers are skipped by version.
        let events_tp = TopicPartition::new(self.topology.events.clone(), p);
        let end = self.log.end_offset(&events_tp).await?;
        let mut stream = self
            .log
            .read_range(events_tp.clone(), checkpoint.events_from, end);
        let mut replayed = 0usize;
        // The aggregates these events touch, each with the version its
        // snapshot covers. Bounded: events after the checkpoint are at most
        // `max_unsnapshotted_lag` offsets (plus a batch) behind the end.
        let mut replaying: HashMap<String, (i64, AggregateEntry<A>)> = HashMap::new();
        while let Some(record) = stream.next().await {
            let record = record?;
            let Some(bytes) = record.value.as_deref() else {
                continue;
            };
            let (envelope, event) = self.codec.decode_event::<A::Event>(bytes).await?;
            if !replaying.contains_key(&envelope.aggregate_id) {
                let snapshotted = self
                    .store
                    .load(p, &envelope.aggregate_id)?
                    .unwrap_or_default();
                replaying.insert(
                    envelope.aggregate_id.clone(),
                    (snapshotted.version, snapshotted),
                );
            }
            let Some((covered, entry)) = replaying.get_mut(&envelope.aggregate_id) else {
                continue; // inserted just above
            };
            let covered = *covered;
            if envelope.version <= covered {
                continue; // in the snapshot already
            }
            if envelope.version <= entry.version {
                // Not a snapshot overlap: the log holds this version twice.
                return Err(fail(
                    &events_tp,
                    format!(
                        "duplicate version {} of {} at offset {}",
                        envelope.version, envelope.aggregate_id, record.offset
                    ),
                ));
            }
            if envelope.version != entry.version + 1 {
                return Err(fail(
                    &events_tp,
                    format!(
                        "version gap for {}: at {}, next event is {} (offset {})",
                        envelope.aggregate_id, entry.version, envelope.version, record.offset
                    ),
                ));
            }
            entry.state.evolve(&event);
            entry.version = envelope.version;
            entry.last_hash = envelope.hash;
            state
                .unsnapshotted
                .mark(&envelope.aggregate_id, record.offset);
            replayed += 1;
        }
        state.events_end = end;
        let touched = replaying.len();
        self.store.put(
            p,
            replaying
                .into_iter()
                .map(|(id, (_, entry))| (id, entry))
                .collect(),
        )?;

        // 3. The duplicate-detection window.
        let outcomes_tp = TopicPartition::new(self.topology.outcomes.clone(), p);
        let end = self.log.end_offset(&outcomes_tp).await?;
        let start = checkpoint
            .outcomes_from
            .max(self.log.start_offset(&outcomes_tp).await?);
        let mut stream = self.log.read_range(outcomes_tp, start, end);
        while let Some(record) = stream.next().await {
            let record = record?;
            let Some(bytes) = record.value.as_deref() else {
                continue;
            };
            let outcome: CommandOutcome = self.codec.decode_named(bytes).await?;
            // The outcomes topic is shared by every context's processors.
            if A::handles(&outcome.aggregate_type) {
                state.remember_outcome(outcome, record.offset, self.config.dedup_window);
            }
        }
        state.outcomes_end = end;

        tracing::info!(
            partition = p,
            aggregates = self.store.count(p)?,
            snapshots,
            replayed,
            touched,
            from = checkpoint.events_from,
            "restored partition"
        );
        self.partitions.insert(p, state);
        Ok(())
    }
}
