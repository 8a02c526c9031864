//! `quickstore topics`: every topic with its partitions and record count;
//! `quickstore topics apply [--check]`: every topic QuickStore uses, created
//! with its spec if missing, and the drift of the existing ones reported
//! with the command that fixes it (never fixed silently: changing a
//! co-partitioned topic's partition count moves keys).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use platform::config::Settings;
use platform::eventlog::{Cleanup, EventLog, LogError, TopicPartition, TopicSpec};
use projectors::{projections, runtime};
use serde::Serialize;

use crate::cli::TopicsApplyArgs;
use crate::system::System;

pub async fn run(settings: Settings) -> Result<()> {
    let log = crate::system::connect_log(&settings)?;
    print_topics(log.as_ref()).await
}

/// Prints a table of topics: name, partitions, committed records.
pub async fn print_topics(log: &dyn EventLog) -> Result<()> {
    let mut names = log.list_topics().await?;
    names.sort();
    let width = names.iter().map(String::len).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:>10}  {:>10}",
        "topic", "partitions", "records"
    );
    for name in names {
        let partitions = log.partition_count(&name).await?;
        let mut records = 0i64;
        for p in 0..partitions {
            let tp = TopicPartition::new(name.clone(), p);
            // End minus start counts offsets; on Kafka transaction markers
            // take offsets too, so this is an upper bound there.
            records += log.end_offset(&tp).await? - log.start_offset(&tp).await?;
        }
        println!("{name:<width$}  {partitions:>10}  {records:>10}");
    }
    Ok(())
}

/// What a topic is for (the `kind` column of `topics apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopicKind {
    Events,
    Commands,
    Snapshots,
    Outcomes,
    SagaEvents,
    SagaReplies,
    DeadLetters,
    Revocations,
}

impl TopicKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Commands => "commands",
            Self::Snapshots => "snapshots",
            Self::Outcomes => "outcomes",
            Self::SagaEvents => "saga-events",
            Self::SagaReplies => "saga-replies",
            Self::DeadLetters => "dead-letters",
            Self::Revocations => "revocations",
        }
    }
}

/// Every topic QuickStore uses with the spec it must have: the six
/// contexts' command, event and snapshot topics, the outcomes topic, the
/// saga's event and reply topics, one dead-letter topic per projection, the
/// revocation topic.
/// Replication factor and `min.insync.replicas` come from the settings.
pub fn planned_topics(system: &System) -> Vec<(TopicKind, TopicSpec)> {
    let settings = &system.settings;
    let mut out = Vec::new();
    for spec in system.contract_topics() {
        let kind = if spec.name == system.topics.command_outcomes() {
            TopicKind::Outcomes
        } else if spec.name.ends_with(".events") {
            TopicKind::Events
        } else if spec.name.ends_with(".snapshots") {
            TopicKind::Snapshots
        } else {
            TopicKind::Commands
        };
        out.push((kind, spec));
    }
    for spec in crate::write_side::saga_topics(system) {
        let kind = if spec.cleanup == Cleanup::KeepForever {
            TopicKind::SagaEvents
        } else {
            TopicKind::SagaReplies
        };
        out.push((kind, spec));
    }
    for projection in projections::all() {
        // One partition, as the projectors create it: dead letters are few
        // and read in order by `dlq retry`.
        let spec = TopicSpec::new(
            runtime::dead_letter_topic(&system.topics, projection.name()),
            1,
            Cleanup::KeepForever,
        );
        out.push((TopicKind::DeadLetters, spec));
    }
    out.push((TopicKind::Revocations, system.revocation_topic()));
    for (_, spec) in &mut out {
        spec.replication_factor = settings.replication_factor;
        spec.min_insync_replicas = Some(settings.min_insync_replicas);
    }
    out
}

/// One topic's comparison with its spec.
#[derive(Debug, Clone, Serialize)]
pub struct TopicCheck {
    pub topic: String,
    pub kind: TopicKind,
    /// `ok`, `created`, `missing` (with `--check`) or `drift`.
    pub status: String,
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    /// The spec's configs with the topic's actual value (`None` = unset).
    pub configs: BTreeMap<String, Option<String>>,
    /// What differs, each with the command that fixes it.
    pub drift: Vec<Drift>,
}

/// One difference between a topic and its spec.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub what: String,
    pub fix: String,
}

/// Compares every planned topic with the log, creating missing ones
/// unless `check_only`.
pub async fn check_topics(system: &System, check_only: bool) -> Result<Vec<TopicCheck>> {
    let bootstrap = if system.settings.kafka_bootstrap.is_empty() {
        "<bootstrap>".to_owned()
    } else {
        system.settings.kafka_bootstrap.clone()
    };
    let mut out = Vec::new();
    for (kind, spec) in planned_topics(system) {
        let mut status = "ok";
        let described = match system.log.describe_topic(&spec.name).await {
            Ok(d) => Some(d),
            Err(LogError::UnknownTopic(_)) if check_only => None,
            Err(LogError::UnknownTopic(_)) => {
                system
                    .log
                    .create_topics(std::slice::from_ref(&spec))
                    .await?;
                status = "created";
                Some(system.log.describe_topic(&spec.name).await?)
            }
            Err(e) => return Err(e.into()),
        };
        let Some(described) = described else {
            out.push(TopicCheck {
                topic: spec.name.clone(),
                kind,
                status: "missing".to_owned(),
                partitions: None,
                replication_factor: None,
                configs: spec
                    .configs()
                    .into_iter()
                    .map(|(k, _)| (k.to_owned(), None))
                    .collect(),
                drift: vec![Drift {
                    what: "the topic does not exist".to_owned(),
                    fix: "quickstore topics apply".to_owned(),
                }],
            });
            continue;
        };
        let mut drift = Vec::new();
        if described.partitions != spec.partitions {
            let fix = if described.partitions > spec.partitions {
                format!(
                    "partitions cannot shrink: set QS_PARTITIONS={} (every co-partitioned topic must have the same count)",
                    described.partitions
                )
            } else {
                format!(
                    "adding partitions moves keys to other partitions (single-writer ownership and per-aggregate order break): \
                     set QS_PARTITIONS={} or migrate to new topics; only if the topic is empty: \
                     kafka-topics.sh --bootstrap-server {bootstrap} --alter --topic {} --partitions {}",
                    described.partitions, spec.name, spec.partitions
                )
            };
            drift.push(Drift {
                what: format!(
                    "{} partitions, the spec says {}",
                    described.partitions, spec.partitions
                ),
                fix,
            });
        }
        if described.replication_factor != spec.replication_factor {
            drift.push(Drift {
                what: format!(
                    "replication factor {}, the spec says {} (QS_REPLICATION_FACTOR)",
                    described.replication_factor, spec.replication_factor
                ),
                fix: format!(
                    "kafka-reassign-partitions.sh --bootstrap-server {bootstrap} --execute --reassignment-json-file <plan with {} replicas for {}>",
                    spec.replication_factor, spec.name
                ),
            });
        }
        let mut configs = BTreeMap::new();
        for (key, want) in spec.configs() {
            let actual = described.configs.get(key).cloned();
            if actual.as_deref() != Some(want.as_str()) {
                drift.push(Drift {
                    what: format!(
                        "{key}={}, the spec says {want}",
                        actual.as_deref().unwrap_or("(unset)")
                    ),
                    fix: format!(
                        "kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics --entity-name {} --add-config {key}={want}",
                        spec.name
                    ),
                });
            }
            configs.insert(key.to_owned(), actual);
        }
        if !drift.is_empty() {
            status = "drift";
        }
        out.push(TopicCheck {
            topic: spec.name.clone(),
            kind,
            status: status.to_owned(),
            partitions: Some(described.partitions),
            replication_factor: Some(described.replication_factor),
            configs,
            drift,
        });
    }
    Ok(out)
}

/// `quickstore topics apply [--check] [--json]`.
pub async fn apply(settings: Settings, args: TopicsApplyArgs) -> Result<()> {
    let system = System::connect(settings).await?;
    let checks = check_topics(&system, args.check).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print_checks(&checks);
    }
    let bad: Vec<&TopicCheck> = checks.iter().filter(|c| !c.drift.is_empty()).collect();
    if !bad.is_empty() {
        if !args.json {
            println!();
            for check in &bad {
                for drift in &check.drift {
                    println!("{}: {}\n  fix: {}", check.topic, drift.what, drift.fix);
                }
            }
        }
        bail!(
            "{} of {} topics differ from their spec (see above; nothing was changed on them)",
            bad.len(),
            checks.len()
        );
    }
    Ok(())
}

fn print_checks(checks: &[TopicCheck]) {
    let value = |c: &TopicCheck, key: &str| -> String {
        match c.configs.get(key) {
            Some(Some(v)) => v.clone(),
            Some(None) => "?".to_owned(),
            None => "-".to_owned(),
        }
    };
    let mut rows = vec![[
        "topic".to_owned(),
        "kind".to_owned(),
        "partitions".to_owned(),
        "replicas".to_owned(),
        "cleanup.policy".to_owned(),
        "retention.ms".to_owned(),
        "min.insync.replicas".to_owned(),
        "status".to_owned(),
    ]];
    for c in checks {
        rows.push([
            c.topic.clone(),
            c.kind.as_str().to_owned(),
            c.partitions.map_or("-".to_owned(), |p| p.to_string()),
            c.replication_factor
                .map_or("-".to_owned(), |r| r.to_string()),
            value(c, "cleanup.policy"),
            value(c, "retention.ms"),
            value(c, "min.insync.replicas"),
            c.status.clone(),
        ]);
    }
    print_table(&rows);
}

/// Prints rows as left-aligned columns (the first row is the header).
pub fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
