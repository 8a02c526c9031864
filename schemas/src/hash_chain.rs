//! The tamper-evident hash chain of an aggregate's events.
//!
//! Every event's envelope carries `prev_hash` (the previous event's `hash`,
//! empty for version 1) and `hash = SHA-256(prev_hash ‖ canonical bytes)`,
//! where the canonical bytes are the event's Avro body (envelope + payload,
//! with the writer schema) with `hash` set to empty bytes. Changing, removing
//! or reordering any event breaks the chain from there on.
//!
//! The command processor calls [`seal`] before encoding; auditors verify
//! encoded events with [`crate::AvroCodec::chain_link`] and [`ChainLink`].

use apache_avro::types::Value;
use sha2::{Digest, Sha256};

use crate::codec::{compose, encode_body, field_mut, to_value, HASH_FIELD};
use crate::{CodecError, EventEnvelope, EventPayload};

/// Length of a SHA-256 hash.
pub const HASH_LEN: usize = 32;

/// `SHA-256(prev_hash ‖ canonical_bytes)`.
pub fn event_hash(prev_hash: &[u8], canonical_bytes: &[u8]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical_bytes);
    hasher.finalize().into()
}

/// The bytes the hash is computed over: the Avro body of the event (with
/// the contract's schema for it, which is what the codec registers) with
/// `envelope.hash` set to empty bytes. Whatever `envelope.hash` holds is ignored.
/// Written by the generated writers when the payload has one (see
/// [`crate::codec::fast`]), else by apache-avro; the bytes are the same.
pub fn canonical_event_bytes<E: EventPayload>(
    envelope: &EventEnvelope,
    event: &E,
) -> Result<Vec<u8>, CodecError> {
    canonical_with(envelope, event, true)
}

/// [`canonical_event_bytes`] always through apache-avro: the reference the
/// fast path is tested against.
pub fn canonical_event_bytes_generic<E: EventPayload>(
    envelope: &EventEnvelope,
    event: &E,
) -> Result<Vec<u8>, CodecError> {
    canonical_with(envelope, event, false)
}

fn canonical_with<E: EventPayload>(
    envelope: &EventEnvelope,
    event: &E,
    fast: bool,
) -> Result<Vec<u8>, CodecError> {
    let name = event.record_name();
    // Looked up on both paths, so an unknown record fails the same way.
    let schema = E::schema(name).ok_or_else(|| CodecError::UnknownRecord(name.to_owned()))?;
    let mut out = Vec::with_capacity(256);
    if fast {
        envelope.write_avro_with_hash(&[], &mut out);
        if event.write_fields(&mut out) {
            return Ok(out);
        }
        out.clear();
    }
    let mut envelope = to_value(name, envelope)?;
    if let Some(hash) = field_mut(&mut envelope, HASH_FIELD) {
        *hash = Value::Bytes(Vec::new());
    }
    let value = compose(name, envelope, event.to_fields()?)?;
    encode_body(schema, name, value, &mut out)?;
    Ok(out)
}

/// Computes the event's hash from `envelope.prev_hash` and the canonical
/// bytes, stores it in `envelope.hash` and returns it.
/// [`crate::AvroCodec::encode_sealed_event`] seals and encodes in one go.
pub fn seal<E: EventPayload>(
    envelope: &mut EventEnvelope,
    event: &E,
) -> Result<[u8; HASH_LEN], CodecError> {
    seal_with(envelope, event, true)
}

/// [`seal`], through apache-avro unless `fast`.
pub(crate) fn seal_with<E: EventPayload>(
    envelope: &mut EventEnvelope,
    event: &E,
    fast: bool,
) -> Result<[u8; HASH_LEN], CodecError> {
    let canonical = canonical_with(envelope, event, fast)?;
    let hash = event_hash(&envelope.prev_hash, &canonical);
    envelope.hash = hash.to_vec();
    Ok(hash)
}

/// Whether `envelope.hash` matches the event (its own link; [`ChainLink::follows`]
/// checks the link to the previous event).
pub fn verify<E: EventPayload>(envelope: &EventEnvelope, event: &E) -> Result<bool, CodecError> {
    let canonical = canonical_event_bytes(envelope, event)?;
    Ok(event_hash(&envelope.prev_hash, &canonical)[..] == envelope.hash[..])
}

/// One encoded event seen as a link of its aggregate's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Full record name.
    pub record_name: String,
    /// Aggregate type from the envelope.
    pub aggregate_type: String,
    /// Aggregate id from the envelope.
    pub aggregate_id: String,
    /// Version from the envelope.
    pub version: i64,
    /// `prev_hash` from the envelope.
    pub prev_hash: Vec<u8>,
    /// `hash` from the envelope.
    pub hash: Vec<u8>,
    /// The canonical bytes, recomputed with the event's writer schema.
    pub canonical: Vec<u8>,
}

impl ChainLink {
    /// The stored hash matches the event's content.
    pub fn is_intact(&self) -> bool {
        event_hash(&self.prev_hash, &self.canonical)[..] == self.hash[..]
    }

    /// This event directly follows `previous` in the same aggregate's chain.
    pub fn follows(&self, previous: &ChainLink) -> bool {
        self.aggregate_type == previous.aggregate_type
            && self.aggregate_id == previous.aggregate_id
            && previous.version.checked_add(1) == Some(self.version)
            && self.prev_hash == previous.hash
    }

    /// This event is the first of its aggregate.
    pub fn is_first(&self) -> bool {
        self.version == 1 && self.prev_hash.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogEvent, ProductCreated, ProductRepriced};

    fn envelope(version: i64, prev_hash: Vec<u8>) -> EventEnvelope {
        EventEnvelope {
            event_id: format!("00000000-0000-4000-8000-00000000000{version}"),
            aggregate_type: "Product".into(),
            aggregate_id: "p-1".into(),
            version,
            occurred_at: 1_700_000_000_000 + version,
            command_id: "c".into(),
            correlation_id: "k".into(),
            causation_id: "c".into(),
            actor: "admin-1".into(),
            prev_hash,
            hash: Vec::new(),
        }
    }

    #[test]
    fn event_hash_is_sha256_of_prev_then_canonical() {
        // SHA-256("abc"), split across the two inputs.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hash = event_hash(b"a", b"bc");
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        // Plain concatenation: unambiguous anyway, because the canonical
        // bytes contain the envelope, which repeats prev_hash.
        assert_eq!(event_hash(b"", b"abc"), hash);
    }

    #[test]
    fn sealing_chains_events_and_detects_tampering() {
        let created = CatalogEvent::ProductCreated(ProductCreated {
            sku: "SKU-1".into(),
            name: "Mug".into(),
            description: None,
            category: "kitchen".into(),
            price_minor: 1299,
            currency: "EUR".into(),
        });
        let mut first = envelope(1, Vec::new());
        let h1 = seal(&mut first, &created).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.hash, h1.to_vec());
        assert!(verify(&first, &created).unwrap_or_else(|e| panic!("{e}")));

        // The stored hash does not influence the canonical bytes.
        let canonical = canonical_event_bytes(&first, &created).unwrap_or_else(|e| panic!("{e}"));
        let mut cleared = first.clone();
        cleared.hash.clear();
        assert_eq!(
            canonical,
            canonical_event_bytes(&cleared, &created).unwrap_or_else(|e| panic!("{e}"))
        );

        let repriced = ProductRepriced {
            price_minor: 999,
            currency: "EUR".into(),
            previous_price_minor: 1299,
            previous_currency: "EUR".into(),
        };
        let mut second = envelope(2, h1.to_vec());
        seal(&mut second, &repriced).unwrap_or_else(|e| panic!("{e}"));
        assert!(verify(&second, &repriced).unwrap_or_else(|e| panic!("{e}")));

        let mut tampered = repriced.clone();
        tampered.price_minor = 1;
        assert!(!verify(&second, &tampered).unwrap_or_else(|e| panic!("{e}")));
        let mut moved = second.clone();
        moved.actor = "someone-else".into();
        assert!(!verify(&moved, &repriced).unwrap_or_else(|e| panic!("{e}")));
    }
}
