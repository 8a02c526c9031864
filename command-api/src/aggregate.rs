//! What an aggregate is: pure decisions over its own state.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Everything a decision may depend on besides state and command. Time is
/// here as data (the command's `issued_at`): an aggregate never reads a clock.
///
/// `F` is what outside systems answered before the decision (a payment
/// gateway's authorization): fetched by the processor's
/// [`Consultant`](crate::processor::Consultant), handed in as data, and recorded in the
/// events — so the decision itself stays pure and replays never call out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionContext<F = ()> {
    pub aggregate_id: String,
    /// The version the state is at (0 = the aggregate does not exist yet).
    pub version: i64,
    /// When the command was issued, ms since the Unix epoch.
    pub now_ms: i64,
    /// Who asked.
    pub actor: String,
    /// What outside systems answered for this command (`()` for most).
    pub facts: F,
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
    /// What outside systems answer before a decision (see
    /// [`DecisionContext`]); `()` for aggregates that consult nobody.
    type Facts: Default + Clone + Send + Sync + std::fmt::Debug + 'static;
    type Command: schemas::CommandPayload + Send + Sync + std::fmt::Debug;
    type Event: schemas::EventPayload + Clone + Send + Sync + std::fmt::Debug;
    type Error: DomainError;

    fn decide(
        &self,
        command: &Self::Command,
        context: &DecisionContext<Self::Facts>,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(&mut self, event: &Self::Event);

    /// Whether this aggregate decides commands addressed to
    /// `aggregate_type`. A context with two aggregates on one command topic
    /// (orders: `Cart` and `Order`) implements `Aggregate` for the sum of
    /// both and answers for each.
    fn handles(aggregate_type: &str) -> bool {
        aggregate_type == Self::TYPE
    }

    /// The aggregate type of this state, for snapshots (the sum of two
    /// aggregates answers per variant).
    fn type_name(&self) -> &'static str {
        Self::TYPE
    }
}
