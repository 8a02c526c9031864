//! `Payment` decisions as given/when/then, one test per command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use schemas::payments::{
    AuthorizePayment, CapturePayment, ExpirePaymentAuthorization, PaymentAuthorizationPending,
    PaymentAuthorizationTimedOut, PaymentAuthorized, PaymentCaptured, PaymentDeclined,
    PaymentRefunded, PaymentVoided, PaymentsCommand, PaymentsEvent, RecordGatewayAnswer,
    RefundPayment, VoidPayment,
};

use super::*;
use crate::aggregate::{Aggregate, DecisionContext};
use crate::gateway::GatewayAnswer;
use crate::testkit::AggregateTest;

const ORDER: &str = "o-1";
const REF: &str = "sim_0123456789abcdef01234567";

// ---- commands ----

fn authorize_with(amount_minor: i64, currency: &str, token: &str) -> PaymentsCommand {
    PaymentsCommand::AuthorizePayment(AuthorizePayment {
        order_id: ORDER.into(),
        amount_minor,
        currency: currency.into(),
        card_token: token.into(),
    })
}

fn authorize() -> PaymentsCommand {
    authorize_with(5000, "EUR", "tok_sim_4242")
}

fn answer(approved: bool) -> RecordGatewayAnswer {
    RecordGatewayAnswer {
        gateway_reference: REF.into(),
        webhook_event_id: "evt_1".into(),
        approved,
        authorization_code: approved.then(|| "W3BH00".into()),
        decline_code: (!approved).then(|| "card_declined".into()),
        decline_message: (!approved).then(|| "Declined.".into()),
    }
}

fn webhook(approved: bool) -> PaymentsCommand {
    PaymentsCommand::RecordGatewayAnswer(answer(approved))
}

fn expire() -> PaymentsCommand {
    PaymentsCommand::ExpirePaymentAuthorization(ExpirePaymentAuthorization {
        deadline_at: 30_000,
    })
}

fn capture(amount_minor: i64, currency: &str) -> PaymentsCommand {
    PaymentsCommand::CapturePayment(CapturePayment {
        amount_minor,
        currency: currency.into(),
    })
}

fn void() -> PaymentsCommand {
    PaymentsCommand::VoidPayment(VoidPayment {
        reason: Some("order cancelled".into()),
    })
}

fn refund(amount_minor: i64, currency: &str) -> PaymentsCommand {
    PaymentsCommand::RefundPayment(RefundPayment {
        amount_minor,
        currency: currency.into(),
        reason: Some("returned".into()),
    })
}

// ---- gateway answers ----

fn approved() -> GatewayAnswer {
    GatewayAnswer::Authorized {
        authorization_code: "A1B2C3".into(),
        gateway_reference: REF.into(),
    }
}

fn refused() -> GatewayAnswer {
    GatewayAnswer::Declined {
        decline_code: "insufficient_funds".into(),
        decline_message: Some("Insufficient funds.".into()),
    }
}

fn pending_answer() -> GatewayAnswer {
    GatewayAnswer::Pending {
        gateway_reference: REF.into(),
    }
}

fn captured_answer() -> GatewayAnswer {
    GatewayAnswer::Captured {
        gateway_reference: "sim_cap_1".into(),
    }
}

fn refunded_answer() -> GatewayAnswer {
    GatewayAnswer::Refunded {
        gateway_reference: "sim_ref_1".into(),
    }
}

// ---- events ----

fn authorized_with(code: &str) -> PaymentsEvent {
    PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
        order_id: ORDER.into(),
        amount_minor: 5000,
        currency: "EUR".into(),
        authorization_code: code.into(),
        gateway_reference: REF.into(),
    })
}

fn authorized() -> PaymentsEvent {
    authorized_with("A1B2C3")
}

fn declined() -> PaymentsEvent {
    PaymentsEvent::PaymentDeclined(PaymentDeclined {
        order_id: ORDER.into(),
        amount_minor: 5000,
        currency: "EUR".into(),
        decline_code: "insufficient_funds".into(),
        decline_message: Some("Insufficient funds.".into()),
    })
}

fn pending() -> PaymentsEvent {
    PaymentsEvent::PaymentAuthorizationPending(PaymentAuthorizationPending {
        order_id: ORDER.into(),
        amount_minor: 5000,
        currency: "EUR".into(),
        gateway_reference: REF.into(),
    })
}

fn timed_out() -> PaymentsEvent {
    PaymentsEvent::PaymentAuthorizationTimedOut(PaymentAuthorizationTimedOut {
        order_id: ORDER.into(),
        amount_minor: 5000,
        currency: "EUR".into(),
    })
}

fn captured(amount_minor: i64) -> PaymentsEvent {
    PaymentsEvent::PaymentCaptured(PaymentCaptured {
        order_id: ORDER.into(),
        amount_minor,
        currency: "EUR".into(),
        gateway_reference: "sim_cap_1".into(),
    })
}

fn voided(reason: &str) -> PaymentsEvent {
    PaymentsEvent::PaymentVoided(PaymentVoided {
        order_id: ORDER.into(),
        amount_minor: 5000,
        currency: "EUR".into(),
        reason: Some(reason.into()),
    })
}

fn refunded(amount_minor: i64, total: i64) -> PaymentsEvent {
    PaymentsEvent::PaymentRefunded(PaymentRefunded {
        order_id: ORDER.into(),
        amount_minor,
        currency: "EUR".into(),
        refunded_total_minor: total,
        reason: Some("returned".into()),
        gateway_reference: "sim_ref_1".into(),
    })
}

fn given(events: Vec<PaymentsEvent>) -> AggregateTest<Payment> {
    AggregateTest::<Payment>::given(events)
}

/// Histories for every status but `New`.
fn every_decided_history() -> Vec<(PaymentStatus, Vec<PaymentsEvent>)> {
    vec![
        (PaymentStatus::Pending, vec![pending()]),
        (PaymentStatus::Authorized, vec![authorized()]),
        (PaymentStatus::Declined, vec![declined()]),
        (PaymentStatus::TimedOut, vec![pending(), timed_out()]),
        (PaymentStatus::Captured, vec![authorized(), captured(5000)]),
        (PaymentStatus::Voided, vec![authorized(), voided("x")]),
    ]
}

// ---- AuthorizePayment ----

#[test]
fn authorize_records_what_the_gateway_answered() {
    let state = given(vec![])
        .when_with(authorize(), 0, approved())
        .then_expect_events(vec![authorized()]);
    assert_eq!(state.status, PaymentStatus::Authorized);
    assert_eq!(state.gateway_reference, REF);
    assert_eq!(state.authorization_code.as_deref(), Some("A1B2C3"));

    let state = given(vec![])
        .when_with(authorize(), 0, refused())
        .then_expect_events(vec![declined()]);
    assert_eq!(state.status, PaymentStatus::Declined);
    assert_eq!(state.decline_code.as_deref(), Some("insufficient_funds"));

    let state = given(vec![])
        .when_with(authorize(), 0, pending_answer())
        .then_expect_events(vec![pending()]);
    assert_eq!(state.status, PaymentStatus::Pending);
    assert_eq!(state.gateway_reference, REF);
}

#[test]
fn authorize_needs_the_gateways_authorization_answer() {
    for facts in [
        GatewayAnswer::NotConsulted,
        captured_answer(),
        GatewayAnswer::Voided,
        refunded_answer(),
    ] {
        given(vec![])
            .when_with(authorize(), 0, facts)
            .then_expect_error("gateway-not-consulted");
    }
}

#[test]
fn authorize_field_refusals() {
    for command in [
        authorize_with(0, "EUR", "tok_sim_4242"),
        authorize_with(-1, "EUR", "tok_sim_4242"),
        authorize_with(100, "eur", "tok_sim_4242"),
        authorize_with(100, "EUR", " "),
        authorize_with(100, "EUR", "4242 4242 4242 4242"),
        authorize_with(100, "EUR", "4242-4242-4242-4242"),
        authorize_with(100, "EUR", "4242424242424242"),
        PaymentsCommand::AuthorizePayment(AuthorizePayment {
            order_id: String::new(),
            amount_minor: 100,
            currency: "EUR".into(),
            card_token: "tok_sim_4242".into(),
        }),
    ] {
        given(vec![])
            .when_with(command, 0, approved())
            .then_expect_error("invalid-field");
    }
}

#[test]
fn authorize_again_is_answered_by_what_is_recorded() {
    for (status, history) in every_decided_history() {
        let state = given(history.clone())
            .when_with(authorize(), 0, approved())
            .then_expect_events(vec![]);
        assert_eq!(state.status, status);
        let other_order = PaymentsCommand::AuthorizePayment(AuthorizePayment {
            order_id: "o-2".into(),
            amount_minor: 5000,
            currency: "EUR".into(),
            card_token: "tok_sim_4242".into(),
        });
        given(history)
            .when(other_order)
            .then_expect_error("order-mismatch");
    }
}

// ---- RecordGatewayAnswer ----

#[test]
fn a_webhook_answers_a_pending_payment() {
    let state = given(vec![pending()])
        .when(webhook(true))
        .then_expect_events(vec![authorized_with("W3BH00")]);
    assert_eq!(state.status, PaymentStatus::Authorized);
    given(vec![pending()])
        .when(webhook(false))
        .then_expect_events(vec![PaymentsEvent::PaymentDeclined(PaymentDeclined {
            order_id: ORDER.into(),
            amount_minor: 5000,
            currency: "EUR".into(),
            decline_code: "card_declined".into(),
            decline_message: Some("Declined.".into()),
        })]);
}

#[test]
fn a_webhook_must_name_this_payment_and_carry_its_codes() {
    let mut stranger = answer(true);
    stranger.gateway_reference = "sim_someone_else".into();
    given(vec![pending()])
        .when(PaymentsCommand::RecordGatewayAnswer(stranger))
        .then_expect_error("unknown-reference");
    given(vec![])
        .when(webhook(true))
        .then_expect_error("not-found");

    let mut no_code = answer(true);
    no_code.authorization_code = None;
    let mut no_decline = answer(false);
    no_decline.decline_code = None;
    let mut no_event_id = answer(true);
    no_event_id.webhook_event_id = String::new();
    for bad in [no_code, no_decline, no_event_id] {
        given(vec![pending()])
            .when(PaymentsCommand::RecordGatewayAnswer(bad))
            .then_expect_error("invalid-field");
    }
}

#[test]
fn a_replayed_webhook_changes_nothing() {
    for history in [
        vec![pending(), authorized_with("W3BH00")],
        vec![pending(), declined()],
        vec![pending(), authorized(), captured(5000)],
        vec![pending(), voided("order cancelled")],
    ] {
        for approved in [true, false] {
            given(history.clone())
                .when(webhook(approved))
                .then_expect_events(vec![]);
        }
    }
}

#[test]
fn an_approval_after_the_timeout_is_voided_at_the_gateway() {
    let state = given(vec![pending(), timed_out()])
        .when_with(webhook(true), 0, GatewayAnswer::Voided)
        .then_expect_events(vec![voided(LATE_APPROVAL_REASON)]);
    assert_eq!(state.status, PaymentStatus::Voided);
    // Without the gateway's void, recording it would lie.
    for facts in [GatewayAnswer::NotConsulted, approved(), captured_answer()] {
        given(vec![pending(), timed_out()])
            .when_with(webhook(true), 0, facts)
            .then_expect_error("gateway-not-consulted");
    }
    // A decline after the timeout: nothing is held.
    given(vec![pending(), timed_out()])
        .when(webhook(false))
        .then_expect_events(vec![]);
}

// ---- ExpirePaymentAuthorization ----

#[test]
fn expiry_times_out_a_pending_payment_only() {
    let state = given(vec![pending()])
        .when(expire())
        .then_expect_events(vec![timed_out()]);
    assert_eq!(state.status, PaymentStatus::TimedOut);
    assert_eq!(
        state.gateway_reference, REF,
        "kept, to void a late approval"
    );
    for (status, history) in every_decided_history() {
        if status != PaymentStatus::Pending {
            given(history).when(expire()).then_expect_events(vec![]);
        }
    }
    given(vec![]).when(expire()).then_expect_error("not-found");
}

// ---- CapturePayment ----

#[test]
fn capture_takes_the_authorized_amount_or_less() {
    let state = given(vec![authorized()])
        .when_with(capture(5000, "EUR"), 0, captured_answer())
        .then_expect_events(vec![captured(5000)]);
    assert_eq!(state.status, PaymentStatus::Captured);
    assert_eq!(state.captured_minor, 5000);
    assert_eq!(state.capture_reference.as_deref(), Some("sim_cap_1"));
    given(vec![authorized()])
        .when_with(capture(4000, "EUR"), 0, captured_answer())
        .then_expect_events(vec![captured(4000)]);
}

#[test]
fn capture_refusals() {
    given(vec![authorized()])
        .when_with(capture(5001, "EUR"), 0, captured_answer())
        .then_expect_error("amount-exceeds-authorization");
    for command in [
        capture(0, "EUR"),
        capture(-5, "EUR"),
        capture(100, "USD"),
        capture(100, "eu"),
    ] {
        given(vec![authorized()])
            .when_with(command, 0, captured_answer())
            .then_expect_error("invalid-field");
    }
    given(vec![])
        .when(capture(100, "EUR"))
        .then_expect_error("not-found");
    for history in [
        vec![pending()],
        vec![declined()],
        vec![pending(), timed_out()],
        vec![authorized(), voided("x")],
    ] {
        given(history)
            .when_with(capture(100, "EUR"), 0, captured_answer())
            .then_expect_error("not-authorized");
    }
    for facts in [
        GatewayAnswer::NotConsulted,
        GatewayAnswer::Voided,
        approved(),
    ] {
        given(vec![authorized()])
            .when_with(capture(100, "EUR"), 0, facts)
            .then_expect_error("gateway-not-consulted");
    }
    given(vec![authorized()])
        .when_with(capture(100, "EUR"), 0, refused())
        .then_expect_error("gateway-declined");
}

#[test]
fn capture_happens_once() {
    given(vec![authorized(), captured(5000)])
        .when(capture(5000, "EUR"))
        .then_expect_events(vec![]);
}

// ---- VoidPayment ----

#[test]
fn void_releases_an_authorized_or_pending_payment() {
    for history in [vec![authorized()], vec![pending()]] {
        let state = given(history)
            .when_with(void(), 0, GatewayAnswer::Voided)
            .then_expect_events(vec![voided("order cancelled")]);
        assert_eq!(state.status, PaymentStatus::Voided);
    }
    for facts in [
        GatewayAnswer::NotConsulted,
        captured_answer(),
        refunded_answer(),
    ] {
        given(vec![authorized()])
            .when_with(void(), 0, facts)
            .then_expect_error("gateway-not-consulted");
    }
}

#[test]
fn void_when_nothing_is_held_is_satisfied() {
    for history in [
        vec![authorized(), voided("x")],
        vec![declined()],
        vec![pending(), timed_out()],
    ] {
        given(history).when(void()).then_expect_events(vec![]);
    }
}

#[test]
fn void_refusals() {
    given(vec![authorized(), captured(5000)])
        .when_with(void(), 0, GatewayAnswer::Voided)
        .then_expect_error("already-captured");
    given(vec![]).when(void()).then_expect_error("not-found");
    let long = PaymentsCommand::VoidPayment(VoidPayment {
        reason: Some("x".repeat(201)),
    });
    given(vec![authorized()])
        .when_with(long, 0, GatewayAnswer::Voided)
        .then_expect_error("invalid-field");
}

// ---- RefundPayment ----

#[test]
fn partial_refunds_accumulate_up_to_the_capture() {
    let state = given(vec![authorized(), captured(5000)])
        .when_with(refund(2000, "EUR"), 0, refunded_answer())
        .then_expect_events(vec![refunded(2000, 2000)]);
    assert_eq!(
        (state.refunded_total_minor, state.refundable_minor()),
        (2000, 3000)
    );
    let history = vec![authorized(), captured(5000), refunded(2000, 2000)];
    let state = given(history.clone())
        .when_with(refund(3000, "EUR"), 0, refunded_answer())
        .then_expect_events(vec![refunded(3000, 5000)]);
    assert_eq!(state.refundable_minor(), 0);
    assert_eq!(state.status, PaymentStatus::Captured);
    given(history)
        .when_with(refund(3001, "EUR"), 0, refunded_answer())
        .then_expect_error("refund-exceeds-capture");
}

#[test]
fn refund_refusals() {
    let captured_history = || vec![authorized(), captured(4000)];
    given(captured_history())
        .when_with(refund(4001, "EUR"), 0, refunded_answer())
        .then_expect_error("refund-exceeds-capture");
    given(vec![authorized(), captured(4000), refunded(1, 1)])
        .when_with(refund(i64::MAX, "EUR"), 0, refunded_answer())
        .then_expect_error("refund-exceeds-capture");
    for command in [refund(0, "EUR"), refund(-1, "EUR"), refund(10, "USD")] {
        given(captured_history())
            .when_with(command, 0, refunded_answer())
            .then_expect_error("invalid-field");
    }
    given(vec![])
        .when(refund(10, "EUR"))
        .then_expect_error("not-found");
    for history in [
        vec![authorized()],
        vec![pending()],
        vec![authorized(), voided("x")],
    ] {
        given(history)
            .when_with(refund(10, "EUR"), 0, refunded_answer())
            .then_expect_error("not-captured");
    }
    for facts in [
        GatewayAnswer::NotConsulted,
        captured_answer(),
        GatewayAnswer::Voided,
    ] {
        given(captured_history())
            .when_with(refund(10, "EUR"), 0, facts)
            .then_expect_error("gateway-not-consulted");
    }
}

// ---- the consultant's contract ----

/// The consultant asks the gateway exactly when `decide` would use the
/// answer: whenever [`Payment::gateway_request`] says so, deciding without
/// an answer is refused `gateway-not-consulted`, and otherwise it never is.
#[test]
fn gateway_requests_match_what_decide_needs() {
    let mut histories = vec![(PaymentStatus::New, vec![])];
    histories.extend(every_decided_history());
    histories.push((
        PaymentStatus::Captured,
        vec![authorized(), captured(5000), refunded(5000, 5000)],
    ));
    let commands = [
        authorize(),
        authorize_with(0, "EUR", "tok_sim_4242"),
        webhook(true),
        webhook(false),
        expire(),
        capture(5000, "EUR"),
        capture(9999, "EUR"),
        void(),
        refund(100, "EUR"),
        refund(9999, "EUR"),
    ];
    let mut asked = 0;
    for (_, history) in &histories {
        let mut state = Payment::default();
        for e in history {
            state.evolve(e);
        }
        for command in &commands {
            let request = state.gateway_request(command);
            let context = DecisionContext {
                aggregate_id: ORDER.into(),
                version: 1,
                now_ms: 0,
                actor: "tester".into(),
                facts: GatewayAnswer::NotConsulted,
            };
            let unanswered = matches!(
                state.decide(command, &context),
                Err(PaymentError::GatewayNotConsulted)
            );
            assert_eq!(
                request.is_some(),
                unanswered,
                "{:?} / {command:?}: request {request:?}",
                state.status
            );
            asked += usize::from(request.is_some());
        }
    }
    assert_eq!(
        asked, 6,
        "authorize on New, void on Pending and Authorized, capture, late approval, refund"
    );
}

#[test]
fn requests_name_the_payment_at_the_gateway() {
    let mut state = Payment::default();
    state.evolve(&authorized());
    assert_eq!(
        state.gateway_request(&capture(5000, "EUR")),
        Some(GatewayRequest::Capture {
            gateway_reference: REF.into(),
            amount_minor: 5000,
            currency: "EUR".into(),
        })
    );
    assert_eq!(
        Payment::default().gateway_request(&authorize()),
        Some(GatewayRequest::Authorize {
            token: "tok_sim_4242".into(),
            amount_minor: 5000,
            currency: "EUR".into(),
        })
    );
}

#[test]
fn the_state_survives_a_snapshot() {
    let mut state = Payment::default();
    for e in [authorized(), captured(5000), refunded(100, 100)] {
        state.evolve(&e);
    }
    let json = serde_json::to_string(&state).unwrap();
    assert_eq!(serde_json::from_str::<Payment>(&json).unwrap(), state);
}
