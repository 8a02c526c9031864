//! `quickstore bench` (or `bench all`): the whole system in one
//! invocation, on the real servers and on the embedded twins — command
//! append, the open-loop order sweep, the read side — each figure beside
//! its raw baseline; written as `report.json`, `report.md` and SVG plots
//! into one folder.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};

use super::figure::Verdict;
use super::log::{LogPlan, LogTarget};
use super::machine::Machine;
use super::order_steps::StepPlan;
use super::projections::{Backend, Plan};
use super::report::{Report, TargetReport, MEMORY_NOTE, SCHEMA_VERSION};
use crate::cli::BenchAllArgs;

/// What the real-server target needs, and how to get it.
const SERVERS: [&str; 2] = ["QS_KAFKA_BOOTSTRAP", "QS_CQL_CONTACT_POINTS"];

pub async fn run(settings: Settings, args: BenchAllArgs) -> Result<()> {
    let targets = targets(args.target.as_deref())?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-report").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut machine = Machine::probe();
    if targets.contains(&"kafka") {
        machine.cql_version = cql_version(&settings).await;
    } else {
        machine.kafka_version = None;
    }
    eprintln!(
        "bench: {} mode, targets {targets:?}, report in {}",
        if args.quick { "quick" } else { "full" },
        out.display()
    );
    let mut sections = Vec::new();
    for target in &targets {
        sections.push(one_target(&settings, target, args.quick).await?);
    }
    // Every role's memory at two numbers of aggregates, on the real
    // servers when they are a target (each point a child process).
    let memory_settings = super::memory::MemorySettings {
        backend: if targets.contains(&"kafka") {
            "kafka"
        } else {
            "embedded"
        }
        .into(),
        ..super::memory::MemorySettings::new(args.quick)
    };
    let (memory, memory_note) = if args.skip_memory {
        (
            None,
            "not measured in this run (--skip-memory): `quickstore bench memory` measures it"
                .to_owned(),
        )
    } else {
        eprintln!(
            "bench: memory on {} at {:?} aggregates",
            memory_settings.backend, memory_settings.sizes
        );
        let memory = super::memory::measure(&memory_settings).await?;
        (Some(serde_json::to_value(&memory)?), MEMORY_NOTE.to_owned())
    };
    let plots = super::plots::write_all(&out, &sections)?;
    let report = Report {
        schema_version: SCHEMA_VERSION,
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mode: if args.quick { "quick" } else { "full" }.into(),
        machine,
        targets: sections,
        memory,
        memory_note,
        plots,
    };
    // Written before the checks, so a run that failed them can be studied.
    let json = out.join("report.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = super::markdown::render(&report);
    std::fs::write(out.join("report.md"), &md)
        .with_context(|| format!("writing {}", out.join("report.md").display()))?;
    println!("{md}");
    for t in &report.targets {
        for f in t.figures.iter().filter(|f| f.verdict == Verdict::Missed) {
            eprintln!(
                "bench ({}): target missed: {} {} (missed by {:.1}×)",
                t.target,
                f.name,
                f.target_text.as_deref().unwrap_or(""),
                f.missed_by.unwrap_or(f64::NAN)
            );
        }
    }
    report.check()?;
    eprintln!("bench: report complete in {}", out.display());
    Ok(())
}

/// `--target` (default: both when the servers are configured).
fn targets(flag: Option<&str>) -> Result<Vec<&'static str>> {
    let missing: Vec<&str> = SERVERS
        .into_iter()
        .filter(|v| std::env::var(v).is_err())
        .collect();
    let wanted = match flag {
        Some("kafka") => vec!["kafka"],
        Some("embedded") => vec!["embedded"],
        Some("both") | None => vec!["kafka", "embedded"],
        Some(other) => bail!("--target {other}: expected kafka, embedded or both"),
    };
    if wanted.contains(&"kafka") && !missing.is_empty() {
        bail!(
            "quickstore bench measures the real Kafka broker and CQL node too: set {} \
             (`deploy/test-env.sh up` starts both and writes the variables to \
             /tmp/quickstore-run/test-env: `source` it), or pass --target embedded",
            missing.join(" and ")
        );
    }
    Ok(wanted)
}

async fn one_target(settings: &Settings, target: &str, quick: bool) -> Result<TargetReport> {
    let kafka = target == "kafka";
    let mut settings = settings.clone();
    if kafka {
        settings.kafka_bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP")?;
        settings.cql_contact_points = std::env::var("QS_CQL_CONTACT_POINTS")?;
    }
    eprintln!("bench ({target}): command append");
    let log = super::log::measure(
        &settings,
        if kafka {
            LogTarget::Kafka
        } else {
            LogTarget::Embedded
        },
        LogPlan::new(quick),
    )
    .await?;
    // The order sweep before the read side: the read side ends with
    // queries at 5,000/s, which on two cores leave a single CQL node
    // timing out for a while after (seen in the 2026-12-07 run), and the
    // sweep's figures would measure that recovery instead of the system.
    eprintln!("bench ({target}): open-loop orders");
    let (backend, store) = if kafka {
        (EventLogBackend::Kafka, ReadStoreBackend::Cql)
    } else {
        (EventLogBackend::Embedded, ReadStoreBackend::Embedded)
    };
    let orders =
        super::order_steps::measure(&settings, backend, store, &StepPlan::new(quick)).await?;
    eprintln!("bench ({target}): read side");
    let read = super::projections::one_backend(
        &settings,
        if kafka {
            Backend::Cql
        } else {
            Backend::Embedded
        },
        Plan::new(quick),
    )
    .await?;
    Ok(TargetReport::new(target, log, orders, read))
}

/// The CQL node's `release_version`, if it answers.
async fn cql_version(settings: &Settings) -> Option<String> {
    let mut settings = settings.clone();
    settings.cql_contact_points = std::env::var("QS_CQL_CONTACT_POINTS").ok()?;
    let config = settings.cql().ok()?;
    let session = platform::readstore::cql::session_builder(&config)
        .build()
        .await
        .ok()?;
    let rows = session
        .query_unpaged("SELECT release_version FROM system.local", ())
        .await
        .ok()?
        .into_rows_result()
        .ok()?;
    let (version,): (String,) = rows.first_row().ok()?;
    Some(version)
}
