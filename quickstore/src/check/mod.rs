//! `quickstore check`: the invariant checker. It reads the whole log (and
//! the read models) once and says whether the system kept its promises —
//! after a chaos run, an incident, or any time on a quiet system.
//!
//! One file per invariant family, each a pure ledger fed decoded records
//! in each partition's offset order ([`commands`], [`stock`], [`money`],
//! [`sagas`], [`read_models`]; the chains and event ids reuse the audit's
//! [`crate::audit::check::ChainChecker`]); [`scan`] is the thin reader
//! over the [`EventLog`] port (embedded or Kafka) that feeds them;
//! [`report`] renders the verdict. docs/operations.md ("Checking
//! invariants") says what each invariant means; ADR 0015 why.

pub mod chains;
pub mod commands;
pub mod money;
pub mod read_models;
pub mod report;
pub mod sagas;
pub mod scan;
pub mod stock;
#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::{Context as _, Result};
use platform::config::Settings;
use platform::eventlog::EventLog;

pub use report::{Finding, InvariantReport, Report};

use crate::audit::{AuditExit, EXIT_COULD_NOT_RUN, EXIT_FINDINGS};
use crate::cli::CheckArgs;
use crate::system::System;

/// What the checker is told.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The moment saga deadlines are judged against (ms since the epoch).
    pub now_ms: i64,
    /// An open saga without a deadline older than this is stuck.
    pub saga_timeout_ms: Option<i64>,
    /// How long differing read-model rows are compared again while the
    /// log's new events are folded in (`--follow`).
    pub follow: Duration,
}

/// `--follow`'s default.
pub const DEFAULT_FOLLOW: Duration = Duration::from_secs(30);

/// Parses `30s`, `5m`, `2h`, `500ms` or plain seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let value: u64 = digits.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => value,
        "" | "s" => value.checked_mul(1000)?,
        "m" => value.checked_mul(60_000)?,
        "h" => value.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

const DURATION_FORMATS: &str = "a number with a unit: 500ms, 30s, 5m or 2h";

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    AuditExit {
        code,
        message: message.into(),
    }
    .into()
}

/// Waits until no topic of `topics` grows for `quiet` (at most `quiet`
/// × 10 + 30 s): the system has settled.
pub async fn settle(log: &dyn EventLog, topics: &[String], quiet: Duration) -> Result<bool> {
    let give_up = tokio::time::Instant::now() + quiet * 10 + Duration::from_secs(30);
    let mut last = scan::ends(log, topics).await?;
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250).min(quiet)).await;
        let now = scan::ends(log, topics).await?;
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= quiet {
            return Ok(true);
        }
        if tokio::time::Instant::now() > give_up {
            return Ok(false);
        }
    }
}

/// Runs `quickstore check …`: exit 0 every invariant holds, 1 findings,
/// 2 could not run.
pub async fn run(settings: Settings, args: CheckArgs) -> Result<()> {
    let now_ms = match &args.now {
        None => wall_clock_ms(),
        Some(text) => query_api::audit_log::parse_as_of(text).ok_or_else(|| {
            exit(
                EXIT_COULD_NOT_RUN,
                format!(
                    "--now {text:?} is not a time: give {}",
                    query_api::audit_log::AS_OF_FORMATS
                ),
            )
        })?,
    };
    let duration = |flag: &str, text: &Option<String>| -> Result<Option<Duration>> {
        match text {
            None => Ok(None),
            Some(t) => parse_duration(t).map(Some).ok_or_else(|| {
                exit(
                    EXIT_COULD_NOT_RUN,
                    format!("{flag} {t:?} is not a duration: give {DURATION_FORMATS}"),
                )
            }),
        }
    };
    let saga_timeout = duration("--saga-timeout", &args.saga_timeout)?;
    let settle_for = duration("--settle", &args.settle)?;
    let follow = duration("--follow", &args.follow)?.unwrap_or(DEFAULT_FOLLOW);
    let result = async {
        let store = if args.skip_read_models {
            None
        } else {
            Some(crate::system::connect_read_store(&settings).await.context(
                "connecting to the read store (QS_READ_STORE, QS_CQL_CONTACT_POINTS; or pass --skip-read-models)",
            )?)
        };
        let system = System::connect(settings).await?;
        let topics = scan::topics(system.log.as_ref(), &system.topics).await?;
        if let Some(quiet) = settle_for {
            if !settle(system.log.as_ref(), &topics.all(), quiet).await? {
                eprintln!("note: the log kept growing; checking it as it is now");
            }
        }
        let options = CheckOptions {
            now_ms,
            saga_timeout_ms: saga_timeout.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            follow,
        };
        scan::check(
            system.log.as_ref(),
            &system.codec,
            &system.topics,
            &topics,
            store.as_deref(),
            &options,
        )
        .await
    }
    .await
    .map_err(|e: anyhow::Error| {
        if e.downcast_ref::<AuditExit>().is_some() {
            e
        } else {
            exit(EXIT_COULD_NOT_RUN, format!("{e:#}"))
        }
    })?;
    if let Some(path) = &args.json {
        let body = serde_json::to_vec_pretty(&result)?;
        std::fs::write(path, body).map_err(|e| {
            exit(
                EXIT_COULD_NOT_RUN,
                format!("writing --json {}: {e}", path.display()),
            )
        })?;
    }
    print!("{}", result.text());
    if !result.ok {
        return Err(exit(EXIT_FINDINGS, ""));
    }
    Ok(())
}
