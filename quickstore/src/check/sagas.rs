//! Every order-fulfillment saga is terminal or within its time.
//!
//! A saga is its last `OrderFulfillmentStep`. Terminal: COMPLETED,
//! REJECTED, CANCELLED. Otherwise:
//! - with a stored deadline (`deadline_at`: the payment authorization or
//!   courier assignment timeout the saga was configured with), the deadline
//!   must not have passed by more than [`TIMER_GRACE_MS`] at `now` — the
//!   owning worker fires due timers (after a restart too), so an `overdue`
//!   saga is one whose timer was lost;
//! - without one (in transit: waiting for the courier, with no timeout of
//!   its own) it is open; with `--saga-timeout DUR`, an open saga whose
//!   last step is older than DUR is `stuck`.

use std::collections::HashMap;

use schemas::{FulfillmentStage, OrderFulfillmentStep};

use super::report::{counts, n, Finding, Findings, InvariantReport, Position};

pub const NAME: &str = "sagas-terminal-or-timely";

/// How late a due timer may fire: the worker's tick plus a busy moment.
pub const TIMER_GRACE_MS: i64 = 30_000;

#[derive(Debug)]
struct Saga {
    stage: FulfillmentStage,
    deadline_at: Option<i64>,
    last_at: i64,
    at: Position,
}

fn terminal(stage: FulfillmentStage) -> bool {
    matches!(
        stage,
        FulfillmentStage::Completed | FulfillmentStage::Rejected | FulfillmentStage::Cancelled
    )
}

/// The sagas' last steps.
#[derive(Debug, Default)]
pub struct SagaLedger {
    sagas: HashMap<String, Saga>,
    steps: u64,
}

impl SagaLedger {
    pub fn step(&mut self, step: &OrderFulfillmentStep, at: &Position) {
        self.steps += 1;
        let saga = Saga {
            stage: step.stage,
            deadline_at: step.deadline_at,
            last_at: step.envelope.occurred_at,
            at: at.clone(),
        };
        // Steps of one saga are in one partition, in version order.
        self.sagas.insert(step.envelope.aggregate_id.clone(), saga);
    }

    pub fn report(self, now_ms: i64, timeout_ms: Option<i64>) -> InvariantReport {
        let mut findings = Findings::default();
        let (mut done, mut waiting, mut open) = (0usize, 0usize, 0usize);
        for (id, s) in &self.sagas {
            if terminal(s.stage) {
                done += 1;
                continue;
            }
            match s.deadline_at {
                Some(deadline) if now_ms > deadline.saturating_add(TIMER_GRACE_MS) => {
                    findings.push(
                        Finding::new(
                            "overdue",
                            id,
                            format!(
                                "{:?} past its deadline by {} s (the timer did not fire)",
                                s.stage,
                                (now_ms - deadline) / 1000
                            ),
                        )
                        .at(&s.at),
                    );
                }
                Some(_) => waiting += 1,
                None => match timeout_ms {
                    Some(t) if now_ms > s.last_at.saturating_add(t) => {
                        findings.push(
                            Finding::new(
                                "stuck",
                                id,
                                format!(
                                    "{:?} for {} s, longer than --saga-timeout",
                                    s.stage,
                                    (now_ms - s.last_at) / 1000
                                ),
                            )
                            .at(&s.at),
                        );
                    }
                    _ => open += 1,
                },
            }
        }
        InvariantReport::new(
            NAME,
            counts([
                ("sagas", n(self.sagas.len())),
                ("steps", i64::try_from(self.steps).unwrap_or(i64::MAX)),
                ("terminal", n(done)),
                ("before_deadline", n(waiting)),
                ("open_without_deadline", n(open)),
            ]),
            findings,
        )
    }
}
