//! Asking outside systems before deciding (the payments context asks its
//! gateway). The answer becomes [`DecisionContext::facts`]: the aggregate
//! stays pure and records what it was told in its events, so a restore
//! replays those events and never calls out again.

use std::future::Future;
use std::pin::Pin;

use schemas::CommandEnvelope;

use crate::aggregate::Aggregate;
#[cfg(doc)]
use crate::aggregate::DecisionContext;

/// A boxed future, so consultants stay object-safe.
pub type Consultation<'a, F> = Pin<Box<dyn Future<Output = Result<F, ConsultError>> + Send + 'a>>;

/// Fetches the facts a command needs before it is decided.
///
/// Called inside the batch's transaction, before `decide`: if the
/// transaction aborts, the command is consulted again on redelivery, so a
/// consultant must be idempotent per command (send the command id as the
/// outside system's idempotency key).
pub trait Consultant<A: Aggregate>: Send + Sync + 'static {
    fn consult<'a>(
        &'a self,
        state: &'a A,
        envelope: &'a CommandEnvelope,
        command: &'a A::Command,
    ) -> Consultation<'a, A::Facts>;
}

/// The outside system did not answer: the batch is aborted and retried,
/// the command is never refused for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{system} did not answer: {reason}")]
pub struct ConsultError {
    pub system: &'static str,
    pub reason: String,
}
