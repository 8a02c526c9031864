//! Payments by order (the payment id is the order id): status and the
//! amounts authorized, captured and refunded, each cell set by the event
//! that states it (`PaymentRefunded.refunded_total_minor` is the running
//! total, so no sum is kept).

use platform::readstore::{column, ColumnType as T, Mutation, TableDef};
use schemas::Context;

use crate::projection::{Projected, Projection, ProjectionError};

pub const PAYMENTS_BY_ORDER: TableDef = TableDef {
    name: "payments_by_order",
    partition_key: &[column("order_id", T::Text)],
    clustering: &[],
    columns: &[
        column("payment_id", T::Text),
        column("status", T::Text),
        column("currency", T::Text),
        column("amount_minor", T::BigInt),
        column("authorized_minor", T::BigInt),
        column("captured_minor", T::BigInt),
        column("refunded_minor", T::BigInt),
        column("authorization_code", T::Text),
        column("gateway_reference", T::Text),
        column("decline_code", T::Text),
        column("decline_message", T::Text),
        column("status_reason", T::Text),
        column("status_at", T::Timestamp),
        column("payment_version", T::BigInt),
    ],
};

const TABLES: &[TableDef] = &[PAYMENTS_BY_ORDER];

#[derive(Debug, Default, Clone, Copy)]
pub struct PaymentsProjection;

impl Projection for PaymentsProjection {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Payments)]
    }

    fn project(&self, _input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        Ok(Vec::new())
    }
}
