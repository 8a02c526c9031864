//! Range reads of one partition (restore and replay), read_committed.

use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::convert::{kafka_error, to_log_record};
use super::KafkaConfig;
use crate::eventlog::{LogError, LogRecord, TopicPartition};

/// Records are handed from the blocking reader thread in chunks of this size.
pub(super) const CHUNK: usize = 512;

/// A range read asks for partition-EOF events (that is how it knows it
/// reached the end); librdkafka also reports each one as a client error,
/// which the default context would log at ERROR for every restore. They
/// are expected here: everything else is still logged.
struct RangeReaderContext;

impl ClientContext for RangeReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for RangeReaderContext {}

pub(super) fn read_range(
    config: KafkaConfig,
    tp: TopicPartition,
    from: i64,
    until: i64,
) -> BoxStream<'static, Result<LogRecord, LogError>> {
    let (tx, rx) = mpsc::channel::<Result<Vec<LogRecord>, LogError>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = read_blocking(&config, &tp, from, until, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    record_stream(rx)
}

/// The records a blocking reader thread sends in chunks, one by one.
/// Dropping the stream drops `rx`, which is how the thread learns to stop.
pub(super) fn record_stream(
    mut rx: mpsc::Receiver<Result<Vec<LogRecord>, LogError>>,
) -> BoxStream<'static, Result<LogRecord, LogError>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .flat_map(|chunk| match chunk {
            Ok(records) => futures::stream::iter(records.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => futures::stream::iter(vec![Err(e)]),
        })
        .boxed()
}

fn read_blocking(
    config: &KafkaConfig,
    tp: &TopicPartition,
    from: i64,
    until: i64,
    tx: &mpsc::Sender<Result<Vec<LogRecord>, LogError>>,
) -> Result<(), LogError> {
    let consumer: BaseConsumer<RangeReaderContext> = config
        .client_config()
        // A throwaway group id: this consumer only assigns, never joins or commits.
        .set(
            "group.id",
            format!("quickstore-reader-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // A range that starts before the log's start (retention ran) is an
        // error to report, not a silent jump to the end.
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "50")
        .create_with_context(RangeReaderContext)
        .map_err(|e| kafka_error("creating a reader", &e))?;
    let (_, end_now) =
        super::admin::fetch_watermarks_retrying(&consumer, tp, config.operation_timeout)?;
    let end = until.min(end_now);
    if from >= end {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(from))
        .map_err(|e| kafka_error(&tp.to_string(), &e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error(&tp.to_string(), &e))?;

    // An idle deadline, renewed by every record: a long replay is fine, a
    // broker that stops answering is not.
    let idle_limit = config.operation_timeout;
    let mut deadline = std::time::Instant::now() + idle_limit;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                deadline = std::time::Instant::now() + idle_limit;
                let record = to_log_record(&message);
                if record.offset >= end {
                    break;
                }
                let last = record.offset + 1 >= end;
                chunk.push(record);
                if last {
                    break;
                }
                if chunk.len() >= CHUNK && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err()
                {
                    return Ok(()); // the reader was dropped
                }
            }
            // End of the partition: everything up to the LSO was read.
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) => break,
            // A dropped connection (idle reaping, a broker restart) is
            // reported and then re-established by librdkafka itself: keep
            // polling, within the idle deadline.
            Some(Err(e))
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure
                    )
                ) && std::time::Instant::now() <= deadline => {}
            Some(Err(e)) => return Err(kafka_error(&tp.to_string(), &e)),
            None if std::time::Instant::now() > deadline => {
                return Err(LogError::Timeout(format!("reading {tp} up to {end}")))
            }
            None => {}
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
    Ok(())
}
