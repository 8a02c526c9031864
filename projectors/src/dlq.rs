//! Dead letters: what a projector could not project, the keys it parked
//! because of them, and retrying them once the cause is fixed.
//!
//! - **The dead-letter topic** `<prefix>projector.<name>.dlq` (one
//!   partition, kept forever) holds the original record (key, value,
//!   headers) plus `dlq.*` headers: why, where it came from, the table
//!   generation that failed on it and, for a record dead-lettered again by
//!   a retry, the offset of the dead letter it retried.
//! - **What is dead-lettered**: an event the projector cannot decode, one
//!   the projection refuses (after a few attempts), one whose rows the
//!   read store refuses (reason `store refused: …`: the store's
//!   [`ReadStoreError::Invalid`], which retrying would not change — the
//!   projector then writes the batch record by record and dead-letters
//!   only the refused records), and every later event of a parked key
//!   (reason [`crate::runtime::PARKED_REASON`]). A key's dead letters are
//!   in the key's order.
//! - **Parked keys** ([`PARKED_KEYS`], generation 0): once an event of a
//!   key is dead-lettered, every later event of that key goes to the
//!   dead-letter topic too, so a read model never applies a key's events
//!   out of order. Parked per (projection, generation): a rebuild starts
//!   with nothing parked, and parks what fails for it. The rows are what
//!   makes parking survive a restart or a rebalance: they are durable
//!   before the offsets of their batch are committed, and a projector
//!   reads them when it starts, on every partition assignment (so keys
//!   another instance parked before handing the partitions over stay
//!   parked) and after another instance's retry. A park row is written
//!   with the dead letter's offset as its timestamp, an unpark is a delete
//!   at "retried up to − 1": a key dead-lettered again after the retry
//!   started (a higher offset) stays parked whatever order the writes land.
//! - **The control row** ([`PROJECTION_CONTROL`], generation 0, one per
//!   projection): `dlq retry` raises `dlq_retry_requested`; the live
//!   projector — the single writer of its projection's tables — sees it
//!   between batches (it reads the row at most once a second), re-projects
//!   the dead letters from `dlq_retried_upto` to the end in dead-letter
//!   order (which is the original order per key), unparks every key whose
//!   retried events all succeeded, and acknowledges by setting
//!   `dlq_retry_done`. Request, acknowledgement and the retry's counters
//!   are written with the request's sequence number as their timestamp,
//!   so they only move forward. The row also carries the rebuild's
//!   hand-off lease ([`crate::generations::request_handoff`]).
//!
//! A retry writes like a batch: version rows last, and a retried event
//! whose rows the store refuses is dead-lettered again (`store refused:
//! …`) with its key left parked, while the others are written.
//!
//! Delivery of a retry: at-least-once like the projector. The retried
//! writes, then the dead letters written again, then the park and unpark
//! rows are durable before `dlq_retried_upto` moves; a crash in between
//! retries the same dead letters again (idempotent writes; a key that
//! failed may be dead-lettered twice).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use platform::eventlog::{EventLog, LogRecord, TopicPartition};
use platform::readstore::{
    column, ColumnType as T, Mutation, MutationKind, Order, ReadStore, ReadStoreError, Row,
    TableDef, Value,
};
use schemas::{AvroCodec, TopicNames};

use crate::generations::{self, META_GENERATION};
use crate::projection::{row, short_name, text};
use crate::runtime::{dead_letter_topic, ProjectorError};

/// Keys whose events go to the dead-letter topic, per projection and
/// generation.
pub const PARKED_KEYS: TableDef = TableDef {
    name: "parked_keys",
    partition_key: &[column("projection", T::Text)],
    clustering: &[
        (column("generation", T::Int), Order::Asc),
        (column("key_hex", T::Text), Order::Asc),
    ],
    columns: &[
        column("dlq_offset", T::BigInt),
        column("reason", T::Text),
        column("parked_at", T::Timestamp),
    ],
};

/// One row per projection: `dlq retry` requests and acknowledgements, and
/// the rebuild's hand-off lease.
pub const PROJECTION_CONTROL: TableDef = TableDef {
    name: "projection_control",
    partition_key: &[column("projection", T::Text)],
    clustering: &[],
    columns: &[
        column("dlq_retry_requested", T::BigInt),
        column("dlq_retry_done", T::BigInt),
        // The next dead-letter offset not yet retried, by the generation
        // that retried (each generation retries its own dead letters).
        column("dlq_retried_upto", T::BigInt),
        column("dlq_retried_generation", T::Int),
        // What the last retry covered and how it went (for `dlq retry`).
        column("dlq_last_retry_from", T::BigInt),
        column("dlq_last_retry_ok", T::BigInt),
        column("dlq_last_retry_failed", T::BigInt),
        // A rebuild about to switch asks the live projectors of older
        // generations to pause until `handoff_until` (see generations).
        column("handoff_id", T::BigInt),
        column("handoff_generation", T::Int),
        column("handoff_until", T::Timestamp),
    ],
};

/// Headers of a dead letter (besides the original record's own).
pub const H_REASON: &str = "dlq.reason";
pub const H_TOPIC: &str = "dlq.topic";
pub const H_PARTITION: &str = "dlq.partition";
pub const H_OFFSET: &str = "dlq.offset";
/// The table generation that could not project it.
pub const H_GENERATION: &str = "dlq.generation";
/// Set on a dead letter written again by a retry: the offset it retried.
pub const H_RETRY_OF: &str = "dlq.retry_of";

/// A dead letter as `dlq list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub projection: String,
    /// Its offset in the dead-letter topic.
    pub dlq_offset: i64,
    pub key: Vec<u8>,
    /// Where the event sits in the event log.
    pub source: Option<TopicPartition>,
    pub source_offset: Option<i64>,
    pub reason: String,
    /// The event's short record name, if it decodes that far.
    pub event_type: Option<String>,
    /// The generation that failed on it (`None`: written before
    /// generations were recorded).
    pub generation: Option<u32>,
    /// The dead letter a retry wrote this one for.
    pub retry_of: Option<i64>,
    /// Whether its key is parked in the serving generation now.
    pub parked: bool,
    /// Whether a retry has processed it (it came back, or failed again and
    /// has a newer dead letter).
    pub retried: bool,
    /// When it was dead-lettered (ms since the epoch).
    pub at_ms: i64,
}

impl DeadLetter {
    /// The key as text (keys are ids; anything else shows lossily).
    pub fn key_text(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }

    /// Whether it still waits for a retry: not retried, and written by the
    /// serving generation (a rebuild replaced older generations' dead
    /// letters with its own).
    pub fn pending(&self, serving: u32) -> bool {
        !self.retried && self.generation.is_none_or(|g| g == serving)
    }
}

/// The control row of a projection (absent cells read as 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    pub retry_requested: i64,
    pub retry_done: i64,
    pub retried_upto: i64,
    pub retried_generation: u32,
    pub last_retry_from: i64,
    pub last_retry_ok: i64,
    pub last_retry_failed: i64,
    pub handoff_id: i64,
    pub handoff_generation: u32,
    /// ms since the epoch.
    pub handoff_until: i64,
}

/// What a finished retry reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDone {
    pub seq: i64,
    /// The dead letters it covered: `from <= offset < upto`.
    pub from: i64,
    pub upto: i64,
    /// Dead letters projected this time.
    pub succeeded: i64,
    /// Dead letters written again (their keys stay parked).
    pub failed: i64,
}

pub fn key_hex(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len() * 2);
    for b in key {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub fn key_from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn generation_value(generation: u32) -> Value {
    Value::Int(i32::try_from(generation).unwrap_or(i32::MAX))
}

/// Parks `key` (written at the dead letter's offset, see the module doc).
pub(crate) fn park(
    projection: &str,
    generation: u32,
    key: &[u8],
    dlq_offset: i64,
    reason: &str,
    now_ms: i64,
) -> Mutation {
    Mutation {
        table: PARKED_KEYS,
        generation: META_GENERATION,
        kind: MutationKind::Upsert(row([
            ("projection", text(projection)),
            ("generation", generation_value(generation)),
            ("key_hex", text(key_hex(key))),
            ("dlq_offset", Value::BigInt(dlq_offset)),
            ("reason", text(reason)),
            ("parked_at", Value::Timestamp(now_ms)),
        ])),
        timestamp: dlq_offset,
    }
}

/// Unparks `key`: a delete that hides park rows of dead letters before
/// `upto` (and not the ones written since).
pub(crate) fn unpark(projection: &str, generation: u32, key: &[u8], upto: i64) -> Mutation {
    Mutation {
        table: PARKED_KEYS,
        generation: META_GENERATION,
        kind: MutationKind::Delete(row([
            ("projection", text(projection)),
            ("generation", generation_value(generation)),
            ("key_hex", text(key_hex(key))),
        ])),
        timestamp: upto - 1,
    }
}

/// The parked keys of `projection`'s `generation`, with their park rows.
pub async fn parked_rows(
    store: &dyn ReadStore,
    projection: &str,
    generation: u32,
) -> Result<Vec<Row>, ReadStoreError> {
    let partition: Row = row([("projection", text(projection))]);
    let mut out = Vec::new();
    let mut page = None;
    loop {
        let p = store
            .scan(
                &PARKED_KEYS,
                META_GENERATION,
                &partition,
                page.as_ref(),
                500,
            )
            .await?;
        out.extend(
            p.rows
                .into_iter()
                .filter(|r| r.get("generation") == Some(&generation_value(generation))),
        );
        match p.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

/// The parked keys of `projection`'s `generation`.
pub async fn parked_keys(
    store: &dyn ReadStore,
    projection: &str,
    generation: u32,
) -> Result<HashSet<Vec<u8>>, ReadStoreError> {
    Ok(parked_rows(store, projection, generation)
        .await?
        .iter()
        .filter_map(|r| match r.get("key_hex") {
            Some(Value::Text(h)) => key_from_hex(h),
            _ => None,
        })
        .collect())
}

/// Unparks every key of `generation` parked by a dead letter before
/// `upto` (a rebuild clearing what a failed earlier attempt parked).
pub(crate) async fn clear_parked(
    store: &dyn ReadStore,
    projection: &str,
    generation: u32,
    upto: i64,
) -> Result<(), ReadStoreError> {
    let keys = parked_keys(store, projection, generation).await?;
    let deletes: Vec<Mutation> = keys
        .iter()
        .map(|k| unpark(projection, generation, k, upto))
        .collect();
    store.write(&deletes).await
}

fn big(row: &Row, column: &str) -> i64 {
    match row.get(column) {
        Some(Value::BigInt(v)) | Some(Value::Timestamp(v)) => *v,
        Some(Value::Int(v)) => i64::from(*v),
        _ => 0,
    }
}

/// The control row of `projection`.
pub async fn control(store: &dyn ReadStore, projection: &str) -> Result<Control, ReadStoreError> {
    let key: Row = row([("projection", text(projection))]);
    let found = store
        .get(&PROJECTION_CONTROL, META_GENERATION, &key)
        .await?
        .unwrap_or_default();
    Ok(Control {
        retry_requested: big(&found, "dlq_retry_requested"),
        retry_done: big(&found, "dlq_retry_done"),
        retried_upto: big(&found, "dlq_retried_upto"),
        retried_generation: u32::try_from(big(&found, "dlq_retried_generation")).unwrap_or(0),
        last_retry_from: big(&found, "dlq_last_retry_from"),
        last_retry_ok: big(&found, "dlq_last_retry_ok"),
        last_retry_failed: big(&found, "dlq_last_retry_failed"),
        handoff_id: big(&found, "handoff_id"),
        handoff_generation: u32::try_from(big(&found, "handoff_generation")).unwrap_or(0),
        handoff_until: big(&found, "handoff_until"),
    })
}

/// A write of some cells of the control row at `timestamp`.
pub(crate) fn control_write(
    projection: &str,
    timestamp: i64,
    cells: Vec<(&str, Value)>,
) -> Mutation {
    let mut r: Row = row([("projection", text(projection))]);
    for (k, v) in cells {
        r.insert(k.to_owned(), v);
    }
    Mutation {
        table: PROJECTION_CONTROL,
        generation: META_GENERATION,
        kind: MutationKind::Upsert(r),
        timestamp,
    }
}

/// Asks the live projector of `projection` to retry its dead letters;
/// returns the request's sequence number (for [`await_retry`]).
pub async fn request_retry(store: &dyn ReadStore, projection: &str) -> Result<i64, ProjectorError> {
    generations::ensure(store).await?;
    let c = control(store, projection).await?;
    let seq = c.retry_requested.max(c.retry_done) + 1;
    store
        .write(&[control_write(
            projection,
            seq,
            vec![("dlq_retry_requested", Value::BigInt(seq))],
        )])
        .await?;
    Ok(seq)
}

/// Waits until the projector acknowledged retry request `seq` (or a later
/// one); [`ProjectorError::Timeout`] after `timeout`.
pub async fn await_retry(
    store: &dyn ReadStore,
    projection: &str,
    seq: i64,
    timeout: Duration,
) -> Result<RetryDone, ProjectorError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let c = control(store, projection).await?;
        if c.retry_done >= seq {
            return Ok(RetryDone {
                seq: c.retry_done,
                from: c.last_retry_from,
                upto: c.retried_upto,
                succeeded: c.last_retry_ok,
                failed: c.last_retry_failed,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProjectorError::Timeout(format!(
                "no projector of `{projection}` acknowledged retry request {seq} within {} s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn header_text(record: &LogRecord, key: &str) -> Option<String> {
    record
        .header(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn header_num<N: std::str::FromStr>(record: &LogRecord, key: &str) -> Option<N> {
    header_text(record, key).and_then(|v| v.parse().ok())
}

/// Every record of a projection's dead-letter topic from `from` on (empty
/// if the topic does not exist yet).
pub(crate) async fn read_dead_letters(
    log: &dyn EventLog,
    topic: &str,
    from: i64,
) -> Result<(Vec<LogRecord>, i64), ProjectorError> {
    if !log.list_topics().await?.iter().any(|t| t == topic) {
        return Ok((Vec::new(), 0));
    }
    let tp = TopicPartition::new(topic, 0);
    let end = log.end_offset(&tp).await?;
    let mut out = Vec::new();
    if from < end {
        let mut stream = log.read_range(tp, from, end);
        while let Some(record) = stream.next().await {
            out.push(record?);
        }
    }
    Ok((out, end))
}

/// The original record a dead letter holds, as the projector first saw it
/// (topic, partition and offset from the headers; the `dlq.*` headers
/// removed).
pub(crate) fn original(dead: &LogRecord) -> LogRecord {
    LogRecord {
        topic: header_text(dead, H_TOPIC).unwrap_or_default(),
        partition: header_num(dead, H_PARTITION).unwrap_or(0),
        offset: header_num(dead, H_OFFSET).unwrap_or(-1),
        key: dead.key.clone(),
        value: dead.value.clone(),
        headers: dead
            .headers
            .iter()
            .filter(|h| !h.key.starts_with("dlq."))
            .cloned()
            .collect(),
        timestamp_ms: dead.timestamp_ms,
    }
}

/// The generation a dead letter was written by.
pub(crate) fn generation_of(dead: &LogRecord) -> Option<u32> {
    header_num(dead, H_GENERATION)
}

/// The dead letters of `projection`, oldest first, with whether each is
/// parked (in the serving generation) and retried. `codec` names the
/// event types (without it they are left out).
pub async fn list(
    log: &dyn EventLog,
    codec: Option<&AvroCodec>,
    store: &dyn ReadStore,
    topics: &TopicNames,
    projection: &str,
) -> Result<Vec<DeadLetter>, ProjectorError> {
    generations::ensure(store).await?;
    let topic = dead_letter_topic(topics, projection);
    let (records, _) = read_dead_letters(log, &topic, 0).await?;
    let control = control(store, projection).await?;
    let serving = generations::serving(store, projection).await?;
    let parked = parked_keys(store, projection, serving).await?;
    // A dead letter retried and written again: the newer one is what
    // remains pending.
    let mut out = Vec::with_capacity(records.len());
    let mut names: HashMap<Vec<u8>, Option<String>> = HashMap::new();
    for r in &records {
        let event_type = match (codec, r.value.as_deref()) {
            (Some(codec), Some(bytes)) => {
                // Records of one schema share a name: decode each header once.
                let id = bytes.get(..5).map(<[u8]>::to_vec).unwrap_or_default();
                match names.get(&id) {
                    Some(name) => name.clone(),
                    None => {
                        let name = codec
                            .record_name(bytes)
                            .await
                            .ok()
                            .map(|n| short_name(&n).to_owned());
                        names.insert(id, name.clone());
                        name
                    }
                }
            }
            _ => None,
        };
        let source_topic = header_text(r, H_TOPIC);
        out.push(DeadLetter {
            projection: projection.to_owned(),
            dlq_offset: r.offset,
            key: r.key.clone(),
            source: source_topic
                .map(|t| TopicPartition::new(t, header_num(r, H_PARTITION).unwrap_or(0))),
            source_offset: header_num(r, H_OFFSET),
            reason: header_text(r, H_REASON).unwrap_or_default(),
            event_type,
            generation: generation_of(r),
            retry_of: header_num(r, H_RETRY_OF),
            parked: parked.contains(&r.key),
            retried: r.offset < control.retried_upto
                && generation_of(r).is_none_or(|g| g == control.retried_generation),
            at_ms: r.timestamp_ms,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex() {
        for key in [&b""[..], b"order-1", &[0, 255, 16, 1]] {
            assert_eq!(key_from_hex(&key_hex(key)).as_deref(), Some(key));
        }
        assert_eq!(key_from_hex("abc"), None);
        assert_eq!(key_from_hex("zz"), None);
    }
}
