//! Deciding one batch of commands: staged changes that become real only
//! when the transaction carrying them commits.

use std::collections::HashMap;

use platform::eventlog::{GroupMember, LogRecord, OutgoingRecord, RecordPosition};
use platform::partitioner::partition_for_key;
use schemas::{
    AggregateSnapshot, CommandEnvelope, CommandOutcome, CommandStatus, EventEnvelope, EventPayload,
};
use tracing::Instrument;

use super::partition::{AggregateEntry, PartitionState};
use super::store::{AggregateStore, StoreError};
use super::{CommandProcessor, ProcessorError};
use crate::aggregate::{Aggregate, DecisionContext, DomainError};

/// Why a record was sent, in send order, so commit positions can be
/// matched back to what they mean.
#[derive(Debug)]
enum Sent {
    Event {
        partition: i32,
        aggregate_id: String,
    },
    Snapshot {
        partition: i32,
        aggregate_id: String,
    },
    Outcome {
        partition: i32,
        outcome: CommandOutcome,
    },
    Reply,
}

#[derive(Debug)]
pub(super) struct Batch<A> {
    /// Aggregates changed in this batch, by (command partition, id).
    staged: HashMap<(i32, String), AggregateEntry<A>>,
    sent: Vec<Sent>,
    events: usize,
    /// (command type, outcome label) per command, counted into
    /// `quickstore_commands_total` once the transaction committed.
    pub(super) tally: Vec<(String, &'static str)>,
}

impl<A> Default for Batch<A> {
    fn default() -> Self {
        Self {
            staged: HashMap::new(),
            sent: Vec::new(),
            events: 0,
            tally: Vec::new(),
        }
    }
}

impl<A: Aggregate> Batch<A> {
    pub fn event_count(&self) -> usize {
        self.events
    }

    /// The transaction committed: make its changes the partitions' state.
    pub fn apply(
        self,
        partitions: &mut HashMap<i32, PartitionState<A>>,
        store: &mut AggregateStore<A>,
        positions: &[RecordPosition],
        dedup_window: usize,
    ) -> Result<(), StoreError> {
        let mut by_partition: HashMap<i32, Vec<(String, AggregateEntry<A>)>> = HashMap::new();
        for ((partition, id), entry) in self.staged {
            if partitions.contains_key(&partition) {
                by_partition.entry(partition).or_default().push((id, entry));
            }
        }
        for (partition, entries) in by_partition {
            store.put_committed(partition, entries)?;
        }
        for (sent, position) in self.sent.into_iter().zip(positions) {
            match sent {
                Sent::Event {
                    partition,
                    aggregate_id,
                } => {
                    if let Some(state) = partitions.get_mut(&partition) {
                        state.events_end = state.events_end.max(position.offset + 1);
                        state.unsnapshotted.mark(&aggregate_id, position.offset);
                    }
                }
                Sent::Snapshot {
                    partition,
                    aggregate_id,
                } => {
                    // A snapshot is sent after the aggregate's events in the
                    // same batch (laggards: before any of them), so this
                    // clears what the events before it marked.
                    if let Some(state) = partitions.get_mut(&partition) {
                        state.unsnapshotted.clear(&aggregate_id);
                    }
                }
                Sent::Outcome { partition, outcome } => {
                    if let Some(state) = partitions.get_mut(&partition) {
                        state.outcomes_end = state.outcomes_end.max(position.offset + 1);
                        state.remember_outcome(outcome, position.offset, dedup_window);
                    }
                }
                Sent::Reply => {}
            }
        }
        Ok(())
    }
}

/// The command's type as its record's header names it (`PlaceOrder`),
/// for spans and metrics; `unknown` for a record without one.
fn command_type_of(record: &LogRecord) -> String {
    record
        .header("command_type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A decoded command with its envelope.
struct Incoming<C> {
    envelope: CommandEnvelope,
    command: C,
}

impl<A: Aggregate> CommandProcessor<A> {
    pub(super) async fn fill_batch(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        commands: &[LogRecord],
        batch: &mut Batch<A>,
    ) -> Result<(), ProcessorError> {
        self.snapshot_laggards(member, batch)?;
        // Outcomes decided earlier in this same batch, for duplicates
        // inside one batch.
        let mut batch_outcomes: HashMap<String, CommandOutcome> = HashMap::new();
        for record in commands {
            let command_type = command_type_of(record);
            // One span per command, the child of the context its record
            // carries (the HTTP request, or the saga step that sent it):
            // a batch mixes many traces, so the command, not the batch, is
            // the hop of a trace. The batch's transaction span links them.
            let span = tracing::info_span!(
                "command",
                otel.name = %format!("process {command_type}"),
                otel.kind = "consumer",
                messaging.destination.name = %record.topic,
                messaging.kafka.partition = record.partition,
                messaging.kafka.offset = record.offset,
                command_type = %command_type,
                outcome = tracing::field::Empty,
            );
            platform::telemetry::continue_from(&span, &record.headers);
            let outcome = self
                .handle_command(member, record, batch, &mut batch_outcomes)
                .instrument(span.clone())
                .await?;
            span.record("outcome", outcome);
            batch.tally.push((command_type, outcome));
        }
        Ok(())
    }

    /// Decides one command record and stages what it produces; returns the
    /// outcome's metric label.
    async fn handle_command(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        record: &LogRecord,
        batch: &mut Batch<A>,
        batch_outcomes: &mut HashMap<String, CommandOutcome>,
    ) -> Result<&'static str, ProcessorError> {
        let partition = record.partition;
        if !self.partitions.contains_key(&partition) {
            // Records of a partition whose Assigned we did not see must
            // not be decided against empty state.
            let tp =
                platform::eventlog::TopicPartition::new(self.topology.commands.clone(), partition);
            self.restore_partition(&tp).await?;
        }
        let decoded = match record.value.as_deref() {
            Some(bytes) => self.codec.decode_command::<A::Command>(bytes).await,
            None => Err(schemas::CodecError::EmptyOrTooShort { len: 0 }),
        };
        let incoming = match decoded {
            Ok((envelope, command)) => Incoming { envelope, command },
            // The registry being unreachable says nothing about the
            // command: abort the batch and retry, never refuse it.
            Err(e @ schemas::CodecError::Registry(_)) => return Err(e.into()),
            Err(e) => {
                // A command we cannot read is refused, not retried
                // forever: the outcome tells the sender why.
                let outcome =
                    self.refusal_outcome(record, None, "malformed-command", &e.to_string());
                self.send_outcome(member, batch, partition, outcome, None, record)?;
                return Ok("malformed");
            }
        };
        if let Some(reason) = self.misrouted(record, &incoming.envelope) {
            // Deciding it here would give its aggregate a second writer.
            let outcome = self.refusal_outcome(
                record,
                Some(&incoming.envelope),
                "misrouted-command",
                &reason,
            );
            self.send_outcome(member, batch, partition, outcome, None, record)?;
            return Ok("misrouted");
        }
        let command_id = incoming.envelope.command_id.clone();
        let first = batch_outcomes.get(&command_id).cloned().or_else(|| {
            self.partitions
                .get(&partition)
                .and_then(|s| s.outcomes.get(&command_id).cloned())
        });
        if let Some(first) = first {
            // A duplicate: answer with the first outcome, append nothing.
            self.send_outcome(
                member,
                batch,
                partition,
                first,
                incoming.envelope.reply_to.clone(),
                record,
            )?;
            return Ok("duplicate");
        }
        let facts = match self.consultant.clone() {
            Some(consultant) => {
                let entry = self.current(batch, partition, &incoming.envelope.aggregate_id)?;
                consultant
                    .consult(&entry.state, &incoming.envelope, &incoming.command)
                    .await?
            }
            None => A::Facts::default(),
        };
        let outcome = self.decide_one(member, batch, partition, record, &incoming, facts)?;
        let label = match outcome.status {
            CommandStatus::Accepted => "accepted",
            CommandStatus::Rejected => "rejected",
            CommandStatus::Conflict => "conflict",
        };
        batch_outcomes.insert(command_id, outcome.clone());
        self.send_outcome(
            member,
            batch,
            partition,
            outcome,
            incoming.envelope.reply_to.clone(),
            record,
        )?;
        Ok(label)
    }

    /// The aggregate as this batch has left it so far (from the local
    /// store — its cache, or its disk — if the batch has not touched it).
    fn current(
        &mut self,
        batch: &Batch<A>,
        partition: i32,
        id: &str,
    ) -> Result<AggregateEntry<A>, ProcessorError> {
        match batch.staged.get(&(partition, id.to_owned())) {
            Some(e) => Ok(e.clone()),
            None => Ok(self.store.get(partition, id)?.unwrap_or_default()),
        }
    }

    fn decide_one(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        batch: &mut Batch<A>,
        partition: i32,
        record: &LogRecord,
        incoming: &Incoming<A::Command>,
        facts: A::Facts,
    ) -> Result<CommandOutcome, ProcessorError> {
        let envelope = &incoming.envelope;
        let id = envelope.aggregate_id.clone();
        let key = (partition, id.clone());
        let mut entry = self.current(batch, partition, &id)?;
        let decided_at = (self.clock)();
        // Checked by `misrouted`: a type this aggregate handles.
        let aggregate_type = envelope.aggregate_type.as_str();
        let outcome =
            |status, version, event_count, error: Option<(&str, String)>| CommandOutcome {
                command_id: envelope.command_id.clone(),
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: id.clone(),
                correlation_id: envelope.correlation_id.clone(),
                status,
                version,
                event_count,
                error_code: error.as_ref().map(|(c, _)| (*c).to_owned()),
                error_message: error.map(|(_, m)| m),
                decided_at,
                event_types: Vec::new(),
            };
        if let Some(expected) = envelope.expected_version {
            if expected != entry.version {
                return Ok(outcome(
                    CommandStatus::Conflict,
                    entry.version,
                    0,
                    Some((
                        "version-conflict",
                        format!("expected version {expected}, current is {}", entry.version),
                    )),
                ));
            }
        }
        let context = DecisionContext {
            aggregate_id: id.clone(),
            version: entry.version,
            now_ms: envelope.issued_at,
            actor: envelope.actor.clone(),
            facts,
        };
        let events = match entry.state.decide(&incoming.command, &context) {
            Ok(events) => events,
            Err(refusal) => {
                return Ok(outcome(
                    CommandStatus::Rejected,
                    entry.version,
                    0,
                    Some((refusal.code(), refusal.to_string())),
                ))
            }
        };
        let previous_version = entry.version;
        // The events' hop of the trace: their records carry this span, so
        // the saga and the projectors continue from it. (They become
        // durable when the transaction commits: see its linked span.)
        let append = tracing::info_span!(
            "events.append",
            otel.name = "append events",
            otel.kind = "producer",
            messaging.destination.name = %self.topology.events,
            events = events.len(),
        );
        let _append = append.enter();
        for (index, event) in events.iter().enumerate() {
            let version = entry.version + 1;
            let mut event_envelope = EventEnvelope {
                // Deterministic: the same command always yields the same
                // event ids, so a duplicate append would be detectable.
                event_id: uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_OID,
                    format!("{}/{index}", envelope.command_id).as_bytes(),
                )
                .to_string(),
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: id.clone(),
                version,
                occurred_at: envelope.issued_at,
                command_id: envelope.command_id.clone(),
                correlation_id: envelope.correlation_id.clone(),
                causation_id: envelope.command_id.clone(),
                actor: envelope.actor.clone(),
                prev_hash: entry.last_hash.clone(),
                hash: Vec::new(),
            };
            // hash = SHA-256(prev_hash ‖ Avro body with an empty hash):
            // over the body, not the wire bytes, so it verifies whatever
            // schema id a registry assigned.
            let bytes = self.codec.encode_sealed_event(
                &self.topology.events,
                &mut event_envelope,
                event,
            )?;
            let mut out = OutgoingRecord::new(self.topology.events.clone(), id.clone(), bytes)
                .with_header("event_type", event.record_name())
                .with_header("aggregate_type", aggregate_type)
                .with_header("aggregate_id", id.clone())
                .with_header("event_id", event_envelope.event_id.clone())
                .with_header("correlation_id", envelope.correlation_id.clone());
            // The command's span: projectors and the saga continue it.
            platform::telemetry::propagation::propagate(&mut out.headers, &record.headers);
            out.timestamp_ms = Some(envelope.issued_at);
            // The record's time is the command's (data, the same on every
            // replay); when this hop began is telemetry: the consumers'
            // `quickstore_record_wait_seconds` counts from it.
            out.headers
                .push(platform::telemetry::metrics::sent_at_header());
            // The aggregate's partition, explicitly: co-partitioning made
            // equal to the command's (checked in `misrouted`).
            out.partition = Some(partition);
            member.send(out)?;
            batch.sent.push(Sent::Event {
                partition,
                aggregate_id: id.clone(),
            });
            batch.events += 1;
            entry.state.evolve(event);
            entry.version = version;
            entry.last_hash = event_envelope.hash;
        }
        let every = self.config.snapshot_every.max(1);
        if !events.is_empty() && entry.version / every > previous_version / every {
            self.send_snapshot(member, batch, partition, &id, &entry)?;
        }
        let version = entry.version;
        let count = i32::try_from(events.len()).unwrap_or(i32::MAX);
        batch.staged.insert(key, entry);
        let mut accepted = outcome(CommandStatus::Accepted, version, count, None);
        accepted.event_types = events.iter().map(|e| e.record_name().to_owned()).collect();
        Ok(accepted)
    }

    /// Snapshots aggregates whose unsnapshotted events lag too far behind,
    /// so a restore never has to read far back.
    fn snapshot_laggards(
        &mut self,
        member: &mut Box<dyn GroupMember>,
        batch: &mut Batch<A>,
    ) -> Result<(), ProcessorError> {
        let lag = self.config.max_unsnapshotted_lag;
        // A batch adds at most `max_batch` aggregates to `unsnapshotted`;
        // taking up to twice that many laggards per batch drains it faster
        // than it fills, so it stays bounded by the lag window (a cap
        // below `max_batch` would let it grow with the aggregate count).
        let cap = self.config.max_batch.saturating_mul(2).max(100);
        let mut due: Vec<(i32, String)> = Vec::new();
        for (partition, state) in &self.partitions {
            let room = cap.saturating_sub(due.len());
            if room == 0 {
                break;
            }
            due.extend(
                state
                    .unsnapshotted
                    .lagging(state.events_end, lag, room)
                    .into_iter()
                    .map(|id| (*partition, id)),
            );
        }
        for (partition, id) in due {
            if let Some(entry) = self.store.get(partition, &id)? {
                self.send_snapshot(member, batch, partition, &id, &entry)?;
            }
        }
        Ok(())
    }

    fn send_snapshot(
        &self,
        member: &mut Box<dyn GroupMember>,
        batch: &mut Batch<A>,
        partition: i32,
        id: &str,
        entry: &AggregateEntry<A>,
    ) -> Result<(), ProcessorError> {
        let snapshot = AggregateSnapshot {
            aggregate_type: entry.state.type_name().to_owned(),
            aggregate_id: id.to_owned(),
            version: entry.version,
            last_hash: entry.last_hash.clone(),
            state_json: serde_json::to_string(&entry.state).map_err(|e| {
                ProcessorError::Restore {
                    partition: platform::eventlog::TopicPartition::new(
                        self.topology.snapshots.clone(),
                        partition,
                    ),
                    reason: format!("state does not serialise: {e}"),
                }
            })?,
            taken_at: (self.clock)(),
        };
        let bytes = self.codec.encode_record(
            &self.topology.snapshots,
            schemas::AggregateSnapshot::FULL_NAME,
            &snapshot,
        )?;
        let mut out = OutgoingRecord::new(self.topology.snapshots.clone(), id.to_owned(), bytes);
        out.partition = Some(partition);
        member.send(out)?;
        batch.sent.push(Sent::Snapshot {
            partition,
            aggregate_id: id.to_owned(),
        });
        Ok(())
    }

    fn send_outcome(
        &self,
        member: &mut Box<dyn GroupMember>,
        batch: &mut Batch<A>,
        partition: i32,
        outcome: CommandOutcome,
        reply_to: Option<String>,
        command: &LogRecord,
    ) -> Result<(), ProcessorError> {
        let bytes = self.codec.encode_record(
            &self.topology.outcomes,
            CommandOutcome::FULL_NAME,
            &outcome,
        )?;
        let key = outcome.aggregate_id.clone();
        let mut out = OutgoingRecord::new(self.topology.outcomes.clone(), key, bytes.clone());
        out.partition = Some(partition);
        platform::telemetry::propagation::propagate(&mut out.headers, &command.headers);
        member.send(out)?;
        if let Some(topic) = reply_to {
            // Saga replies are keyed by the saga (the correlation id) so
            // they land on the partition of the saga instance that asked.
            let reply_bytes =
                self.codec
                    .encode_record(&topic, CommandOutcome::FULL_NAME, &outcome)?;
            let mut reply = OutgoingRecord::new(topic, outcome.correlation_id.clone(), reply_bytes);
            platform::telemetry::propagation::propagate(&mut reply.headers, &command.headers);
            member.send(reply)?;
            batch.sent.push(Sent::Outcome { partition, outcome });
            batch.sent.push(Sent::Reply);
        } else {
            batch.sent.push(Sent::Outcome { partition, outcome });
        }
        Ok(())
    }

    /// Why a command must not be decided on this partition, if it must not:
    /// its key must be its aggregate id, which must hash to this partition,
    /// and it must be addressed to this aggregate type.
    fn misrouted(&self, record: &LogRecord, envelope: &CommandEnvelope) -> Option<String> {
        if record.key != envelope.aggregate_id.as_bytes() {
            return Some(format!(
                "the record key {:?} is not the aggregate id {:?}",
                String::from_utf8_lossy(&record.key),
                envelope.aggregate_id
            ));
        }
        let home = partition_for_key(envelope.aggregate_id.as_bytes(), self.topology.partitions);
        if home != record.partition {
            return Some(format!(
                "aggregate {} lives in partition {home}, the command arrived in {}",
                envelope.aggregate_id, record.partition
            ));
        }
        if !A::handles(&envelope.aggregate_type) {
            return Some(format!(
                "addressed to a {}, this processor decides for {}",
                envelope.aggregate_type,
                A::TYPE
            ));
        }
        None
    }

    /// An outcome refusing `record` before any decision; with the envelope
    /// when it could be read, so the sender can match it.
    fn refusal_outcome(
        &self,
        record: &LogRecord,
        envelope: Option<&CommandEnvelope>,
        code: &str,
        reason: &str,
    ) -> CommandOutcome {
        let id = String::from_utf8_lossy(&record.key).into_owned();
        let fallback_id = || format!("{}-{}-{}", record.topic, record.partition, record.offset);
        CommandOutcome {
            command_id: envelope.map_or_else(fallback_id, |e| e.command_id.clone()),
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id,
            correlation_id: envelope
                .map(|e| e.correlation_id.clone())
                .unwrap_or_default(),
            status: CommandStatus::Rejected,
            version: 0,
            event_count: 0,
            error_code: Some(code.to_owned()),
            error_message: Some(reason.to_owned()),
            decided_at: (self.clock)(),
            event_types: Vec::new(),
        }
    }
}
