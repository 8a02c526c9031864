//! Payments by order (the payment id is the order id): status and the
//! amounts authorized, captured and refunded, each cell set by the event
//! that states it (`PaymentRefunded.refunded_total_minor` is the running
//! total, so no sum is kept).
//!
//! Every input is a `Payment` event, every cell written with that
//! Payment's version. The statuses are the ones [`super::orders`] shows as
//! an order's `payment_status`.

use platform::readstore::{column, ColumnType as T, Mutation, Row, TableDef, Value};
use schemas::payments::PaymentsEvent;
use schemas::{AnyEvent, Context};

use crate::projection::{
    opt_text, row, text, upsert, Input, Projected, Projection, ProjectionError,
};

pub const PAYMENTS_BY_ORDER: TableDef = TableDef {
    name: "payments_by_order",
    partition_key: &[column("order_id", T::Text)],
    clustering: &[],
    columns: &[
        column("payment_id", T::Text),
        column("status", T::Text),
        column("currency", T::Text),
        column("amount_minor", T::BigInt),
        column("authorized_minor", T::BigInt),
        column("captured_minor", T::BigInt),
        column("refunded_minor", T::BigInt),
        column("authorization_code", T::Text),
        column("gateway_reference", T::Text),
        column("decline_code", T::Text),
        column("decline_message", T::Text),
        column("status_reason", T::Text),
        column("status_at", T::Timestamp),
        column("payment_version", T::BigInt),
    ],
};

const TABLES: &[TableDef] = &[PAYMENTS_BY_ORDER];

#[derive(Debug, Default, Clone, Copy)]
pub struct PaymentsProjection;

impl Projection for PaymentsProjection {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Payments)]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        // Only payments events are on its topic.
        let AnyEvent::Payments(event) = event else {
            return Ok(Vec::new());
        };
        // `amount_minor` is the payment's amount: the events about the
        // authorization state it; a capture or a refund states its own
        // amount, which has a column of its own.
        let (order_id, status, reason, cells): (&str, &str, Option<&str>, Row) = match event {
            PaymentsEvent::PaymentAuthorizationPending(e) => (
                &e.order_id,
                "PENDING",
                None,
                row([
                    ("amount_minor", Value::BigInt(e.amount_minor)),
                    ("currency", text(&e.currency)),
                    ("gateway_reference", text(&e.gateway_reference)),
                ]),
            ),
            PaymentsEvent::PaymentAuthorized(e) => (
                &e.order_id,
                "AUTHORIZED",
                None,
                row([
                    ("amount_minor", Value::BigInt(e.amount_minor)),
                    ("authorized_minor", Value::BigInt(e.amount_minor)),
                    ("currency", text(&e.currency)),
                    ("authorization_code", text(&e.authorization_code)),
                    ("gateway_reference", text(&e.gateway_reference)),
                ]),
            ),
            PaymentsEvent::PaymentDeclined(e) => (
                &e.order_id,
                "DECLINED",
                Some(e.decline_code.as_str()),
                row([
                    ("amount_minor", Value::BigInt(e.amount_minor)),
                    ("currency", text(&e.currency)),
                    ("decline_code", text(&e.decline_code)),
                    ("decline_message", opt_text(e.decline_message.as_deref())),
                ]),
            ),
            PaymentsEvent::PaymentAuthorizationTimedOut(e) => (
                &e.order_id,
                "TIMED_OUT",
                None,
                row([
                    ("amount_minor", Value::BigInt(e.amount_minor)),
                    ("currency", text(&e.currency)),
                ]),
            ),
            PaymentsEvent::PaymentCaptured(e) => (
                &e.order_id,
                "CAPTURED",
                None,
                row([
                    ("captured_minor", Value::BigInt(e.amount_minor)),
                    ("currency", text(&e.currency)),
                    ("gateway_reference", text(&e.gateway_reference)),
                ]),
            ),
            PaymentsEvent::PaymentVoided(e) => (
                &e.order_id,
                "VOIDED",
                e.reason.as_deref(),
                row([
                    ("amount_minor", Value::BigInt(e.amount_minor)),
                    ("currency", text(&e.currency)),
                ]),
            ),
            // Partial or full, the status is REFUNDED: telling them apart
            // needs the captured amount, from another event.
            PaymentsEvent::PaymentRefunded(e) => (
                &e.order_id,
                "REFUNDED",
                e.reason.as_deref(),
                row([
                    ("refunded_minor", Value::BigInt(e.refunded_total_minor)),
                    ("currency", text(&e.currency)),
                    ("gateway_reference", text(&e.gateway_reference)),
                ]),
            ),
        };
        let mut cells = cells;
        cells.extend(row([
            ("order_id", text(order_id)),
            ("payment_id", text(&envelope.aggregate_id)),
            ("status", text(status)),
            ("status_reason", opt_text(reason)),
            ("status_at", Value::Timestamp(envelope.occurred_at)),
            ("payment_version", Value::BigInt(envelope.version)),
        ]));
        Ok(vec![upsert(PAYMENTS_BY_ORDER, envelope.version, cells)])
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
    use schemas::payments::{
        PaymentAuthorizationPending, PaymentAuthorizationTimedOut, PaymentAuthorized,
        PaymentCaptured, PaymentDeclined, PaymentRefunded, PaymentVoided,
    };

    use super::*;
    use crate::testkit::{assert_replay_safe, ProjectionTest, Stream, START_MS};

    fn authorized(order: &str) -> PaymentsEvent {
        PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
            order_id: order.into(),
            amount_minor: 3597,
            currency: "EUR".into(),
            authorization_code: "A-1".into(),
            gateway_reference: "sim_auth".into(),
        })
    }

    fn captured(order: &str) -> PaymentsEvent {
        PaymentsEvent::PaymentCaptured(PaymentCaptured {
            order_id: order.into(),
            amount_minor: 3597,
            currency: "EUR".into(),
            gateway_reference: "sim_capture".into(),
        })
    }

    fn refunded(order: &str, amount: i64, total: i64) -> PaymentsEvent {
        PaymentsEvent::PaymentRefunded(PaymentRefunded {
            order_id: order.into(),
            amount_minor: amount,
            currency: "EUR".into(),
            refunded_total_minor: total,
            reason: Some("returned".into()),
            gateway_reference: format!("sim_refund_{total}"),
        })
    }

    fn order(o: &str) -> Row {
        row([("order_id", text(o))])
    }

    #[tokio::test]
    async fn an_authorized_captured_and_refunded_payment() {
        let mut p = Stream::new("Payment", "o-1");
        let mut test = ProjectionTest::given(
            PaymentsProjection,
            [
                p.next(PaymentsEvent::PaymentAuthorizationPending(
                    PaymentAuthorizationPending {
                        order_id: "o-1".into(),
                        amount_minor: 3597,
                        currency: "EUR".into(),
                        gateway_reference: "sim_pending".into(),
                    },
                )),
                p.next(authorized("o-1")),
                p.next(captured("o-1")),
            ],
        )
        .await;
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-1")).await;
        assert_eq!(row["payment_id"], text("o-1"));
        assert_eq!(row["status"], text("CAPTURED"));
        assert_eq!(row["amount_minor"], Value::BigInt(3597));
        assert_eq!(row["authorized_minor"], Value::BigInt(3597));
        assert_eq!(row["captured_minor"], Value::BigInt(3597));
        assert_eq!(row["refunded_minor"], Value::Null);
        assert_eq!(row["authorization_code"], text("A-1"));
        assert_eq!(row["gateway_reference"], text("sim_capture"));
        assert_eq!(row["status_at"], Value::Timestamp(START_MS + 3_000));
        assert_eq!(row["payment_version"], Value::BigInt(3));

        test.when([
            p.next(refunded("o-1", 1000, 1000)),
            p.next(refunded("o-1", 500, 1500)),
        ])
        .await;
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-1")).await;
        assert_eq!(row["status"], text("REFUNDED"));
        assert_eq!(
            row["refunded_minor"],
            Value::BigInt(1500),
            "the running total"
        );
        assert_eq!(row["captured_minor"], Value::BigInt(3597));
        assert_eq!(row["amount_minor"], Value::BigInt(3597), "not the refund's");
        assert_eq!(row["status_reason"], text("returned"));
        assert_eq!(row["payment_version"], Value::BigInt(5));
    }

    #[tokio::test]
    async fn declined_timed_out_and_voided_payments() {
        let mut declined = Stream::new("Payment", "o-1");
        let mut timed_out = Stream::new("Payment", "o-2");
        let mut voided = Stream::new("Payment", "o-3");
        let test = ProjectionTest::given(
            PaymentsProjection,
            [
                declined.next(PaymentsEvent::PaymentDeclined(PaymentDeclined {
                    order_id: "o-1".into(),
                    amount_minor: 3597,
                    currency: "EUR".into(),
                    decline_code: "card_declined".into(),
                    decline_message: Some("Insufficient funds".into()),
                })),
                timed_out.next(PaymentsEvent::PaymentAuthorizationTimedOut(
                    PaymentAuthorizationTimedOut {
                        order_id: "o-2".into(),
                        amount_minor: 100,
                        currency: "EUR".into(),
                    },
                )),
                voided.next(authorized("o-3")),
                voided.next(PaymentsEvent::PaymentVoided(PaymentVoided {
                    order_id: "o-3".into(),
                    amount_minor: 3597,
                    currency: "EUR".into(),
                    reason: Some("order cancelled".into()),
                })),
            ],
        )
        .await;
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-1")).await;
        assert_eq!(row["status"], text("DECLINED"));
        assert_eq!(row["decline_code"], text("card_declined"));
        assert_eq!(row["decline_message"], text("Insufficient funds"));
        assert_eq!(row["status_reason"], text("card_declined"));
        assert_eq!(row["authorized_minor"], Value::Null);
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-2")).await;
        assert_eq!(row["status"], text("TIMED_OUT"));
        assert_eq!(row["amount_minor"], Value::BigInt(100));
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-3")).await;
        assert_eq!(row["status"], text("VOIDED"));
        assert_eq!(row["status_reason"], text("order cancelled"));
        assert_eq!(row["authorized_minor"], Value::BigInt(3597));
    }

    #[tokio::test]
    async fn redelivery_and_interleaving_change_nothing() {
        let mut one = Stream::new("Payment", "o-1");
        let mut two = Stream::new("Payment", "o-2");
        let inputs = [
            one.next(authorized("o-1")),
            two.next(authorized("o-2")),
            one.next(captured("o-1")),
            two.next(captured("o-2")),
            one.next(refunded("o-1", 500, 500)),
            one.next(refunded("o-1", 700, 1200)),
        ];
        assert_replay_safe(PaymentsProjection, &inputs).await;
        let test = ProjectionTest::given(PaymentsProjection, inputs).await;
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-1")).await;
        assert_eq!(row["refunded_minor"], Value::BigInt(1200));
        let row = test.expect_row(PAYMENTS_BY_ORDER, order("o-2")).await;
        assert_eq!(row["status"], text("CAPTURED"));
    }
}
