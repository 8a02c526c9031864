//! No duplicate event id; per aggregate, versions 1..n without gap and an
//! intact hash chain. Both come from the auditor's
//! [`ChainChecker`] (one pass, the head of each chain and a 16-byte
//! fingerprint per event id in memory); here its findings are split into
//! the two invariants the checker reports.

use query_api::audit_log::ChainFinding;

use crate::audit::check::{ChainChecker, DUPLICATE_EVENT_ID};

use super::report::{counts, n, Finding, Findings, InvariantReport};

pub const UNIQUE: &str = "unique-event-ids";
pub const CHAINS: &str = "aggregate-chains";

fn finding(f: &ChainFinding) -> Finding {
    let id = match (&f.aggregate_type, &f.aggregate_id, f.version) {
        (Some(t), Some(a), Some(v)) => format!("{t} {a} v{v}"),
        (Some(t), Some(a), None) => format!("{t} {a}"),
        _ => String::new(),
    };
    let mut detail = f.detail.clone();
    if let Some(e) = &f.event_id {
        detail = format!("{detail} (event {e})");
    }
    Finding {
        kind: f.kind.clone(),
        topic: Some(f.topic.clone()),
        partition: Some(f.partition),
        offset: Some(f.offset),
        id: (!id.is_empty()).then_some(id),
        detail,
    }
}

/// The two verdicts of one scan's chain checker.
pub fn reports(checker: &ChainChecker, topics: usize) -> (InvariantReport, InvariantReport) {
    let (mut unique, mut chains) = (Findings::default(), Findings::default());
    for f in checker.findings() {
        if f.kind == DUPLICATE_EVENT_ID {
            unique.push(finding(f));
        } else {
            chains.push(finding(f));
        }
    }
    // Findings beyond the checker's own cap are counted as chain findings.
    let uncounted = checker
        .findings_total()
        .saturating_sub(checker.findings().len() as u64);
    for _ in 0..uncounted.min(1_000_000) {
        chains.push(Finding::new("more", "-", "beyond the kept findings"));
    }
    let events = i64::try_from(checker.events()).unwrap_or(i64::MAX);
    (
        InvariantReport::new(UNIQUE, counts([("events", events)]), unique),
        InvariantReport::new(
            CHAINS,
            counts([
                ("events", events),
                ("aggregates", n(checker.aggregates())),
                ("topics", n(topics)),
            ]),
            chains,
        ),
    )
}
