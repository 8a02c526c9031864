//! Infrastructure errors of the event log.

use super::TopicPartition;

/// What can go wrong talking to the log. Domain code never sees these; the
/// services map them to retries or 5xx.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),

    #[error("topic `{topic}` has {actual} partitions, expected {expected}")]
    TopicMismatch {
        topic: String,
        expected: i32,
        actual: i32,
    },

    /// This member is a zombie: the group moved on without it. Its open
    /// transaction was aborted; it must stop writing and rejoin.
    #[error("fenced: {0}")]
    Fenced(String),

    /// Another instance took over this member's transactional id: this
    /// instance is the stale one and must stop (rejoining would fence the
    /// newer instance in turn and the two would take turns forever).
    #[error("producer fenced: {0}")]
    ProducerFenced(String),

    /// The transaction could not commit and was (or must be) aborted; the
    /// batch can be retried from the last committed offsets.
    #[error("transaction aborted: {0}")]
    TransactionAborted(String),

    #[error("no transaction is open")]
    NoTransaction,

    #[error("this member has no transactional id; transactions need one")]
    NotTransactional,

    #[error("partition {0} is not assigned to this member")]
    NotAssigned(TopicPartition),

    #[error("invalid request: {0}")]
    Invalid(String),

    #[error("timed out: {0}")]
    Timeout(String),

    #[error("kafka: {0}")]
    Kafka(String),

    #[error("embedded storage: {0}")]
    Storage(String),

    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// True when retrying the same operation later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            LogError::Timeout(_) | LogError::TransactionAborted(_) | LogError::Kafka(_)
        )
    }
}
