//! What a projection is: a pure function from one event (with where it
//! sits in the log) to the row writes it causes.
//!
//! Idempotence comes from the write timestamps, not from reading before
//! writing: every cell has one source aggregate and is written with that
//! aggregate's version as its timestamp, so the read store keeps, per cell,
//! the value of the newest event — whatever order events arrive in, however
//! often a batch is redelivered, and on a rebuild from offset 0.

use platform::readstore::{Mutation, MutationKind, Row, TableDef, Value};
use schemas::{AnyEvent, EventEnvelope, OrderFulfillmentStep};

/// An input of a projection: a decoded event and its position.
#[derive(Debug, Clone)]
pub struct Projected {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub input: Input,
}

/// What the record held.
#[derive(Debug, Clone)]
pub enum Input {
    Event {
        envelope: EventEnvelope,
        event: AnyEvent,
    },
    SagaStep(OrderFulfillmentStep),
}

impl Projected {
    pub fn envelope(&self) -> &EventEnvelope {
        match &self.input {
            Input::Event { envelope, .. } => envelope,
            Input::SagaStep(step) => &step.envelope,
        }
    }
}

/// Why an event could not be projected. A projection that returns this
/// for an event is handed it again (a transient store failure is retried
/// by the runtime, not reported here); after the retries it is a poison
/// event for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProjectionError(pub String);

/// A projection: tables and a pure fold step.
pub trait Projection: Send + Sync + std::fmt::Debug + 'static {
    /// Its name in group ids, topics and the CLI (`orders`).
    fn name(&self) -> &'static str;

    /// The tables it writes (one generation each).
    fn tables(&self) -> &'static [TableDef];

    /// The event topics it reads (full names, with the prefix).
    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String>;

    /// The writes one input causes (generation 0 here; the runtime sets
    /// the generation it is building).
    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError>;
}

/// A row from `(column, value)` pairs.
pub fn row<const N: usize>(cells: [(&str, Value); N]) -> Row {
    cells.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// An upsert of `cells` into `table`, stamped `timestamp`.
pub fn upsert(table: TableDef, timestamp: i64, cells: Row) -> Mutation {
    Mutation {
        table,
        generation: 0,
        kind: MutationKind::Upsert(cells),
        timestamp,
    }
}

pub fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

pub fn opt_text(s: Option<impl Into<String>>) -> Value {
    s.map_or(Value::Null, |s| Value::Text(s.into()))
}

/// The short record name (`OrderPlaced`).
pub fn short_name(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}
