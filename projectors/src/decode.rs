//! The pure half of a projector batch: decoding records and projecting
//! them into row writes.
//!
//! It needs neither the read store nor the parked keys' latest state, so a
//! projector that is behind runs it for the next poll while the previous
//! batch is being written ([`crate::runtime`], "Pipelined"). Which of a batch's records
//! are parked is decided afterwards, in record order, with the parked keys
//! as they are then; a record decoded here whose key turns out parked is
//! simply not used.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use platform::eventlog::LogRecord;
use platform::readstore::Mutation;
use schemas::registry::RegistryError;
use schemas::{AnyEvent, AvroCodec, CodecError, OrderFulfillmentStep};
use tokio::sync::watch;
use tracing::Instrument;

use crate::projection::{Input, Projected, Projection};
use crate::runtime::ProjectorError;

/// One record's writes, or why it cannot be projected (a poison event:
/// the attempts are spent).
pub(crate) type Decoded = Result<Vec<Mutation>, String>;

/// Decodes and projects records of one projection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Decoder {
    codec: Arc<AvroCodec>,
    projection: Arc<dyn Projection>,
    /// The saga-step topic, whose records are not domain events.
    saga_topic: String,
    attempts: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("projection", &self.projection.name())
            .finish_non_exhaustive()
    }
}

/// Whether `shutdown` asks to stop (or its sender is gone).
pub(crate) fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// A decode failure that says the registry is down, not that the record is
/// bad: retried like a store outage, never dead-lettered.
fn is_outage(e: &CodecError) -> bool {
    match e {
        CodecError::Registry(RegistryError::Transport(_) | RegistryError::Storage(_)) => true,
        CodecError::Registry(RegistryError::Server { status, .. }) => *status >= 500,
        _ => false,
    }
}

impl Decoder {
    /// `attempts` per record before it is poison; `backoff` after a failed
    /// attempt (times the attempt) and first while the registry is down.
    pub(crate) fn new(
        codec: Arc<AvroCodec>,
        projection: Arc<dyn Projection>,
        saga_topic: String,
        attempts: u32,
        backoff: Duration,
    ) -> Self {
        Self {
            codec,
            projection,
            saga_topic,
            attempts,
            backoff,
        }
    }

    /// Decodes and projects every record of `records` whose key is not in
    /// `parked` (`None` for those), each with [`Self::project_traced`].
    pub(crate) async fn project_all(
        &self,
        records: &[LogRecord],
        parked: &HashSet<Vec<u8>>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Vec<Option<Decoded>>, ProjectorError> {
        let mut decoded = Vec::with_capacity(records.len());
        for record in records {
            if parked.contains(&record.key) {
                decoded.push(None);
                continue;
            }
            decoded.push(Some(self.project_traced(record, shutdown).await?));
        }
        Ok(decoded)
    }

    /// [`Self::project`] in a span that continues the trace of the command
    /// or saga step that appended the record.
    pub(crate) async fn project_traced(
        &self,
        record: &LogRecord,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Decoded, ProjectorError> {
        let span = tracing::info_span!(
            "projection",
            otel.name = %format!("project {}", self.projection.name()),
            otel.kind = "consumer",
            projection = self.projection.name(),
            messaging.destination.name = %record.topic,
            messaging.kafka.partition = record.partition,
            messaging.kafka.offset = record.offset,
        );
        platform::telemetry::continue_from(&span, &record.headers);
        self.project(record, shutdown).instrument(span).await
    }

    /// Decodes and projects one record: `Ok(Err(why))` for a poison event
    /// (after the attempts). A decode that fails because the registry is
    /// down is not poison: it waits for the registry like the store.
    pub(crate) async fn project(
        &self,
        record: &LogRecord,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Decoded, ProjectorError> {
        let Some(bytes) = record.value.as_deref() else {
            return Ok(Ok(Vec::new()));
        };
        let mut last = String::new();
        let attempts = self.attempts.max(1);
        let mut attempt = 0;
        let mut outage_backoff = self.backoff;
        while attempt < attempts {
            let input = if record.topic == self.saga_topic {
                self.codec
                    .decode_named::<OrderFulfillmentStep>(bytes)
                    .await
                    .map(Input::SagaStep)
            } else {
                self.codec
                    .decode_event::<AnyEvent>(bytes)
                    .await
                    .map(|(envelope, event)| Input::Event { envelope, event })
            };
            match input {
                Ok(input) => {
                    let projected = Projected {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                        input,
                    };
                    match self.projection.project(&projected) {
                        Ok(m) => return Ok(Ok(m)),
                        Err(e) => last = format!("projection: {e}"),
                    }
                }
                Err(e) if is_outage(&e) => {
                    if stopping(shutdown) {
                        return Err(ProjectorError::Interrupted(e.to_string()));
                    }
                    tracing::warn!(projection = self.projection.name(), error = %e, "schema registry unavailable; retrying");
                    tokio::time::sleep(outage_backoff).await;
                    outage_backoff = (outage_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(e) => last = format!("decoding: {e}"),
            }
            attempt += 1;
            if attempt < attempts {
                tokio::time::sleep(self.backoff * attempt).await;
            }
        }
        Ok(Err(last))
    }
}
