//! Errors of the schema-registry port (Confluent's error codes as types).

/// Why a schema-registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Confluent 40401: the subject does not exist.
    #[error("subject {0} not found")]
    SubjectNotFound(String),

    /// Confluent 40402: the subject has no such version.
    #[error("version {version} of subject {subject} not found")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for.
        version: u32,
    },

    /// Confluent 40403: no schema has this id.
    #[error("schema id {0} not found")]
    SchemaNotFound(u32),

    /// Confluent 409: the schema breaks the subject's compatibility level.
    #[error("schema is incompatible with subject {subject}: {reason}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// Why (as precise as the registry says).
        reason: String,
    },

    /// Confluent 42201: not a valid Avro schema.
    #[error("invalid schema: {0}")]
    InvalidSchema(String),

    /// Confluent 42203: not a compatibility level.
    #[error("invalid compatibility level {0:?}")]
    InvalidCompatibilityLevel(String),

    /// Any other error response of a registry server.
    #[error("schema registry answered HTTP {status} (error code {error_code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Confluent error code (0 if the body had none).
        error_code: u32,
        /// The server's message.
        message: String,
    },

    /// The registry could not be reached or the connection failed.
    #[error("schema registry unreachable: {0}")]
    Transport(String),

    /// A response did not have the documented shape.
    #[error("unexpected schema registry response: {0}")]
    Protocol(String),

    /// The embedded registry could not read or write its file.
    #[error("schema registry storage: {0}")]
    Storage(String),
}
