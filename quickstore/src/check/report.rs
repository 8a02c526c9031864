//! The checker's report: one entry per invariant (what was counted, the
//! findings), rendered as text for people and as JSON for the chaos
//! harness (`--json FILE`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Findings kept per invariant; beyond this they are only counted, so a
/// log damaged everywhere cannot exhaust memory in the report.
pub const MAX_KEPT: usize = 1_000;

/// Findings shown per invariant in the text report (the JSON has all kept).
const SHOWN: usize = 20;

/// One thing wrong, with where it is (a log position, or ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A short kebab-case name (`missing-outcome`, `version-gap`, …).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The command, aggregate, SKU, order, saga or table row concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// In words.
    pub detail: String,
}

impl Finding {
    pub fn new(kind: &str, id: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            topic: None,
            partition: None,
            offset: None,
            id: Some(id.into()),
            detail: detail.into(),
        }
    }

    pub fn at(mut self, at: &Position) -> Self {
        self.topic = Some(at.topic.clone());
        self.partition = Some(at.partition);
        self.offset = Some(at.offset);
        self
    }

    fn place(&self) -> String {
        let mut out = String::new();
        if let (Some(t), Some(p), Some(o)) = (&self.topic, self.partition, self.offset) {
            let _ = write!(out, "{t}/{p}@{o} ");
        }
        if let Some(id) = &self.id {
            let _ = write!(out, "{id} ");
        }
        out
    }
}

/// Where a record is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Findings of one invariant, capped at [`MAX_KEPT`].
#[derive(Debug, Clone, Default)]
pub struct Findings {
    kept: Vec<Finding>,
    total: u64,
}

impl Findings {
    pub fn push(&mut self, finding: Finding) {
        self.total += 1;
        if self.kept.len() < MAX_KEPT {
            self.kept.push(finding);
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn kept(&self) -> &[Finding] {
        &self.kept
    }
}

/// One invariant's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantReport {
    pub name: &'static str,
    pub ok: bool,
    /// What was counted (commands, events, SKUs, minor units …).
    pub checked: BTreeMap<&'static str, i64>,
    pub findings_total: u64,
    pub findings: Vec<Finding>,
    /// Facts that are not findings (skipped parts, what is still open).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl InvariantReport {
    pub fn new(
        name: &'static str,
        checked: BTreeMap<&'static str, i64>,
        findings: Findings,
    ) -> Self {
        Self {
            name,
            ok: findings.total == 0,
            checked,
            findings_total: findings.total,
            findings: findings.kept,
            notes: Vec::new(),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when every invariant holds.
    pub ok: bool,
    /// The moment sagas' deadlines were judged against (RFC 3339).
    pub now: String,
    pub invariants: Vec<InvariantReport>,
}

impl Report {
    pub fn new(now: String, invariants: Vec<InvariantReport>) -> Self {
        Self {
            ok: invariants.iter().all(|i| i.ok),
            now,
            invariants,
        }
    }

    pub fn invariant(&self, name: &str) -> Option<&InvariantReport> {
        self.invariants.iter().find(|i| i.name == name)
    }

    /// Every finding's kind, by invariant (what tests look at).
    pub fn kinds(&self) -> Vec<(&'static str, String)> {
        self.invariants
            .iter()
            .flat_map(|i| i.findings.iter().map(|f| (i.name, f.kind.clone())))
            .collect()
    }

    /// The text report: one line per invariant with its counts and
    /// PASS/FAIL, then the findings.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let width = self
            .invariants
            .iter()
            .map(|i| i.name.len())
            .max()
            .unwrap_or_default();
        for i in &self.invariants {
            let counts: Vec<String> = i.checked.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "{}  {:width$}  {}{}",
                if i.ok { "PASS" } else { "FAIL" },
                i.name,
                counts.join(" "),
                if i.ok {
                    String::new()
                } else {
                    format!("  findings={}", i.findings_total)
                },
            );
            for note in &i.notes {
                let _ = writeln!(out, "      note: {note}");
            }
        }
        for i in self.invariants.iter().filter(|i| !i.ok) {
            let _ = writeln!(out, "\n{} — {} finding(s):", i.name, i.findings_total);
            for f in i.findings.iter().take(SHOWN) {
                let _ = writeln!(out, "  {:24} {}{}", f.kind, f.place(), f.detail);
            }
            let shown = i.findings.len().min(SHOWN) as u64;
            if i.findings_total > shown {
                let _ = writeln!(
                    out,
                    "  … and {} more (--json FILE keeps up to {MAX_KEPT})",
                    i.findings_total - shown
                );
            }
        }
        let failed = self.invariants.iter().filter(|i| !i.ok).count();
        let _ = writeln!(
            out,
            "\n{}",
            if failed == 0 {
                format!("OK: all {} invariants hold", self.invariants.len())
            } else {
                format!(
                    "FAILED: {failed} of {} invariants do not hold",
                    self.invariants.len()
                )
            }
        );
        out
    }
}

/// `checked` from `(name, count)` pairs.
pub fn counts<const N: usize>(pairs: [(&'static str, i64); N]) -> BTreeMap<&'static str, i64> {
    pairs.into_iter().collect()
}

/// A count as i64 for the report.
pub fn n(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
