//! Errors of the codec and small parse errors.
//!
//! Every way a record can fail to encode or decode has its own variant, so a
//! consumer can route a bad record (dead-letter it, alert, skip) without
//! parsing messages.

use crate::registry::RegistryError;

/// Why a record could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The record is empty or shorter than the 5-byte Confluent header.
    #[error("record is empty or shorter than the 5-byte Confluent header ({len} bytes)")]
    EmptyOrTooShort {
        /// Length of the record value in bytes.
        len: usize,
    },

    /// Byte 0 is not the Confluent magic byte 0x00.
    #[error("wrong magic byte {0:#04x} (expected 0x00): not in the Confluent wire format")]
    WrongMagicByte(u8),

    /// The schema registry does not know the schema id in the header.
    #[error("schema id {0} is unknown to the schema registry")]
    UnknownSchemaId(u32),

    /// The Avro body does not decode with the writer schema named in the header
    /// (truncated, corrupt, trailing bytes, or not resolvable to the reader schema).
    #[error("body does not decode with writer schema {schema_id} ({record}): {reason}")]
    BodyDoesNotDecode {
        /// Schema id from the header.
        schema_id: u32,
        /// Full name of the writer schema's record.
        record: String,
        /// What went wrong.
        reason: String,
    },

    /// The record is not of the type the caller asked for (e.g. a command
    /// decoded as an event, or an orders event decoded as a `CatalogEvent`).
    #[error("schema mismatch: expected {expected}, found {found}")]
    SchemaMismatch {
        /// What the caller's type accepts.
        expected: String,
        /// Full name of the record found.
        found: String,
    },

    /// No schema is registered (in this codec's cache) for the subject: call
    /// `register_contract`/`register_schema` before encoding.
    #[error("no schema registered for subject {subject}: register the contract (or the schema) before encoding")]
    NotRegistered {
        /// The subject (`<topic>-<full.RecordName>`).
        subject: String,
    },

    /// The schema the registry returned for an id cannot be used (does not
    /// parse here, or is not a record).
    #[error("schema {schema_id} from the registry is not usable: {reason}")]
    UnusableSchema {
        /// Schema id.
        schema_id: u32,
        /// Why.
        reason: String,
    },

    /// A value does not fit its schema on encode.
    #[error("cannot encode {record}: {reason}")]
    Encode {
        /// Full record name.
        record: String,
        /// Why.
        reason: String,
    },

    /// A decoded record does not fit the Rust type it is decoded into.
    #[error("{record} does not fit its Rust type: {reason}")]
    Payload {
        /// Full record name.
        record: String,
        /// Why.
        reason: String,
    },

    /// The record name is not part of the contract.
    #[error("{0} is not a record of the QuickStore contract")]
    UnknownRecord(String),

    /// A schema given by the caller is invalid or not a record.
    #[error("invalid schema: {0}")]
    InvalidSchema(String),

    /// The contract's own schemas failed to load (a build problem; the
    /// `contract` tests catch it).
    #[error("the contract's schemas do not load: {0}")]
    Contract(String),

    /// The schema registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A string is not a symbol of a generated Avro enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{symbol:?} is not a symbol of {type_name}")]
pub struct UnknownSymbol {
    /// Full name of the enum.
    pub type_name: &'static str,
    /// The string that did not match.
    pub symbol: String,
}
