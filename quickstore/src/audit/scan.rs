//! `audit verify`'s scan: every partition of the chosen topics from its
//! first stored offset to its read_committed end as of the start, each
//! record decoded and fed to one [`ChainChecker`] (so event ids are
//! checked across the whole scan).

use anyhow::{Context as _, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use platform::eventlog::{EventLog, TopicPartition};
use schemas::AvroCodec;

use super::check::{ChainChecker, Location, Seen};
use super::decode::{decode, DecodeError};

/// What a scan covered.
#[derive(Debug)]
pub struct ScanReport {
    pub topics: Vec<String>,
    pub partitions: usize,
    pub checker: ChainChecker,
}

/// Scans `topics` (which must exist). `progress` draws a bar on stderr
/// (only when stderr is a terminal).
pub async fn scan(
    log: &dyn EventLog,
    codec: &AvroCodec,
    topics: &[String],
    progress: bool,
) -> Result<ScanReport> {
    // Fix every partition's range first: the bar knows its length, and
    // what is appended during the scan is left for the next one.
    let mut ranges = Vec::new();
    for topic in topics {
        let partitions = log
            .partition_count(topic)
            .await
            .with_context(|| format!("reading the partitions of {topic}"))?;
        for p in 0..partitions {
            let tp = TopicPartition::new(topic.clone(), p);
            let start = log
                .start_offset(&tp)
                .await
                .with_context(|| format!("{tp}"))?;
            let end = log.end_offset(&tp).await.with_context(|| format!("{tp}"))?;
            ranges.push((tp, partitions, start, end));
        }
    }
    // Offsets, not records: on Kafka transaction markers take offsets too,
    // so the bar may end short of its length.
    let total: i64 = ranges.iter().map(|(_, _, s, e)| (e - s).max(0)).sum();
    let bar = if progress {
        ProgressBar::with_draw_target(
            Some(u64::try_from(total).unwrap_or_default()),
            ProgressDrawTarget::stderr(),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:32} {bar:40} {pos}/{len} offsets {per_sec} ETA {eta}")
            .context("progress bar template")?,
    );
    let mut checker = ChainChecker::new();
    let mut done_before = 0i64;
    for (tp, partitions, start, end) in &ranges {
        bar.set_message(tp.to_string());
        let mut stream = log.read_range(tp.clone(), *start, *end);
        while let Some(record) = stream.next().await {
            let record = record.with_context(|| format!("reading {tp}"))?;
            let at = Location {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
            };
            match decode(codec, &record).await {
                Ok(d) => checker.check(Seen {
                    at: &at,
                    key: &record.key,
                    partitions: Some(*partitions),
                    link: &d.link,
                    event_id: &d.envelope.event_id,
                }),
                Err(DecodeError::NotAnEvent(reason)) => checker.undecodable(&at, &reason),
                Err(DecodeError::Registry(e)) => anyhow::bail!(
                    "the schema registry did not answer while decoding {tp}@{}: {e} \
                     (is QS_SCHEMA_REGISTRY_URL right and the registry up?)",
                    record.offset
                ),
            }
            bar.set_position(
                u64::try_from(done_before + record.offset + 1 - start).unwrap_or_default(),
            );
        }
        done_before += (end - start).max(0);
        bar.set_position(u64::try_from(done_before).unwrap_or_default());
    }
    if checker.has_duplicates() {
        // Name where each duplicated id was first used: a second read,
        // paid only when there are duplicates (the id set keeps no places).
        bar.set_position(0);
        for (tp, _, start, end) in &ranges {
            bar.set_message(format!("first uses: {tp}"));
            let mut stream = log.read_range(tp.clone(), *start, *end);
            while let Some(record) = stream.next().await {
                let record = record.with_context(|| format!("reading {tp}"))?;
                if let Ok(d) = decode(codec, &record).await {
                    let at = Location {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                    };
                    checker.first_use(&d.envelope.event_id, &at);
                }
            }
        }
        checker.name_first_uses();
    }
    bar.finish_and_clear();
    Ok(ScanReport {
        topics: topics.to_vec(),
        partitions: ranges.len(),
        checker,
    })
}
