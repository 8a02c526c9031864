//! The commands the saga sends, with deterministic ids: re-running a step
//! after a crash produces the same command ids, so a command that did get
//! through is answered from the processor's duplicate window, not decided twice.

use schemas::deliveries::{CancelShipment, DeliveriesCommand, ScheduleShipment, ShipmentItem};
use schemas::inventory::{AdjustStock, CommitStock, InventoryCommand, ReleaseStock, ReserveStock};
use schemas::orders::{
    CancelOrder, CompleteOrder, ConfirmOrder, MarkOrderShipped, OrdersCommand, RejectOrder,
};
use schemas::payments::{
    AuthorizePayment, CapturePayment, ExpirePaymentAuthorization, PaymentsCommand, RefundPayment,
    VoidPayment,
};
use schemas::{AnyCommand, Context};

use super::state::{FulfillmentLine, FulfillmentState};

/// A command addressed to one aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub context: Context,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub command_id: String,
    pub command: AnyCommand,
}

impl Eq for Outgoing {}

/// Reasons are free text of at most 200 characters on the receiving
/// aggregates; a saga reason quoting a courier's reason could be longer.
fn short(reason: &str) -> String {
    reason.chars().take(200).collect()
}

impl Outgoing {
    /// `uuid5(order id / purpose)`: each purpose is sent once per saga.
    pub fn command_id(order_id: &str, purpose: &str) -> String {
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("order-fulfillment/{order_id}/{purpose}").as_bytes(),
        )
        .to_string()
    }

    fn new(
        context: Context,
        aggregate_type: &'static str,
        aggregate_id: &str,
        order_id: &str,
        purpose: &str,
        command: AnyCommand,
    ) -> Self {
        Self {
            context,
            aggregate_type,
            aggregate_id: aggregate_id.to_owned(),
            command_id: Self::command_id(order_id, purpose),
            command,
        }
    }

    pub fn command_type(&self) -> &'static str {
        use schemas::CommandPayload;
        let name = self.command.record_name();
        name.rsplit('.').next().unwrap_or(name)
    }

    pub fn reserve(order_id: &str, line: &FulfillmentLine) -> Self {
        Self::new(
            Context::Inventory,
            "StockItem",
            &line.sku,
            order_id,
            &format!("reserve/{}", line.line_no),
            AnyCommand::Inventory(InventoryCommand::ReserveStock(ReserveStock {
                order_id: order_id.to_owned(),
                line_no: line.line_no,
                quantity: line.quantity,
            })),
        )
    }

    pub fn release(order_id: &str, line: &FulfillmentLine) -> Self {
        Self::new(
            Context::Inventory,
            "StockItem",
            &line.sku,
            order_id,
            &format!("release/{}", line.line_no),
            AnyCommand::Inventory(InventoryCommand::ReleaseStock(ReleaseStock {
                order_id: order_id.to_owned(),
                line_no: line.line_no,
            })),
        )
    }

    pub fn commit(order_id: &str, line: &FulfillmentLine) -> Self {
        Self::new(
            Context::Inventory,
            "StockItem",
            &line.sku,
            order_id,
            &format!("commit/{}", line.line_no),
            AnyCommand::Inventory(InventoryCommand::CommitStock(CommitStock {
                order_id: order_id.to_owned(),
                line_no: line.line_no,
            })),
        )
    }

    /// A failed delivery brings the goods back: committed stock returns
    /// to the shelf as an adjustment that names the order.
    pub fn return_to_stock(order_id: &str, line: &FulfillmentLine) -> Self {
        Self::new(
            Context::Inventory,
            "StockItem",
            &line.sku,
            order_id,
            &format!("return/{}", line.line_no),
            AnyCommand::Inventory(InventoryCommand::AdjustStock(AdjustStock {
                delta: line.quantity,
                reason: "returned".to_owned(),
                note: Some(format!("order {order_id} line {}", line.line_no)),
            })),
        )
    }

    pub fn authorize(order_id: &str, amount_minor: i64, currency: &str, token: &str) -> Self {
        Self::new(
            Context::Payments,
            "Payment",
            order_id,
            order_id,
            "authorize",
            AnyCommand::Payments(PaymentsCommand::AuthorizePayment(AuthorizePayment {
                order_id: order_id.to_owned(),
                amount_minor,
                currency: currency.to_owned(),
                card_token: token.to_owned(),
            })),
        )
    }

    pub fn expire_authorization(order_id: &str, deadline_at: i64) -> Self {
        Self::new(
            Context::Payments,
            "Payment",
            order_id,
            order_id,
            "expire-authorization",
            AnyCommand::Payments(PaymentsCommand::ExpirePaymentAuthorization(
                ExpirePaymentAuthorization { deadline_at },
            )),
        )
    }

    pub fn capture(order_id: &str, amount_minor: i64, currency: &str) -> Self {
        Self::new(
            Context::Payments,
            "Payment",
            order_id,
            order_id,
            "capture",
            AnyCommand::Payments(PaymentsCommand::CapturePayment(CapturePayment {
                amount_minor,
                currency: currency.to_owned(),
            })),
        )
    }

    pub fn void(order_id: &str, reason: &str) -> Self {
        Self::new(
            Context::Payments,
            "Payment",
            order_id,
            order_id,
            "void",
            AnyCommand::Payments(PaymentsCommand::VoidPayment(VoidPayment {
                reason: Some(short(reason)),
            })),
        )
    }

    pub fn refund(order_id: &str, amount_minor: i64, currency: &str, reason: &str) -> Self {
        Self::new(
            Context::Payments,
            "Payment",
            order_id,
            order_id,
            "refund",
            AnyCommand::Payments(PaymentsCommand::RefundPayment(RefundPayment {
                amount_minor,
                currency: currency.to_owned(),
                reason: Some(short(reason)),
            })),
        )
    }

    pub fn confirm_order(order_id: &str) -> Self {
        Self::new(
            Context::Orders,
            "Order",
            order_id,
            order_id,
            "confirm",
            AnyCommand::Orders(OrdersCommand::ConfirmOrder(ConfirmOrder {
                payment_id: Some(order_id.to_owned()),
            })),
        )
    }

    pub fn mark_shipped(order_id: &str) -> Self {
        Self::new(
            Context::Orders,
            "Order",
            order_id,
            order_id,
            "mark-shipped",
            AnyCommand::Orders(OrdersCommand::MarkOrderShipped(MarkOrderShipped {
                shipment_id: order_id.to_owned(),
            })),
        )
    }

    pub fn complete(order_id: &str) -> Self {
        Self::new(
            Context::Orders,
            "Order",
            order_id,
            order_id,
            "complete",
            AnyCommand::Orders(OrdersCommand::CompleteOrder(CompleteOrder {
                shipment_id: Some(order_id.to_owned()),
            })),
        )
    }

    pub fn cancel_order(order_id: &str, reason: &str) -> Self {
        Self::new(
            Context::Orders,
            "Order",
            order_id,
            order_id,
            "cancel",
            AnyCommand::Orders(OrdersCommand::CancelOrder(CancelOrder {
                reason: short(reason),
            })),
        )
    }

    pub fn reject_order(order_id: &str, reason: &str) -> Self {
        Self::new(
            Context::Orders,
            "Order",
            order_id,
            order_id,
            "reject",
            AnyCommand::Orders(OrdersCommand::RejectOrder(RejectOrder {
                reason: short(reason),
            })),
        )
    }

    pub fn schedule_shipment(state: &FulfillmentState) -> Self {
        Self::new(
            Context::Deliveries,
            "Shipment",
            &state.order_id,
            &state.order_id,
            "schedule",
            AnyCommand::Deliveries(DeliveriesCommand::ScheduleShipment(ScheduleShipment {
                order_id: state.order_id.clone(),
                destination: state.shipping_address.clone(),
                items: state
                    .lines
                    .iter()
                    .map(|l| ShipmentItem {
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                    })
                    .collect(),
            })),
        )
    }

    pub fn cancel_shipment(order_id: &str, reason: &str) -> Self {
        Self::new(
            Context::Deliveries,
            "Shipment",
            order_id,
            order_id,
            "cancel-shipment",
            AnyCommand::Deliveries(DeliveriesCommand::CancelShipment(CancelShipment {
                reason: short(reason),
            })),
        )
    }
}
