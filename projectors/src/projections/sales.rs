//! Sales by day and by product. A sale is an order line of a completed
//! order (`OrderCompleted` carries the lines and totals): one row per line,
//! summed when read — no counters, so a redelivery or a replay rewrites the
//! same rows. The day is the UTC date of the completion (`YYYY-MM-DD`).

use platform::readstore::{column, ColumnType as T, Mutation, Order, TableDef};
use schemas::Context;

use crate::projection::{Projected, Projection, ProjectionError};

pub const SALES_BY_DAY: TableDef = TableDef {
    name: "sales_by_day",
    partition_key: &[column("day", T::Text)],
    clustering: &[
        (column("order_id", T::Text), Order::Asc),
        (column("line_no", T::Int), Order::Asc),
    ],
    columns: &[
        column("sku", T::Text),
        column("quantity", T::Int),
        column("unit_price_minor", T::BigInt),
        column("amount_minor", T::BigInt),
        column("currency", T::Text),
        column("completed_at", T::Timestamp),
    ],
};

pub const SALES_BY_PRODUCT: TableDef = TableDef {
    name: "sales_by_product",
    partition_key: &[column("sku", T::Text)],
    clustering: &[
        (column("day", T::Text), Order::Desc),
        (column("order_id", T::Text), Order::Asc),
        (column("line_no", T::Int), Order::Asc),
    ],
    columns: &[
        column("quantity", T::Int),
        column("unit_price_minor", T::BigInt),
        column("amount_minor", T::BigInt),
        column("currency", T::Text),
        column("completed_at", T::Timestamp),
    ],
};

const TABLES: &[TableDef] = &[SALES_BY_DAY, SALES_BY_PRODUCT];

#[derive(Debug, Default, Clone, Copy)]
pub struct SalesProjection;

impl Projection for SalesProjection {
    fn name(&self) -> &'static str {
        "sales"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Orders)]
    }

    fn project(&self, _input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        Ok(Vec::new())
    }
}
