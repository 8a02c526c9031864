//! Live tails of a topic ([`crate::eventlog::EventLog::follow`]),
//! read_committed, without a consumer group.
//!
//! Like a range read (`reader.rs`), a tail is a `BaseConsumer` with a
//! throwaway group id that only `assign`s, on a thread of tokio's blocking
//! pool, handing records over a bounded channel in chunks. It never joins a
//! group nor commits, so it is invisible to `kafka-consumer-groups` and
//! costs the group coordinator nothing; it holds its pool thread for as
//! long as the stream lives.

use std::time::Duration;

use futures::stream::BoxStream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::convert::{blocking, kafka_error, to_log_record};
use super::reader::{record_stream, CHUNK};
use super::KafkaConfig;
use crate::eventlog::{LogError, LogRecord, TopicPartition};

/// How long one poll waits for a record. It bounds how long the thread
/// outlives a dropped stream, since the thread looks for that between polls.
const POLL: Duration = Duration::from_millis(100);

/// Chunks in flight between the thread and the stream: enough to keep the
/// fetcher busy, small enough that a slow follower pushes back.
const CHANNEL: usize = 4;

/// Assigns every partition of `topic` at its current read_committed end and
/// only then returns the stream, so a record committed after this returns
/// is never missed.
pub(super) async fn follow(
    config: KafkaConfig,
    topic: String,
    partitions: i32,
) -> Result<BoxStream<'static, Result<LogRecord, LogError>>, LogError> {
    let consumer = blocking(move || assign_at_end(&config, &topic, partitions)).await?;
    let (tx, rx) = mpsc::channel::<Result<Vec<LogRecord>, LogError>>(CHANNEL);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = tail(&consumer, &tx) {
            // The error is the stream's last item: the thread stops here.
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok(record_stream(rx))
}

/// A read_committed consumer assigned to every partition of `topic` at an
/// explicit offset: the partition's last stable offset (LSO) as of now.
///
/// Why the LSO, and why explicit:
/// - `fetch_watermarks` on a `read_committed` client asks the broker for
///   ListOffsets(latest) with that isolation level, which answers the LSO,
///   not the high watermark (the same number [`EventLog::end_offset`]
///   reports). Starting at the high watermark would skip the records of a
///   transaction open at the call that commits after it — exactly the
///   records a follower exists for. Starting at the LSO loses nothing; the
///   price is that committed records above the LSO (behind that open
///   transaction) are delivered too, which the port allows.
/// - `Offset::End` would resolve to the same LSO, but lazily: librdkafka
///   looks it up when its fetcher starts, after `assign` returned, so a
///   record committed in between would be skipped. An offset looked up here
///   is fixed before the caller gets the stream.
///
/// [`EventLog::end_offset`]: crate::eventlog::EventLog::end_offset
fn assign_at_end(
    config: &KafkaConfig,
    topic: &str,
    partitions: i32,
) -> Result<BaseConsumer, LogError> {
    let consumer: BaseConsumer = config
        .client_config()
        // A throwaway group id: this consumer only assigns, never joins or
        // commits, so no group ever shows up for it.
        .set(
            "group.id",
            format!("quickstore-follow-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        // A start that is no longer valid (the log was truncated under us)
        // is an error to report, not a silent jump.
        .set("auto.offset.reset", "error")
        // The broker answers as soon as a record is readable, so a long
        // park costs a tail no latency, and a short one costs idle fetches
        // (see `member::FETCH_WAIT_MAX_MS`).
        .set("fetch.wait.max.ms", super::member::FETCH_WAIT_MAX_MS)
        .create()
        .map_err(|e| kafka_error("creating a follower", &e))?;
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        let tp = TopicPartition::new(topic, partition);
        let (_, end) =
            super::admin::fetch_watermarks_retrying(&consumer, &tp, config.operation_timeout)?;
        tpl.add_partition_offset(topic, partition, Offset::Offset(end))
            .map_err(|e| kafka_error(&tp.to_string(), &e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error(&format!("assigning {topic}"), &e))?;
    Ok(consumer)
}

/// Polls until the stream is dropped (`Ok`) or the tail cannot go on
/// (`Err`, see [`ends_the_tail`]).
/// A record is handed over as soon as nothing more is buffered, so a lone
/// record is not held back waiting for a full chunk.
fn tail(
    consumer: &BaseConsumer,
    tx: &mpsc::Sender<Result<Vec<LogRecord>, LogError>>,
) -> Result<(), LogError> {
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        if tx.is_closed() {
            return Ok(()); // the stream was dropped
        }
        // Wait for the first record of a chunk; then take only what is
        // already fetched, without waiting.
        let wait = if chunk.is_empty() {
            POLL
        } else {
            Duration::ZERO
        };
        match consumer.poll(wait) {
            Some(Ok(message)) => {
                chunk.push(to_log_record(&message));
                if chunk.len() < CHUNK {
                    continue;
                }
            }
            // Not enabled, but harmless: the end is not an end for a tail.
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) => {}
            Some(Err(e)) if ends_the_tail(&e) => {
                // What was read before the error is still delivered first.
                if !chunk.is_empty() {
                    let _ = tx.blocking_send(Ok(std::mem::take(&mut chunk)));
                }
                return Err(kafka_error("following", &e));
            }
            Some(Err(e)) => {
                // librdkafka reconnects and refetches from this consumer's
                // position by itself; ending the tail here would make the
                // caller follow again from the then current end and miss
                // whatever was committed in between (ADR 0028).
                tracing::warn!(error = %e, "following: a transient error; the tail keeps its position");
            }
            None => {}
        }
        // Blocks while the follower is behind (back pressure); fails once
        // it is dropped.
        if !chunk.is_empty() && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
            return Ok(());
        }
    }
}

/// Whether a consumer error means this tail cannot go on from where it
/// is: a fatal client, or a position that no longer exists (the log was
/// truncated under it, or the topic or partition is gone). Everything else
/// — a dropped connection, every broker down during a restart, a leader
/// moving — is reported by librdkafka and recovered by it, fetching on
/// from the same offset.
fn ends_the_tail(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::AutoOffsetReset
                | RDKafkaErrorCode::OffsetOutOfRange
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}
