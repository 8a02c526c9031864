//! One exported event: the envelope's fields as columns, the payload as a
//! JSON object. Avro values become JSON the way analysts expect and the
//! Python check compares: longs stay integers (money in minor units,
//! timestamps in milliseconds since the epoch, UTC), bytes become lowercase
//! hex, enums their symbol, a union its branch's value.

use apache_avro::types::Value;
use serde_json::{Map, Number, Value as Json};
use thiserror::Error;

/// The envelope columns, in output order (CSV header, parquet schema).
pub const COLUMNS: [&str; 17] = [
    "topic",
    "partition",
    "offset",
    "event_type",
    "event_id",
    "aggregate_type",
    "aggregate_id",
    "version",
    "occurred_at",
    "actor",
    "command_id",
    "correlation_id",
    "causation_id",
    "prev_hash",
    "hash",
    "timestamp",
    "payload",
];

#[derive(Debug, Error)]
pub enum RowError {
    #[error("{record} at {topic}-{partition}@{offset} is not an event (no `envelope` with {field}): export reads event topics (`<context>.events`, `sagas.order-fulfillment.events`)")]
    NotAnEvent {
        record: String,
        topic: String,
        partition: i32,
        offset: i64,
        field: &'static str,
    },
    #[error("{0} is not a JSON number")]
    Number(f64),
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's full name, e.g. `com.quickstore.orders.OrderPlaced`.
    pub event_type: String,
    pub event_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
    /// Milliseconds since the epoch, UTC.
    pub occurred_at: i64,
    pub actor: String,
    pub command_id: String,
    pub correlation_id: String,
    pub causation_id: String,
    /// Lowercase hex.
    pub prev_hash: String,
    pub hash: String,
    /// The Kafka record timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Every field but `envelope`.
    pub payload: Map<String, Json>,
}

/// Where a record came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
}

impl Row {
    /// Splits a decoded event record into envelope columns and payload.
    pub fn from_value(origin: &Origin<'_>, record: String, value: Value) -> Result<Self, RowError> {
        let missing = |field: &'static str| RowError::NotAnEvent {
            record: record.clone(),
            topic: origin.topic.to_owned(),
            partition: origin.partition,
            offset: origin.offset,
            field,
        };
        let Value::Record(fields) = value else {
            return Err(missing("fields"));
        };
        let mut envelope = None;
        let mut payload = Map::new();
        for (name, value) in fields {
            if name == "envelope" {
                envelope = Some(value);
            } else {
                payload.insert(name, to_json(value)?);
            }
        }
        let Some(Value::Record(envelope)) = envelope else {
            return Err(missing("`event_id`"));
        };
        let find = |name: &str| envelope.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let text = |name: &'static str| match find(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(missing(name)),
        };
        let long = |name: &'static str| match find(name) {
            Some(Value::Long(v) | Value::TimestampMillis(v)) => Ok(*v),
            _ => Err(missing(name)),
        };
        let bytes = |name: &'static str| match find(name) {
            Some(Value::Bytes(b)) => Ok(hex::encode(b)),
            _ => Err(missing(name)),
        };
        Ok(Self {
            topic: origin.topic.to_owned(),
            partition: origin.partition,
            offset: origin.offset,
            event_id: text("event_id")?,
            aggregate_type: text("aggregate_type")?,
            aggregate_id: text("aggregate_id")?,
            version: long("version")?,
            occurred_at: long("occurred_at")?,
            actor: text("actor")?,
            command_id: text("command_id")?,
            correlation_id: text("correlation_id")?,
            causation_id: text("causation_id")?,
            prev_hash: bytes("prev_hash")?,
            hash: bytes("hash")?,
            timestamp: origin.timestamp,
            payload,
            event_type: record,
        })
    }

    /// The row as one JSON object (the jsonl format): envelope columns at
    /// the top level, `payload` nested.
    pub fn to_json(&self) -> Json {
        let mut out = Map::new();
        for (column, value) in COLUMNS.iter().zip(self.cells()) {
            out.insert((*column).to_owned(), value);
        }
        Json::Object(out)
    }

    /// The cells in [`COLUMNS`] order.
    pub fn cells(&self) -> Vec<Json> {
        vec![
            Json::from(self.topic.clone()),
            Json::from(self.partition),
            Json::from(self.offset),
            Json::from(self.event_type.clone()),
            Json::from(self.event_id.clone()),
            Json::from(self.aggregate_type.clone()),
            Json::from(self.aggregate_id.clone()),
            Json::from(self.version),
            Json::from(self.occurred_at),
            Json::from(self.actor.clone()),
            Json::from(self.command_id.clone()),
            Json::from(self.correlation_id.clone()),
            Json::from(self.causation_id.clone()),
            Json::from(self.prev_hash.clone()),
            Json::from(self.hash.clone()),
            Json::from(self.timestamp),
            Json::Object(self.payload.clone()),
        ]
    }
}

/// An Avro value as plain JSON (see the module docs for the mapping).
pub fn to_json(value: Value) -> Result<Json, RowError> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(i),
        Value::Long(i)
        | Value::TimestampMillis(i)
        | Value::TimestampMicros(i)
        | Value::TimestampNanos(i)
        | Value::LocalTimestampMillis(i)
        | Value::LocalTimestampMicros(i)
        | Value::LocalTimestampNanos(i)
        | Value::TimeMicros(i) => Json::from(i),
        Value::Float(f) => number(f64::from(f))?,
        Value::Double(f) => number(f)?,
        Value::Bytes(b) | Value::Fixed(_, b) => Json::from(hex::encode(b)),
        Value::String(s) => Json::from(s),
        Value::Enum(_, symbol) => Json::from(symbol),
        Value::Union(_, inner) => to_json(*inner)?,
        Value::Array(items) => {
            Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<_, RowError>>()?,
        ),
        Value::Record(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<Result<_, RowError>>()?,
        ),
        Value::Uuid(u) => Json::from(u.to_string()),
        // Not in the contract (money is integer minor units); kept exact
        // as text should one appear.
        other => Json::from(format!("{other:?}")),
    })
}

fn number(f: f64) -> Result<Json, RowError> {
    Number::from_f64(f)
        .map(Json::Number)
        .ok_or(RowError::Number(f))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn avro_values_map_to_plain_json() {
        let value = Value::Record(vec![
            ("price_minor".into(), Value::Long(1299)),
            ("at".into(), Value::TimestampMillis(1_700_000_000_123)),
            ("hash".into(), Value::Bytes(vec![0x00, 0xab, 0xff])),
            ("stage".into(), Value::Enum(2, "IN_TRANSIT".into())),
            (
                "note".into(),
                Value::Union(1, Box::new(Value::String("x".into()))),
            ),
            ("none".into(), Value::Union(0, Box::new(Value::Null))),
            (
                "lines".into(),
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
            ),
        ]);
        assert_eq!(
            to_json(value).unwrap(),
            serde_json::json!({
                "price_minor": 1299, "at": 1_700_000_000_123_i64, "hash": "00abff",
                "stage": "IN_TRANSIT", "note": "x", "none": null, "lines": [1, 2]
            })
        );
        assert!(to_json(Value::Double(f64::NAN)).is_err());
    }

    #[test]
    fn a_record_without_an_event_envelope_is_refused_with_where_it_is() {
        let origin = Origin {
            topic: "orders.commands",
            partition: 1,
            offset: 7,
            timestamp: 0,
        };
        let err = Row::from_value(
            &origin,
            "com.quickstore.orders.PlaceOrder".into(),
            Value::Record(vec![("x".into(), Value::Null)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("orders.commands-1@7") && err.contains("export reads event topics"),
            "{err}"
        );
    }
}
