//! Conversions between rdkafka types and the port's types.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header as KafkaHeader, Headers, Message, OwnedHeaders};
use rdkafka::Timestamp;

use crate::eventlog::{Header, LogError, LogRecord};

/// `wait` rounded up to whole milliseconds, for any rdkafka poll.
///
/// rdkafka (0.39) hands librdkafka its timeouts in whole milliseconds,
/// truncated, and its poll loops (`BaseConsumer::poll`, `BaseProducer::poll`)
/// call again with what remains until the `Duration` they were given has
/// passed. A remainder under 1 ms truncates to 0 — "don't wait" — so every
/// poll given a fractional timeout ends in a busy loop of up to 1 ms
/// (librdkafka fixed the same in its own main loop: confluentinc/librdkafka
/// #4684). With a whole number of milliseconds librdkafka waits all of it
/// and the loop ends after one call. Measured on an idle system of every
/// role: ~14,000 `rd_kafka_queue_poll` calls/s and a quarter of a core
/// reading the clock, before this (docs/performance.md, "Idle cost").
pub(super) fn whole_ms(wait: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(
        u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX),
    )
}

pub(super) fn to_log_record(message: &BorrowedMessage<'_>) -> LogRecord {
    let headers = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_owned(),
                    value: h.value.unwrap_or_default().to_vec(),
                })
                .collect()
        })
        .unwrap_or_default();
    let timestamp_ms = match message.timestamp() {
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
        Timestamp::NotAvailable => 0,
    };
    LogRecord {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().unwrap_or_default().to_vec(),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms,
    }
}

pub(super) fn to_kafka_headers(headers: &[Header]) -> OwnedHeaders {
    headers
        .iter()
        .fold(OwnedHeaders::new_with_capacity(headers.len()), |acc, h| {
            acc.insert(KafkaHeader {
                key: &h.key,
                value: Some(h.value.as_slice()),
            })
        })
}

/// Error codes by which the broker tells a member or producer that it is no
/// longer the owner of its work: the group moved on (KIP-447 generation
/// checks) or a newer producer with the same transactional id exists.
fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::FencedInstanceId
    )
}

/// A newer producer with the same transactional id exists.
fn is_producer_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::Fenced
    )
}

/// Maps an error of a transactional call: the group moved on →
/// [`LogError::Fenced`]; another instance owns our transactional id (or any
/// fatal producer error) → [`LogError::ProducerFenced`]; anything else
/// aborts the transaction.
pub(super) fn transaction_error(context: &str, error: &KafkaError) -> LogError {
    let code = error.rdkafka_error_code();
    if code.is_some_and(is_producer_fencing) {
        return LogError::ProducerFenced(format!("{context}: {error}"));
    }
    if code.is_some_and(is_fencing) {
        return LogError::Fenced(format!("{context}: {error}"));
    }
    if let KafkaError::Transaction(e) = error {
        if e.is_fatal() {
            return LogError::ProducerFenced(format!("{context}: {error}"));
        }
    }
    LogError::TransactionAborted(format!("{context}: {error}"))
}

pub(super) fn kafka_error(context: &str, error: &KafkaError) -> LogError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            LogError::UnknownTopic(context.to_owned())
        }
        Some(code) if is_fencing(code) => LogError::Fenced(format!("{context}: {error}")),
        Some(RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut) => {
            LogError::Timeout(format!("{context}: {error}"))
        }
        _ => LogError::Kafka(format!("{context}: {error}")),
    }
}

/// Runs a blocking librdkafka call on tokio's blocking pool.
pub(super) async fn blocking<T, F>(f: F) -> Result<T, LogError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, LogError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Kafka(format!("blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::whole_ms;

    #[test]
    fn poll_waits_are_whole_milliseconds_rounded_up() {
        assert_eq!(whole_ms(Duration::ZERO), Duration::ZERO);
        assert_eq!(whole_ms(Duration::from_micros(1)), Duration::from_millis(1));
        assert_eq!(
            whole_ms(Duration::from_micros(99_990)),
            Duration::from_millis(100)
        );
        assert_eq!(
            whole_ms(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
