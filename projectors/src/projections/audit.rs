//! The audit index: every event of every aggregate, by aggregate, in
//! version order, with where it is in the log (topic, partition, offset),
//! who caused it and its hash — what an auditor reads, and where to find
//! the record itself.

use platform::readstore::{column, ColumnType as T, Mutation, Order, TableDef, Value};
use schemas::Context;

use crate::projection::{
    row, short_name, text, upsert, Input, Projected, Projection, ProjectionError,
};

pub const EVENTS_BY_AGGREGATE: TableDef = TableDef {
    name: "events_by_aggregate",
    partition_key: &[
        column("aggregate_type", T::Text),
        column("aggregate_id", T::Text),
    ],
    clustering: &[(column("version", T::BigInt), Order::Asc)],
    columns: &[
        column("event_id", T::Text),
        column("event_type", T::Text),
        column("occurred_at", T::Timestamp),
        column("actor", T::Text),
        column("command_id", T::Text),
        column("correlation_id", T::Text),
        column("causation_id", T::Text),
        column("topic", T::Text),
        column("partition", T::Int),
        column("offset", T::BigInt),
        column("prev_hash", T::Blob),
        column("hash", T::Blob),
    ],
};

const TABLES: &[TableDef] = &[EVENTS_BY_AGGREGATE];

#[derive(Debug, Default, Clone, Copy)]
pub struct AuditProjection;

impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        let mut all: Vec<String> = Context::ALL.iter().map(|c| topics.events(*c)).collect();
        all.push(topics.saga_events(schemas::ORDER_FULFILLMENT));
        all
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let envelope = input.envelope();
        let event_type = match &input.input {
            Input::Event { event, .. } => {
                short_name(schemas::EventPayload::record_name(event)).to_owned()
            }
            Input::SagaStep(_) => "OrderFulfillmentStep".to_owned(),
        };
        // An event never changes: any constant timestamp would do; the
        // version keeps a replay byte-identical.
        Ok(vec![upsert(
            EVENTS_BY_AGGREGATE,
            envelope.version,
            row([
                ("aggregate_type", text(&envelope.aggregate_type)),
                ("aggregate_id", text(&envelope.aggregate_id)),
                ("version", Value::BigInt(envelope.version)),
                ("event_id", text(&envelope.event_id)),
                ("event_type", text(event_type)),
                ("occurred_at", Value::Timestamp(envelope.occurred_at)),
                ("actor", text(&envelope.actor)),
                ("command_id", text(&envelope.command_id)),
                ("correlation_id", text(&envelope.correlation_id)),
                ("causation_id", text(&envelope.causation_id)),
                ("topic", text(&input.topic)),
                ("partition", Value::Int(input.partition)),
                ("offset", Value::BigInt(input.offset)),
                ("prev_hash", Value::Blob(envelope.prev_hash.clone())),
                ("hash", Value::Blob(envelope.hash.clone())),
            ]),
        )])
    }
}
