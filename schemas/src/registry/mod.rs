//! The schema-registry port, with the semantics of the Confluent Schema
//! Registry, and its adapters.
//!
//! * [`EmbeddedRegistry`]: in-process, optionally persisted to a JSON file
//!   (fast tests, `quickstore dev`).
//! * [`ConfluentRegistry`]: HTTP client of the Confluent REST API (production,
//!   and the real-registry tests).
//! * `http::router` (feature `http-server`): the embedded registry served over
//!   the Confluent REST subset, so standard tools can decode embedded topics.
//! * [`compat`]: Avro compatibility levels, used by the embedded registry and
//!   by the compatibility guard test.
//!
//! Semantics every adapter keeps (Confluent's):
//! * registering the same schema under the same subject returns the same id
//!   and creates no new version;
//! * the same schema under another subject gets the same global id;
//! * a schema that violates the subject's compatibility level is refused
//!   with [`RegistryError::Incompatible`] (Confluent's HTTP 409).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod compat;
mod confluent;
mod embedded;
mod error;
#[cfg(feature = "http-server")]
pub mod http;

pub use confluent::{BasicAuth, ConfluentRegistry, ConfluentRegistryConfig, Secret};
pub use embedded::{EmbeddedRegistry, FILE_NAME as EMBEDDED_REGISTRY_FILE};
pub use error::RegistryError;

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// Version within the subject: 1, 2, 3, …
    pub version: u32,
    /// Global schema id.
    pub id: u32,
    /// The schema text.
    pub schema: String,
}

/// A compatibility level (Confluent's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema can read data written with the latest version (Confluent's default).
    #[default]
    Backward,
    /// The new schema can read data written with every earlier version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every earlier version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// Confluent's name, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Checked against every earlier version (not only the latest).
    pub fn is_transitive(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    /// The new schema must read old data.
    pub fn is_backward(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Old schemas must read new data.
    pub fn is_forward(&self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(s.to_owned()))
    }
}

/// The schema registry, with Confluent's subject/version/id semantics.
///
/// Schemas are Avro schema JSON text. Subjects are `<topic>-<full.RecordName>`
/// in QuickStore (see [`crate::contract::subject`]), but the port does not care.
#[async_trait]
pub trait SchemaRegistry: Send + Sync + fmt::Debug {
    /// Registers `schema` under `subject` and returns its global id.
    /// Idempotent: a schema already registered under the subject returns its
    /// id without a new version. Fails with [`RegistryError::Incompatible`]
    /// if the subject's compatibility level refuses it, and with
    /// [`RegistryError::InvalidSchema`] if it is not a valid Avro schema.
    async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError>;

    /// The schema with global id `id` ([`RegistryError::SchemaNotFound`] if none).
    async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError>;

    /// The latest version of `subject` ([`RegistryError::SubjectNotFound`] if none).
    async fn latest(&self, subject: &str) -> Result<SubjectVersion, RegistryError>;

    /// The versions of `subject`, ascending.
    async fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError>;

    /// Version `version` of `subject`.
    async fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion, RegistryError>;

    /// All subjects, sorted.
    async fn subjects(&self) -> Result<Vec<String>, RegistryError>;

    /// Sets the compatibility level of `subject`, or the global default when `None`.
    async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError>;

    /// The level in force for `subject` (its own, else the global one), or the
    /// global level when `None`.
    async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<CompatibilityLevel, RegistryError>;

    /// Whether `schema` is compatible with the latest version of `subject`
    /// under the subject's level (Confluent's
    /// `POST /compatibility/subjects/{subject}/versions/latest`). `true` when
    /// the subject has no version yet. Registration itself additionally
    /// checks every earlier version when the level is transitive.
    async fn check_compatibility(&self, subject: &str, schema: &str)
        -> Result<bool, RegistryError>;
}
