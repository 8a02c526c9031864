//! Every command has exactly one outcome.
//!
//! The command processor answers every command *record* it consumes with
//! one outcome record, in the same transaction as the consumed offset
//! (a redelivered or resubmitted command id is answered again with its
//! first outcome). So, per command id:
//! - as many outcomes as command records (`missing-outcome`, or
//!   `extra-outcome` / `outcome-without-command` when there are more);
//! - all its outcomes agree (`conflicting-outcomes`);
//! - an accepted outcome names as many events as the event topics hold
//!   with that `command_id` (`event-count-mismatch`: an event lost, or
//!   appended twice).
//!
//! A command record at or after its processor group's committed offset has
//! not been consumed yet: it is `in-flight`, not missing (the outcome of a
//! consumed one is committed with the offset, so it cannot be pending).
//! Both fail the invariant — the checker is meant for a quiet system — but
//! they say different things (`--settle` waits for quiet).

use std::collections::HashMap;

use platform::eventlog::TopicPartition;
use schemas::{CommandOutcome, CommandStatus};

use super::report::{counts, n, Finding, Findings, InvariantReport, Position};

pub const NAME: &str = "command-outcomes";

#[derive(Debug, Default)]
struct Command {
    /// Where each record of this id is.
    records: Vec<Position>,
    outcomes: u32,
    first_outcome: Option<(Position, CommandStatus, i64, i32)>,
    conflicting: bool,
    events: u32,
}

/// The ledger of commands, outcomes and the events they caused.
#[derive(Debug, Default)]
pub struct CommandLedger {
    commands: HashMap<String, Command>,
    records: u64,
    outcomes: u64,
}

impl CommandLedger {
    pub fn command(&mut self, command_id: &str, at: Position) {
        self.records += 1;
        self.commands
            .entry(command_id.to_owned())
            .or_default()
            .records
            .push(at);
    }

    pub fn outcome(&mut self, outcome: &CommandOutcome, at: Position) {
        self.outcomes += 1;
        let c = self.commands.entry(outcome.command_id.clone()).or_default();
        c.outcomes += 1;
        let this = (outcome.status, outcome.version, outcome.event_count);
        match &c.first_outcome {
            None => c.first_outcome = Some((at, this.0, this.1, this.2)),
            Some((_, s, v, e)) => {
                if (*s, *v, *e) != this {
                    c.conflicting = true;
                }
            }
        }
    }

    /// An event appended by `command_id`.
    pub fn event(&mut self, command_id: &str) {
        if let Some(c) = self.commands.get_mut(command_id) {
            c.events += 1;
        } else {
            // Events may precede their command in the scan order: keep them.
            self.commands
                .entry(command_id.to_owned())
                .or_default()
                .events = 1;
        }
    }

    /// The verdict; `consumed` is each command partition's committed
    /// offset of its processor group (absent: nothing consumed yet).
    pub fn report(self, consumed: &HashMap<TopicPartition, i64>) -> InvariantReport {
        let mut findings = Findings::default();
        let (mut answered, mut in_flight) = (0usize, 0usize);
        for (id, c) in &self.commands {
            let records = c.records.len();
            let outcomes = c.outcomes as usize;
            if records > outcomes {
                for at in c.records.iter().skip(outcomes) {
                    let tp = TopicPartition::new(at.topic.clone(), at.partition);
                    let pending = consumed.get(&tp).is_none_or(|next| at.offset >= *next);
                    if pending {
                        in_flight += 1;
                        findings.push(Finding::new("in-flight", id, "not consumed by the command processor yet (run after the system is quiet, or with --settle)").at(at));
                    } else {
                        findings.push(Finding::new("missing-outcome", id, format!("consumed by the command processor but {outcomes} outcome(s) for {records} record(s)")).at(at));
                    }
                }
            } else if records < outcomes {
                let (kind, detail) = if records == 0 {
                    ("outcome-without-command", "an outcome for a command that is not in the command topics (expired by retention, or never sent)".to_owned())
                } else {
                    (
                        "extra-outcome",
                        format!("{outcomes} outcomes for {records} command record(s)"),
                    )
                };
                let mut f = Finding::new(kind, id, detail);
                if let Some((at, ..)) = &c.first_outcome {
                    f = f.at(at);
                }
                findings.push(f);
            }
            if outcomes > 0 {
                answered += 1;
            }
            if c.conflicting {
                let mut f = Finding::new(
                    "conflicting-outcomes",
                    id,
                    "outcomes of one command id disagree (status, version or event count)",
                );
                if let Some((at, ..)) = &c.first_outcome {
                    f = f.at(at);
                }
                findings.push(f);
            }
            match &c.first_outcome {
                Some((at, CommandStatus::Accepted, _, count))
                    if i64::from(*count) != i64::from(c.events) =>
                {
                    findings.push(
                        Finding::new(
                            "event-count-mismatch",
                            id,
                            format!(
                                "the outcome names {count} event(s), the event topics hold {}",
                                c.events
                            ),
                        )
                        .at(at),
                    );
                }
                Some((_, status, ..)) if *status != CommandStatus::Accepted && c.events > 0 => {
                    findings.push(Finding::new(
                        "events-of-refused-command",
                        id,
                        format!("refused, yet {} event(s) carry its id", c.events),
                    ));
                }
                // Accepted with its events; refused with none; or events
                // whose command is gone (retention) or never was a record
                // (seeding): nothing to hold them to.
                _ => {}
            }
        }
        let distinct = self
            .commands
            .values()
            .filter(|c| !c.records.is_empty())
            .count();
        InvariantReport::new(
            NAME,
            counts([
                ("commands", n(distinct)),
                (
                    "command_records",
                    i64::try_from(self.records).unwrap_or(i64::MAX),
                ),
                ("outcomes", i64::try_from(self.outcomes).unwrap_or(i64::MAX)),
                ("answered", n(answered)),
                ("in_flight", n(in_flight)),
            ]),
            findings,
        )
    }
}
