use super::*;
use crate::domain::orders::fixtures::{address, line, lines, place, place_order, placed, totals};
use crate::domain::orders::SHIPPING_MINOR;
use crate::domain::validate::MAX_QUANTITY;
use crate::testkit::AggregateTest;

use OrderStatus::{Cancelled, Completed, Confirmed, New, Placed, Rejected, Shipped};

const ALL: [OrderStatus; 7] = [
    New, Placed, Confirmed, Shipped, Completed, Cancelled, Rejected,
];

/// The order's customer (the fixtures place for `c-1`).
const OWNER: &str = "customer:c-1";
const SOMEONE_ELSE: &str = "customer:c-2";
const SAGA: &str = "system:order-fulfillment";

fn confirmed() -> OrdersEvent {
    OrdersEvent::OrderConfirmed(OrderConfirmed {
        payment_id: Some("pay-1".into()),
    })
}

fn shipped() -> OrdersEvent {
    OrdersEvent::OrderShipped(OrderShipped {
        shipment_id: "s-1".into(),
    })
}

/// Completion restates what was sold: the lines and totals as placed.
fn completed() -> OrdersEvent {
    OrdersEvent::OrderCompleted(OrderCompleted {
        shipment_id: Some("s-1".into()),
        lines: lines(),
        totals: Some(totals()),
    })
}

fn cancelled() -> OrdersEvent {
    OrdersEvent::OrderCancelled(OrderCancelled {
        reason: "customer asked".into(),
    })
}

fn rejected() -> OrdersEvent {
    OrdersEvent::OrderRejected(OrderRejected {
        reason: "out of stock".into(),
    })
}

fn cancellation_requested() -> OrdersEvent {
    OrdersEvent::OrderCancellationRequested(OrderCancellationRequested {
        reason: Some("changed my mind".into()),
    })
}

/// A history that leaves the order in `status`.
fn history(status: OrderStatus) -> Vec<OrdersEvent> {
    match status {
        New => vec![],
        Placed => vec![placed()],
        Confirmed => vec![placed(), confirmed()],
        Shipped => vec![placed(), confirmed(), shipped()],
        Completed => vec![placed(), confirmed(), shipped(), completed()],
        Cancelled => vec![placed(), cancelled()],
        Rejected => vec![placed(), rejected()],
    }
}

/// What a command should come to.
#[derive(Debug, Clone)]
enum Expect {
    Events(Vec<OrdersEvent>),
    Refused(&'static str),
}
use Expect::{Events, Refused};

/// Decides `command` as `actor` in every status, against `expected`.
#[track_caller]
fn in_every_status(command: &OrdersCommand, actor: &str, expected: impl Fn(OrderStatus) -> Expect) {
    for status in ALL {
        let then = AggregateTest::<Order>::given(history(status)).when_as(command.clone(), actor);
        match expected(status) {
            Events(events) => {
                let state = then.then_expect_events(events);
                assert_ne!(state.status, New, "{command:?} in {status:?}");
            }
            Refused(code) => then.then_expect_error(code),
        }
    }
}

// --- the state fixtures are what they claim ---

#[test]
fn histories_reach_their_status() {
    for status in ALL {
        let mut order = Order::default();
        for e in history(status) {
            order.evolve(&e);
        }
        assert_eq!(order.status, status);
    }
}

// --- PlaceOrder ---

#[test]
fn place_records_the_order_with_its_prices() {
    let state = AggregateTest::<Order>::given_no_history()
        .when(place())
        .then_expect_events(vec![placed()]);
    assert_eq!(state.status, Placed);
    assert_eq!(state.customer_id, "c-1");
    assert_eq!(state.lines, lines());
    assert_eq!(state.totals, Some(totals()));
    assert_eq!(state.shipping_address, Some(address()));
    assert_eq!(state.payment_token.as_deref(), Some("tok_visa_4242"));
    assert!(!state.cancellation_requested);
}

#[test]
fn a_customer_places_only_their_own_orders() {
    AggregateTest::<Order>::given_no_history()
        .when_as(place(), OWNER)
        .then_expect_events(vec![placed()]);
    AggregateTest::<Order>::given_no_history()
        .when_as(place(), SOMEONE_ELSE)
        .then_expect_error("not-your-order");
    for actor in [SAGA, "admin:a-1"] {
        AggregateTest::<Order>::given_no_history()
            .when_as(place(), actor)
            .then_expect_events(vec![placed()]);
    }
}

#[test]
fn an_order_is_placed_once() {
    for status in ALL.into_iter().filter(|s| *s != New) {
        AggregateTest::<Order>::given(history(status))
            .when(place())
            .then_expect_error("order-exists");
    }
}

fn place_with(spoil: impl FnOnce(&mut PlaceOrder)) -> OrdersCommand {
    let mut c = place_order();
    spoil(&mut c);
    OrdersCommand::PlaceOrder(c)
}

#[test]
fn place_refuses_invalid_fields_naming_the_field() {
    let cases: Vec<(OrdersCommand, &str)> = vec![
        (place_with(|c| c.customer_id = String::new()), "customer_id"),
        (place_with(|c| c.lines.clear()), "lines"),
        (
            place_with(|c| {
                c.lines = (1..=101)
                    .map(|n| line(n, &format!("S-{n}"), 1, 100))
                    .collect();
            }),
            "lines",
        ),
        (place_with(|c| c.lines[1].line_no = 3), "lines.line_no"),
        (place_with(|c| c.lines[0].line_no = 0), "lines.line_no"),
        (place_with(|c| c.lines[0].line_no = -1), "lines.line_no"),
        (
            place_with(|c| {
                c.lines[0].line_no = 2;
                c.lines[1].line_no = 1;
            }),
            "lines.line_no",
        ),
        (place_with(|c| c.lines[0].sku = " ".into()), "lines.sku"),
        (place_with(|c| c.lines[0].quantity = 0), "lines.quantity"),
        (place_with(|c| c.lines[0].quantity = -2), "lines.quantity"),
        (
            place_with(|c| c.lines[0].quantity = MAX_QUANTITY + 1),
            "lines.quantity",
        ),
        (
            place_with(|c| c.lines[0].unit_price_minor = -1),
            "lines.unit_price_minor",
        ),
        (
            place_with(|c| c.lines[0].currency = "euro".into()),
            "lines.currency",
        ),
        (
            place_with(|c| c.shipping_address.postal_code = String::new()),
            "shipping_address.postal_code",
        ),
        (
            place_with(|c| c.shipping_address.country = "DEU".into()),
            "shipping_address.country",
        ),
        (
            place_with(|c| c.payment_token = Some("\u{0}".into())),
            "payment_token",
        ),
    ];
    let context = DecisionContext {
        aggregate_id: "o-1".to_owned(),
        version: 0,
        now_ms: 0,
        actor: SAGA.to_owned(),
        facts: (),
    };
    for (command, field) in cases {
        let result = Order::default().decide(&command, &context);
        assert!(
            matches!(&result, Err(OrderError::InvalidField { field: f, .. }) if *f == field),
            "{field}: {result:?}"
        );
        AggregateTest::<Order>::given_no_history()
            .when(command)
            .then_expect_error("invalid-field");
    }
}

#[test]
fn place_accepts_100_lines() {
    let mut c = place_order();
    c.lines = (1..=100)
        .map(|n| line(n, &format!("S-{n}"), 1, 100))
        .collect();
    c.totals = OrderTotals {
        subtotal_minor: 10_000,
        shipping_minor: 0,
        tax_minor: 0,
        total_minor: 10_000,
        currency: "EUR".into(),
    };
    let state = AggregateTest::<Order>::given_no_history()
        .when(OrdersCommand::PlaceOrder(c.clone()))
        .then_expect_events(vec![OrdersEvent::OrderPlaced(OrderPlaced {
            customer_id: c.customer_id,
            lines: c.lines,
            shipping_address: c.shipping_address,
            totals: c.totals,
            payment_token: c.payment_token,
        })]);
    assert_eq!(state.lines.len(), 100);
}

#[test]
fn place_refuses_totals_that_are_not_the_lines() {
    let wrong: [fn(&mut OrderTotals); 6] = [
        |t| t.subtotal_minor += 1,
        |t| t.shipping_minor = 0,
        |t| t.tax_minor = 1,
        |t| t.total_minor -= 1,
        |t| t.currency = "USD".into(),
        |t| {
            // Consistent in itself, but not what the lines cost.
            t.subtotal_minor = 100;
            t.total_minor = 100 + SHIPPING_MINOR;
        },
    ];
    for spoil in wrong {
        AggregateTest::<Order>::given_no_history()
            .when(place_with(|c| spoil(&mut c.totals)))
            .then_expect_error("totals-mismatch");
    }
}

#[test]
fn place_refuses_mixed_currencies() {
    AggregateTest::<Order>::given_no_history()
        .when(place_with(|c| c.lines[1].currency = "USD".into()))
        .then_expect_error("mixed-currencies");
}

#[test]
fn place_refuses_amounts_that_do_not_fit() {
    AggregateTest::<Order>::given_no_history()
        .when(place_with(|c| {
            c.lines = vec![line(1, "GOLD", MAX_QUANTITY, i64::MAX)];
            c.totals.subtotal_minor = i64::MAX;
            c.totals.shipping_minor = 0;
            c.totals.total_minor = i64::MAX;
        }))
        .then_expect_error("amount-too-large");
    AggregateTest::<Order>::given_no_history()
        .when(place_with(|c| {
            c.lines = vec![line(1, "GOLD", 1, i64::MAX), line(2, "MUG", 1, 1)];
        }))
        .then_expect_error("amount-too-large");
}

// --- ConfirmOrder ---

#[test]
fn confirm() {
    let command = OrdersCommand::ConfirmOrder(ConfirmOrder {
        payment_id: Some("pay-1".into()),
    });
    in_every_status(&command, SAGA, |status| match status {
        New => Refused("not-found"),
        Placed => Events(vec![confirmed()]),
        Confirmed => Events(vec![]),
        Shipped => Refused("invalid-state"),
        Completed | Cancelled | Rejected => Refused("order-closed"),
    });
    in_every_status(&command, OWNER, |_| Refused("forbidden"));
    let state = AggregateTest::<Order>::given(vec![placed()])
        .when(command)
        .then_expect_events(vec![confirmed()]);
    assert_eq!(
        (state.status, state.payment_id.as_deref()),
        (Confirmed, Some("pay-1"))
    );
    AggregateTest::<Order>::given(vec![placed()])
        .when(OrdersCommand::ConfirmOrder(ConfirmOrder {
            payment_id: Some(String::new()),
        }))
        .then_expect_error("invalid-field");
}

#[test]
fn a_pending_cancellation_request_does_not_block_confirmation() {
    AggregateTest::<Order>::given(vec![placed(), cancellation_requested()])
        .when(OrdersCommand::ConfirmOrder(ConfirmOrder {
            payment_id: None,
        }))
        .then_expect_events(vec![OrdersEvent::OrderConfirmed(OrderConfirmed {
            payment_id: None,
        })]);
}

// --- MarkOrderShipped ---

#[test]
fn mark_shipped() {
    let command = OrdersCommand::MarkOrderShipped(MarkOrderShipped {
        shipment_id: "s-1".into(),
    });
    in_every_status(&command, SAGA, |status| match status {
        New => Refused("not-found"),
        Placed => Refused("invalid-state"),
        Confirmed => Events(vec![shipped()]),
        Shipped => Events(vec![]),
        Completed | Cancelled | Rejected => Refused("order-closed"),
    });
    in_every_status(&command, OWNER, |_| Refused("forbidden"));
    let state = AggregateTest::<Order>::given(history(Confirmed))
        .when(command)
        .then_expect_events(vec![shipped()]);
    assert_eq!(state.shipment_id.as_deref(), Some("s-1"));
    AggregateTest::<Order>::given(history(Confirmed))
        .when(OrdersCommand::MarkOrderShipped(MarkOrderShipped {
            shipment_id: String::new(),
        }))
        .then_expect_error("invalid-field");
}

// --- RequestOrderCancellation ---

fn request_cancellation() -> OrdersCommand {
    OrdersCommand::RequestOrderCancellation(RequestOrderCancellation {
        reason: Some("changed my mind".into()),
    })
}

#[test]
fn a_customer_may_ask_to_cancel_until_the_parcel_leaves() {
    in_every_status(&request_cancellation(), OWNER, |status| match status {
        New => Refused("not-found"),
        Placed | Confirmed => Events(vec![cancellation_requested()]),
        Shipped | Completed => Refused("already-shipped"),
        Cancelled | Rejected => Refused("order-closed"),
    });
    let state = AggregateTest::<Order>::given(history(Confirmed))
        .when_as(request_cancellation(), OWNER)
        .then_expect_events(vec![cancellation_requested()]);
    assert!(state.cancellation_requested);
    assert_eq!(state.status, Confirmed, "asking is not cancelling");
}

#[test]
fn asking_twice_records_one_request() {
    for status in [Placed, Confirmed] {
        let mut asked = history(status);
        asked.push(cancellation_requested());
        AggregateTest::<Order>::given(asked)
            .when_as(request_cancellation(), OWNER)
            .then_expect_events(vec![]);
    }
}

#[test]
fn someone_elses_order_reveals_nothing_about_its_state() {
    in_every_status(
        &request_cancellation(),
        SOMEONE_ELSE,
        |status| match status {
            New => Refused("not-found"),
            _ => Refused("not-your-order"),
        },
    );
}

#[test]
fn staff_and_the_saga_may_ask_too() {
    for actor in ["admin:a-1", SAGA, "tester"] {
        AggregateTest::<Order>::given(history(Placed))
            .when_as(request_cancellation(), actor)
            .then_expect_events(vec![cancellation_requested()]);
    }
}

#[test]
fn cancellation_request_reasons_are_optional_but_valid() {
    AggregateTest::<Order>::given(history(Placed))
        .when_as(
            OrdersCommand::RequestOrderCancellation(RequestOrderCancellation { reason: None }),
            OWNER,
        )
        .then_expect_events(vec![OrdersEvent::OrderCancellationRequested(
            OrderCancellationRequested { reason: None },
        )]);
    AggregateTest::<Order>::given(history(Placed))
        .when_as(
            OrdersCommand::RequestOrderCancellation(RequestOrderCancellation {
                reason: Some("x".repeat(201)),
            }),
            OWNER,
        )
        .then_expect_error("invalid-field");
}

// --- CancelOrder ---

#[test]
fn cancel() {
    let command = OrdersCommand::CancelOrder(CancelOrder {
        reason: "customer asked".into(),
    });
    in_every_status(&command, SAGA, |status| match status {
        New => Refused("not-found"),
        Placed | Confirmed | Shipped => Events(vec![cancelled()]),
        Cancelled => Events(vec![]),
        Completed | Rejected => Refused("order-closed"),
    });
    in_every_status(&command, OWNER, |_| Refused("forbidden"));
    let state = AggregateTest::<Order>::given(history(Shipped))
        .when(command)
        .then_expect_events(vec![cancelled()]);
    assert_eq!(state.status, Cancelled);
    AggregateTest::<Order>::given(history(Placed))
        .when(OrdersCommand::CancelOrder(CancelOrder {
            reason: " ".into(),
        }))
        .then_expect_error("invalid-field");
}

// --- RejectOrder ---

#[test]
fn reject() {
    let command = OrdersCommand::RejectOrder(RejectOrder {
        reason: "out of stock".into(),
    });
    in_every_status(&command, SAGA, |status| match status {
        New => Refused("not-found"),
        Placed | Confirmed => Events(vec![rejected()]),
        Shipped => Refused("invalid-state"),
        Rejected => Events(vec![]),
        Completed | Cancelled => Refused("order-closed"),
    });
    in_every_status(&command, OWNER, |_| Refused("forbidden"));
    let state = AggregateTest::<Order>::given(history(Placed))
        .when(command)
        .then_expect_events(vec![rejected()]);
    assert_eq!(state.status, Rejected);
    AggregateTest::<Order>::given(history(Placed))
        .when(OrdersCommand::RejectOrder(RejectOrder {
            reason: String::new(),
        }))
        .then_expect_error("invalid-field");
}

// --- CompleteOrder ---

#[test]
fn complete() {
    let command = OrdersCommand::CompleteOrder(CompleteOrder {
        shipment_id: Some("s-1".into()),
    });
    in_every_status(&command, SAGA, |status| match status {
        New => Refused("not-found"),
        Placed | Confirmed => Refused("invalid-state"),
        Shipped => Events(vec![completed()]),
        Completed => Events(vec![]),
        Cancelled | Rejected => Refused("order-closed"),
    });
    in_every_status(&command, OWNER, |_| Refused("forbidden"));
    let state = AggregateTest::<Order>::given(history(Shipped))
        .when(command)
        .then_expect_events(vec![completed()]);
    assert_eq!(state.status, Completed);
    AggregateTest::<Order>::given(history(Shipped))
        .when(OrdersCommand::CompleteOrder(CompleteOrder {
            shipment_id: None,
        }))
        .then_expect_events(vec![OrdersEvent::OrderCompleted(OrderCompleted {
            shipment_id: None,
            lines: lines(),
            totals: Some(totals()),
        })]);
    AggregateTest::<Order>::given(history(Shipped))
        .when(OrdersCommand::CompleteOrder(CompleteOrder {
            shipment_id: Some(String::new()),
        }))
        .then_expect_error("invalid-field");
}

// --- routing ---

#[test]
fn cart_commands_are_not_for_an_order() {
    AggregateTest::<Order>::given(history(Placed))
        .when(OrdersCommand::RemoveCartLine(
            schemas::orders::RemoveCartLine {
                sku: "MUG-1".into(),
            },
        ))
        .then_expect_error("wrong-aggregate");
}

#[test]
fn codes_are_stable() {
    let codes: Vec<&str> = [
        OrderError::OrderExists,
        OrderError::NotFound,
        OrderError::NotYourOrder,
        OrderError::Forbidden,
        OrderError::OrderClosed(Cancelled),
        OrderError::InvalidState {
            command: "ConfirmOrder",
            status: Shipped,
        },
        OrderError::AlreadyShipped,
        OrderError::TotalsMismatch { expected: totals() },
    ]
    .iter()
    .map(DomainError::code)
    .collect();
    assert_eq!(
        codes,
        [
            "order-exists",
            "not-found",
            "not-your-order",
            "forbidden",
            "order-closed",
            "invalid-state",
            "already-shipped",
            "totals-mismatch"
        ]
    );
}
