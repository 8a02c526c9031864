//! `Cart`: what a customer is about to buy. One per customer (the aggregate
//! id is the customer id), it lives as long as the customer: lines come and
//! go, a checkout turns them into an order and leaves the cart empty for
//! the next one.
//!
//! A line keeps the unit price the customer saw when they added it: that
//! is the price they agreed to, and checkout copies it onto the order
//! (see [`crate::domain::orders::Order`] for why the order keeps it).

use schemas::orders::{
    AddCartLine, CartCheckedOut, CartLineAdded, CartLineQuantityChanged, CartLineRemoved,
    ChangeCartLineQuantity, CheckoutCart, OrderLine, OrdersCommand, OrdersEvent, RemoveCartLine,
};
use serde::{Deserialize, Serialize};

use super::pricing::{self, PricingError};
use super::{check_shipping_address, MAX_LINES};
use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::actor::Actor;
use crate::domain::validate::{self, MAX_TEXT, MAX_URL};

/// One SKU in the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub sku: String,
    pub quantity: i32,
    /// The unit price the customer saw when adding the line, minor units.
    pub unit_price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// In the order they were added: checkout numbers them 1..n that way.
    pub lines: Vec<CartLine>,
    /// The order the last checkout created: a retried checkout (the answer
    /// to the first was lost) finds the cart empty, and must be told it
    /// succeeded, not that the cart is empty.
    pub last_order_id: Option<String>,
}

/// Why a cart command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    #[error("a customer may only change their own cart")]
    NotYourCart,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("a cart has at most {MAX_LINES} lines")]
    TooManyLines,
    #[error("the cart has no line for `{0}`")]
    NoSuchLine(String),
    #[error("the cart is empty")]
    CartEmpty,
    /// Mixed currencies, or amounts too large to add up.
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error("`{0}` is not a cart command")]
    WrongAggregate(&'static str),
}

impl DomainError for CartError {
    fn code(&self) -> &'static str {
        match self {
            CartError::NotYourCart => "not-your-cart",
            CartError::InvalidField { .. } => "invalid-field",
            CartError::TooManyLines => "too-many-lines",
            CartError::NoSuchLine(_) => "no-such-line",
            CartError::CartEmpty => "cart-empty",
            CartError::Pricing(e) => e.code(),
            CartError::WrongAggregate(_) => "wrong-aggregate",
        }
    }
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), CartError> {
    result.map_err(|reason| CartError::InvalidField { field, reason })
}

impl Cart {
    fn line(&self, sku: &str) -> Option<&CartLine> {
        self.lines.iter().find(|l| l.sku == sku)
    }

    fn existing_line(&self, sku: &str) -> Result<&CartLine, CartError> {
        self.line(sku)
            .ok_or_else(|| CartError::NoSuchLine(sku.to_owned()))
    }

    /// The lines as an order will carry them, numbered 1..n in cart order.
    fn order_lines(&self) -> Result<Vec<OrderLine>, CartError> {
        self.lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(OrderLine {
                    line_no: i32::try_from(i + 1).map_err(|_| CartError::TooManyLines)?,
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    unit_price_minor: l.unit_price_minor,
                    currency: l.currency.clone(),
                })
            })
            .collect()
    }

    /// Refuses a change after which the cart could not be priced (its total
    /// would not fit in an `i64`). Refused now, while the customer can still
    /// react, rather than at checkout, where the cart would be a trap that
    /// nothing but removing lines gets out of.
    fn priceable_after(&self, event: &OrdersEvent) -> Result<(), CartError> {
        let mut next = self.clone();
        next.evolve(event);
        pricing::totals(&next.order_lines()?)?;
        Ok(())
    }

    /// Adding a SKU that is already in the cart adds to its line (one line
    /// per SKU), which keeps the price it was first added at: the quantity
    /// change the event records carries no price.
    fn add_line(&self, c: &AddCartLine) -> Result<Vec<OrdersEvent>, CartError> {
        check("sku", validate::text(&c.sku, MAX_TEXT))?;
        check("quantity", validate::quantity(c.quantity))?;
        check("unit_price_minor", validate::price(c.unit_price_minor))?;
        check("currency", validate::currency(&c.currency))?;
        // One currency per cart: an order is paid in one.
        if self.lines.first().is_some_and(|l| l.currency != c.currency) {
            return Err(PricingError::MixedCurrencies.into());
        }
        let event = match self.line(&c.sku) {
            Some(line) => {
                let quantity = line.quantity.saturating_add(c.quantity);
                check("quantity", validate::quantity(quantity))?;
                OrdersEvent::from(CartLineQuantityChanged {
                    sku: c.sku.clone(),
                    quantity,
                    previous_quantity: line.quantity,
                })
            }
            None => {
                if self.lines.len() >= MAX_LINES {
                    return Err(CartError::TooManyLines);
                }
                OrdersEvent::from(CartLineAdded {
                    sku: c.sku.clone(),
                    quantity: c.quantity,
                    unit_price_minor: c.unit_price_minor,
                    currency: c.currency.clone(),
                })
            }
        };
        self.priceable_after(&event)?;
        Ok(vec![event])
    }

    fn change_quantity(&self, c: &ChangeCartLineQuantity) -> Result<Vec<OrdersEvent>, CartError> {
        let line = self.existing_line(&c.sku)?;
        check("quantity", validate::quantity(c.quantity))?;
        if c.quantity == line.quantity {
            return Ok(Vec::new()); // nothing changes: nothing to record
        }
        let event = OrdersEvent::from(CartLineQuantityChanged {
            sku: c.sku.clone(),
            quantity: c.quantity,
            previous_quantity: line.quantity,
        });
        self.priceable_after(&event)?;
        Ok(vec![event])
    }

    fn remove_line(&self, c: &RemoveCartLine) -> Result<Vec<OrdersEvent>, CartError> {
        self.existing_line(&c.sku)?;
        Ok(vec![OrdersEvent::from(CartLineRemoved {
            sku: c.sku.clone(),
        })])
    }

    /// The cart's lines and totals become an order's: the event carries
    /// everything `PlaceOrder` needs, so the order is placed from this fact
    /// alone, with the prices the customer saw.
    fn checkout(&self, c: &CheckoutCart) -> Result<Vec<OrdersEvent>, CartError> {
        if self.last_order_id.as_deref() == Some(c.order_id.as_str()) {
            return Ok(Vec::new()); // a retry: that order was already created
        }
        if self.lines.is_empty() {
            return Err(CartError::CartEmpty);
        }
        check("order_id", validate::text(&c.order_id, MAX_TEXT))?;
        check_shipping_address(&c.shipping_address)
            .map_err(|(field, reason)| CartError::InvalidField { field, reason })?;
        if let Some(token) = &c.payment_token {
            check("payment_token", validate::text(token, MAX_URL))?;
        }
        let lines = self.order_lines()?;
        let totals = pricing::totals(&lines)?;
        Ok(vec![OrdersEvent::from(CartCheckedOut {
            order_id: c.order_id.clone(),
            lines,
            shipping_address: c.shipping_address.clone(),
            totals,
            payment_token: c.payment_token.clone(),
        })])
    }
}

impl Aggregate for Cart {
    const TYPE: &'static str = "Cart";
    type Facts = ();
    type Command = OrdersCommand;
    type Event = OrdersEvent;
    type Error = CartError;

    /// Only the cart's owner may change it (the cart id is the customer
    /// id), besides operators and QuickStore itself; the HTTP layer checks
    /// roles, but only here is the owner known for certain.
    fn decide(
        &self,
        command: &OrdersCommand,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, CartError> {
        if command.aggregate_type() != Self::TYPE {
            return Err(CartError::WrongAggregate(command.name()));
        }
        if Actor::parse(&context.actor).is_customer_other_than(&context.aggregate_id) {
            return Err(CartError::NotYourCart);
        }
        match command {
            OrdersCommand::AddCartLine(c) => self.add_line(c),
            OrdersCommand::ChangeCartLineQuantity(c) => self.change_quantity(c),
            OrdersCommand::RemoveCartLine(c) => self.remove_line(c),
            OrdersCommand::CheckoutCart(c) => self.checkout(c),
            other => Err(CartError::WrongAggregate(other.name())),
        }
    }

    /// Order events are not the cart's and change nothing (the sum type
    /// never hands them to a cart).
    fn evolve(&mut self, event: &OrdersEvent) {
        match event {
            OrdersEvent::CartLineAdded(e) => self.lines.push(CartLine {
                sku: e.sku.clone(),
                quantity: e.quantity,
                unit_price_minor: e.unit_price_minor,
                currency: e.currency.clone(),
            }),
            OrdersEvent::CartLineQuantityChanged(e) => {
                if let Some(line) = self.lines.iter_mut().find(|l| l.sku == e.sku) {
                    line.quantity = e.quantity;
                }
            }
            OrdersEvent::CartLineRemoved(e) => self.lines.retain(|l| l.sku != e.sku),
            OrdersEvent::CartCheckedOut(e) => {
                self.lines.clear();
                self.last_order_id = Some(e.order_id.clone());
            }
            OrdersEvent::OrderPlaced(_)
            | OrdersEvent::OrderConfirmed(_)
            | OrdersEvent::OrderShipped(_)
            | OrdersEvent::OrderCancellationRequested(_)
            | OrdersEvent::OrderCancelled(_)
            | OrdersEvent::OrderRejected(_)
            | OrdersEvent::OrderCompleted(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
