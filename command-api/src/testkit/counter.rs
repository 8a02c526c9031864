//! A counter: the smallest aggregate that exercises everything the command
//! processor does (versions, refusals, snapshots). Not part of the commerce
//! contract: its records live in `com.quickstore.test` and are registered
//! at run time with [`register_schemas`].

use std::sync::OnceLock;

use apache_avro::types::Value;
use apache_avro::Schema;
use schemas::codec::fast::{read_long, ReadError};
use schemas::{
    AggregateSnapshot, AvroCodec, CodecError, CommandOutcome, CommandPayload, EventPayload,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::topology::CommandTopology;

/// The context name the counter's topics are named after.
pub const CONTEXT: &str = "counters";
const COMMAND: &str = "com.quickstore.test.IncrementCounter";
const EVENT: &str = "com.quickstore.test.CounterIncremented";

/// Add `by` (> 0) to the counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementCounter {
    pub by: i64,
}

/// The counter grew by `by` to `total`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterIncremented {
    pub by: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    #[error("increments must be positive, got {0}")]
    NotPositive(i64),
    #[error("the counter would overflow")]
    Overflow,
}

impl DomainError for CounterError {
    fn code(&self) -> &'static str {
        match self {
            CounterError::NotPositive(_) => "not-positive",
            CounterError::Overflow => "overflow",
        }
    }
}

impl Aggregate for Counter {
    const TYPE: &'static str = "Counter";
    type Facts = ();
    type Command = IncrementCounter;
    type Event = CounterIncremented;
    type Error = CounterError;

    fn decide(
        &self,
        command: &IncrementCounter,
        _: &DecisionContext,
    ) -> Result<Vec<CounterIncremented>, CounterError> {
        if command.by <= 0 {
            return Err(CounterError::NotPositive(command.by));
        }
        let total = self
            .total
            .checked_add(command.by)
            .ok_or(CounterError::Overflow)?;
        Ok(vec![CounterIncremented {
            by: command.by,
            total,
        }])
    }

    fn evolve(&mut self, event: &CounterIncremented) {
        self.total = event.total;
    }
}

fn command_schema() -> Option<&'static Schema> {
    static SCHEMA: OnceLock<Option<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            schemas::contract::command_record_schema(
                COMMAND,
                json!([{"name": "by", "type": "long"}]),
            )
            .ok()
        })
        .as_ref()
}

fn event_schema() -> Option<&'static Schema> {
    static SCHEMA: OnceLock<Option<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            schemas::contract::event_record_schema(
                EVENT,
                json!([{"name": "by", "type": "long"}, {"name": "total", "type": "long"}]),
            )
            .ok()
        })
        .as_ref()
}

/// Registers every record the counter's topology carries: its command and
/// event, and the contract's outcome and snapshot records.
pub async fn register_schemas(
    codec: &AvroCodec,
    topology: &CommandTopology,
) -> Result<(), CodecError> {
    let missing = || CodecError::UnknownRecord("a counter schema failed to build".to_owned());
    codec
        .register_schema(&topology.commands, command_schema().ok_or_else(missing)?)
        .await?;
    codec
        .register_schema(&topology.events, event_schema().ok_or_else(missing)?)
        .await?;
    codec
        .register_contract_record(&topology.outcomes, CommandOutcome::FULL_NAME)
        .await?;
    codec
        .register_contract_record(&topology.snapshots, AggregateSnapshot::FULL_NAME)
        .await?;
    Ok(())
}

impl CommandPayload for IncrementCounter {
    fn record_name(&self) -> &'static str {
        COMMAND
    }
    fn schema(record_full_name: &str) -> Option<&'static Schema> {
        (record_full_name == COMMAND).then(command_schema).flatten()
    }
    fn to_fields(&self) -> Result<Value, CodecError> {
        schemas::payload::record_to_fields(COMMAND, self)
    }
    fn from_fields(record_full_name: &str, fields: Value) -> Result<Self, CodecError> {
        schemas::payload::record_from_fields(COMMAND, record_full_name, &fields)
    }
    // The schema is `{by: long}`: the fast paths write and read it directly.
    fn write_fields(&self, out: &mut Vec<u8>) -> bool {
        schemas::codec::fast::write_long(out, self.by);
        true
    }
    fn read_fields(record_full_name: &str, input: &mut &[u8]) -> Option<Result<Self, ReadError>> {
        (record_full_name == COMMAND).then(|| {
            Ok(Self {
                by: read_long(input)?,
            })
        })
    }
}

impl EventPayload for CounterIncremented {
    fn record_name(&self) -> &'static str {
        EVENT
    }
    fn schema(record_full_name: &str) -> Option<&'static Schema> {
        (record_full_name == EVENT).then(event_schema).flatten()
    }
    fn to_fields(&self) -> Result<Value, CodecError> {
        schemas::payload::record_to_fields(EVENT, self)
    }
    fn from_fields(record_full_name: &str, fields: Value) -> Result<Self, CodecError> {
        schemas::payload::record_from_fields(EVENT, record_full_name, &fields)
    }
    // The schema is `{by: long, total: long}`: the fast paths write and
    // read it directly.
    fn write_fields(&self, out: &mut Vec<u8>) -> bool {
        schemas::codec::fast::write_long(out, self.by);
        schemas::codec::fast::write_long(out, self.total);
        true
    }
    fn read_fields(record_full_name: &str, input: &mut &[u8]) -> Option<Result<Self, ReadError>> {
        (record_full_name == EVENT).then(|| {
            Ok(Self {
                by: read_long(input)?,
                total: read_long(input)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::AggregateTest;

    #[test]
    fn increments_from_nothing() {
        AggregateTest::<Counter>::given_no_history()
            .when(IncrementCounter { by: 3 })
            .then_expect_events(vec![CounterIncremented { by: 3, total: 3 }]);
    }

    #[test]
    fn increments_on_top_of_history() {
        AggregateTest::<Counter>::given(vec![CounterIncremented { by: 2, total: 2 }])
            .when(IncrementCounter { by: 5 })
            .then_expect_events(vec![CounterIncremented { by: 5, total: 7 }]);
    }

    #[test]
    fn refuses_non_positive_increments() {
        AggregateTest::<Counter>::given_no_history()
            .when(IncrementCounter { by: 0 })
            .then_expect_error("not-positive");
        AggregateTest::<Counter>::given_no_history()
            .when(IncrementCounter { by: -4 })
            .then_expect_error("not-positive");
    }

    // A record body is its fields' encodings back to back, so longs suffice.
    #[test]
    fn fast_fields_match_apache_avro() {
        let long = |v: i64| apache_avro::to_avro_datum(&Schema::Long, Value::Long(v)).ok();
        for (by, total) in [(0, 0), (1, -1), (i64::MAX, i64::MIN), (-300, 1 << 40)] {
            let mut fast = Vec::new();
            assert!(IncrementCounter { by }.write_fields(&mut fast));
            assert_eq!(Some(fast), long(by));
            let mut fast = Vec::new();
            assert!(CounterIncremented { by, total }.write_fields(&mut fast));
            let slow = long(by).zip(long(total)).map(|(mut a, b)| {
                a.extend(b);
                a
            });
            assert_eq!(Some(fast.clone()), slow);
            // And the readers read back what was written, and nothing more.
            let mut input = &fast[..];
            let read = CounterIncremented::read_fields(EVENT, &mut input);
            assert_eq!(read, Some(Ok(CounterIncremented { by, total })));
            assert!(input.is_empty());
            let mut input = &fast[..];
            let read = IncrementCounter::read_fields(COMMAND, &mut input);
            assert_eq!(read, Some(Ok(IncrementCounter { by })));
            assert_eq!(CounterIncremented::read_fields(COMMAND, &mut input), None);
        }
    }

    #[test]
    fn refuses_overflow() {
        AggregateTest::<Counter>::given(vec![CounterIncremented {
            by: i64::MAX,
            total: i64::MAX,
        }])
        .when(IncrementCounter { by: 1 })
        .then_expect_error("overflow");
    }
}
