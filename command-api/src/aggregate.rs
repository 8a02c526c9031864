//! What an aggregate is: pure decisions over its own state.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Everything a decision may depend on besides state and command. Time is
/// here as data (the command's `issued_at`): an aggregate never reads a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionContext {
    pub aggregate_id: String,
    /// The version the state is at (0 = the aggregate does not exist yet).
    pub version: i64,
    /// When the command was issued, ms since the Unix epoch.
    pub now_ms: i64,
    /// Who asked.
    pub actor: String,
}

/// A refusal: the command was understood and is not allowed now.
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    /// A stable, machine-readable code (`out-of-stock`, `not-positive`…):
    /// clients branch on it, and it is carried in the outcome record.
    fn code(&self) -> &'static str;
}

/// An event-sourced aggregate.
///
/// The state is serialisable because the processor snapshots it to the
/// `<context>.snapshots` changelog; `evolve` must be total (an event that was
/// appended is a fact, so applying it can't fail).
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug + 'static
{
    /// The aggregate type as it appears in envelopes (`Product`, `Order`…).
    const TYPE: &'static str;
    type Command: schemas::CommandPayload + Send + Sync + std::fmt::Debug;
    type Event: schemas::EventPayload + Clone + Send + Sync + std::fmt::Debug;
    type Error: DomainError;

    fn decide(
        &self,
        command: &Self::Command,
        context: &DecisionContext,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(&mut self, event: &Self::Event);
}
