//! `quickstore events export`: the events of one topic, decoded through
//! the schema registry, as JSON lines, CSV or parquet — one row per event
//! (see [`row`] for the columns and the value mapping, [`sinks`] for the
//! formats). Reads are read_committed, partition by partition, each in
//! offset order; a progress bar on stderr counts offsets.

pub mod row;
pub mod sinks;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use platform::config::Settings;
use platform::eventlog::TopicPartition;
use schemas::contract;

use crate::system::System;
use row::{Origin, Row};
use sinks::{Csv, Jsonl, Parquet, Sink};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line, the payload nested.
    Jsonl,
    /// A header line, then one line per event; the payload as a JSON column.
    Csv,
    /// Typed envelope columns, the payload as a JSON column (needs --output).
    Parquet,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The topic as the broker names it (QS_TOPIC_PREFIX included), e.g.
    /// `orders.events` or `sagas.order-fulfillment.events`.
    #[arg(long)]
    pub topic: String,
    /// Start: an offset (in every partition) or an RFC 3339 time
    /// (2026-11-22T07:00:00Z), inclusive. Default: the start of the topic.
    #[arg(long, value_name = "OFFSET|TIME")]
    pub from: Option<String>,
    /// End: an offset (in every partition) or an RFC 3339 time, exclusive.
    /// Default: the end as of the start of the export.
    #[arg(long, value_name = "OFFSET|TIME")]
    pub to: Option<String>,
    /// Only events of this type (`OrderPlaced` or
    /// `com.quickstore.orders.OrderPlaced`); repeatable.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_types: Vec<String>,
    /// Only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Write here instead of stdout (parquet needs a file).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Personal fields (sealed `pii:v1:` values, docs/privacy.md):
    /// `reveal` opens them with the customers' keys from the read store
    /// (QS_READ_STORE), `[erased]` where a customer was forgotten;
    /// `sealed` exports the ciphertext as the log holds it.
    #[arg(long, value_enum, default_value_t = PersonalData::Reveal)]
    pub personal_data: PersonalData,
}

/// What `events export` does with sealed personal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersonalData {
    Reveal,
    Sealed,
}

/// A `--from`/`--to` bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Offset(i64),
    /// Milliseconds since the epoch.
    Time(i64),
}

impl Bound {
    /// An offset (digits) or an RFC 3339 time; anything else is an error
    /// that shows both forms.
    pub fn parse(flag: &str, text: &str) -> Result<Self> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Bound::Offset)
                .with_context(|| format!("{flag} {text}: the offset is too large"));
        }
        match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(t) => Ok(Bound::Time(t.timestamp_millis())),
            Err(e) => bail!(
                "{flag} `{text}` is neither an offset nor an RFC 3339 time ({e}); \
                 write an offset like `{flag} 120` or a time like `{flag} 2026-11-22T07:00:00Z`"
            ),
        }
    }
}

/// How far past `--to TIME` reading goes. Record timestamps are the
/// events' `occurred_at`, set when the command was accepted, so within a
/// partition they can be slightly out of order (concurrent requests, clock
/// skew between API instances); and transaction markers carry the broker's
/// time. Offsets-for-times finds where to start and roughly where to stop;
/// the timestamp filter makes the bounds exact.
const STRAGGLERS_MS: i64 = 60_000;

/// Whether a record's timestamp is inside the time bounds (offset bounds
/// are applied by the range read).
fn within(timestamp: i64, from: Option<Bound>, to: Option<Bound>) -> bool {
    let after_from = !matches!(from, Some(Bound::Time(t)) if timestamp < t);
    let before_to = !matches!(to, Some(Bound::Time(t)) if timestamp >= t);
    after_from && before_to
}

pub async fn run(settings: Settings, args: ExportArgs) -> Result<()> {
    let from = args
        .from
        .as_deref()
        .map(|t| Bound::parse("--from", t))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| Bound::parse("--to", t))
        .transpose()?;
    if args.format == Format::Parquet && args.output.is_none() {
        bail!("--format parquet writes a binary file: add --output FILE (e.g. --output events.parquet)");
    }
    let keys = match args.personal_data {
        PersonalData::Reveal => {
            let store = crate::system::connect_read_store(&settings).await.context(
                "opening the read store for the customers' keys (QS_READ_STORE); \
                 pass --personal-data sealed to export the sealed values without it",
            )?;
            Some(crate::customers_cmd::key_store(&store).await?)
        }
        PersonalData::Sealed => None,
    };
    let system = System::connect(settings).await?;
    let types = resolve_types(&system, &args.topic, &args.event_types)?;
    let existing = system.log.list_topics().await?;
    if !existing.contains(&args.topic) {
        let mut events: Vec<&String> = existing.iter().filter(|t| t.ends_with(".events")).collect();
        events.sort();
        bail!(
            "topic `{}` does not exist; event topics here: {}",
            args.topic,
            events
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let partitions = system.log.partition_count(&args.topic).await?;
    let chosen: Vec<i32> = match args.partition {
        Some(p) if (0..partitions).contains(&p) => vec![p],
        Some(p) => bail!(
            "--partition {p}: `{}` has partitions 0 to {}",
            args.topic,
            partitions - 1
        ),
        None => (0..partitions).collect(),
    };

    let mut ranges = Vec::new();
    for p in chosen {
        let tp = TopicPartition::new(args.topic.clone(), p);
        let start = system.log.start_offset(&tp).await?;
        let end = system.log.end_offset(&tp).await?;
        let lo = match from {
            None => start,
            Some(Bound::Offset(o)) => o.max(start),
            Some(Bound::Time(t)) => system.log.offset_for_time(&tp, t).await?,
        };
        let hi = match to {
            None => end,
            Some(Bound::Offset(o)) => o.min(end),
            Some(Bound::Time(t)) => system
                .log
                .offset_for_time(&tp, t.saturating_add(STRAGGLERS_MS))
                .await?
                .min(end),
        };
        if hi > lo {
            ranges.push((tp, lo, hi));
        }
    }

    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let mut sink: Box<dyn Sink> = match args.format {
        Format::Jsonl => Box::new(Jsonl(out)),
        Format::Csv => Box::new(Csv::new(out)),
        Format::Parquet => Box::new(Parquet::new(out)?),
    };

    let total: i64 = ranges.iter().map(|(_, lo, hi)| hi - lo).sum();
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} offsets ({per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut written = 0u64;
    for (tp, lo, hi) in ranges {
        bar.set_message(tp.to_string());
        let mut records = system.log.read_range(tp.clone(), lo, hi);
        let mut last = lo;
        while let Some(record) = records.next().await {
            let record = record?;
            // Offsets skipped (transaction markers, aborted records) count too.
            bar.inc(u64::try_from(record.offset + 1 - last).unwrap_or(0));
            last = record.offset + 1;
            let Some(value) = record.value.as_deref() else {
                continue;
            };
            if !within(record.timestamp_ms, from, to) {
                continue;
            }
            let (name, decoded) = system.codec.decode_value(value).await.with_context(|| {
                format!(
                    "decoding {}-{}@{}",
                    record.topic, record.partition, record.offset
                )
            })?;
            if !types.is_empty() && !types.contains(&name) {
                continue;
            }
            let origin = Origin {
                topic: &record.topic,
                partition: record.partition,
                offset: record.offset,
                timestamp: record.timestamp_ms,
            };
            let mut row = Row::from_value(&origin, name, decoded)?;
            if let Some(keys) = &keys {
                // Crypto-shredding: the clear text, or `[erased]` once the
                // customer's key is gone; the log itself is unchanged.
                let revealed =
                    platform::pii::reveal_json(serde_json::Value::Object(row.payload), keys)
                        .await?;
                row.payload = match revealed {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
            }
            sink.write(&row)?;
            written += 1;
        }
        bar.inc(u64::try_from(hi - last).unwrap_or(0));
    }
    sink.finish()?;
    bar.finish_and_clear();
    eprintln!("exported {written} events from {}", args.topic);
    Ok(())
}

/// The full record names `--type` asks for, each checked against the
/// records the contract registers for `topic`.
fn resolve_types(system: &System, topic: &str, asked: &[String]) -> Result<Vec<String>> {
    let on_topic: Vec<&'static contract::SchemaDef> = contract::subject_defs()
        .filter(|def| {
            contract::topics_for(def, &system.topics)
                .iter()
                .any(|t| t == topic)
        })
        .collect();
    let mut out = Vec::new();
    for name in asked {
        match on_topic
            .iter()
            .find(|def| def.full_name == name.as_str() || def.name == name.as_str())
        {
            Some(def) => out.push(def.full_name.to_owned()),
            None => {
                let mut valid: Vec<&str> = on_topic.iter().map(|d| d.name).collect();
                valid.sort_unstable();
                if valid.is_empty() {
                    bail!("--type {name}: `{topic}` is not a topic of the QuickStore contract (is QS_TOPIC_PREFIX right?)");
                }
                bail!(
                    "--type {name}: no such event on `{topic}`; valid types: {}",
                    valid.join(", ")
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_offsets_and_rfc3339_times() {
        assert_eq!(Bound::parse("--from", "120").unwrap(), Bound::Offset(120));
        assert_eq!(
            Bound::parse("--to", "1970-01-01T00:00:01.5Z").unwrap(),
            Bound::Time(1500)
        );
        assert_eq!(
            Bound::parse("--to", "1970-01-01T01:00:00+01:00").unwrap(),
            Bound::Time(0)
        );
        let err = Bound::parse("--from", "yesterday").unwrap_err().to_string();
        assert!(err.contains("`--from 2026-11-22T07:00:00Z`"), "{err}");
        assert!(Bound::parse("--from", "-3").is_err());
        assert!(Bound::parse("--from", "99999999999999999999").is_err());
    }

    #[test]
    fn time_bounds_are_half_open() {
        let (from, to) = (Some(Bound::Time(10)), Some(Bound::Time(20)));
        assert!(!within(9, from, to));
        assert!(within(10, from, to));
        assert!(within(19, from, to));
        assert!(!within(20, from, to));
        assert!(within(5, Some(Bound::Offset(7)), None));
    }
}
