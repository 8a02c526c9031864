//! The Kafka adapter of the event-log port, over `rdkafka` (librdkafka).
//!
//! - Producers are idempotent (`enable.idempotence=true`, `acks=all`).
//! - A transactional group member pairs a consumer with a transactional
//!   producer (one `transactional.id` per member instance) and commits its
//!   consumed offsets with `send_offsets_to_transaction`, passing the group
//!   metadata captured at the poll that returned the records — so a member
//!   that has been pushed out of the group (a zombie) is rejected by the
//!   group coordinator (KIP-447) instead of committing stale work.
//! - Every read is `isolation.level=read_committed`.
//! - Partitions are chosen by [`crate::partitioner`] (Java murmur2) before
//!   the record reaches librdkafka, so the embedded log and every Kafka tool
//!   agree on placement.
//!
//! librdkafka's blocking calls (transactions, metadata, seeks, polls) run on
//! tokio's blocking pool so they never stall the async workers.

mod admin;
mod convert;
mod follow;
mod member;

pub use member::TXN_RETRY_BACKOFF_MS;
mod producer;
mod reader;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use rdkafka::ClientConfig;

use super::{
    CommittedOffset, EventLog, GroupConfig, GroupDescription, GroupMember, LogError, LogRecord,
    Producer, TopicDescription, TopicPartition, TopicSpec,
};

/// How to reach the cluster.
#[derive(Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`, e.g. `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties applied to every client (security
    /// settings such as `security.protocol`, `sasl.*`, `ssl.*`). Values may
    /// be secrets: they are never logged or printed.
    pub client_properties: Vec<(String, String)>,
    /// Bound on blocking broker round trips.
    pub operation_timeout: Duration,
    /// How long a read_committed fetch of a group's committed offsets may
    /// wait for a transaction that holds uncommitted offsets of the group
    /// (KIP-447 "unstable offsets") before the last committed offsets are
    /// read instead. Longer than any transaction of the group can stay open
    /// (its `transaction.timeout.ms`, 30 s for the processors and saga
    /// workers, plus the coordinator's 10 s abort sweep): past that, no live
    /// transaction owns the pending offsets. See `Admin::committed_offsets`.
    pub unstable_offsets_wait: Duration,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Property values can hold SASL passwords: print only the keys.
        let keys: Vec<&str> = self
            .client_properties
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_property_keys", &keys)
            .field("operation_timeout", &self.operation_timeout)
            .field("unstable_offsets_wait", &self.unstable_offsets_wait)
            .finish()
    }
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_properties: Vec::new(),
            operation_timeout: super::DEFAULT_OP_TIMEOUT,
            unstable_offsets_wait: Duration::from_secs(60),
        }
    }

    /// A librdkafka config with the connection and security settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.client_properties {
            config.set(key, value);
        }
        config
    }
}

/// The event log on an Apache Kafka cluster.
#[derive(Debug, Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: KafkaConfig,
    admin: admin::Admin,
    /// Partition counts never shrink in Kafka, so they are safe to cache.
    partition_counts: Mutex<HashMap<String, i32>>,
}

impl KafkaLog {
    /// Connects (lazily: librdkafka connects on first use) to the cluster.
    pub fn connect(config: KafkaConfig) -> Result<Self, LogError> {
        let admin = admin::Admin::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                admin,
                partition_counts: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    pub(crate) async fn cached_partition_count(&self, topic: &str) -> Result<i32, LogError> {
        if let Some(n) = self.partition_counts().get(topic) {
            return Ok(*n);
        }
        let n = self.inner.admin.partition_count(topic).await?;
        self.partition_counts().insert(topic.to_owned(), n);
        Ok(n)
    }

    fn partition_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, i32>> {
        // A poisoned map of counts is still a valid cache.
        self.inner
            .partition_counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError> {
        self.inner.admin.create_topics(specs).await?;
        let mut counts = self.partition_counts();
        for spec in specs {
            counts.insert(spec.name.clone(), spec.partitions);
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        self.inner.admin.list_topics().await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        self.cached_partition_count(topic).await
    }

    async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, LogError> {
        self.inner.admin.describe_topic(topic).await
    }

    async fn describe_group(&self, group: &str) -> Result<GroupDescription, LogError> {
        self.inner.admin.describe_group(group).await
    }

    async fn offset_for_time(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<i64, LogError> {
        self.inner.admin.offset_for_time(tp, timestamp_ms).await
    }

    async fn end_offset(&self, tp: &TopicPartition) -> Result<i64, LogError> {
        self.inner.admin.watermarks(tp).await.map(|(_, high)| high)
    }

    async fn start_offset(&self, tp: &TopicPartition) -> Result<i64, LogError> {
        self.inner.admin.watermarks(tp).await.map(|(low, _)| low)
    }

    fn read_range(
        &self,
        tp: TopicPartition,
        from: i64,
        until: i64,
    ) -> BoxStream<'static, Result<LogRecord, LogError>> {
        reader::read_range(self.inner.config.clone(), tp, from, until)
    }

    async fn follow(
        &self,
        topic: &str,
    ) -> Result<BoxStream<'static, Result<LogRecord, LogError>>, LogError> {
        let partitions = self.cached_partition_count(topic).await?;
        follow::follow(self.inner.config.clone(), topic.to_owned(), partitions).await
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, CommittedOffset>, LogError> {
        self.inner.admin.committed_offsets(group, partitions).await
    }

    async fn producer(&self, client_id: &str) -> Result<Box<dyn Producer>, LogError> {
        Ok(Box::new(producer::KafkaProducer::new(
            self.clone(),
            client_id,
        )?))
    }

    async fn join_group(&self, config: GroupConfig) -> Result<Box<dyn GroupMember>, LogError> {
        Ok(Box::new(
            member::KafkaMember::join(self.clone(), config).await?,
        ))
    }
}
