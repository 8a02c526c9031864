//! Restoring an owned partition: the snapshot changelog, then the events
//! after the committed checkpoint, then the recent outcomes.

use futures::StreamExt;
use platform::eventlog::TopicPartition;
use schemas::{AggregateSnapshot, CommandOutcome};

use super::partition::{AggregateEntry, Checkpoint, PartitionState};
use super::{CommandProcessor, ProcessorError};
use crate::aggregate::Aggregate;

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
        while let Some(record) = stream.next().await {
            let record = record?;
            let Some(bytes) = record.value.as_deref() else {
                continue;
            };
            let snapshot: AggregateSnapshot = self.codec.decode_record(bytes).await?;
            let aggregate: A = serde_json::from_str(&snapshot.state_json).map_err(|e| {
                fail(
                    &snapshots_tp,
                    format!("snapshot of {} does not parse: {e}", snapshot.aggregate_id),
                )
            })?;
            let newer = state
                .aggregates
                .get(&snapshot.aggregate_id)
                .is_none_or(|e| e.version < snapshot.version);
            if newer {
                state.aggregates.insert(
                    snapshot.aggregate_id,
                    AggregateEntry {
                        state: aggregate,
                        version: snapshot.version,
                        last_hash: snapshot.last_hash,
                    },
                );
            }
            snapshots += 1;
        }

        let snapshot_versions: std::collections::HashMap<String, i64> = state
            .aggregates
            .iter()
            .map(|(id, e)| (id.clone(), e.version))
            .collect();

        // 2. The events after the checkpoint; those a snapshot already
        //    covers are skipped by version.
        let events_tp = TopicPartition::new(self.topology.events.clone(), p);
        let end = self.log.end_offset(&events_tp).await?;
        let mut stream = self
            .log
            .read_range(events_tp.clone(), checkpoint.events_from, end);
        let mut replayed = 0usize;
        while let Some(record) = stream.next().await {
            let record = record?;
            let Some(bytes) = record.value.as_deref() else {
                continue;
            };
            let (envelope, event) = self.codec.decode_event::<A::Event>(bytes).await?;
            let covered = snapshot_versions
                .get(&envelope.aggregate_id)
                .copied()
                .unwrap_or(0);
            let entry = state
                .aggregates
                .entry(envelope.aggregate_id.clone())
                .or_default();
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
                .entry(envelope.aggregate_id)
                .or_insert(record.offset);
            replayed += 1;
        }
        state.events_end = end;

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
            let outcome: CommandOutcome = self.codec.decode_record(bytes).await?;
            // The outcomes topic is shared by every context's processors.
            if A::handles(&outcome.aggregate_type) {
                state.remember_outcome(outcome, record.offset, self.config.dedup_window);
            }
        }
        state.outcomes_end = end;

        tracing::info!(
            partition = p,
            aggregates = state.aggregates.len(),
            snapshots,
            replayed,
            from = checkpoint.events_from,
            "restored partition"
        );
        self.partitions.insert(p, state);
        Ok(())
    }
}
