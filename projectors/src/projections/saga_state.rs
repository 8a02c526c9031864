//! Saga state by order, for ops: which stage, since when, why, and the
//! deadline it waits on.

use platform::readstore::{column, ColumnType as T, Mutation, TableDef, Value};
use schemas::FulfillmentStage;

use crate::projection::{
    opt_text, row, text, upsert, Input, Projected, Projection, ProjectionError,
};

pub const SAGA_STATE_BY_ORDER: TableDef = TableDef {
    name: "saga_state_by_order",
    partition_key: &[column("order_id", T::Text)],
    clustering: &[],
    columns: &[
        column("stage", T::Text),
        column("since", T::Timestamp),
        column("step", T::BigInt),
        column("cause", T::Text),
        column("deadline_at", T::Timestamp),
        column("note", T::Text),
        column("terminal", T::Boolean),
    ],
};

const TABLES: &[TableDef] = &[SAGA_STATE_BY_ORDER];

#[derive(Debug, Default, Clone, Copy)]
pub struct SagaStateProjection;

fn stage_name(stage: FulfillmentStage) -> &'static str {
    match stage {
        FulfillmentStage::ReservingStock => "RESERVING_STOCK",
        FulfillmentStage::AuthorizingPayment => "AUTHORIZING_PAYMENT",
        FulfillmentStage::SchedulingShipment => "SCHEDULING_SHIPMENT",
        FulfillmentStage::AwaitingPickup => "AWAITING_PICKUP",
        FulfillmentStage::InTransit => "IN_TRANSIT",
        FulfillmentStage::CapturingPayment => "CAPTURING_PAYMENT",
        FulfillmentStage::Completing => "COMPLETING",
        FulfillmentStage::Compensating => "COMPENSATING",
        FulfillmentStage::Completed => "COMPLETED",
        FulfillmentStage::Rejected => "REJECTED",
        FulfillmentStage::Cancelled => "CANCELLED",
    }
}

impl Projection for SagaStateProjection {
    fn name(&self) -> &'static str {
        "saga-state"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.saga_events(schemas::ORDER_FULFILLMENT)]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::SagaStep(step) = &input.input else {
            return Ok(Vec::new());
        };
        let v = step.envelope.version;
        let terminal = matches!(
            step.stage,
            FulfillmentStage::Completed | FulfillmentStage::Rejected | FulfillmentStage::Cancelled
        );
        Ok(vec![upsert(
            SAGA_STATE_BY_ORDER,
            v,
            row([
                ("order_id", text(&step.envelope.aggregate_id)),
                ("stage", text(stage_name(step.stage))),
                ("since", Value::Timestamp(step.envelope.occurred_at)),
                ("step", Value::BigInt(v)),
                ("cause", text(&step.cause)),
                (
                    "deadline_at",
                    step.deadline_at.map_or(Value::Null, Value::Timestamp),
                ),
                ("note", opt_text(step.note.clone())),
                ("terminal", Value::Boolean(terminal)),
            ]),
        )])
    }
}
