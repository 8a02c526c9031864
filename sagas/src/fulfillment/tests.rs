//! Every path of the order-fulfillment saga, as given/when/then.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use schemas::orders::{OrderLine, OrderTotals};
use schemas::PostalAddress;

use super::outgoing::Outgoing;
use super::state::{Input, ReplyOf, Stage};
use crate::testkit::SagaTest;

const ORDER: &str = "order-1";

fn placed(lines: &[(&str, i32)]) -> Input {
    Input::OrderPlaced {
        order_id: ORDER.into(),
        customer_id: "c-1".into(),
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (sku, q))| OrderLine {
                line_no: i32::try_from(i).unwrap() + 1,
                sku: (*sku).into(),
                quantity: *q,
                unit_price_minor: 1000,
                currency: "EUR".into(),
            })
            .collect(),
        totals: OrderTotals {
            subtotal_minor: 2000,
            shipping_minor: 499,
            tax_minor: 0,
            total_minor: 2499,
            currency: "EUR".into(),
        },
        shipping_address: PostalAddress {
            recipient: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "DE".into(),
        },
        payment_token: Some("tok_sim_4242".into()),
    }
}

fn stock_reply(line_no: i32, reserved: bool) -> Input {
    Input::Reply {
        command_id: Outgoing::command_id(ORDER, &format!("reserve/{line_no}")),
        command_type: ReplyOf::Stock,
        accepted: true,
        event_types: vec![if reserved {
            "com.quickstore.inventory.StockReserved".into()
        } else {
            "com.quickstore.inventory.StockReservationRejected".into()
        }],
        error_code: None,
    }
}

fn two_lines() -> Input {
    placed(&[("A", 1), ("B", 1)])
}

fn authorized() -> Vec<Input> {
    vec![
        two_lines(),
        stock_reply(1, true),
        stock_reply(2, true),
        Input::PaymentAuthorized,
    ]
}

#[test]
fn a_placed_order_reserves_every_line() {
    let then = SagaTest::given(&[]).when(two_lines());
    assert_eq!(then.sent(), ["ReserveStock@A", "ReserveStock@B"]);
    assert_eq!(then.stage(), Some(Stage::ReservingStock));
}

#[test]
fn all_lines_reserved_authorizes_the_payment_with_a_deadline() {
    let then = SagaTest::given(&[two_lines(), stock_reply(1, true)])
        .at(1_000)
        .when(stock_reply(2, true));
    assert_eq!(then.sent(), ["AuthorizePayment@order-1"]);
    assert_eq!(then.stage(), Some(Stage::AuthorizingPayment));
    assert_eq!(then.state.unwrap().deadline_at, Some(31_000));
}

#[test]
fn one_line_reserved_waits_for_the_others() {
    let then = SagaTest::given(&[two_lines()]).when(stock_reply(1, true));
    assert!(then.sent().is_empty());
    assert_eq!(then.stage(), Some(Stage::ReservingStock));
}

#[test]
fn an_out_of_stock_line_releases_the_reserved_ones_and_rejects() {
    let then = SagaTest::given(&[two_lines(), stock_reply(1, true)]).when(stock_reply(2, false));
    assert_eq!(then.sent(), ["ReleaseStock@A", "RejectOrder@order-1"]);
    assert_eq!(then.stage(), Some(Stage::Rejected));
    assert!(then.note.unwrap().contains("out of stock: B"));
}

#[test]
fn a_refused_reservation_counts_as_unavailable() {
    let refused = Input::Reply {
        command_id: Outgoing::command_id(ORDER, "reserve/2"),
        command_type: ReplyOf::Stock,
        accepted: false,
        event_types: vec![],
        error_code: Some("unknown-sku".into()),
    };
    let then = SagaTest::given(&[two_lines(), stock_reply(1, true)]).when(refused);
    assert_eq!(then.stage(), Some(Stage::Rejected));
}

#[test]
fn a_duplicate_reply_changes_nothing() {
    let then = SagaTest::given(&[two_lines(), stock_reply(1, true)]).when(stock_reply(1, true));
    assert!(!then.stepped);
}

#[test]
fn authorized_payment_confirms_and_schedules() {
    let then = SagaTest::given(&authorized()[..3])
        .at(5)
        .when(Input::PaymentAuthorized);
    assert_eq!(
        then.sent(),
        ["ConfirmOrder@order-1", "ScheduleShipment@order-1"]
    );
    assert_eq!(then.stage(), Some(Stage::SchedulingShipment));
    assert!(then.state.unwrap().deadline_at.is_some());
}

#[test]
fn a_declined_card_releases_stock_and_cancels() {
    let then = SagaTest::given(&authorized()[..3]).when(Input::PaymentDeclined {
        code: "card_declined".into(),
    });
    assert_eq!(
        then.sent(),
        ["ReleaseStock@A", "ReleaseStock@B", "CancelOrder@order-1"]
    );
    assert_eq!(then.stage(), Some(Stage::Cancelled));
}

#[test]
fn the_payment_deadline_expires_the_authorization_then_cancels_on_timeout() {
    let at_deadline = SagaTest::given(&authorized()[..3])
        .at(40_000)
        .when(Input::DeadlinePassed);
    assert_eq!(at_deadline.sent(), ["ExpirePaymentAuthorization@order-1"]);
    let mut inputs = authorized()[..3].to_vec();
    inputs.push(Input::DeadlinePassed);
    let then = SagaTest::given(&inputs).when(Input::PaymentTimedOut);
    assert_eq!(
        then.sent(),
        ["ReleaseStock@A", "ReleaseStock@B", "CancelOrder@order-1"]
    );
}

#[test]
fn no_courier_in_time_calls_everything_off() {
    let then = SagaTest::given(&authorized()).when(Input::DeadlinePassed);
    assert_eq!(
        then.sent(),
        [
            "CancelShipment@order-1",
            "ReleaseStock@A",
            "ReleaseStock@B",
            "VoidPayment@order-1",
            "CancelOrder@order-1"
        ]
    );
}

#[test]
fn pickup_captures_commits_and_marks_shipped_then_delivery_completes() {
    let mut inputs = authorized();
    inputs.push(Input::CourierAssigned {
        courier_id: "k".into(),
    });
    let picked = SagaTest::given(&inputs).when(Input::ShipmentPickedUp);
    assert_eq!(
        picked.sent(),
        [
            "MarkOrderShipped@order-1",
            "CapturePayment@order-1",
            "CommitStock@A",
            "CommitStock@B"
        ]
    );
    inputs.push(Input::ShipmentPickedUp);
    let delivered = SagaTest::given(&inputs).when(Input::ShipmentDelivered);
    assert_eq!(delivered.sent(), ["CompleteOrder@order-1"]);
    assert_eq!(delivered.stage(), Some(Stage::Completed));
}

#[test]
fn a_failed_delivery_refunds_returns_stock_and_cancels() {
    let mut inputs = authorized();
    inputs.push(Input::ShipmentPickedUp);
    let then = SagaTest::given(&inputs).when(Input::ShipmentFailed {
        reason: "nobody home".into(),
    });
    assert_eq!(
        then.sent(),
        [
            "RefundPayment@order-1",
            "AdjustStock@A",
            "AdjustStock@B",
            "CancelOrder@order-1"
        ]
    );
    assert_eq!(then.stage(), Some(Stage::Cancelled));
}

#[test]
fn cancel_before_pickup_is_honoured_as_far_as_the_saga_got() {
    // While reserving: wait for the answers, then release.
    let waiting = SagaTest::given(&[two_lines()]).when(Input::CancellationRequested);
    assert!(waiting.sent().is_empty());
    let then = SagaTest::given(&[
        two_lines(),
        Input::CancellationRequested,
        stock_reply(1, true),
    ])
    .when(stock_reply(2, true));
    assert_eq!(
        then.sent(),
        ["ReleaseStock@A", "ReleaseStock@B", "CancelOrder@order-1"]
    );
    // While authorizing: void too.
    let then = SagaTest::given(&authorized()[..3]).when(Input::CancellationRequested);
    assert_eq!(
        then.sent(),
        [
            "ReleaseStock@A",
            "ReleaseStock@B",
            "VoidPayment@order-1",
            "CancelOrder@order-1"
        ]
    );
    // Scheduled: call off the shipment as well.
    let then = SagaTest::given(&authorized()).when(Input::CancellationRequested);
    assert_eq!(then.sent()[0], "CancelShipment@order-1");
    assert_eq!(then.stage(), Some(Stage::Cancelled));
}

#[test]
fn cancel_after_pickup_is_refused() {
    let mut inputs = authorized();
    inputs.push(Input::ShipmentPickedUp);
    let then = SagaTest::given(&inputs).when(Input::CancellationRequested);
    assert!(then.sent().is_empty());
    assert_eq!(then.stage(), Some(Stage::InTransit));
    assert!(then.note.unwrap().contains("already picked up"));
}

#[test]
fn an_ended_saga_ignores_late_inputs() {
    let mut inputs = authorized();
    inputs.push(Input::ShipmentPickedUp);
    inputs.push(Input::ShipmentDelivered);
    let then = SagaTest::given(&inputs).when(Input::ShipmentFailed {
        reason: "late".into(),
    });
    assert!(!then.stepped);
}

#[test]
fn an_input_for_an_unknown_saga_starts_nothing() {
    let then = SagaTest::given(&[]).when(Input::PaymentAuthorized);
    assert!(!then.stepped);
    assert!(then.state.is_none());
}

#[test]
fn command_ids_are_deterministic_per_purpose() {
    assert_eq!(
        Outgoing::command_id(ORDER, "capture"),
        Outgoing::command_id(ORDER, "capture")
    );
    assert_ne!(
        Outgoing::command_id(ORDER, "capture"),
        Outgoing::command_id(ORDER, "void")
    );
}
