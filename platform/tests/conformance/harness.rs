//! What every conformance case gets: a fresh log of one adapter, random
//! names, and helpers to poll and read.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::kafka::{KafkaConfig, KafkaLog};
use platform::eventlog::{
    Cleanup, EventLog, GroupConfig, GroupEvent, GroupMember, LogRecord, OffsetCommit,
    OutgoingRecord, Producer, TopicPartition, TopicSpec,
};

pub use platform::testing::TestAdapter as Adapter;

pub fn kafka_bootstrap() -> Result<String> {
    Ok(platform::testing::kafka_bootstrap()?)
}

pub struct Harness {
    pub adapter: Adapter,
    pub log: Arc<dyn EventLog>,
    /// The embedded log's directory (kept alive for the case's duration).
    pub dir: Option<tempfile::TempDir>,
    prefix: String,
}

impl Harness {
    pub async fn new(adapter: Adapter) -> Result<Self> {
        let prefix = platform::testing::unique_prefix("conf");
        match adapter {
            Adapter::Embedded => {
                let dir = tempfile::tempdir()?;
                let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
                Ok(Self {
                    adapter,
                    log: Arc::new(log),
                    dir: Some(dir),
                    prefix,
                })
            }
            Adapter::Kafka => {
                let log = KafkaLog::connect(KafkaConfig::new(kafka_bootstrap()?))?;
                Ok(Self {
                    adapter,
                    log: Arc::new(log),
                    dir: None,
                    prefix,
                })
            }
        }
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_path_buf())
    }

    /// Drops the embedded log (closing its files) and opens the directory
    /// again, as a restarted process would.
    pub fn reopen_embedded(&mut self) -> Result<()> {
        if let Some(dir) = &self.dir {
            let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
            self.log = Arc::new(log);
        }
        Ok(())
    }

    /// A random, per-case topic (or group) name.
    pub fn name(&self, base: &str) -> String {
        format!("{}{}", self.prefix, base)
    }

    pub async fn topic(&self, base: &str, partitions: i32) -> Result<String> {
        let name = self.name(base);
        self.log
            .create_topics(&[TopicSpec::new(
                name.clone(),
                partitions,
                Cleanup::KeepForever,
            )])
            .await
            .with_context(|| format!("creating {name}"))?;
        Ok(name)
    }

    /// Group settings short enough that fencing and crash cases run in
    /// seconds (the test broker allows sessions down to 500 ms).
    pub fn group_config(&self, group: &str, topics: Vec<String>) -> GroupConfig {
        let mut config = GroupConfig::new(group.to_owned(), topics);
        config.session_timeout = Duration::from_millis(1500);
        config.max_poll_interval = Duration::from_millis(2500);
        config.transaction_timeout = Duration::from_secs(5);
        config
    }

    /// Every committed record of `topic`, all partitions, via range reads.
    pub async fn read_all(&self, topic: &str) -> Result<Vec<LogRecord>> {
        read_all(self.log.as_ref(), topic).await
    }
}

pub async fn read_all(log: &dyn EventLog, topic: &str) -> Result<Vec<LogRecord>> {
    Ok(platform::eventlog::read_topic(log, topic).await?)
}

/// What a member saw over several polls.
#[derive(Debug, Default)]
pub struct Seen {
    pub records: Vec<LogRecord>,
    pub assigned: Vec<TopicPartition>,
    pub events: Vec<GroupEvent>,
}

/// Polls until `done(seen)` or the deadline.
pub async fn poll_until(
    member: &mut dyn GroupMember,
    deadline: Duration,
    mut done: impl FnMut(&Seen) -> bool,
) -> Result<Seen> {
    let until = tokio::time::Instant::now() + deadline;
    let mut seen = Seen::default();
    loop {
        for event in member.poll(500, Duration::from_millis(200)).await? {
            match &event {
                GroupEvent::Records(rs) => seen.records.extend(rs.iter().cloned()),
                GroupEvent::Assigned(tps) => seen.assigned.extend(tps.iter().cloned()),
                GroupEvent::Revoked(tps) => seen.assigned.retain(|tp| !tps.contains(tp)),
            }
            seen.events.push(event);
        }
        if done(&seen) {
            return Ok(seen);
        }
        if tokio::time::Instant::now() > until {
            bail!(
                "timed out after {deadline:?}: saw {} records, assignment {:?}",
                seen.records.len(),
                seen.assigned
            );
        }
    }
}

/// The commits that mark `records` as consumed.
pub fn offset_commits(records: &[LogRecord], metadata: &str) -> Vec<OffsetCommit> {
    next_offsets(records)
        .into_iter()
        .map(|(tp, next_offset)| OffsetCommit {
            tp,
            next_offset,
            metadata: metadata.to_owned(),
        })
        .collect()
}

/// Appends one record per `i` in `range`, `record(i)` giving (key, value).
pub async fn produce(
    producer: &dyn Producer,
    topic: &str,
    range: std::ops::Range<i32>,
    record: impl Fn(i32) -> (String, String),
) -> Result<()> {
    for i in range {
        let (key, value) = record(i);
        producer
            .send(OutgoingRecord::new(topic.to_owned(), key, value))
            .await?;
    }
    Ok(())
}

/// After a short pause, how many more records one poll returns (expected
/// zero: nothing aborted or already consumed may show up late).
pub async fn records_in_next_poll(member: &mut dyn GroupMember) -> Result<usize> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = member.poll(100, Duration::from_millis(300)).await?;
    Ok(events
        .iter()
        .map(|e| {
            if let GroupEvent::Records(r) = e {
                r.len()
            } else {
                0
            }
        })
        .sum())
}

/// The next offset to consume per partition, after `records`.
pub fn next_offsets(records: &[LogRecord]) -> HashMap<TopicPartition, i64> {
    let mut out: HashMap<TopicPartition, i64> = HashMap::new();
    for r in records {
        let e = out.entry(r.topic_partition()).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    out
}

pub fn values(records: &[LogRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}
