//! The orders projection: order by id (with payment and shipment status),
//! orders by customer newest first, and the order timeline.
//!
//! Every input is keyed by the order id (payments and shipments use it as
//! their id), so one partition of the input topics holds everything about
//! an order. Cells have one source aggregate each and are stamped with its
//! version: the order's cells with the Order's, `payment_*` with the
//! Payment's, `shipment_*` with the Shipment's.

use platform::readstore::{column, ColumnType as T, Mutation, Order, TableDef, Value};
use schemas::deliveries::DeliveriesEvent;
use schemas::orders::OrdersEvent;
use schemas::payments::PaymentsEvent;
use schemas::{AnyEvent, Context};

use crate::projection::{
    opt_text, row, short_name, text, upsert, Input, Projected, Projection, ProjectionError,
};

pub const ORDERS_BY_ID: TableDef = TableDef {
    name: "orders_by_id",
    partition_key: &[column("order_id", T::Text)],
    clustering: &[],
    columns: &[
        column("customer_id", T::Text),
        column("status", T::Text),
        column("placed_at", T::Timestamp),
        column("status_at", T::Timestamp),
        column("status_reason", T::Text),
        column("total_minor", T::BigInt),
        column("currency", T::Text),
        column("lines_json", T::Text),
        column("shipping_address_json", T::Text),
        column("order_version", T::BigInt),
        column("payment_status", T::Text),
        column("payment_version", T::BigInt),
        column("shipment_status", T::Text),
        column("courier_id", T::Text),
        column("shipment_version", T::BigInt),
    ],
};

/// Placement facts only (they never change); the status is read from
/// [`ORDERS_BY_ID`] at query time — keeping it here would need the
/// placement time on every later event, or a read-modify-write.
pub const ORDERS_BY_CUSTOMER: TableDef = TableDef {
    name: "orders_by_customer",
    partition_key: &[column("customer_id", T::Text)],
    clustering: &[
        (column("placed_at", T::Timestamp), Order::Desc),
        (column("order_id", T::Text), Order::Asc),
    ],
    columns: &[
        column("total_minor", T::BigInt),
        column("currency", T::Text),
        column("line_count", T::Int),
    ],
};

/// Every status change of an order, its payment and its shipment, with
/// when, who and why.
pub const ORDER_TIMELINE: TableDef = TableDef {
    name: "order_timeline",
    partition_key: &[column("order_id", T::Text)],
    clustering: &[
        (column("occurred_at", T::Timestamp), Order::Asc),
        (column("event_id", T::Text), Order::Asc),
    ],
    columns: &[
        column("event_type", T::Text),
        column("aggregate_type", T::Text),
        column("version", T::BigInt),
        column("actor", T::Text),
        column("correlation_id", T::Text),
        column("causation_id", T::Text),
        column("detail", T::Text),
    ],
};

const TABLES: &[TableDef] = &[ORDERS_BY_ID, ORDERS_BY_CUSTOMER, ORDER_TIMELINE];

#[derive(Debug, Default, Clone, Copy)]
pub struct OrdersProjection;

fn json(value: &impl serde::Serialize) -> Result<Value, ProjectionError> {
    serde_json::to_string(value)
        .map(Value::Text)
        .map_err(|e| ProjectionError(e.to_string()))
}

impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![
            topics.events(Context::Orders),
            topics.events(Context::Payments),
            topics.events(Context::Deliveries),
        ]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        let id = envelope.aggregate_id.clone();
        let v = envelope.version;
        let at = envelope.occurred_at;
        let mut out = Vec::new();
        let status = |status: &str, reason: Option<&str>| {
            upsert(
                ORDERS_BY_ID,
                v,
                row([
                    ("order_id", text(&id)),
                    ("status", text(status)),
                    ("status_at", Value::Timestamp(at)),
                    ("status_reason", opt_text(reason)),
                    ("order_version", Value::BigInt(v)),
                ]),
            )
        };
        let detail: Option<String> = match event {
            AnyEvent::Orders(e) => match e {
                // Cart events are keyed by the customer: not an order's.
                OrdersEvent::CartLineAdded(_)
                | OrdersEvent::CartLineQuantityChanged(_)
                | OrdersEvent::CartLineRemoved(_)
                | OrdersEvent::CartCheckedOut(_) => return Ok(Vec::new()),
                OrdersEvent::OrderPlaced(p) => {
                    let mut cells = row([
                        ("order_id", text(&id)),
                        ("customer_id", text(&p.customer_id)),
                        ("status", text("PLACED")),
                        ("placed_at", Value::Timestamp(at)),
                        ("status_at", Value::Timestamp(at)),
                        ("total_minor", Value::BigInt(p.totals.total_minor)),
                        ("currency", text(&p.totals.currency)),
                        ("order_version", Value::BigInt(v)),
                    ]);
                    cells.insert("lines_json".into(), json(&p.lines)?);
                    cells.insert("shipping_address_json".into(), json(&p.shipping_address)?);
                    out.push(upsert(ORDERS_BY_ID, v, cells));
                    out.push(upsert(
                        ORDERS_BY_CUSTOMER,
                        v,
                        row([
                            ("customer_id", text(&p.customer_id)),
                            ("placed_at", Value::Timestamp(at)),
                            ("order_id", text(&id)),
                            ("total_minor", Value::BigInt(p.totals.total_minor)),
                            ("currency", text(&p.totals.currency)),
                            (
                                "line_count",
                                Value::Int(i32::try_from(p.lines.len()).unwrap_or(i32::MAX)),
                            ),
                        ]),
                    ));
                    Some(format!(
                        "{} lines, total {} {}",
                        p.lines.len(),
                        p.totals.total_minor,
                        p.totals.currency
                    ))
                }
                OrdersEvent::OrderConfirmed(_) => {
                    out.push(status("CONFIRMED", None));
                    None
                }
                OrdersEvent::OrderShipped(_) => {
                    out.push(status("SHIPPED", None));
                    None
                }
                OrdersEvent::OrderCompleted(_) => {
                    out.push(status("COMPLETED", None));
                    None
                }
                OrdersEvent::OrderCancellationRequested(c) => {
                    // Not a status of its own: the order stays where it is
                    // until the saga cancels it (or refuses, after pickup).
                    // The version still moves, so a read-your-writes wait
                    // on the request's position token is answered.
                    out.push(upsert(
                        ORDERS_BY_ID,
                        v,
                        row([("order_id", text(&id)), ("order_version", Value::BigInt(v))]),
                    ));
                    c.reason.clone()
                }
                OrdersEvent::OrderCancelled(c) => {
                    out.push(status("CANCELLED", Some(&c.reason)));
                    Some(c.reason.clone())
                }
                OrdersEvent::OrderRejected(r) => {
                    out.push(status("REJECTED", Some(&r.reason)));
                    Some(r.reason.clone())
                }
            },
            AnyEvent::Payments(e) => {
                let (payment_status, detail) = match e {
                    PaymentsEvent::PaymentAuthorizationPending(_) => ("PENDING", None),
                    PaymentsEvent::PaymentAuthorized(_) => ("AUTHORIZED", None),
                    PaymentsEvent::PaymentDeclined(d) => ("DECLINED", Some(d.decline_code.clone())),
                    PaymentsEvent::PaymentAuthorizationTimedOut(_) => ("TIMED_OUT", None),
                    PaymentsEvent::PaymentCaptured(c) => (
                        "CAPTURED",
                        Some(format!("{} {}", c.amount_minor, c.currency)),
                    ),
                    PaymentsEvent::PaymentVoided(vd) => ("VOIDED", vd.reason.clone()),
                    PaymentsEvent::PaymentRefunded(r) => (
                        "REFUNDED",
                        Some(format!(
                            "{} {} refunded in total",
                            r.refunded_total_minor, r.currency
                        )),
                    ),
                };
                out.push(upsert(
                    ORDERS_BY_ID,
                    v,
                    row([
                        ("order_id", text(&id)),
                        ("payment_status", text(payment_status)),
                        ("payment_version", Value::BigInt(v)),
                    ]),
                ));
                detail
            }
            AnyEvent::Deliveries(e) => {
                let (shipment_status, courier, detail) = match e {
                    DeliveriesEvent::ShipmentScheduled(_) => ("SCHEDULED", None, None),
                    DeliveriesEvent::CourierAssigned(c) => {
                        ("ASSIGNED", Some(c.courier_id.clone()), None)
                    }
                    DeliveriesEvent::ShipmentPickedUp(p) => {
                        ("PICKED_UP", Some(p.courier_id.clone()), None)
                    }
                    DeliveriesEvent::ShipmentDelivered(d) => (
                        "DELIVERED",
                        Some(d.courier_id.clone()),
                        d.received_by.clone(),
                    ),
                    DeliveriesEvent::ShipmentFailed(f) => {
                        ("FAILED", f.courier_id.clone(), Some(f.reason.clone()))
                    }
                    DeliveriesEvent::ShipmentCancelled(c) => {
                        ("CANCELLED", None, Some(c.reason.clone()))
                    }
                };
                let mut cells = row([
                    ("order_id", text(&id)),
                    ("shipment_status", text(shipment_status)),
                    ("shipment_version", Value::BigInt(v)),
                ]);
                if let Some(courier) = courier {
                    cells.insert("courier_id".into(), text(courier));
                }
                out.push(upsert(ORDERS_BY_ID, v, cells));
                detail
            }
            _ => return Ok(Vec::new()),
        };
        out.push(upsert(
            ORDER_TIMELINE,
            v,
            row([
                ("order_id", text(&id)),
                ("occurred_at", Value::Timestamp(at)),
                ("event_id", text(&envelope.event_id)),
                (
                    "event_type",
                    text(short_name(schemas::EventPayload::record_name(event))),
                ),
                ("aggregate_type", text(&envelope.aggregate_type)),
                ("version", Value::BigInt(v)),
                ("actor", text(&envelope.actor)),
                ("correlation_id", text(&envelope.correlation_id)),
                ("causation_id", text(&envelope.causation_id)),
                ("detail", opt_text(detail)),
            ]),
        ));
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "test code")]
mod tests {
    use platform::readstore::MutationKind;
    use schemas::orders::{OrderCancelled, OrderLine, OrderPlaced, OrderTotals};
    use schemas::payments::PaymentCaptured;
    use schemas::{EventEnvelope, PostalAddress};

    use super::*;

    fn envelope(aggregate_type: &str, version: i64, at: i64) -> EventEnvelope {
        EventEnvelope {
            event_id: format!("e-{aggregate_type}-{version}"),
            aggregate_type: aggregate_type.into(),
            aggregate_id: "o-1".into(),
            version,
            occurred_at: at,
            command_id: "c".into(),
            correlation_id: "corr".into(),
            causation_id: "cause".into(),
            actor: "customer:c-1".into(),
            prev_hash: vec![],
            hash: vec![],
        }
    }

    fn given(envelope: EventEnvelope, event: AnyEvent) -> Vec<Mutation> {
        OrdersProjection
            .project(&Projected {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                input: Input::Event { envelope, event },
            })
            .unwrap()
    }

    fn cells(m: &Mutation) -> &platform::readstore::Row {
        match &m.kind {
            MutationKind::Upsert(r) | MutationKind::Delete(r) => r,
        }
    }

    fn placed() -> AnyEvent {
        AnyEvent::Orders(OrdersEvent::OrderPlaced(OrderPlaced {
            customer_id: "c-1".into(),
            lines: vec![OrderLine {
                line_no: 1,
                sku: "MUG-1".into(),
                quantity: 2,
                unit_price_minor: 1299,
                currency: "EUR".into(),
            }],
            shipping_address: PostalAddress {
                recipient: "A".into(),
                line1: "1 St".into(),
                line2: None,
                city: "B".into(),
                region: None,
                postal_code: "1".into(),
                country: "DE".into(),
            },
            totals: OrderTotals {
                subtotal_minor: 2598,
                shipping_minor: 499,
                tax_minor: 0,
                total_minor: 3097,
                currency: "EUR".into(),
            },
            payment_token: Some("tok_sim_4242".into()),
        }))
    }

    #[test]
    fn a_placed_order_writes_its_row_its_customer_row_and_a_timeline_entry() {
        let m = given(envelope("Order", 1, 1_000), placed());
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].table, ORDERS_BY_ID);
        assert_eq!(m[0].timestamp, 1);
        let order = cells(&m[0]);
        assert_eq!(order["status"], text("PLACED"));
        assert_eq!(order["total_minor"], Value::BigInt(3097));
        assert_eq!(order["customer_id"], text("c-1"));
        assert!(matches!(&order["lines_json"], Value::Text(j) if j.contains("MUG-1")));
        assert_eq!(m[1].table, ORDERS_BY_CUSTOMER);
        assert_eq!(cells(&m[1])["placed_at"], Value::Timestamp(1_000));
        assert_eq!(m[2].table, ORDER_TIMELINE);
        assert_eq!(cells(&m[2])["event_type"], text("OrderPlaced"));
        assert_eq!(cells(&m[2])["actor"], text("customer:c-1"));
    }

    #[test]
    fn each_source_writes_its_own_cells_stamped_with_its_own_version() {
        let m = given(
            envelope("Payment", 2, 2_000),
            AnyEvent::Payments(PaymentsEvent::PaymentCaptured(PaymentCaptured {
                order_id: "o-1".into(),
                amount_minor: 3097,
                currency: "EUR".into(),
                gateway_reference: "sim_1".into(),
            })),
        );
        let order = cells(&m[0]);
        assert_eq!(m[0].timestamp, 2);
        assert_eq!(order["payment_status"], text("CAPTURED"));
        assert!(
            !order.contains_key("status"),
            "a payment never writes the order's status"
        );
        assert_eq!(cells(&m[1])["detail"], text("3097 EUR"));
    }

    #[test]
    fn a_cancellation_records_its_reason() {
        let m = given(
            envelope("Order", 4, 3_000),
            AnyEvent::Orders(OrdersEvent::OrderCancelled(OrderCancelled {
                reason: "payment declined: card_declined".into(),
            })),
        );
        assert_eq!(cells(&m[0])["status"], text("CANCELLED"));
        assert_eq!(
            cells(&m[0])["status_reason"],
            text("payment declined: card_declined")
        );
        assert_eq!(m[0].timestamp, 4);
    }

    #[test]
    fn cart_events_are_not_orders() {
        let m = given(
            envelope("Cart", 1, 1),
            AnyEvent::Orders(OrdersEvent::CartLineRemoved(
                schemas::orders::CartLineRemoved { sku: "X".into() },
            )),
        );
        assert!(m.is_empty());
    }

    #[test]
    fn the_same_event_always_writes_the_same_cells() {
        assert_eq!(
            given(envelope("Order", 1, 5), placed()),
            given(envelope("Order", 1, 5), placed())
        );
    }
}
