//! Shipments: by id (status, courier, destination, items) and by courier
//! (what a courier sees). A reassignment deletes the row under the previous
//! courier (`CourierAssigned.previous_courier_id`); the status is read from
//! [`SHIPMENTS_BY_ID`], since later events do not all name the courier.
//!
//! Every input is a `Shipment` event, every row written with that
//! Shipment's version.

use platform::readstore::{column, ColumnType as T, Mutation, Order, Row, TableDef, Value};
use schemas::deliveries::DeliveriesEvent;
use schemas::{AnyEvent, Context};

use super::cells::{delete, json};
use crate::projection::{
    opt_text, row, text, upsert, Input, Projected, Projection, ProjectionError,
};

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

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        // Only deliveries events are on its topic.
        let AnyEvent::Deliveries(event) = event else {
            return Ok(Vec::new());
        };
        let id = &envelope.aggregate_id;
        let v = envelope.version;
        let at = envelope.occurred_at;
        let mut out = Vec::new();
        let (status, reason, mut cells): (&str, Option<&str>, Row) = match event {
            DeliveriesEvent::ShipmentScheduled(e) => {
                let mut cells = row([
                    ("order_id", text(&e.order_id)),
                    ("scheduled_at", Value::Timestamp(at)),
                ]);
                cells.insert("destination_json".into(), json(&e.destination)?);
                cells.insert("items_json".into(), json(&e.items)?);
                ("SCHEDULED", None, cells)
            }
            DeliveriesEvent::CourierAssigned(e) => {
                // The event does not name the order: the shipment's id is
                // its order's id (the fulfillment saga schedules the
                // Shipment under the order id, as it authorizes the Payment).
                out.push(upsert(
                    SHIPMENTS_BY_COURIER,
                    v,
                    row([
                        ("courier_id", text(&e.courier_id)),
                        ("shipment_id", text(id)),
                        ("order_id", text(id)),
                        ("assigned_at", Value::Timestamp(at)),
                    ]),
                ));
                if let Some(previous) = &e.previous_courier_id {
                    // Never the row just written: a delete wins a tie.
                    if *previous != e.courier_id {
                        out.push(delete(
                            SHIPMENTS_BY_COURIER,
                            v,
                            row([("courier_id", text(previous)), ("shipment_id", text(id))]),
                        ));
                    }
                }
                ("ASSIGNED", None, row([("courier_id", text(&e.courier_id))]))
            }
            DeliveriesEvent::ShipmentPickedUp(e) => (
                "PICKED_UP",
                None,
                row([("courier_id", text(&e.courier_id))]),
            ),
            DeliveriesEvent::ShipmentDelivered(e) => (
                "DELIVERED",
                None,
                row([
                    ("courier_id", text(&e.courier_id)),
                    ("received_by", opt_text(e.received_by.as_deref())),
                ]),
            ),
            DeliveriesEvent::ShipmentFailed(e) => {
                let mut cells = Row::new();
                if let Some(courier) = &e.courier_id {
                    cells.insert("courier_id".into(), text(courier));
                }
                ("FAILED", Some(e.reason.as_str()), cells)
            }
            DeliveriesEvent::ShipmentCancelled(e) => {
                ("CANCELLED", Some(e.reason.as_str()), Row::new())
            }
        };
        cells.extend(row([
            ("shipment_id", text(id)),
            ("status", text(status)),
            ("status_reason", opt_text(reason)),
            ("status_at", Value::Timestamp(at)),
            ("shipment_version", Value::BigInt(v)),
        ]));
        out.insert(0, upsert(SHIPMENTS_BY_ID, v, cells));
        Ok(out)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
mod tests {
    use schemas::deliveries::{
        CourierAssigned, ShipmentCancelled, ShipmentDelivered, ShipmentFailed, ShipmentItem,
        ShipmentPickedUp, ShipmentScheduled,
    };
    use schemas::PostalAddress;

    use super::*;
    use crate::testkit::{assert_replay_safe, ProjectionTest, Stream, START_MS};

    fn scheduled(order_id: &str) -> DeliveriesEvent {
        DeliveriesEvent::ShipmentScheduled(ShipmentScheduled {
            order_id: order_id.into(),
            destination: PostalAddress {
                recipient: "Ada Lovelace".into(),
                line1: "Hauptstr. 1".into(),
                line2: None,
                city: "Berlin".into(),
                region: None,
                postal_code: "10115".into(),
                country: "DE".into(),
            },
            items: vec![ShipmentItem {
                sku: "MUG-1".into(),
                quantity: 2,
            }],
        })
    }

    fn assigned(courier: &str, previous: Option<&str>) -> DeliveriesEvent {
        DeliveriesEvent::CourierAssigned(CourierAssigned {
            courier_id: courier.into(),
            previous_courier_id: previous.map(Into::into),
        })
    }

    fn picked_up(courier: &str) -> DeliveriesEvent {
        DeliveriesEvent::ShipmentPickedUp(ShipmentPickedUp {
            courier_id: courier.into(),
        })
    }

    fn id(shipment: &str) -> Row {
        row([("shipment_id", text(shipment))])
    }

    fn courier(c: &str) -> Row {
        row([("courier_id", text(c))])
    }

    async fn shipments_of(test: &ProjectionTest<ShipmentsProjection>, c: &str) -> Vec<Value> {
        let rows = test.rows(SHIPMENTS_BY_COURIER, courier(c)).await;
        rows.iter().map(|r| r["shipment_id"].clone()).collect()
    }

    #[tokio::test]
    async fn a_scheduled_shipment_has_its_order_destination_and_items() {
        let mut s = Stream::new("Shipment", "o-1");
        let test = ProjectionTest::given(ShipmentsProjection, [s.next(scheduled("o-1"))]).await;
        let row = test.expect_row(SHIPMENTS_BY_ID, id("o-1")).await;
        assert_eq!(row["order_id"], text("o-1"));
        assert_eq!(row["status"], text("SCHEDULED"));
        assert_eq!(row["scheduled_at"], Value::Timestamp(START_MS + 1_000));
        assert_eq!(row["status_at"], Value::Timestamp(START_MS + 1_000));
        assert_eq!(row["courier_id"], Value::Null);
        assert_eq!(row["shipment_version"], Value::BigInt(1));
        let Value::Text(destination) = &row["destination_json"] else {
            panic!("destination_json: {:?}", row["destination_json"]);
        };
        let destination: serde_json::Value = serde_json::from_str(destination).unwrap();
        assert_eq!(destination["city"], "Berlin");
        assert_eq!(row["items_json"], text(r#"[{"sku":"MUG-1","quantity":2}]"#));
    }

    #[tokio::test]
    async fn a_reassignment_moves_the_shipment_between_couriers() {
        let mut s = Stream::new("Shipment", "o-1");
        let test = ProjectionTest::given(
            ShipmentsProjection,
            [
                s.next(scheduled("o-1")),
                s.next(assigned("courier-a", None)),
                s.next(assigned("courier-b", Some("courier-a"))),
            ],
        )
        .await;
        assert!(shipments_of(&test, "courier-a").await.is_empty());
        let rows = test.rows(SHIPMENTS_BY_COURIER, courier("courier-b")).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["shipment_id"], text("o-1"));
        assert_eq!(rows[0]["order_id"], text("o-1"));
        assert_eq!(rows[0]["assigned_at"], Value::Timestamp(START_MS + 3_000));
        let row = test.expect_row(SHIPMENTS_BY_ID, id("o-1")).await;
        assert_eq!(row["status"], text("ASSIGNED"));
        assert_eq!(row["courier_id"], text("courier-b"));
    }

    #[tokio::test]
    async fn delivery_failure_and_cancellation_record_status_and_reason() {
        let mut delivered = Stream::new("Shipment", "o-1");
        let mut failed = Stream::new("Shipment", "o-2");
        let mut cancelled = Stream::new("Shipment", "o-3");
        let test = ProjectionTest::given(
            ShipmentsProjection,
            [
                delivered.next(scheduled("o-1")),
                delivered.next(assigned("courier-a", None)),
                delivered.next(picked_up("courier-a")),
                delivered.next(DeliveriesEvent::ShipmentDelivered(ShipmentDelivered {
                    courier_id: "courier-a".into(),
                    received_by: Some("neighbour".into()),
                    proof_key: None,
                })),
                failed.next(scheduled("o-2")),
                failed.next(assigned("courier-a", None)),
                failed.next(picked_up("courier-a")),
                failed.next(DeliveriesEvent::ShipmentFailed(ShipmentFailed {
                    reason: "nobody home".into(),
                    courier_id: Some("courier-a".into()),
                })),
                cancelled.next(scheduled("o-3")),
                cancelled.next(DeliveriesEvent::ShipmentCancelled(ShipmentCancelled {
                    reason: "order cancelled".into(),
                })),
            ],
        )
        .await;
        let row = test.expect_row(SHIPMENTS_BY_ID, id("o-1")).await;
        assert_eq!(row["status"], text("DELIVERED"));
        assert_eq!(row["received_by"], text("neighbour"));
        assert_eq!(row["status_reason"], Value::Null);
        assert_eq!(row["status_at"], Value::Timestamp(START_MS + 4_000));
        let row = test.expect_row(SHIPMENTS_BY_ID, id("o-2")).await;
        assert_eq!(row["status"], text("FAILED"));
        assert_eq!(row["status_reason"], text("nobody home"));
        let row = test.expect_row(SHIPMENTS_BY_ID, id("o-3")).await;
        assert_eq!(row["status"], text("CANCELLED"));
        assert_eq!(row["status_reason"], text("order cancelled"));
        assert_eq!(row["order_id"], text("o-3"));
        // The courier keeps the rows; their status is the shipment's.
        assert_eq!(
            shipments_of(&test, "courier-a").await,
            [text("o-1"), text("o-2")]
        );
    }

    #[tokio::test]
    async fn redelivery_and_interleaving_change_nothing() {
        let mut one = Stream::new("Shipment", "o-1");
        let mut two = Stream::new("Shipment", "o-2");
        let inputs = [
            one.next(scheduled("o-1")),
            two.next(scheduled("o-2")),
            one.next(assigned("courier-a", None)),
            two.next(assigned("courier-b", None)),
            one.next(assigned("courier-b", Some("courier-a"))),
            // Back to the first courier: the deleted row comes back.
            one.next(assigned("courier-a", Some("courier-b"))),
            two.next(picked_up("courier-b")),
            one.next(picked_up("courier-a")),
        ];
        assert_replay_safe(ShipmentsProjection, &inputs).await;
        let test = ProjectionTest::given(ShipmentsProjection, inputs).await;
        assert_eq!(shipments_of(&test, "courier-a").await, [text("o-1")]);
        assert_eq!(shipments_of(&test, "courier-b").await, [text("o-2")]);
        let row = test.expect_row(SHIPMENTS_BY_ID, id("o-1")).await;
        assert_eq!(row["status"], text("PICKED_UP"));
        assert_eq!(row["courier_id"], text("courier-a"));
    }
}
