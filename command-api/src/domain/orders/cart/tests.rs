use schemas::orders::{OrderPlaced, OrderTotals, PlaceOrder};

use super::*;
use crate::domain::orders::fixtures::{added, address, line};
use crate::domain::orders::{Order, FREE_SHIPPING_FROM_MINOR, SHIPPING_MINOR};
use crate::domain::validate::MAX_QUANTITY;
use crate::testkit::AggregateTest;

/// The test harness decides for aggregate id `under-test`: its owner.
const OWNER: &str = "customer:under-test";
const SOMEONE_ELSE: &str = "customer:c-2";

fn add(sku: &str, quantity: i32, unit_price_minor: i64, currency: &str) -> OrdersCommand {
    OrdersCommand::AddCartLine(AddCartLine {
        sku: sku.into(),
        quantity,
        unit_price_minor,
        currency: currency.into(),
    })
}

fn change(sku: &str, quantity: i32) -> OrdersCommand {
    OrdersCommand::ChangeCartLineQuantity(ChangeCartLineQuantity {
        sku: sku.into(),
        quantity,
    })
}

fn changed(sku: &str, quantity: i32, previous_quantity: i32) -> OrdersEvent {
    OrdersEvent::CartLineQuantityChanged(CartLineQuantityChanged {
        sku: sku.into(),
        quantity,
        previous_quantity,
    })
}

fn remove(sku: &str) -> OrdersCommand {
    OrdersCommand::RemoveCartLine(RemoveCartLine { sku: sku.into() })
}

fn checkout(order_id: &str) -> OrdersCommand {
    OrdersCommand::CheckoutCart(CheckoutCart {
        order_id: order_id.into(),
        shipping_address: address(),
        payment_token: Some("tok_visa_4242".into()),
    })
}

fn checked_out(order_id: &str, lines: Vec<OrderLine>, totals: OrderTotals) -> OrdersEvent {
    OrdersEvent::CartCheckedOut(CartCheckedOut {
        order_id: order_id.into(),
        lines,
        shipping_address: address(),
        totals,
        payment_token: Some("tok_visa_4242".into()),
    })
}

fn eur(subtotal: i64, shipping: i64) -> OrderTotals {
    OrderTotals {
        subtotal_minor: subtotal,
        shipping_minor: shipping,
        tax_minor: 0,
        total_minor: subtotal + shipping,
        currency: "EUR".into(),
    }
}

/// A cart holding `n` different SKUs.
fn full_cart(n: usize) -> Vec<OrdersEvent> {
    (0..n).map(|i| added(&format!("SKU-{i}"), 1, 100)).collect()
}

// --- AddCartLine ---

#[test]
fn add_line_records_a_new_line() {
    let state = AggregateTest::<Cart>::given_no_history()
        .when(add("MUG-1", 2, 1299, "EUR"))
        .then_expect_events(vec![added("MUG-1", 2, 1299)]);
    assert_eq!(
        state.lines,
        vec![CartLine {
            sku: "MUG-1".into(),
            quantity: 2,
            unit_price_minor: 1299,
            currency: "EUR".into(),
        }]
    );
    AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(add("CUP-1", 1, 500, "EUR"))
        .then_expect_events(vec![added("CUP-1", 1, 500)]);
}

#[test]
fn adding_a_sku_already_in_the_cart_adds_to_its_line() {
    let state = AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(add("MUG-1", 3, 1299, "EUR"))
        .then_expect_events(vec![changed("MUG-1", 5, 2)]);
    assert_eq!(state.lines.len(), 1);
    assert_eq!(state.lines[0].quantity, 5);
    // The line keeps the price it was first added at.
    let state = AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(add("MUG-1", 1, 999, "EUR"))
        .then_expect_events(vec![changed("MUG-1", 3, 2)]);
    assert_eq!(state.lines[0].unit_price_minor, 1299);
    // Up to the limit exactly, not beyond.
    AggregateTest::<Cart>::given(vec![added("MUG-1", MAX_QUANTITY - 1, 100)])
        .when(add("MUG-1", 1, 100, "EUR"))
        .then_expect_events(vec![changed("MUG-1", MAX_QUANTITY, MAX_QUANTITY - 1)]);
    AggregateTest::<Cart>::given(vec![added("MUG-1", MAX_QUANTITY, 100)])
        .when(add("MUG-1", 1, 100, "EUR"))
        .then_expect_error("invalid-field");
}

#[test]
fn add_line_refuses_invalid_fields_naming_the_field() {
    let context = DecisionContext {
        aggregate_id: "c-1".to_owned(),
        version: 0,
        now_ms: 0,
        actor: "customer:c-1".to_owned(),
        facts: (),
    };
    for (command, field) in [
        (add("", 1, 100, "EUR"), "sku"),
        (add("a\tb", 1, 100, "EUR"), "sku"),
        (add(&"x".repeat(201), 1, 100, "EUR"), "sku"),
        (add("MUG-1", 0, 100, "EUR"), "quantity"),
        (add("MUG-1", -1, 100, "EUR"), "quantity"),
        (add("MUG-1", MAX_QUANTITY + 1, 100, "EUR"), "quantity"),
        (add("MUG-1", 1, -1, "EUR"), "unit_price_minor"),
        (add("MUG-1", 1, i64::MIN, "EUR"), "unit_price_minor"),
        (add("MUG-1", 1, 100, "eur"), "currency"),
        (add("MUG-1", 1, 100, "EURO"), "currency"),
    ] {
        let result = Cart::default().decide(&command, &context);
        assert!(
            matches!(&result, Err(CartError::InvalidField { field: f, .. }) if *f == field),
            "{field}: {result:?}"
        );
        AggregateTest::<Cart>::given_no_history()
            .when(command)
            .then_expect_error("invalid-field");
    }
}

#[test]
fn add_line_accepts_free_items() {
    AggregateTest::<Cart>::given_no_history()
        .when(add("GIFT", 1, 0, "EUR"))
        .then_expect_events(vec![added("GIFT", 1, 0)]);
}

#[test]
fn a_cart_holds_one_currency() {
    AggregateTest::<Cart>::given(vec![added("MUG-1", 1, 100)])
        .when(add("CUP-1", 1, 100, "USD"))
        .then_expect_error("mixed-currencies");
    // Also for the SKU already in the cart (the quantity change would not
    // record the currency).
    AggregateTest::<Cart>::given(vec![added("MUG-1", 1, 100)])
        .when(add("MUG-1", 1, 100, "USD"))
        .then_expect_error("mixed-currencies");
    // An emptied cart takes any currency again.
    AggregateTest::<Cart>::given(vec![
        added("MUG-1", 1, 100),
        OrdersEvent::CartLineRemoved(CartLineRemoved {
            sku: "MUG-1".into(),
        }),
    ])
    .when(add("CUP-1", 1, 100, "USD"))
    .then_expect_events(vec![OrdersEvent::CartLineAdded(CartLineAdded {
        sku: "CUP-1".into(),
        quantity: 1,
        unit_price_minor: 100,
        currency: "USD".into(),
    })]);
}

#[test]
fn a_cart_holds_at_most_100_lines() {
    AggregateTest::<Cart>::given(full_cart(MAX_LINES - 1))
        .when(add("LAST", 1, 100, "EUR"))
        .then_expect_events(vec![added("LAST", 1, 100)]);
    AggregateTest::<Cart>::given(full_cart(MAX_LINES))
        .when(add("ONE-MORE", 1, 100, "EUR"))
        .then_expect_error("too-many-lines");
    // A full cart still takes more of what it holds.
    AggregateTest::<Cart>::given(full_cart(MAX_LINES))
        .when(add("SKU-0", 1, 100, "EUR"))
        .then_expect_events(vec![changed("SKU-0", 2, 1)]);
}

#[test]
fn add_line_refuses_amounts_that_do_not_fit() {
    AggregateTest::<Cart>::given_no_history()
        .when(add("GOLD", MAX_QUANTITY, i64::MAX, "EUR"))
        .then_expect_error("amount-too-large");
    AggregateTest::<Cart>::given(vec![added("GOLD", 1, i64::MAX)])
        .when(add("MUG-1", 1, 1, "EUR"))
        .then_expect_error("amount-too-large");
    AggregateTest::<Cart>::given(vec![added("GOLD", 1, i64::MAX / 2)])
        .when(add("GOLD", 2, i64::MAX / 2, "EUR"))
        .then_expect_error("amount-too-large");
    // The largest amount that fits is accepted.
    AggregateTest::<Cart>::given_no_history()
        .when(add("GOLD", 1, i64::MAX, "EUR"))
        .then_expect_events(vec![added("GOLD", 1, i64::MAX)]);
}

// --- ChangeCartLineQuantity ---

#[test]
fn change_quantity_records_old_and_new() {
    let state = AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(change("MUG-1", 7))
        .then_expect_events(vec![changed("MUG-1", 7, 2)]);
    assert_eq!(state.lines[0].quantity, 7);
    AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(change("MUG-1", 2))
        .then_expect_events(vec![]);
}

#[test]
fn change_quantity_refusals() {
    AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(change("CUP-1", 1))
        .then_expect_error("no-such-line");
    AggregateTest::<Cart>::given_no_history()
        .when(change("MUG-1", 1))
        .then_expect_error("no-such-line");
    for quantity in [0, -3, MAX_QUANTITY + 1, i32::MAX, i32::MIN] {
        AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
            .when(change("MUG-1", quantity))
            .then_expect_error("invalid-field");
    }
    AggregateTest::<Cart>::given(vec![added("GOLD", 1, i64::MAX)])
        .when(change("GOLD", MAX_QUANTITY))
        .then_expect_error("amount-too-large");
}

// --- RemoveCartLine ---

#[test]
fn remove_line() {
    let state = AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299), added("CUP-1", 1, 500)])
        .when(remove("MUG-1"))
        .then_expect_events(vec![OrdersEvent::CartLineRemoved(CartLineRemoved {
            sku: "MUG-1".into(),
        })]);
    assert_eq!(state.lines.len(), 1);
    assert_eq!(state.lines[0].sku, "CUP-1");
    AggregateTest::<Cart>::given(vec![added("CUP-1", 1, 500)])
        .when(remove("MUG-1"))
        .then_expect_error("no-such-line");
    AggregateTest::<Cart>::given_no_history()
        .when(remove("MUG-1"))
        .then_expect_error("no-such-line");
}

// --- CheckoutCart ---

#[test]
fn checkout_turns_the_lines_into_an_order_and_empties_the_cart() {
    let state = AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299), added("CUP-1", 1, 500)])
        .when(checkout("o-1"))
        .then_expect_events(vec![checked_out(
            "o-1",
            vec![line(1, "MUG-1", 2, 1299), line(2, "CUP-1", 1, 500)],
            eur(3098, SHIPPING_MINOR),
        )]);
    assert!(state.lines.is_empty());
    assert_eq!(state.last_order_id.as_deref(), Some("o-1"));
}

#[test]
fn checkout_numbers_lines_in_cart_order_after_changes() {
    AggregateTest::<Cart>::given(vec![
        added("A", 1, 100),
        added("B", 1, 200),
        added("C", 1, 300),
        OrdersEvent::CartLineRemoved(CartLineRemoved { sku: "A".into() }),
        changed("C", 4, 1),
        added("A", 1, 100),
    ])
    .when(checkout("o-1"))
    .then_expect_events(vec![checked_out(
        "o-1",
        vec![
            line(1, "B", 1, 200),
            line(2, "C", 4, 300),
            line(3, "A", 1, 100),
        ],
        eur(1500, SHIPPING_MINOR),
    )]);
}

#[test]
fn checkout_ships_free_from_the_threshold() {
    AggregateTest::<Cart>::given(vec![added("BIG", 1, FREE_SHIPPING_FROM_MINOR)])
        .when(checkout("o-1"))
        .then_expect_events(vec![checked_out(
            "o-1",
            vec![line(1, "BIG", 1, FREE_SHIPPING_FROM_MINOR)],
            eur(FREE_SHIPPING_FROM_MINOR, 0),
        )]);
}

#[test]
fn a_checkout_carries_what_placing_the_order_needs() {
    let lines = vec![line(1, "MUG-1", 2, 1299)];
    let event = CartCheckedOut {
        order_id: "o-1".into(),
        lines: lines.clone(),
        shipping_address: address(),
        totals: eur(2598, SHIPPING_MINOR),
        payment_token: Some("tok_visa_4242".into()),
    };
    AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when_as(checkout("o-1"), OWNER)
        .then_expect_events(vec![OrdersEvent::CartCheckedOut(event.clone())]);
    // The order accepts the checked-out lines and totals as they are.
    let place = OrdersCommand::PlaceOrder(PlaceOrder {
        customer_id: "under-test".into(),
        lines: event.lines.clone(),
        shipping_address: event.shipping_address.clone(),
        totals: event.totals.clone(),
        payment_token: event.payment_token.clone(),
    });
    AggregateTest::<Order>::given_no_history()
        .when_as(place, OWNER)
        .then_expect_events(vec![OrdersEvent::OrderPlaced(OrderPlaced {
            customer_id: "under-test".into(),
            lines,
            shipping_address: address(),
            totals: eur(2598, SHIPPING_MINOR),
            payment_token: Some("tok_visa_4242".into()),
        })]);
}

#[test]
fn a_retried_checkout_succeeds_without_a_second_order() {
    let history = vec![
        added("MUG-1", 2, 1299),
        checked_out("o-1", vec![line(1, "MUG-1", 2, 1299)], eur(2598, 499)),
    ];
    AggregateTest::<Cart>::given(history.clone())
        .when(checkout("o-1"))
        .then_expect_events(vec![]);
    // Even when the customer already filled the cart again.
    let mut refilled = history.clone();
    refilled.push(added("CUP-1", 1, 500));
    AggregateTest::<Cart>::given(refilled.clone())
        .when(checkout("o-1"))
        .then_expect_events(vec![]);
    // A new order id is a new checkout.
    AggregateTest::<Cart>::given(refilled)
        .when(checkout("o-2"))
        .then_expect_events(vec![checked_out(
            "o-2",
            vec![line(1, "CUP-1", 1, 500)],
            eur(500, 499),
        )]);
    AggregateTest::<Cart>::given(history)
        .when(checkout("o-2"))
        .then_expect_error("cart-empty");
}

#[test]
fn checkout_refusals() {
    AggregateTest::<Cart>::given_no_history()
        .when(checkout("o-1"))
        .then_expect_error("cart-empty");
    for order_id in ["", " ", "o\n1"] {
        AggregateTest::<Cart>::given(vec![added("MUG-1", 1, 100)])
            .when(checkout(order_id))
            .then_expect_error("invalid-field");
    }
    let mut bad_address = address();
    bad_address.country = "Germany".into();
    AggregateTest::<Cart>::given(vec![added("MUG-1", 1, 100)])
        .when(OrdersCommand::CheckoutCart(CheckoutCart {
            order_id: "o-1".into(),
            shipping_address: bad_address,
            payment_token: None,
        }))
        .then_expect_error("invalid-field");
    AggregateTest::<Cart>::given(vec![added("MUG-1", 1, 100)])
        .when(OrdersCommand::CheckoutCart(CheckoutCart {
            order_id: "o-1".into(),
            shipping_address: address(),
            payment_token: Some(String::new()),
        }))
        .then_expect_error("invalid-field");
}

#[test]
fn checkout_without_a_payment_token() {
    AggregateTest::<Cart>::given(vec![added("MUG-1", 1, 100)])
        .when(OrdersCommand::CheckoutCart(CheckoutCart {
            order_id: "o-1".into(),
            shipping_address: address(),
            payment_token: None,
        }))
        .then_expect_events(vec![OrdersEvent::CartCheckedOut(CartCheckedOut {
            order_id: "o-1".into(),
            lines: vec![line(1, "MUG-1", 1, 100)],
            shipping_address: address(),
            totals: eur(100, 499),
            payment_token: None,
        })]);
}

#[test]
fn checkout_refuses_a_cart_whose_total_does_not_fit() {
    // Carts are refused such lines as they are added; a history from
    // before that rule (or written by hand) still cannot check out.
    AggregateTest::<Cart>::given(vec![added("GOLD", MAX_QUANTITY, i64::MAX)])
        .when(checkout("o-1"))
        .then_expect_error("amount-too-large");
}

// --- Who may act on the cart ---

#[test]
fn only_the_owner_or_staff_change_a_cart() {
    let history = || vec![added("MUG-1", 2, 1299)];
    let cases = [
        (add("CUP-1", 1, 500, "EUR"), added("CUP-1", 1, 500)),
        (change("MUG-1", 3), changed("MUG-1", 3, 2)),
        (
            remove("MUG-1"),
            OrdersEvent::CartLineRemoved(CartLineRemoved {
                sku: "MUG-1".into(),
            }),
        ),
        (
            checkout("o-1"),
            checked_out(
                "o-1",
                vec![line(1, "MUG-1", 2, 1299)],
                eur(2598, SHIPPING_MINOR),
            ),
        ),
    ];
    for (command, event) in cases {
        AggregateTest::<Cart>::given(history())
            .when_as(command.clone(), SOMEONE_ELSE)
            .then_expect_error("not-your-cart");
        for actor in [OWNER, "admin:a-1", "system:order-fulfillment"] {
            AggregateTest::<Cart>::given(history())
                .when_as(command.clone(), actor)
                .then_expect_events(vec![event.clone()]);
        }
    }
    // Checked before anything else: even an empty cart says so.
    AggregateTest::<Cart>::given_no_history()
        .when_as(checkout("o-1"), SOMEONE_ELSE)
        .then_expect_error("not-your-cart");
}

#[test]
fn order_commands_are_not_for_a_cart() {
    AggregateTest::<Cart>::given(vec![added("MUG-1", 2, 1299)])
        .when(crate::domain::orders::fixtures::place())
        .then_expect_error("wrong-aggregate");
}
