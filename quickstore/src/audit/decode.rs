//! One log record seen by the auditor: its chain link (recomputed with the
//! record's own writer schema) and its envelope (who, when, why).

use platform::eventlog::LogRecord;
use query_api::audit_log::LoggedEvent;
use schemas::codec::ChainLink;
use schemas::{AvroCodec, CodecError, EventEnvelope};
use serde::Deserialize;

/// Any enveloped record (every event and saga step): the envelope only;
/// serde skips the payload's fields.
#[derive(Debug, Deserialize)]
struct Enveloped {
    envelope: EventEnvelope,
}

/// A decoded event record.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub link: ChainLink,
    pub envelope: EventEnvelope,
}

impl Decoded {
    /// `ProductRepriced` of `com.quickstore.catalog.ProductRepriced`.
    pub fn short_type(&self) -> &str {
        short_name(&self.link.record_name)
    }

    /// The history entry of this event at `record`'s position.
    pub fn logged(&self, record: &LogRecord) -> LoggedEvent {
        let e = &self.envelope;
        LoggedEvent {
            version: e.version,
            event_id: e.event_id.clone(),
            event_type: self.short_type().to_owned(),
            occurred_at: query_api::time::rfc3339(e.occurred_at),
            occurred_at_ms: e.occurred_at,
            actor: e.actor.clone(),
            command_id: e.command_id.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            prev_hash: hex::encode(&self.link.prev_hash),
            hash: hex::encode(&self.link.hash),
        }
    }
}

pub fn short_name(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}

/// Why a record was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is not an event: a finding.
    NotAnEvent(String),
    /// The schema registry did not answer: the check cannot go on.
    Registry(String),
}

fn classify(e: CodecError) -> DecodeError {
    match e {
        CodecError::Registry(e) => DecodeError::Registry(e.to_string()),
        other => DecodeError::NotAnEvent(other.to_string()),
    }
}

/// Decodes `record` as an event, or says why it is not one.
pub async fn decode(codec: &AvroCodec, record: &LogRecord) -> Result<Decoded, DecodeError> {
    let Some(value) = record.value.as_deref() else {
        return Err(DecodeError::NotAnEvent(
            "the record has no value (a tombstone)".into(),
        ));
    };
    let link = codec.chain_link(value).await.map_err(classify)?;
    let Enveloped { envelope } = codec
        .decode_record::<Enveloped>(value)
        .await
        .map_err(classify)?;
    // The link and the envelope come from one body; they cannot disagree
    // unless the decoder does.
    if envelope.aggregate_id != link.aggregate_id || envelope.version != link.version {
        return Err(DecodeError::NotAnEvent(
            "the envelope and the chain link disagree".into(),
        ));
    }
    Ok(Decoded { link, envelope })
}
