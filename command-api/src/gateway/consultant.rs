//! [`PaymentConsultant`]: the processor's way to ask the gateway.
//!
//! Why a consultant and not a gateway call inside `decide`: `decide` is
//! pure — replayed on restore, run in tests without a network — so whatever
//! the gateway says has to reach it as data. The processor calls the
//! consultant inside the batch transaction just before `decide`; the answer
//! becomes `facts`, and the events record it, so a restore never calls out.
//!
//! Why it asks only when needed: a call to the gateway can move money, so a
//! command that `decide` will refuse or answer from the state (a replay, a
//! capture already done) must not reach it. What to ask comes from
//! [`Payment::gateway_request`], the same plan `decide` follows.
//!
//! Why the command id is the idempotency key: if the batch aborts after the
//! call, the command is consulted again on redelivery, and the gateway must
//! answer the same instead of authorizing or refunding twice.

use std::sync::Arc;

use schemas::payments::PaymentsCommand;
use schemas::CommandEnvelope;

use super::{GatewayAnswer, GatewayError, PaymentGateway};
use crate::domain::payments::{GatewayRequest, Payment};
use crate::processor::{ConsultError, Consultant, Consultation};

/// Asks a [`PaymentGateway`] before each payment decision that needs it.
#[derive(Debug, Clone)]
pub struct PaymentConsultant {
    gateway: Arc<dyn PaymentGateway>,
}

impl PaymentConsultant {
    pub fn new(gateway: Arc<dyn PaymentGateway>) -> Self {
        Self { gateway }
    }

    async fn ask(
        &self,
        idempotency_key: &str,
        request: GatewayRequest,
    ) -> Result<GatewayAnswer, GatewayError> {
        let gateway = &self.gateway;
        match request {
            GatewayRequest::Authorize {
                token,
                amount_minor,
                currency,
            } => {
                gateway
                    .authorize(idempotency_key, &token, amount_minor, &currency)
                    .await
            }
            GatewayRequest::Capture {
                gateway_reference,
                amount_minor,
                currency,
            } => {
                gateway
                    .capture(idempotency_key, &gateway_reference, amount_minor, &currency)
                    .await
            }
            GatewayRequest::Void { gateway_reference } => {
                gateway.void(idempotency_key, &gateway_reference).await
            }
            GatewayRequest::Refund {
                gateway_reference,
                amount_minor,
                currency,
            } => {
                gateway
                    .refund(idempotency_key, &gateway_reference, amount_minor, &currency)
                    .await
            }
        }
    }
}

impl Consultant<Payment> for PaymentConsultant {
    fn consult<'a>(
        &'a self,
        state: &'a Payment,
        envelope: &'a CommandEnvelope,
        command: &'a PaymentsCommand,
    ) -> Consultation<'a, GatewayAnswer> {
        Box::pin(async move {
            let Some(request) = state.gateway_request(command) else {
                return Ok(GatewayAnswer::NotConsulted);
            };
            self.ask(&envelope.command_id, request)
                .await
                .map_err(|e: GatewayError| ConsultError {
                    system: "payment gateway",
                    reason: e.to_string(),
                })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use schemas::payments::{
        AuthorizePayment, CapturePayment, ExpirePaymentAuthorization, PaymentAuthorizationPending,
        PaymentAuthorizationTimedOut, PaymentAuthorized, PaymentCaptured, PaymentsEvent,
        RecordGatewayAnswer, RefundPayment, VoidPayment,
    };

    use super::*;
    use crate::aggregate::{Aggregate, DecisionContext};
    use crate::gateway::{PaymentToken, SimulatedGateway, TokenizeError};

    /// The simulator, counting what it was asked.
    #[derive(Debug, Default)]
    struct Recording {
        inner: SimulatedGateway,
        calls: Mutex<Vec<String>>,
    }

    impl Recording {
        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl PaymentGateway for Recording {
        async fn tokenize(&self, card_number: &str) -> Result<PaymentToken, TokenizeError> {
            self.inner.tokenize(card_number).await
        }

        async fn authorize(
            &self,
            key: &str,
            token: &str,
            amount_minor: i64,
            currency: &str,
        ) -> Result<GatewayAnswer, GatewayError> {
            self.record(format!("authorize {key} {token} {amount_minor} {currency}"));
            self.inner
                .authorize(key, token, amount_minor, currency)
                .await
        }

        async fn capture(
            &self,
            key: &str,
            reference: &str,
            amount_minor: i64,
            currency: &str,
        ) -> Result<GatewayAnswer, GatewayError> {
            self.record(format!(
                "capture {key} {reference} {amount_minor} {currency}"
            ));
            self.inner
                .capture(key, reference, amount_minor, currency)
                .await
        }

        async fn void(&self, key: &str, reference: &str) -> Result<GatewayAnswer, GatewayError> {
            self.record(format!("void {key} {reference}"));
            self.inner.void(key, reference).await
        }

        async fn refund(
            &self,
            key: &str,
            reference: &str,
            amount_minor: i64,
            currency: &str,
        ) -> Result<GatewayAnswer, GatewayError> {
            self.record(format!(
                "refund {key} {reference} {amount_minor} {currency}"
            ));
            self.inner
                .refund(key, reference, amount_minor, currency)
                .await
        }
    }

    fn envelope(command_id: &str) -> CommandEnvelope {
        CommandEnvelope {
            command_id: command_id.into(),
            aggregate_type: "Payment".into(),
            aggregate_id: "o-1".into(),
            expected_version: None,
            issued_at: 0,
            correlation_id: "o-1".into(),
            causation_id: "test".into(),
            actor: "system:order-fulfillment".into(),
            reply_to: None,
        }
    }

    fn setup() -> (Arc<Recording>, PaymentConsultant) {
        let gateway = Arc::new(Recording::default());
        let consultant = PaymentConsultant::new(gateway.clone());
        (gateway, consultant)
    }

    fn consult(
        consultant: &PaymentConsultant,
        state: &Payment,
        command_id: &str,
        command: &PaymentsCommand,
    ) -> Result<GatewayAnswer, ConsultError> {
        futures::executor::block_on(consultant.consult(state, &envelope(command_id), command))
    }

    fn state(events: &[PaymentsEvent]) -> Payment {
        let mut state = Payment::default();
        for e in events {
            state.evolve(e);
        }
        state
    }

    fn authorize(token: &str, amount_minor: i64) -> PaymentsCommand {
        PaymentsCommand::AuthorizePayment(AuthorizePayment {
            order_id: "o-1".into(),
            amount_minor,
            currency: "EUR".into(),
            card_token: token.into(),
        })
    }

    fn pending() -> PaymentsEvent {
        PaymentsEvent::PaymentAuthorizationPending(PaymentAuthorizationPending {
            order_id: "o-1".into(),
            amount_minor: 5000,
            currency: "EUR".into(),
            gateway_reference: "sim_p".into(),
        })
    }

    fn authorized() -> PaymentsEvent {
        PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
            order_id: "o-1".into(),
            amount_minor: 5000,
            currency: "EUR".into(),
            authorization_code: "A1".into(),
            gateway_reference: "sim_p".into(),
        })
    }

    fn captured() -> PaymentsEvent {
        PaymentsEvent::PaymentCaptured(PaymentCaptured {
            order_id: "o-1".into(),
            amount_minor: 5000,
            currency: "EUR".into(),
            gateway_reference: "sim_cap_x".into(),
        })
    }

    fn timed_out() -> PaymentsEvent {
        PaymentsEvent::PaymentAuthorizationTimedOut(PaymentAuthorizationTimedOut {
            order_id: "o-1".into(),
            amount_minor: 5000,
            currency: "EUR".into(),
        })
    }

    fn webhook(approved: bool) -> PaymentsCommand {
        PaymentsCommand::RecordGatewayAnswer(RecordGatewayAnswer {
            gateway_reference: "sim_p".into(),
            webhook_event_id: "evt_1".into(),
            approved,
            authorization_code: approved.then(|| "A1".into()),
            decline_code: (!approved).then(|| "card_declined".into()),
            decline_message: None,
        })
    }

    fn refund(amount_minor: i64) -> PaymentsCommand {
        PaymentsCommand::RefundPayment(RefundPayment {
            amount_minor,
            currency: "EUR".into(),
            reason: None,
        })
    }

    #[test]
    fn authorize_asks_the_gateway_with_the_command_id_as_key() {
        let (gateway, consultant) = setup();
        let new = Payment::default();
        let command = authorize("tok_sim_4242", 5000);
        let facts = consult(&consultant, &new, "cmd-1", &command).unwrap();
        assert!(
            matches!(facts, GatewayAnswer::Authorized { .. }),
            "{facts:?}"
        );
        assert_eq!(gateway.calls(), ["authorize cmd-1 tok_sim_4242 5000 EUR"]);
        // Consulted again after an aborted batch: the same answer.
        assert_eq!(
            consult(&consultant, &new, "cmd-1", &command).unwrap(),
            facts
        );
        // The answer decides.
        let context = DecisionContext {
            aggregate_id: "o-1".into(),
            version: 0,
            now_ms: 0,
            actor: "system:order-fulfillment".into(),
            facts,
        };
        let events = new.decide(&command, &context).unwrap();
        assert!(matches!(
            events.as_slice(),
            [PaymentsEvent::PaymentAuthorized(_)]
        ));
    }

    #[test]
    fn nothing_is_asked_when_decide_will_not_use_the_answer() {
        let (gateway, consultant) = setup();
        let cases = [
            // Refused anyway.
            (state(&[]), authorize("tok_sim_4242", 0)),
            (state(&[]), refund(100)),
            (state(&[authorized()]), refund(100)),
            (state(&[authorized(), captured()]), refund(5001)),
            (
                state(&[authorized()]),
                PaymentsCommand::CapturePayment(CapturePayment {
                    amount_minor: 9999,
                    currency: "EUR".into(),
                }),
            ),
            // Answered from the state.
            (state(&[authorized()]), authorize("tok_sim_4242", 5000)),
            (
                state(&[authorized(), captured()]),
                PaymentsCommand::CapturePayment(CapturePayment {
                    amount_minor: 5000,
                    currency: "EUR".into(),
                }),
            ),
            (state(&[pending()]), webhook(true)),
            (state(&[pending()]), webhook(false)),
            (state(&[pending(), timed_out()]), webhook(false)),
            (
                state(&[pending()]),
                PaymentsCommand::ExpirePaymentAuthorization(ExpirePaymentAuthorization {
                    deadline_at: 1,
                }),
            ),
            (
                state(&[pending(), timed_out()]),
                PaymentsCommand::VoidPayment(VoidPayment { reason: None }),
            ),
        ];
        for (state, command) in &cases {
            assert_eq!(
                consult(&consultant, state, "cmd", command).unwrap(),
                GatewayAnswer::NotConsulted,
                "{command:?}"
            );
        }
        assert!(gateway.calls().is_empty(), "{:?}", gateway.calls());
    }

    #[test]
    fn capture_void_refund_and_late_approvals_ask_the_gateway() {
        let (gateway, consultant) = setup();
        let capture = PaymentsCommand::CapturePayment(CapturePayment {
            amount_minor: 4000,
            currency: "EUR".into(),
        });
        let void = PaymentsCommand::VoidPayment(VoidPayment { reason: None });
        assert!(matches!(
            consult(&consultant, &state(&[authorized()]), "c-1", &capture).unwrap(),
            GatewayAnswer::Captured { .. }
        ));
        for (id, history) in [("v-1", vec![authorized()]), ("v-2", vec![pending()])] {
            assert_eq!(
                consult(&consultant, &state(&history), id, &void).unwrap(),
                GatewayAnswer::Voided
            );
        }
        assert_eq!(
            consult(
                &consultant,
                &state(&[pending(), timed_out()]),
                "w-1",
                &webhook(true)
            )
            .unwrap(),
            GatewayAnswer::Voided
        );
        assert!(matches!(
            consult(
                &consultant,
                &state(&[authorized(), captured()]),
                "r-1",
                &refund(5000)
            )
            .unwrap(),
            GatewayAnswer::Refunded { .. }
        ));
        assert_eq!(
            gateway.calls(),
            [
                "capture c-1 sim_p 4000 EUR",
                "void v-1 sim_p",
                "void v-2 sim_p",
                "void w-1 sim_p",
                "refund r-1 sim_p 5000 EUR",
            ]
        );
    }

    #[test]
    fn an_unavailable_gateway_is_a_consult_error() {
        let gateway = Arc::new(SimulatedGateway::with_outage(true));
        let consultant = PaymentConsultant::new(gateway.clone());
        let err = consult(
            &consultant,
            &Payment::default(),
            "cmd-1",
            &authorize("tok_sim_4242", 1),
        )
        .unwrap_err();
        assert_eq!(err.system, "payment gateway");
        assert!(err.reason.contains("outage"), "{err}");
        gateway.set_outage(false);
        assert!(consult(
            &consultant,
            &Payment::default(),
            "cmd-1",
            &authorize("tok_sim_4242", 1)
        )
        .is_ok());
    }
}
