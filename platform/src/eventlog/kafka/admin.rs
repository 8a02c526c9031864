//! Topic administration and offset look-ups.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::convert::{blocking, kafka_error};
use super::KafkaConfig;
use crate::eventlog::{
    CommittedOffset, GroupDescription, GroupMemberDescription, LogError, TopicDescription,
    TopicPartition, TopicSpec,
};

pub(super) struct Admin {
    client: Arc<AdminClient<DefaultClientContext>>,
    /// A group-less read_committed consumer: its watermark queries return
    /// the last stable offset, which is what read_committed readers see.
    metadata: Arc<BaseConsumer>,
    config: KafkaConfig,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Admin {
    pub(super) fn new(config: &KafkaConfig) -> Result<Self, LogError> {
        let client = config
            .client_config()
            .create()
            .map_err(|e| kafka_error("creating the admin client", &e))?;
        let metadata: BaseConsumer = config
            .client_config()
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("group.id", "quickstore-metadata")
            .create()
            .map_err(|e| kafka_error("creating the metadata client", &e))?;
        Ok(Self {
            client: Arc::new(client),
            metadata: Arc::new(metadata),
            config: config.clone(),
        })
    }

    pub(super) async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), LogError> {
        let configs: Vec<Vec<(&'static str, String)>> =
            specs.iter().map(TopicSpec::configs).collect();
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .zip(&configs)
            .map(|(spec, config)| {
                config.iter().fold(
                    NewTopic::new(
                        &spec.name,
                        spec.partitions,
                        TopicReplication::Fixed(i32::from(spec.replication_factor)),
                    ),
                    |topic, (k, v)| topic.set(k, v),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(self.config.operation_timeout));
        let results = self
            .client
            .create_topics(&new_topics, &options)
            .await
            .map_err(|e| kafka_error("create_topics", &e))?;
        for (result, spec) in results.into_iter().zip(specs) {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    // Another process may have created it a moment ago:
                    // its metadata can lag the "already exists" answer.
                    self.wait_for_topic(&spec.name).await?;
                    let actual = self.partition_count(&spec.name).await?;
                    if actual != spec.partitions {
                        return Err(LogError::TopicMismatch {
                            topic: spec.name.clone(),
                            expected: spec.partitions,
                            actual,
                        });
                    }
                }
                Err((topic, code)) => {
                    return Err(LogError::Kafka(format!("creating topic {topic}: {code}")))
                }
            }
        }
        // CreateTopics returns before every broker knows the topic; wait
        // until metadata shows all partitions so the first produce succeeds.
        for spec in specs {
            self.wait_for_topic(&spec.name).await?;
        }
        Ok(())
    }

    async fn wait_for_topic(&self, topic: &str) -> Result<(), LogError> {
        let deadline = tokio::time::Instant::now() + self.config.operation_timeout;
        loop {
            match self.partitions_led(topic).await {
                Ok(true) => return Ok(()),
                Ok(_) | Err(LogError::UnknownTopic(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Ok(_) => {
                    return Err(LogError::Timeout(format!(
                        "topic {topic} has no partitions"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        blocking(move || {
            let md = client
                .fetch_metadata(None, timeout)
                .map_err(|e| kafka_error("metadata", &e))?;
            Ok(md
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .filter(|n| !n.starts_with("__"))
                .collect())
        })
        .await
    }

    pub(super) async fn partition_count(&self, topic: &str) -> Result<i32, LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        let topic = topic.to_owned();
        blocking(move || {
            let md = client
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| kafka_error(&topic, &e))?;
            let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                return Err(LogError::UnknownTopic(topic));
            };
            if let Some(err) = t.error() {
                let code: RDKafkaErrorCode = err.into();
                return match code {
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                        Err(LogError::UnknownTopic(topic))
                    }
                    other => Err(LogError::Kafka(format!("metadata for {topic}: {other}"))),
                };
            }
            i32::try_from(t.partitions().len())
                .map_err(|_| LogError::Kafka("too many partitions".into()))
        })
        .await
    }

    /// Whether the topic exists and every partition has a leader (a new
    /// topic's partitions answer "not leader" until elections finish).
    async fn partitions_led(&self, topic: &str) -> Result<bool, LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        let topic = topic.to_owned();
        blocking(move || {
            let md = client
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| kafka_error(&topic, &e))?;
            Ok(md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .is_some_and(|t| {
                    t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                }))
        })
        .await
    }

    /// (low, high) where high is the last stable offset.
    pub(super) async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64), LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        let tp = tp.clone();
        blocking(move || fetch_watermarks_retrying(&client, &tp, timeout)).await
    }

    /// Partitions and replicas from metadata, configs from DescribeConfigs
    /// (every entry, broker defaults included, as `kafka-configs.sh
    /// --describe --all` prints them).
    pub(super) async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        let name = topic.to_owned();
        let (partitions, replication_factor) = blocking(move || {
            let md = client
                .fetch_metadata(Some(&name), timeout)
                .map_err(|e| kafka_error(&name, &e))?;
            let Some(t) = md.topics().iter().find(|t| t.name() == name) else {
                return Err(LogError::UnknownTopic(name));
            };
            if t.error().is_some() || t.partitions().is_empty() {
                return Err(LogError::UnknownTopic(name));
            }
            let replicas = t
                .partitions()
                .iter()
                .map(|p| p.replicas().len())
                .min()
                .unwrap_or(0);
            Ok((
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX),
                i16::try_from(replicas).unwrap_or(i16::MAX),
            ))
        })
        .await?;
        let options = AdminOptions::new().request_timeout(Some(self.config.operation_timeout));
        let results = self
            .client
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
            .await
            .map_err(|e| kafka_error("describe_configs", &e))?;
        let mut configs = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|code| {
                LogError::Kafka(format!("describing the configs of topic {topic}: {code}"))
            })?;
            for entry in resource.entries {
                if let Some(value) = entry.value {
                    configs.insert(entry.name, value);
                }
            }
        }
        Ok(TopicDescription {
            name: topic.to_owned(),
            partitions,
            replication_factor,
            configs,
        })
    }

    /// ListGroups/DescribeGroups through librdkafka: the state and members
    /// `kafka-consumer-groups.sh --describe --state/--members` shows.
    pub(super) async fn describe_group(&self, group: &str) -> Result<GroupDescription, LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        let group = group.to_owned();
        blocking(move || {
            let list = client
                .fetch_group_list(Some(&group), timeout)
                .map_err(|e| kafka_error(&format!("describing group {group}"), &e))?;
            let Some(found) = list.groups().iter().find(|g| g.name() == group) else {
                return Ok(GroupDescription {
                    group,
                    state: "Dead".to_owned(),
                    members: Vec::new(),
                });
            };
            Ok(GroupDescription {
                state: found.state().to_owned(),
                members: found
                    .members()
                    .iter()
                    .map(|m| GroupMemberDescription {
                        member_id: m.id().to_owned(),
                        client_id: m.client_id().to_owned(),
                        host: m.client_host().to_owned(),
                    })
                    .collect(),
                group,
            })
        })
        .await
    }

    /// ListOffsets by timestamp; "none that late" becomes the partition's
    /// read_committed end.
    pub(super) async fn offset_for_time(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<i64, LogError> {
        let client = Arc::clone(&self.metadata);
        let timeout = self.config.operation_timeout;
        let tp = tp.clone();
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(timestamp_ms))
                .map_err(|e| kafka_error(&tp.to_string(), &e))?;
            let found = client
                .offsets_for_times(tpl, timeout)
                .map_err(|e| kafka_error(&format!("offsets for times of {tp}"), &e))?;
            let offset = found
                .find_partition(&tp.topic, tp.partition)
                .map(|e| e.offset());
            match offset {
                Some(Offset::Offset(o)) if o >= 0 => Ok(o),
                _ => fetch_watermarks_retrying(&client, &tp, timeout).map(|(_, high)| high),
            }
        })
        .await
    }

    /// The group's committed offsets, stable ones first.
    ///
    /// A read_committed client asks the broker for stable offsets
    /// (KIP-447 `RequireStable`): while a transaction holds uncommitted
    /// offsets of the group, the broker answers "unstable" and librdkafka
    /// asks again until the transaction ends — so a new owner of a
    /// partition never starts from an offset a zombie may still commit
    /// past. Every transaction ends by `transaction.timeout.ms` (the
    /// coordinator aborts it), so when the answer stays unstable for longer
    /// than [`KafkaConfig::unstable_offsets_wait`] the pending offsets are
    /// no live transaction's: after a hard exit across a broker restart we
    /// saw them outlive every transaction (ids `Empty`, nothing hanging)
    /// and pin a restarted processor for good. Then the last committed
    /// offsets are read instead. That is safe for the command processor:
    /// re-reading a command whose outcome is already in the log answers
    /// from the outcome window (dedup by command id), never twice.
    pub(super) async fn committed_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, CommittedOffset>, LogError> {
        let wait = self
            .config
            .unstable_offsets_wait
            .max(self.config.operation_timeout);
        match self.fetch_committed(group, partitions, true, wait).await {
            Err(LogError::Timeout(reason)) => {
                let last = self
                    .fetch_committed(group, partitions, false, self.config.operation_timeout)
                    .await?;
                tracing::warn!(
                    group,
                    %reason,
                    waited_s = wait.as_secs(),
                    "the group's offsets stayed unstable past every transaction's timeout; \
                     using its last committed offsets"
                );
                Ok(last)
            }
            other => other,
        }
    }

    /// One OffsetFetch through a consumer of `group`; `stable` asks for
    /// stable offsets (read_committed), else for the last committed ones.
    async fn fetch_committed(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        stable: bool,
        timeout: std::time::Duration,
    ) -> Result<HashMap<TopicPartition, CommittedOffset>, LogError> {
        // Committed offsets are fetched through a consumer of that group;
        // it never subscribes, so it does not join or disturb the group.
        // librdkafka sets RequireStable from the isolation level.
        let consumer: BaseConsumer = self
            .config
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set(
                "isolation.level",
                if stable {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create()
            .map_err(|e| kafka_error("creating an offsets client", &e))?;
        let mut tpl = TopicPartitionList::new();
        for tp in partitions {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        blocking(move || {
            let committed = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| kafka_error("committed offsets", &e))?;
            let mut out = HashMap::new();
            for e in committed.elements() {
                if let Offset::Offset(o) = e.offset() {
                    out.insert(
                        TopicPartition::new(e.topic(), e.partition()),
                        CommittedOffset {
                            next_offset: o,
                            metadata: e.metadata().to_owned(),
                        },
                    );
                }
            }
            Ok(out)
        })
        .await
    }
}

/// Watermarks, retrying the errors a partition gives while its leadership
/// moves (new topic, broker restart) until `timeout`.
pub(super) fn fetch_watermarks_retrying<C: rdkafka::consumer::ConsumerContext>(
    client: &BaseConsumer<C>,
    tp: &TopicPartition,
    timeout: std::time::Duration,
) -> Result<(i64, i64), LogError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match client.fetch_watermarks(&tp.topic, tp.partition, timeout) {
            Ok(w) => return Ok(w),
            Err(e)
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::NotLeaderForPartition
                            | RDKafkaErrorCode::LeaderNotAvailable
                            | RDKafkaErrorCode::UnknownTopicOrPartition
                    )
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(kafka_error(&tp.to_string(), &e)),
        }
    }
}
