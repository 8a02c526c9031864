//! The idempotent, non-transactional producer (used by the command API to
//! append commands).

use async_trait::async_trait;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::convert::{kafka_error, to_kafka_headers};
use super::KafkaLog;
use crate::eventlog::{LogError, OutgoingRecord, Producer, RecordPosition};

pub(super) struct KafkaProducer {
    log: KafkaLog,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer").finish_non_exhaustive()
    }
}

impl KafkaProducer {
    pub(super) fn new(log: KafkaLog, client_id: &str) -> Result<Self, LogError> {
        let producer = log
            .config()
            .client_config()
            .set("client.id", client_id)
            // Idempotence: retries never duplicate or reorder a partition's records.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            // librdkafka's `murmur2_random` is Java's murmur2 for keyed
            // records: the same placement as `crate::partitioner` (the
            // conformance suite checks it against the embedded log).
            .set("partitioner", "murmur2_random")
            .create()
            .map_err(|e| kafka_error("creating a producer", &e))?;
        Ok(Self { log, producer })
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send(&self, record: OutgoingRecord) -> Result<RecordPosition, LogError> {
        let mut future_record = FutureRecord::to(&record.topic)
            .key(&record.key)
            .headers(to_kafka_headers(&record.headers));
        if let Some(p) = record.partition {
            future_record = future_record.partition(p);
        }
        if let Some(value) = &record.value {
            future_record = future_record.payload(value);
        }
        if let Some(ts) = record.timestamp_ms {
            future_record = future_record.timestamp(ts);
        }
        let delivery = self
            .producer
            .send(
                future_record,
                Timeout::After(self.log.config().operation_timeout),
            )
            .await
            .map_err(|(e, _)| kafka_error(&record.topic, &e))?;
        Ok(RecordPosition {
            topic: record.topic,
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }
}
