//! Stock levels per SKU: on hand, available, reserved, the low-stock
//! threshold. Every inventory event that changes a level carries both
//! resulting levels (`on_hand_after`, `available_after`), so each cell is
//! set from the event alone, stamped with the StockItem's version. The
//! low-stock flag is `available <= threshold`, computed when read (the two
//! come from different events).

use platform::readstore::{column, ColumnType as T, Mutation, TableDef};
use schemas::Context;

use crate::projection::{Projected, Projection, ProjectionError};

pub const STOCK_LEVELS: TableDef = TableDef {
    name: "stock_levels",
    partition_key: &[column("sku", T::Text)],
    clustering: &[],
    columns: &[
        column("on_hand", T::Int),
        column("available", T::Int),
        column("reserved", T::Int),
        column("low_stock_threshold", T::Int),
        column("low_stock_detected_at", T::Timestamp),
        column("updated_at", T::Timestamp),
        column("stock_version", T::BigInt),
    ],
};

const TABLES: &[TableDef] = &[STOCK_LEVELS];

#[derive(Debug, Default, Clone, Copy)]
pub struct StockProjection;

impl Projection for StockProjection {
    fn name(&self) -> &'static str {
        "stock"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Inventory)]
    }

    fn project(&self, _input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        Ok(Vec::new())
    }
}
