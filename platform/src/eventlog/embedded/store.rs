//! The redb file: table layout, opening (with crash repair and the
//! one-process lock), and the blocking reads. Writes live in `writer.rs`.
//!
//! Tables:
//! - `topics`:  name → JSON `{"partitions": n, "cleanup": {...}}`
//! - `records`: (topic, partition, offset) → record payload (`codec.rs`)
//! - `offsets`: (group, topic, partition) → (next offset, metadata)
//!
//! Every function here blocks; async callers run them on
//! `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::codec;
use super::topics::TopicState;
use crate::eventlog::{Cleanup, CommittedOffset, LogError, LogRecord, TopicPartition};

pub(crate) const TOPICS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("topics");
pub(crate) const RECORDS: TableDefinition<'_, (&str, i32, i64), &[u8]> =
    TableDefinition::new("records");
/// For compacted topics: (topic, partition, key) → the offset of the
/// key's latest record, so the writer can delete the one it supersedes.
pub(crate) const LATEST: TableDefinition<'_, (&str, i32, &[u8]), i64> =
    TableDefinition::new("latest");
pub(crate) const OFFSETS: TableDefinition<'_, (&str, &str, i32), (i64, &str)> =
    TableDefinition::new("offsets");

/// The database file inside the data directory.
pub(crate) const FILE_NAME: &str = "eventlog.redb";

/// Maps any redb error to [`LogError::Storage`].
pub(crate) fn db_err(e: impl Display) -> LogError {
    LogError::Storage(e.to_string())
}

/// Opens (or creates) the database in `dir`, repairing it if the last
/// process died mid-commit, and creates the tables.
///
/// redb holds an exclusive lock on the file for the life of the handle, so a
/// second opener — another process, or this one before the previous handle
/// is gone — fails. A handle of this process can outlive its `EmbeddedLog`
/// by a moment (a blocking read finishing its chunk), so we retry for
/// `lock_wait` before reporting the directory as taken.
pub(crate) fn open(
    dir: &Path,
    cache_size: usize,
    lock_wait: Duration,
) -> Result<Database, LogError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LogError::Storage(format!("creating data dir {}: {e}", dir.display())))?;
    let path = dir.join(FILE_NAME);
    let deadline = Instant::now() + lock_wait;
    let db = loop {
        let mut builder = Database::builder();
        builder
            .set_cache_size(cache_size)
            .set_repair_callback(|session| {
                tracing::warn!(
                    progress = session.progress(),
                    "embedded event log was not closed cleanly; repairing"
                );
            });
        match builder.create(&path) {
            Ok(db) => break db,
            Err(DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(LogError::Storage(format!(
                    "data dir {} is in use by another process (or another EmbeddedLog in this one)",
                    dir.display()
                )));
            }
            Err(e) => {
                return Err(LogError::Storage(format!(
                    "opening {}: {e}",
                    path.display()
                )))
            }
        }
    };
    let txn = db.begin_write().map_err(db_err)?;
    {
        txn.open_table(TOPICS).map_err(db_err)?;
        txn.open_table(RECORDS).map_err(db_err)?;
        txn.open_table(OFFSETS).map_err(db_err)?;
    }
    txn.commit().map_err(db_err)?;
    Ok(db)
}

/// How a topic's settings are stored. JSON so that a human with a redb
/// viewer can read it; the table is tiny.
#[derive(Debug, Serialize, Deserialize)]
struct TopicMeta {
    partitions: i32,
    cleanup: CleanupMeta,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
enum CleanupMeta {
    KeepForever,
    Compact,
    Delete { retention_ms: u64 },
}

pub(crate) fn encode_topic(partitions: i32, cleanup: Cleanup) -> Result<Vec<u8>, LogError> {
    let cleanup = match cleanup {
        Cleanup::KeepForever => CleanupMeta::KeepForever,
        Cleanup::Compact => CleanupMeta::Compact,
        Cleanup::Delete { retention } => CleanupMeta::Delete {
            retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        },
    };
    serde_json::to_vec(&TopicMeta {
        partitions,
        cleanup,
    })
    .map_err(db_err)
}

fn decode_topic(name: &str, bytes: &[u8]) -> Result<(i32, Cleanup), LogError> {
    let meta: TopicMeta = serde_json::from_slice(bytes)
        .map_err(|e| LogError::Storage(format!("corrupt metadata of topic `{name}`: {e}")))?;
    let cleanup = match meta.cleanup {
        CleanupMeta::KeepForever => Cleanup::KeepForever,
        CleanupMeta::Compact => Cleanup::Compact,
        CleanupMeta::Delete { retention_ms } => Cleanup::Delete {
            retention: Duration::from_millis(retention_ms),
        },
    };
    Ok((meta.partitions, cleanup))
}

/// Every topic with the end offset of each partition (last key + 1), read
/// once at open; afterwards the writer keeps the ends in memory.
pub(crate) fn load_topics(db: &Database) -> Result<Vec<TopicState>, LogError> {
    let txn = db.begin_read().map_err(db_err)?;
    let topics = txn.open_table(TOPICS).map_err(db_err)?;
    let records = txn.open_table(RECORDS).map_err(db_err)?;
    let mut out = Vec::new();
    for entry in topics.iter().map_err(db_err)? {
        let (name, meta) = entry.map_err(db_err)?;
        let name = name.value();
        let (partitions, cleanup) = decode_topic(name, meta.value())?;
        let mut ends = Vec::with_capacity(usize::try_from(partitions).unwrap_or(0));
        for p in 0..partitions {
            let last = records
                .range((name, p, 0)..=(name, p, i64::MAX))
                .map_err(db_err)?
                .next_back();
            let end = match last {
                Some(entry) => entry.map_err(db_err)?.0.value().2 + 1,
                None => 0,
            };
            ends.push(end);
        }
        out.push(TopicState::new(name.to_owned(), &ends, cleanup));
    }
    Ok(out)
}

/// One read of a partition: at most `count` records with offsets in
/// `from..until`. Compacted topics have holes, so `count` records may end
/// before `until` or not be there at all.
#[derive(Debug)]
pub(crate) struct ReadSpan {
    pub topic: Arc<TopicState>,
    pub partition: i32,
    pub from: i64,
    pub until: i64,
    pub count: usize,
}

/// Reads the spans in order, in one read transaction (one consistent
/// snapshot, one B-tree open).
pub(crate) fn read_spans(db: &Database, spans: &[ReadSpan]) -> Result<Vec<LogRecord>, LogError> {
    let txn = db.begin_read().map_err(db_err)?;
    let table = txn.open_table(RECORDS).map_err(db_err)?;
    let mut out = Vec::with_capacity(spans.iter().map(|s| s.count).sum());
    for span in spans {
        let name = span.topic.name.as_str();
        let range =
            table.range((name, span.partition, span.from)..(name, span.partition, span.until));
        for entry in range.map_err(db_err)?.take(span.count) {
            let (key, value) = entry.map_err(db_err)?;
            let payload = codec::decode(value.value())?;
            out.push(LogRecord {
                topic: span.topic.name.clone(),
                partition: span.partition,
                offset: key.value().2,
                key: payload.key,
                value: payload.value,
                headers: payload.headers,
                timestamp_ms: payload.timestamp_ms,
            });
        }
    }
    Ok(out)
}

/// The committed offsets of `group` for `partitions` (absent = none).
pub(crate) fn read_offsets(
    db: &Database,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, CommittedOffset>, LogError> {
    let txn = db.begin_read().map_err(db_err)?;
    let table = txn.open_table(OFFSETS).map_err(db_err)?;
    let mut out = HashMap::with_capacity(partitions.len());
    for tp in partitions {
        if let Some(found) = table
            .get((group, tp.topic.as_str(), tp.partition))
            .map_err(db_err)?
        {
            let (next_offset, metadata) = found.value();
            out.insert(
                tp.clone(),
                CommittedOffset {
                    next_offset,
                    metadata: metadata.to_owned(),
                },
            );
        }
    }
    Ok(out)
}
