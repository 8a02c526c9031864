//! `quickstore audit`: the auditor's tools over the event log.
//!
//! - `audit verify [--topic T]…` — scans every chained event topic (the
//!   six contexts' and the saga's) from start to end and checks each
//!   aggregate's hash chain ([`check`]): exit 0 clean, 1 findings, 2 could
//!   not run.
//! - `audit stream TYPE ID [--as-of TIME]` — one aggregate's history (who,
//!   when, why, where in the log), its chain checked, and with `--as-of`
//!   its state at that moment folded through the command side's `evolve`
//!   ([`fold`]).
//!
//! [`aggregate::LogAudit`] gives the query API the same reads (its audit
//! routes `…/state` and `…/verify`). docs/audit.md is the user's guide;
//! ADR 0011 the decisions.

pub mod aggregate;
pub mod check;
pub mod decode;
pub mod fold;
pub mod locate;
pub mod report;
pub mod scan;

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use platform::config::{ReadStoreBackend, Settings};
use platform::readstore::ReadStore;
use query_api::audit_log::{self, AuditLogError, AGGREGATE_TYPES};
use serde_json::json;

pub use aggregate::LogAudit;

use crate::cli::{AuditCommand, AuditStreamArgs, AuditVerifyArgs};
use crate::system::System;

/// How an audit command ends when it does not end cleanly: the process's
/// exit code (1: findings or no such aggregate; 2: could not run) and
/// what to say on stderr (empty: the report already said it).
#[derive(Debug)]
pub struct AuditExit {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for AuditExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuditExit {}

/// Exit code: findings (or nothing found for what was asked).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: the command could not run (bad input, log or registry unreachable).
pub const EXIT_COULD_NOT_RUN: u8 = 2;

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn could_not_run(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<AuditExit>().is_some() {
        return e;
    }
    AuditExit {
        code: EXIT_COULD_NOT_RUN,
        message: format!("{e:#}"),
    }
    .into()
}

fn exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    AuditExit {
        code,
        message: message.into(),
    }
    .into()
}

/// Runs `quickstore audit …`.
pub async fn run(settings: Settings, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify(args) => verify(settings, args).await,
        AuditCommand::Stream(args) => stream(settings, args).await,
    }
    .map_err(could_not_run)
}

/// The topics `--topic` names (with or without the prefix), or every
/// chained topic that exists.
async fn chosen_topics(system: &System, asked: &[String]) -> Result<Vec<String>> {
    let existing = system
        .log
        .list_topics()
        .await
        .context("listing the log's topics")?;
    let chained = locate::chained_topics(&system.topics);
    if asked.is_empty() {
        let present: Vec<String> = chained
            .iter()
            .filter(|t| existing.contains(t))
            .cloned()
            .collect();
        if present.is_empty() {
            anyhow::bail!(
                "the log has none of the event topics ({}): check QS_EVENT_LOG, QS_DATA_DIR or \
                 QS_KAFKA_BOOTSTRAP, and QS_TOPIC_PREFIX (`quickstore topics` lists what is there)",
                chained.join(", ")
            );
        }
        return Ok(present);
    }
    let mut out = Vec::new();
    for name in asked {
        let prefixed = format!("{}{name}", system.topics.prefix);
        let topic = [name.clone(), prefixed]
            .into_iter()
            .find(|t| existing.contains(t))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no topic {name:?} in the log (the chained event topics are {}; `quickstore topics` lists every topic)",
                    chained.join(", ")
                )
            })?;
        if !out.contains(&topic) {
            out.push(topic);
        }
    }
    Ok(out)
}

async fn verify(settings: Settings, args: AuditVerifyArgs) -> Result<()> {
    let system = System::connect(settings).await?;
    let topics = chosen_topics(&system, &args.topics).await?;
    let progress = !args.json && std::io::stderr().is_terminal();
    let scanned = scan::scan(system.log.as_ref(), &system.codec, &topics, progress).await?;
    let c = &scanned.checker;
    if args.json {
        let body = json!({
            "topics": scanned.topics,
            "partitions": scanned.partitions,
            "events": c.events(),
            "aggregates": c.aggregates(),
            "findings_total": c.findings_total(),
            "findings": c.findings(),
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        if c.findings_total() > 0 {
            print!("{}", report::findings(c.findings()));
            let shown = c.findings().len() as u64;
            if shown < c.findings_total() {
                println!(
                    "… and {} more findings not shown (the first {shown} are)",
                    c.findings_total() - shown
                );
            }
            println!();
        }
        println!(
            "checked {} events of {} aggregates in {} ({} partitions): {} {}",
            c.events(),
            c.aggregates(),
            plural(scanned.topics.len(), "topic"),
            scanned.partitions,
            c.findings_total(),
            if c.findings_total() == 0 {
                "findings: every chain is intact".to_owned()
            } else if c.findings_total() == 1 {
                "finding".to_owned()
            } else {
                "findings".to_owned()
            },
        );
    }
    if c.findings_total() > 0 {
        return Err(exit(EXIT_FINDINGS, ""));
    }
    Ok(())
}

/// The audit index to locate events with, when `--source` allows it and
/// a read store is configured; `None` scans the log.
async fn index_store(settings: &Settings, source: &str) -> Result<Option<Arc<dyn ReadStore>>> {
    let configured = match settings.read_store {
        ReadStoreBackend::Cql => true,
        ReadStoreBackend::Embedded => settings.data_dir.join("readstore").exists(),
    };
    match source {
        "log" => Ok(None),
        "index" => Ok(Some(
            crate::system::connect_read_store(settings)
                .await
                .context("--source index needs the read store (QS_READ_STORE)")?,
        )),
        "auto" if configured => match crate::system::connect_read_store(settings).await {
            Ok(store) => Ok(Some(store)),
            Err(e) => {
                eprintln!("note: the audit index is unavailable ({e:#}); scanning the log");
                Ok(None)
            }
        },
        "auto" => Ok(None),
        other => anyhow::bail!("--source must be auto, index or log, not {other:?}"),
    }
}

async fn stream(settings: Settings, args: AuditStreamArgs) -> Result<()> {
    if !AGGREGATE_TYPES.contains(&args.aggregate_type.as_str()) {
        return Err(exit(
            EXIT_COULD_NOT_RUN,
            AuditLogError::UnknownType(args.aggregate_type.clone()).to_string(),
        ));
    }
    let as_of = match &args.as_of {
        None => None,
        Some(text) => Some(audit_log::parse_as_of(text).ok_or_else(|| {
            exit(
                EXIT_COULD_NOT_RUN,
                format!(
                    "--as-of {text:?} is not a time: give {}",
                    audit_log::AS_OF_FORMATS
                ),
            )
        })?),
    };
    let index = index_store(&settings, &args.source).await?;
    let system = System::connect(settings).await?;
    let (t, id) = (args.aggregate_type.as_str(), args.aggregate_id.as_str());
    let loaded = aggregate::load(
        system.log.as_ref(),
        &system.codec,
        &system.topics,
        index.as_deref(),
        t,
        id,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    if loaded.is_empty() {
        return Err(exit(
            EXIT_FINDINGS,
            format!(
                "no events of {t} {id:?} in {} (ids are case-sensitive; the audit index's \
                 `GET /audit/{t}/{{id}}/events` or `quickstore topics` may help)",
                locate::topic_for(&system.topics, t)?
            ),
        ));
    }
    let history = loaded.history();
    let chain = loaded.verify(t, id);
    let state = match as_of {
        Some(ms) => Some(
            fold::state_at(&system.codec, t, id, &loaded.events, ms)
                .await
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
        None => None,
    };
    if args.json {
        let body = json!({
            "aggregate_type": t,
            "aggregate_id": id,
            "source": loaded.source,
            "events": history,
            "chain": chain,
            "state_at": state,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!(
            "{t} {id}: {} event{} (located through the {})",
            history.len(),
            if history.len() == 1 { "" } else { "s" },
            if loaded.source == "index" {
                "audit index"
            } else {
                "log"
            }
        );
        print!("{}", report::history(&history));
        if chain.intact {
            println!(
                "chain: intact, {}, head version {} hash {}",
                plural(usize::try_from(chain.events).unwrap_or(usize::MAX), "event"),
                chain.last_version,
                check::short_hex(&hex::decode(&chain.head_hash).unwrap_or_default())
            );
        } else {
            println!(
                "chain: {} (`quickstore audit verify --topic {}` checks the whole topic)",
                plural(chain.findings.len(), "finding"),
                locate::topic_for(&system.topics, t)?
            );
            print!("{}", report::findings(&chain.findings));
        }
        if let Some(s) = &state {
            match &s.version_occurred_at {
                Some(at) => println!(
                    "state as of {}: version {} (occurred at {at})",
                    s.as_of, s.version
                ),
                None => println!(
                    "state as of {}: version 0 (the aggregate did not exist yet)",
                    s.as_of
                ),
            }
            println!("{}", serde_json::to_string_pretty(&s.state)?);
        }
    }
    if !chain.intact {
        return Err(exit(EXIT_FINDINGS, ""));
    }
    Ok(())
}
