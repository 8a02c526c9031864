//! The verdict after quiescence, from a child process through ONE function
//! ([`run_checker`]): `quickstore check --settle 5s --json FILE`, the
//! invariant checker (docs/operations.md, "Checking invariants") — every
//! command has one outcome, event ids unique, versions 1..n with intact
//! hash chains, sagas terminal or within their deadline, stock and money
//! conserved, read models equal to the fold of the log. Exit code 0 clean,
//! 1 findings, 2 could not run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct CheckerVerdict {
    /// The command that ran.
    pub tool: String,
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub findings_total: u64,
    /// Findings by kind (`version-gap`, `duplicate-event-id`, …).
    pub findings_by_kind: BTreeMap<String, u64>,
    /// Each invariant by name and whether it held.
    pub invariants: BTreeMap<String, bool>,
    /// Events and aggregates it looked at.
    pub events_checked: u64,
    pub aggregates_checked: u64,
    /// What it printed when it could not run or found something.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl CheckerVerdict {
    pub fn count(&self, kind: &str) -> u64 {
        self.findings_by_kind.get(kind).copied().unwrap_or_default()
    }
}

/// Runs the checker against the run's log and read store (the `QS_*`
/// settings in `env`).
pub async fn run_checker(
    exe: &Path,
    env: &[(String, String)],
    dir: &Path,
) -> Result<CheckerVerdict> {
    let json_path = dir.join("check.json");
    let mut command = tokio::process::Command::new(exe);
    super::nodes::clear_qs_env(&mut command);
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("QS_DATA_DIR", dir.join("checker"))
        .args(["check", "--settle", "5s", "--json"])
        .arg(&json_path)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), command.output())
        .await
        .context("the checker did not finish within 10 min")?
        .context("running quickstore check")?;
    let report: Value = std::fs::read(&json_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let mut by_kind = BTreeMap::new();
    let mut invariants = BTreeMap::new();
    let mut findings_total = 0;
    let (mut events_checked, mut aggregates_checked) = (0, 0);
    for invariant in report["invariants"].as_array().into_iter().flatten() {
        let name = invariant["name"].as_str().unwrap_or("unknown").to_owned();
        findings_total += invariant["findings_total"].as_u64().unwrap_or_default();
        for f in invariant["findings"].as_array().into_iter().flatten() {
            let kind = f["kind"].as_str().unwrap_or("unknown").to_owned();
            *by_kind.entry(kind).or_insert(0) += 1;
        }
        if name == "aggregate-chains" {
            events_checked = invariant["checked"]["events"].as_u64().unwrap_or_default();
            aggregates_checked = invariant["checked"]["aggregates"]
                .as_u64()
                .unwrap_or_default();
        }
        invariants.insert(name, invariant["ok"].as_bool().unwrap_or(false));
    }
    let code = out.status.code();
    let ok = code == Some(0) && report["ok"].as_bool() == Some(true) && findings_total == 0;
    let detail = if ok {
        String::new()
    } else {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(4000)
                .collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(4000)
                .collect::<String>()
        )
    };
    Ok(CheckerVerdict {
        tool: "quickstore check --settle 5s --json".into(),
        ok,
        exit_code: code,
        findings_total,
        findings_by_kind: by_kind,
        invariants,
        events_checked,
        aggregates_checked,
        detail,
    })
}
