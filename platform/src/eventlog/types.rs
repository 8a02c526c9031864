//! Plain data carried across the event-log port.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What happens to old records of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Keep every record forever (`retention.ms=-1`, never compacted):
    /// event topics, the system of record.
    KeepForever,
    /// Keep the latest record per key (`cleanup.policy=compact`):
    /// snapshot changelogs.
    Compact,
    /// Delete records older than the retention (command and outcome topics).
    Delete { retention: Duration },
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub cleanup: Cleanup,
    /// Replication factor; 1 on a single-node test broker, 3 in production.
    pub replication_factor: i16,
    /// `min.insync.replicas`; `None` keeps the broker default.
    pub min_insync_replicas: Option<i16>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32, cleanup: Cleanup) -> Self {
        Self {
            name: name.into(),
            partitions,
            cleanup,
            replication_factor: 1,
            min_insync_replicas: None,
        }
    }
}

impl TopicSpec {
    /// The topic-level configs this spec asks for, as Kafka names them:
    /// what the Kafka adapter creates a topic with and what
    /// `quickstore topics apply` compares a topic's actual configs with.
    pub fn configs(&self) -> Vec<(&'static str, String)> {
        let mut configs = match self.cleanup {
            Cleanup::KeepForever => vec![
                ("cleanup.policy", "delete".to_owned()),
                ("retention.ms", "-1".to_owned()),
                ("retention.bytes", "-1".to_owned()),
            ],
            // The log cleaner never touches the active segment, and by
            // default a segment rolls only at 1 GiB or after 7 days: a
            // snapshot changelog would then be read in full by every
            // restore. Rolling hourly lets compaction keep restores
            // proportional to aggregates.
            Cleanup::Compact => vec![
                ("cleanup.policy", "compact".to_owned()),
                ("segment.ms", "3600000".to_owned()),
            ],
            Cleanup::Delete { retention } => vec![
                ("cleanup.policy", "delete".to_owned()),
                ("retention.ms", retention.as_millis().to_string()),
            ],
        };
        if let Some(min_isr) = self.min_insync_replicas {
            configs.push(("min.insync.replicas", min_isr.to_string()));
        }
        configs
    }
}

/// A topic as the log has it (`quickstore topics apply` compares it with
/// its [`TopicSpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub partitions: i32,
    /// Replicas of each partition (the smallest, if they differ).
    pub replication_factor: i16,
    /// Effective topic configs by Kafka name (`cleanup.policy`,
    /// `retention.ms`, `min.insync.replicas`, …), broker defaults included.
    pub configs: BTreeMap<String, String>,
}

/// A consumer group as the log's coordinator sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    /// Kafka's state names: `Stable`, `Empty`, `PreparingRebalance`,
    /// `CompletingRebalance`, `Dead` (also: a group the coordinator does not
    /// know).
    pub state: String,
    pub members: Vec<GroupMemberDescription>,
}

/// One member of a group (the CONSUMER-ID, HOST, CLIENT-ID columns of
/// `kafka-consumer-groups.sh --describe --members`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

/// A record header (Kafka headers; tools filter on them without decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Vec<u8>,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub topic: String,
    /// Always the aggregate id (or saga id): it decides the partition.
    pub key: Vec<u8>,
    /// `None` is a tombstone (compacted topics only).
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Explicit partition; `None` = murmur2 of the key.
    pub partition: Option<i32>,
    /// Record timestamp (ms since epoch); `None` = the log's append time.
    pub timestamp_ms: Option<i64>,
}

impl OutgoingRecord {
    pub fn new(
        topic: impl Into<String>,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            topic: topic.into(),
            key: key.into(),
            value: Some(value.into()),
            headers: Vec::new(),
            partition: None,
            timestamp_ms: None,
        }
    }

    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: value.into(),
        });
        self
    }
}

/// A record as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub timestamp_ms: i64,
}

impl LogRecord {
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }

    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_slice())
    }
}

/// Where an appended record landed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// An offset to commit: the NEXT offset to consume in `tp`, plus metadata
/// stored with it (the command processor keeps its restore checkpoint here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommit {
    pub tp: TopicPartition,
    pub next_offset: i64,
    pub metadata: String,
}

/// A committed offset as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub next_offset: i64,
    pub metadata: String,
}

/// How a member joins a group.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub group_id: String,
    pub topics: Vec<String>,
    /// Shown in Kafka tools as the client id.
    pub client_id: String,
    /// A member silent for this long is removed and its partitions move.
    pub session_timeout: Duration,
    /// A member that does not poll for this long leaves the group (becomes a
    /// zombie if it is still running).
    pub max_poll_interval: Duration,
    /// Set to run exactly-once transactions. Stable per member instance, so
    /// a restarted instance fences its previous incarnation.
    pub transactional_id: Option<String>,
    /// How long an open transaction may live before the log aborts it (a
    /// crashed member's transaction stops blocking read_committed readers).
    pub transaction_timeout: Duration,
}

impl GroupConfig {
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        let group_id = group_id.into();
        Self {
            client_id: group_id.clone(),
            group_id,
            topics,
            session_timeout: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }

    pub fn transactional(mut self, transactional_id: impl Into<String>) -> Self {
        self.transactional_id = Some(transactional_id.into());
        self
    }
}

/// What `GroupMember::poll` reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// These partitions were taken away: drop their state, do not commit for
    /// them. Always delivered before the next `Assigned`.
    Revoked(Vec<TopicPartition>),
    /// These partitions are now this member's: restore their state before
    /// processing their records.
    Assigned(Vec<TopicPartition>),
    /// Records of owned partitions, in offset order per partition.
    Records(Vec<LogRecord>),
}
