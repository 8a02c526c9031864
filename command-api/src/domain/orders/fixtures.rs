//! Test data shared by the orders tests.

use schemas::orders::{
    CartLineAdded, OrderLine, OrderPlaced, OrderTotals, OrdersCommand, OrdersEvent, PlaceOrder,
};
use schemas::PostalAddress;

pub(super) fn address() -> PostalAddress {
    PostalAddress {
        recipient: "Ada Lovelace".into(),
        line1: "Hauptstr. 1".into(),
        line2: None,
        city: "Berlin".into(),
        region: None,
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

/// `CartLineAdded` in EUR.
pub(super) fn added(sku: &str, quantity: i32, unit_price_minor: i64) -> OrdersEvent {
    OrdersEvent::CartLineAdded(CartLineAdded {
        sku: sku.into(),
        quantity,
        unit_price_minor,
        currency: "EUR".into(),
    })
}

/// An order line in EUR.
pub(super) fn line(line_no: i32, sku: &str, quantity: i32, unit_price_minor: i64) -> OrderLine {
    OrderLine {
        line_no,
        sku: sku.into(),
        quantity,
        unit_price_minor,
        currency: "EUR".into(),
    }
}

/// Two mugs at 12.99 and a cup at 5.00: 30.98 plus 4.99 shipping.
pub(super) fn lines() -> Vec<OrderLine> {
    vec![line(1, "MUG-1", 2, 1299), line(2, "CUP-1", 1, 500)]
}

pub(super) fn totals() -> OrderTotals {
    OrderTotals {
        subtotal_minor: 3098,
        shipping_minor: 499,
        tax_minor: 0,
        total_minor: 3597,
        currency: "EUR".into(),
    }
}

/// Customer `c-1` places [`lines`] for [`totals`].
pub(super) fn place() -> OrdersCommand {
    OrdersCommand::PlaceOrder(place_order())
}

pub(super) fn place_order() -> PlaceOrder {
    PlaceOrder {
        customer_id: "c-1".into(),
        lines: lines(),
        shipping_address: address(),
        totals: totals(),
        payment_token: Some("tok_visa_4242".into()),
    }
}

/// What [`place`] records.
pub(super) fn placed() -> OrdersEvent {
    OrdersEvent::OrderPlaced(OrderPlaced {
        customer_id: "c-1".into(),
        lines: lines(),
        shipping_address: address(),
        totals: totals(),
        payment_token: Some("tok_visa_4242".into()),
    })
}
