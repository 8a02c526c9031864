//! The non-transactional producer: one record per `send`, group-committed
//! with whatever else is queued (see `writer.rs`).

use std::sync::Arc;

use async_trait::async_trait;

use super::writer::Op;
use super::Inner;
use crate::eventlog::{LogError, OutgoingRecord, Producer, RecordPosition};

#[derive(Debug)]
pub(crate) struct EmbeddedProducer {
    log: Arc<Inner>,
    /// Kept for diagnostics only (Kafka tools show it).
    client_id: String,
}

impl EmbeddedProducer {
    pub fn new(log: Arc<Inner>, client_id: &str) -> Self {
        Self {
            log,
            client_id: client_id.to_owned(),
        }
    }
}

#[async_trait]
impl Producer for EmbeddedProducer {
    async fn send(&self, record: OutgoingRecord) -> Result<RecordPosition, LogError> {
        let prepared = self.log.prepare(&record)?;
        let mut positions = self.log.writer.submit(Op::Append(prepared)).await?;
        positions.pop().ok_or_else(|| {
            LogError::Storage(format!(
                "producer {}: the writer returned no position",
                self.client_id
            ))
        })
    }
}
