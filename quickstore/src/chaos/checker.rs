//! The verdict after quiescence, from a child process through ONE function
//! ([`run_checker`]), so swapping the checker is one change.
//!
//! Today it runs `quickstore audit verify --json` (every aggregate's chain:
//! versions 1..n with no gap or repeat, event ids unique, hashes right).
//! `quickstore check` (stock and money conservation and the rest, being
//! written separately) replaces it here with the same exit-code contract:
//! 0 clean, 1 findings, 2 could not run.

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

/// Runs the checker against the run's log (the `QS_*` settings in `env`).
pub async fn run_checker(
    exe: &Path,
    env: &[(String, String)],
    dir: &Path,
) -> Result<CheckerVerdict> {
    let mut command = tokio::process::Command::new(exe);
    super::nodes::clear_qs_env(&mut command);
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("QS_DATA_DIR", dir.join("checker"))
        .args(["audit", "verify", "--json"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), command.output())
        .await
        .context("the checker did not finish within 10 min")?
        .context("running quickstore audit verify")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let mut by_kind = BTreeMap::new();
    if let Some(findings) = report["findings"].as_array() {
        for f in findings {
            let kind = f["kind"].as_str().unwrap_or("unknown").to_owned();
            *by_kind.entry(kind).or_insert(0) += 1;
        }
    }
    let code = out.status.code();
    let findings_total = report["findings_total"].as_u64().unwrap_or_default();
    let ok = code == Some(0) && findings_total == 0 && !report.is_null();
    let detail = if ok {
        String::new()
    } else {
        format!(
            "{}\n{}",
            stdout.chars().take(4000).collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(4000)
                .collect::<String>()
        )
    };
    Ok(CheckerVerdict {
        tool: "quickstore audit verify --json".into(),
        ok,
        exit_code: code,
        findings_total,
        findings_by_kind: by_kind,
        events_checked: report["events"].as_u64().unwrap_or_default(),
        aggregates_checked: report["aggregates"].as_u64().unwrap_or_default(),
        detail,
    })
}
