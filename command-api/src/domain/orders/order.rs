//! `Order`: what a customer bought, from placement to delivery (or to its
//! cancellation or rejection). The aggregate id is the order id.
//!
//! ```text
//! New ─PlaceOrder─▶ Placed ─ConfirmOrder─▶ Confirmed ─MarkOrderShipped─▶ Shipped ─CompleteOrder─▶ Completed
//! Placed | Confirmed | Shipped ─CancelOrder─▶ Cancelled
//! Placed | Confirmed ─RejectOrder─▶ Rejected
//! Placed | Confirmed ─RequestOrderCancellation─▶ (same state, cancellation requested)
//! ```
//!
//! The order keeps the lines' unit prices and the totals it was placed
//! with: the catalog may reprice any time, but an order is what the customer
//! agreed to pay, and payment, refunds and invoices must all work from that
//! figure, never from today's price list.
//!
//! Customers place orders and ask to cancel them; everything else is the
//! order-fulfillment saga's (or an operator's) doing, so a customer actor
//! sending it is refused `forbidden`.

use schemas::orders::{
    CancelOrder, CompleteOrder, ConfirmOrder, MarkOrderShipped, OrderCancellationRequested,
    OrderCancelled, OrderCompleted, OrderConfirmed, OrderLine, OrderPlaced, OrderRejected,
    OrderShipped, OrderTotals, OrdersCommand, OrdersEvent, PlaceOrder, RejectOrder,
    RequestOrderCancellation,
};
use schemas::PostalAddress;
use serde::{Deserialize, Serialize};

use super::pricing::{self, PricingError};
use super::{check_shipping_address, MAX_LINES};
use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::actor::{Actor, ActorRole};
use crate::domain::validate::{self, MAX_TEXT, MAX_URL};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Not placed yet: the order does not exist.
    #[default]
    New,
    /// Placed; stock and payment not secured yet.
    Placed,
    /// Stock reserved and payment authorized.
    Confirmed,
    /// The parcel left with the courier.
    Shipped,
    /// Delivered.
    Completed,
    Cancelled,
    /// Could not be fulfilled (out of stock, payment declined…).
    Rejected,
}

impl OrderStatus {
    /// Completed, cancelled or rejected: nothing more will happen to it.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            OrderStatus::Completed | OrderStatus::Cancelled | OrderStatus::Rejected
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub status: OrderStatus,
    /// The customer asked to cancel; the saga decides what that takes.
    pub cancellation_requested: bool,
    pub customer_id: String,
    pub lines: Vec<OrderLine>,
    /// `None` until placed.
    pub totals: Option<OrderTotals>,
    /// `None` until placed.
    pub shipping_address: Option<PostalAddress>,
    pub payment_token: Option<String>,
    /// The payment gateway's id, once confirmed (when it gave one).
    pub payment_id: Option<String>,
    /// The shipment carrying the parcel, once shipped.
    pub shipment_id: Option<String>,
}

/// Why an order command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order was already placed")]
    OrderExists,
    #[error("no such order")]
    NotFound,
    #[error("a customer may only act on their own orders")]
    NotYourOrder,
    #[error("customers may not send this command")]
    Forbidden,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    /// Mixed currencies, or amounts too large to add up.
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error("the totals do not match the lines, which come to {expected:?}")]
    TotalsMismatch { expected: OrderTotals },
    #[error("the order is closed ({0:?})")]
    OrderClosed(OrderStatus),
    #[error("`{command}` does not apply to an order that is {status:?}")]
    InvalidState {
        command: &'static str,
        status: OrderStatus,
    },
    #[error("the order has shipped: it can no longer be cancelled")]
    AlreadyShipped,
    #[error("`{0}` is not an order command")]
    WrongAggregate(&'static str),
}

impl DomainError for OrderError {
    fn code(&self) -> &'static str {
        match self {
            OrderError::OrderExists => "order-exists",
            OrderError::NotFound => "not-found",
            OrderError::NotYourOrder => "not-your-order",
            OrderError::Forbidden => "forbidden",
            OrderError::InvalidField { .. } => "invalid-field",
            OrderError::Pricing(e) => e.code(),
            OrderError::TotalsMismatch { .. } => "totals-mismatch",
            OrderError::OrderClosed(_) => "order-closed",
            OrderError::InvalidState { .. } => "invalid-state",
            OrderError::AlreadyShipped => "already-shipped",
            OrderError::WrongAggregate(_) => "wrong-aggregate",
        }
    }
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), OrderError> {
    result.map_err(|reason| OrderError::InvalidField { field, reason })
}

fn check_optional(
    field: &'static str,
    value: Option<&String>,
    max: usize,
) -> Result<(), OrderError> {
    value.map_or(Ok(()), |v| check(field, validate::text(v, max)))
}

/// Steps driven by the saga or an operator are refused to customers,
/// whatever the order's state (the role alone decides, so the refusal says
/// nothing about whether the order exists). The HTTP layer does not offer
/// them to customers; this keeps the rule true for any other way in.
fn forbid_customers(context: &DecisionContext) -> Result<(), OrderError> {
    if Actor::parse(&context.actor).role == ActorRole::Customer {
        Err(OrderError::Forbidden)
    } else {
        Ok(())
    }
}

fn check_lines(lines: &[OrderLine]) -> Result<(), OrderError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(OrderError::InvalidField {
            field: "lines",
            reason: "must hold 1 to 100 lines",
        });
    }
    for (i, line) in lines.iter().enumerate() {
        if usize::try_from(line.line_no).ok() != Some(i + 1) {
            return Err(OrderError::InvalidField {
                field: "lines.line_no",
                reason: "must number the lines 1, 2, 3… in order",
            });
        }
        check("lines.sku", validate::text(&line.sku, MAX_TEXT))?;
        check("lines.quantity", validate::quantity(line.quantity))?;
        check(
            "lines.unit_price_minor",
            validate::price(line.unit_price_minor),
        )?;
        check("lines.currency", validate::currency(&line.currency))?;
    }
    Ok(())
}

impl Order {
    /// The refusal for a command that does not apply in the current state:
    /// an order that does not exist is `not-found`, a closed one
    /// `order-closed`, an open one in the wrong step `invalid-state`.
    fn not_now(&self, command: &'static str) -> OrderError {
        match self.status {
            OrderStatus::New => OrderError::NotFound,
            status if status.is_closed() => OrderError::OrderClosed(status),
            status => OrderError::InvalidState { command, status },
        }
    }

    /// The lines and totals are checked against each other: the totals are
    /// what the customer was shown and will be charged, so an order whose
    /// lines add up to something else (a stale client, a changed shipping
    /// rule) is refused rather than charged a figure nobody saw.
    fn place(
        &self,
        c: &PlaceOrder,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        if self.status != OrderStatus::New {
            return Err(OrderError::OrderExists);
        }
        if Actor::parse(&context.actor).is_customer_other_than(&c.customer_id) {
            return Err(OrderError::NotYourOrder);
        }
        check("customer_id", validate::text(&c.customer_id, MAX_TEXT))?;
        check_lines(&c.lines)?;
        let expected = pricing::totals(&c.lines)?;
        if expected != c.totals {
            return Err(OrderError::TotalsMismatch { expected });
        }
        check_shipping_address(&c.shipping_address)
            .map_err(|(field, reason)| OrderError::InvalidField { field, reason })?;
        check_optional("payment_token", c.payment_token.as_ref(), MAX_URL)?;
        Ok(vec![OrdersEvent::from(OrderPlaced {
            customer_id: c.customer_id.clone(),
            lines: c.lines.clone(),
            shipping_address: c.shipping_address.clone(),
            totals: c.totals.clone(),
            payment_token: c.payment_token.clone(),
        })])
    }

    fn confirm(
        &self,
        c: &ConfirmOrder,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        forbid_customers(context)?;
        match self.status {
            OrderStatus::Placed => {
                check_optional("payment_id", c.payment_id.as_ref(), MAX_URL)?;
                Ok(vec![OrdersEvent::from(OrderConfirmed {
                    payment_id: c.payment_id.clone(),
                })])
            }
            OrderStatus::Confirmed => Ok(Vec::new()), // already confirmed
            _ => Err(self.not_now("ConfirmOrder")),
        }
    }

    fn ship(
        &self,
        c: &MarkOrderShipped,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        forbid_customers(context)?;
        match self.status {
            OrderStatus::Confirmed => {
                check("shipment_id", validate::text(&c.shipment_id, MAX_TEXT))?;
                Ok(vec![OrdersEvent::from(OrderShipped {
                    shipment_id: c.shipment_id.clone(),
                })])
            }
            OrderStatus::Shipped => Ok(Vec::new()), // already on its way
            _ => Err(self.not_now("MarkOrderShipped")),
        }
    }

    /// A customer may ask to cancel until the parcel leaves: until then the
    /// saga can still release the stock and void the payment authorization,
    /// so the request is recorded and honoured. Once shipped the goods are
    /// out of our hands and only a return can undo the purchase, so the
    /// request is refused `already-shipped` — also once delivered, so that a
    /// late request meets one refusal however far delivery got. Whether
    /// the order is the customer's is checked first: someone else's order
    /// reveals nothing about its state.
    fn request_cancellation(
        &self,
        c: &RequestOrderCancellation,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        if self.status == OrderStatus::New {
            return Err(OrderError::NotFound);
        }
        if Actor::parse(&context.actor).is_customer_other_than(&self.customer_id) {
            return Err(OrderError::NotYourOrder);
        }
        match self.status {
            OrderStatus::Placed | OrderStatus::Confirmed if self.cancellation_requested => {
                Ok(Vec::new()) // asked already: the saga is on it
            }
            OrderStatus::Placed | OrderStatus::Confirmed => {
                check_optional("reason", c.reason.as_ref(), MAX_TEXT)?;
                Ok(vec![OrdersEvent::from(OrderCancellationRequested {
                    reason: c.reason.clone(),
                })])
            }
            OrderStatus::Shipped | OrderStatus::Completed => Err(OrderError::AlreadyShipped),
            _ => Err(self.not_now("RequestOrderCancellation")),
        }
    }

    /// The saga cancels: on the customer's request, or when a shipment is
    /// called off — so a shipped order can still be cancelled this way.
    fn cancel(
        &self,
        c: &CancelOrder,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        forbid_customers(context)?;
        match self.status {
            OrderStatus::Placed | OrderStatus::Confirmed | OrderStatus::Shipped => {
                check("reason", validate::text(&c.reason, MAX_TEXT))?;
                Ok(vec![OrdersEvent::from(OrderCancelled {
                    reason: c.reason.clone(),
                })])
            }
            OrderStatus::Cancelled => Ok(Vec::new()), // already cancelled
            _ => Err(self.not_now("CancelOrder")),
        }
    }

    /// Rejection is for orders that could never be fulfilled, decided
    /// before anything left the warehouse.
    fn reject(
        &self,
        c: &RejectOrder,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        forbid_customers(context)?;
        match self.status {
            OrderStatus::Placed | OrderStatus::Confirmed => {
                check("reason", validate::text(&c.reason, MAX_TEXT))?;
                Ok(vec![OrdersEvent::from(OrderRejected {
                    reason: c.reason.clone(),
                })])
            }
            OrderStatus::Rejected => Ok(Vec::new()), // already rejected
            _ => Err(self.not_now("RejectOrder")),
        }
    }

    fn complete(
        &self,
        c: &CompleteOrder,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        forbid_customers(context)?;
        match self.status {
            OrderStatus::Shipped => {
                check_optional("shipment_id", c.shipment_id.as_ref(), MAX_TEXT)?;
                // What was sold, as placed: sales read models count it
                // from this event alone.
                Ok(vec![OrdersEvent::from(OrderCompleted {
                    shipment_id: c.shipment_id.clone(),
                    lines: self.lines.clone(),
                    totals: self.totals.clone(),
                })])
            }
            OrderStatus::Completed => Ok(Vec::new()), // already complete
            _ => Err(self.not_now("CompleteOrder")),
        }
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Facts = ();
    type Command = OrdersCommand;
    type Event = OrdersEvent;
    type Error = OrderError;

    fn decide(
        &self,
        command: &OrdersCommand,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrderError> {
        match command {
            OrdersCommand::PlaceOrder(c) => self.place(c, context),
            OrdersCommand::ConfirmOrder(c) => self.confirm(c, context),
            OrdersCommand::MarkOrderShipped(c) => self.ship(c, context),
            OrdersCommand::RequestOrderCancellation(c) => self.request_cancellation(c, context),
            OrdersCommand::CancelOrder(c) => self.cancel(c, context),
            OrdersCommand::RejectOrder(c) => self.reject(c, context),
            OrdersCommand::CompleteOrder(c) => self.complete(c, context),
            OrdersCommand::AddCartLine(_)
            | OrdersCommand::ChangeCartLineQuantity(_)
            | OrdersCommand::RemoveCartLine(_)
            | OrdersCommand::CheckoutCart(_) => Err(OrderError::WrongAggregate(command.name())),
        }
    }

    /// Cart events are not the order's and change nothing (the sum type
    /// never hands them to an order).
    fn evolve(&mut self, event: &OrdersEvent) {
        match event {
            OrdersEvent::OrderPlaced(e) => {
                *self = Order {
                    status: OrderStatus::Placed,
                    cancellation_requested: false,
                    customer_id: e.customer_id.clone(),
                    lines: e.lines.clone(),
                    totals: Some(e.totals.clone()),
                    shipping_address: Some(e.shipping_address.clone()),
                    payment_token: e.payment_token.clone(),
                    payment_id: None,
                    shipment_id: None,
                }
            }
            OrdersEvent::OrderConfirmed(e) => {
                self.status = OrderStatus::Confirmed;
                self.payment_id = e.payment_id.clone();
            }
            OrdersEvent::OrderShipped(e) => {
                self.status = OrderStatus::Shipped;
                self.shipment_id = Some(e.shipment_id.clone());
            }
            OrdersEvent::OrderCancellationRequested(_) => self.cancellation_requested = true,
            OrdersEvent::OrderCancelled(_) => self.status = OrderStatus::Cancelled,
            OrdersEvent::OrderRejected(_) => self.status = OrderStatus::Rejected,
            OrdersEvent::OrderCompleted(_) => self.status = OrderStatus::Completed,
            OrdersEvent::CartLineAdded(_)
            | OrdersEvent::CartLineQuantityChanged(_)
            | OrdersEvent::CartLineRemoved(_)
            | OrdersEvent::CartCheckedOut(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
