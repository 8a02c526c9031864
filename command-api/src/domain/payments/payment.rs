//! `Payment`: the money side of one order (its id is the order id) —
//! authorized through the gateway, then captured on shipment or voided, and
//! refunded (in parts) after capture.
//!
//! The gateway is asked *before* the decision (by
//! [`PaymentConsultant`](crate::gateway::PaymentConsultant)) and its answer
//! arrives as `facts`: `decide` stays pure, and the answer is recorded in the
//! events, so a restore replays them without calling the gateway again.
//!
//! Which commands need the gateway, and what to ask it, is decided here
//! once ([`Payment::gateway_request`]): the consultant asks exactly when
//! `decide` will use the answer.

use std::fmt;

use schemas::payments::{
    AuthorizePayment, CapturePayment, ExpirePaymentAuthorization, PaymentAuthorizationPending,
    PaymentAuthorizationTimedOut, PaymentAuthorized, PaymentCaptured, PaymentDeclined,
    PaymentRefunded, PaymentVoided, PaymentsCommand, PaymentsEvent, RecordGatewayAnswer,
    RefundPayment, VoidPayment,
};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::validate::{self, MAX_TEXT};
use crate::gateway::GatewayAnswer;

/// Why a payment approved after its timeout is voided.
pub const LATE_APPROVAL_REASON: &str = "authorized after the timeout";

/// Where a payment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// No authorization asked yet.
    #[default]
    New,
    /// The gateway will answer by webhook.
    Pending,
    /// The amount is held on the card.
    Authorized,
    Declined,
    /// The gateway did not answer in time; a late approval gets voided.
    TimedOut,
    Captured,
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::New => "new",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Declined => "declined",
            PaymentStatus::TimedOut => "timed out",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Voided => "voided",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub status: PaymentStatus,
    pub order_id: String,
    /// The amount asked for, then authorized, in minor units.
    pub amount_minor: i64,
    pub currency: String,
    /// The gateway's id of the payment (empty until the gateway named it):
    /// webhooks name it, capture/void/refund address it.
    pub gateway_reference: String,
    pub authorization_code: Option<String>,
    pub decline_code: Option<String>,
    pub captured_minor: i64,
    /// The gateway's id of the capture.
    pub capture_reference: Option<String>,
    pub refunded_total_minor: i64,
}

/// What `decide` needs the gateway to answer for a command: the
/// consultant's instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRequest {
    Authorize {
        token: String,
        amount_minor: i64,
        currency: String,
    },
    Capture {
        gateway_reference: String,
        amount_minor: i64,
        currency: String,
    },
    Void {
        gateway_reference: String,
    },
    Refund {
        gateway_reference: String,
        amount_minor: i64,
        currency: String,
    },
}

/// Why a payment command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    NotFound,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("this payment is for another order")]
    OrderMismatch,
    #[error("the gateway reference is not this payment's")]
    UnknownReference,
    #[error("the payment is {0}, not authorized")]
    NotAuthorized(PaymentStatus),
    #[error("the payment is {0}, not captured")]
    NotCaptured(PaymentStatus),
    #[error("the payment is already captured: refund it instead")]
    AlreadyCaptured,
    #[error("{requested} exceeds the authorized {authorized}")]
    AmountExceedsAuthorization { requested: i64, authorized: i64 },
    #[error("{requested} exceeds the {refundable} still refundable")]
    RefundExceedsCapture { requested: i64, refundable: i64 },
    #[error("the gateway was not asked, or answered something else")]
    GatewayNotConsulted,
    #[error("the gateway refused: {0}")]
    GatewayDeclined(String),
}

impl DomainError for PaymentError {
    fn code(&self) -> &'static str {
        match self {
            PaymentError::NotFound => "not-found",
            PaymentError::InvalidField { .. } => "invalid-field",
            PaymentError::OrderMismatch => "order-mismatch",
            PaymentError::UnknownReference => "unknown-reference",
            PaymentError::NotAuthorized(_) => "not-authorized",
            PaymentError::NotCaptured(_) => "not-captured",
            PaymentError::AlreadyCaptured => "already-captured",
            PaymentError::AmountExceedsAuthorization { .. } => "amount-exceeds-authorization",
            PaymentError::RefundExceedsCapture { .. } => "refund-exceeds-capture",
            PaymentError::GatewayNotConsulted => "gateway-not-consulted",
            PaymentError::GatewayDeclined(_) => "gateway-declined",
        }
    }
}

/// What a command leads to before the gateway's answer.
enum Step {
    /// Decided without the gateway (often nothing: a replay).
    Decided(Vec<PaymentsEvent>),
    /// Decided by what the gateway answers to this request.
    Ask(GatewayRequest),
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), PaymentError> {
    result.map_err(|reason| PaymentError::InvalidField { field, reason })
}

fn positive(field: &'static str, minor: i64) -> Result<(), PaymentError> {
    check(
        field,
        if minor > 0 {
            Ok(())
        } else {
            Err("must be positive")
        },
    )
}

fn optional_text(field: &'static str, value: Option<&String>) -> Result<(), PaymentError> {
    match value {
        Some(v) => check(field, validate::text(v, MAX_TEXT)),
        None => Ok(()),
    }
}

/// A present, valid text (an answer's codes).
fn required_text(field: &'static str, value: Option<&String>) -> Result<String, PaymentError> {
    let value = value.ok_or(PaymentError::InvalidField {
        field,
        reason: "is required",
    })?;
    check(field, validate::text(value, MAX_TEXT))?;
    Ok(value.clone())
}

/// A card token, and never a card number: the number stops at the command
/// API's edge (`PaymentGateway::tokenize`). Something that looks like one
/// here is a bug upstream, refused loudly.
fn card_token(token: &str) -> Result<(), PaymentError> {
    check("card_token", validate::text(token, MAX_TEXT))?;
    let digits = token.chars().filter(char::is_ascii_digit).count();
    let only_card_chars = token
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    if only_card_chars && digits >= 12 {
        return Err(PaymentError::InvalidField {
            field: "card_token",
            reason: "must be a gateway token, never a card number",
        });
    }
    Ok(())
}

impl Payment {
    /// What to ask the gateway before deciding `command`, or `None` when the
    /// decision does not depend on it (a refusal, a replay, a webhook's
    /// answer that is already the answer).
    pub fn gateway_request(&self, command: &PaymentsCommand) -> Option<GatewayRequest> {
        match self.plan(command) {
            Ok(Step::Ask(request)) => Some(request),
            Ok(Step::Decided(_)) | Err(_) => None,
        }
    }

    /// What is still refundable.
    pub fn refundable_minor(&self) -> i64 {
        self.captured_minor
            .saturating_sub(self.refunded_total_minor)
    }

    fn plan(&self, command: &PaymentsCommand) -> Result<Step, PaymentError> {
        match command {
            PaymentsCommand::AuthorizePayment(c) => self.plan_authorize(c),
            PaymentsCommand::RecordGatewayAnswer(c) => self.plan_answer(c),
            PaymentsCommand::ExpirePaymentAuthorization(c) => self.plan_expire(c),
            PaymentsCommand::CapturePayment(c) => self.plan_capture(c),
            PaymentsCommand::VoidPayment(c) => self.plan_void(c),
            PaymentsCommand::RefundPayment(c) => self.plan_refund(c),
        }
    }

    fn plan_authorize(&self, c: &AuthorizePayment) -> Result<Step, PaymentError> {
        check("order_id", validate::text(&c.order_id, MAX_TEXT))?;
        if self.status != PaymentStatus::New {
            // One authorization per order: asking again (a saga retry under
            // a new command id) gets the answer already recorded.
            return if c.order_id == self.order_id {
                Ok(Step::Decided(Vec::new()))
            } else {
                Err(PaymentError::OrderMismatch)
            };
        }
        positive("amount_minor", c.amount_minor)?;
        check("currency", validate::currency(&c.currency))?;
        card_token(&c.card_token)?;
        Ok(Step::Ask(GatewayRequest::Authorize {
            token: c.card_token.clone(),
            amount_minor: c.amount_minor,
            currency: c.currency.clone(),
        }))
    }

    fn plan_answer(&self, c: &RecordGatewayAnswer) -> Result<Step, PaymentError> {
        check(
            "gateway_reference",
            validate::text(&c.gateway_reference, MAX_TEXT),
        )?;
        check(
            "webhook_event_id",
            validate::text(&c.webhook_event_id, MAX_TEXT),
        )?;
        if self.status == PaymentStatus::New {
            return Err(PaymentError::NotFound);
        }
        if c.gateway_reference != self.gateway_reference {
            return Err(PaymentError::UnknownReference);
        }
        let step = match (self.status, c.approved) {
            (PaymentStatus::Pending, true) => {
                let authorization_code =
                    required_text("authorization_code", c.authorization_code.as_ref())?;
                Step::Decided(vec![PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
                    order_id: self.order_id.clone(),
                    amount_minor: self.amount_minor,
                    currency: self.currency.clone(),
                    authorization_code,
                    gateway_reference: self.gateway_reference.clone(),
                })])
            }
            (PaymentStatus::Pending, false) => {
                let decline_code = required_text("decline_code", c.decline_code.as_ref())?;
                Step::Decided(vec![PaymentsEvent::PaymentDeclined(PaymentDeclined {
                    order_id: self.order_id.clone(),
                    amount_minor: self.amount_minor,
                    currency: self.currency.clone(),
                    decline_code,
                    decline_message: c.decline_message.clone(),
                })])
            }
            // The order was given up on (and cancelled) when the deadline
            // passed, but the gateway now holds the customer's money for it:
            // release it, or the customer is charged for nothing.
            (PaymentStatus::TimedOut, true) => Step::Ask(GatewayRequest::Void {
                gateway_reference: self.gateway_reference.clone(),
            }),
            // Already decided (a replayed or contradicting webhook), or a
            // decline after the timeout: nothing is held, nothing to do.
            _ => Step::Decided(Vec::new()),
        };
        Ok(step)
    }

    fn plan_expire(&self, _: &ExpirePaymentAuthorization) -> Result<Step, PaymentError> {
        match self.status {
            PaymentStatus::New => Err(PaymentError::NotFound),
            PaymentStatus::Pending => Ok(Step::Decided(vec![
                PaymentsEvent::PaymentAuthorizationTimedOut(PaymentAuthorizationTimedOut {
                    order_id: self.order_id.clone(),
                    amount_minor: self.amount_minor,
                    currency: self.currency.clone(),
                }),
            ])),
            // The answer came first: the saga reads it from the events.
            _ => Ok(Step::Decided(Vec::new())),
        }
    }

    /// Same currency as the payment's, or refused.
    fn same_currency(&self, currency: &str) -> Result<(), PaymentError> {
        check("currency", validate::currency(currency))?;
        if currency != self.currency {
            return Err(PaymentError::InvalidField {
                field: "currency",
                reason: "must be the payment's currency",
            });
        }
        Ok(())
    }

    fn plan_capture(&self, c: &CapturePayment) -> Result<Step, PaymentError> {
        match self.status {
            PaymentStatus::New => return Err(PaymentError::NotFound),
            // One capture per payment: this one is done.
            PaymentStatus::Captured => return Ok(Step::Decided(Vec::new())),
            PaymentStatus::Authorized => {}
            other => return Err(PaymentError::NotAuthorized(other)),
        }
        positive("amount_minor", c.amount_minor)?;
        self.same_currency(&c.currency)?;
        if c.amount_minor > self.amount_minor {
            return Err(PaymentError::AmountExceedsAuthorization {
                requested: c.amount_minor,
                authorized: self.amount_minor,
            });
        }
        Ok(Step::Ask(GatewayRequest::Capture {
            gateway_reference: self.gateway_reference.clone(),
            amount_minor: c.amount_minor,
            currency: c.currency.clone(),
        }))
    }

    fn plan_void(&self, c: &VoidPayment) -> Result<Step, PaymentError> {
        if self.status == PaymentStatus::New {
            return Err(PaymentError::NotFound);
        }
        optional_text("reason", c.reason.as_ref())?;
        match self.status {
            PaymentStatus::Authorized | PaymentStatus::Pending => {
                Ok(Step::Ask(GatewayRequest::Void {
                    gateway_reference: self.gateway_reference.clone(),
                }))
            }
            PaymentStatus::Captured => Err(PaymentError::AlreadyCaptured),
            // Nothing is held: the request is satisfied.
            _ => Ok(Step::Decided(Vec::new())),
        }
    }

    fn plan_refund(&self, c: &RefundPayment) -> Result<Step, PaymentError> {
        match self.status {
            PaymentStatus::New => return Err(PaymentError::NotFound),
            PaymentStatus::Captured => {}
            other => return Err(PaymentError::NotCaptured(other)),
        }
        positive("amount_minor", c.amount_minor)?;
        self.same_currency(&c.currency)?;
        optional_text("reason", c.reason.as_ref())?;
        self.refunded_total_after(c.amount_minor)?;
        Ok(Step::Ask(GatewayRequest::Refund {
            gateway_reference: self.gateway_reference.clone(),
            amount_minor: c.amount_minor,
            currency: c.currency.clone(),
        }))
    }

    /// The refunded total once `amount_minor` more is refunded, if that
    /// stays within the capture.
    fn refunded_total_after(&self, amount_minor: i64) -> Result<i64, PaymentError> {
        self.refunded_total_minor
            .checked_add(amount_minor)
            .filter(|total| *total <= self.captured_minor)
            .ok_or(PaymentError::RefundExceedsCapture {
                requested: amount_minor,
                refundable: self.refundable_minor(),
            })
    }

    /// The events for `command` given what the gateway answered.
    fn conclude(
        &self,
        command: &PaymentsCommand,
        facts: &GatewayAnswer,
    ) -> Result<Vec<PaymentsEvent>, PaymentError> {
        let event = match (command, facts) {
            (
                PaymentsCommand::AuthorizePayment(c),
                GatewayAnswer::Authorized {
                    authorization_code,
                    gateway_reference,
                },
            ) => PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
                order_id: c.order_id.clone(),
                amount_minor: c.amount_minor,
                currency: c.currency.clone(),
                authorization_code: authorization_code.clone(),
                gateway_reference: gateway_reference.clone(),
            }),
            (
                PaymentsCommand::AuthorizePayment(c),
                GatewayAnswer::Declined {
                    decline_code,
                    decline_message,
                },
            ) => PaymentsEvent::PaymentDeclined(PaymentDeclined {
                order_id: c.order_id.clone(),
                amount_minor: c.amount_minor,
                currency: c.currency.clone(),
                decline_code: decline_code.clone(),
                decline_message: decline_message.clone(),
            }),
            (
                PaymentsCommand::AuthorizePayment(c),
                GatewayAnswer::Pending { gateway_reference },
            ) => PaymentsEvent::PaymentAuthorizationPending(PaymentAuthorizationPending {
                order_id: c.order_id.clone(),
                amount_minor: c.amount_minor,
                currency: c.currency.clone(),
                gateway_reference: gateway_reference.clone(),
            }),
            (PaymentsCommand::CapturePayment(c), GatewayAnswer::Captured { gateway_reference }) => {
                PaymentsEvent::PaymentCaptured(PaymentCaptured {
                    order_id: self.order_id.clone(),
                    amount_minor: c.amount_minor,
                    currency: c.currency.clone(),
                    gateway_reference: gateway_reference.clone(),
                })
            }
            (PaymentsCommand::VoidPayment(c), GatewayAnswer::Voided) => {
                self.voided(c.reason.clone())
            }
            (PaymentsCommand::RecordGatewayAnswer(_), GatewayAnswer::Voided) => {
                self.voided(Some(LATE_APPROVAL_REASON.to_owned()))
            }
            (PaymentsCommand::RefundPayment(c), GatewayAnswer::Refunded { gateway_reference }) => {
                PaymentsEvent::PaymentRefunded(PaymentRefunded {
                    order_id: self.order_id.clone(),
                    amount_minor: c.amount_minor,
                    currency: c.currency.clone(),
                    refunded_total_minor: self.refunded_total_after(c.amount_minor)?,
                    reason: c.reason.clone(),
                    gateway_reference: gateway_reference.clone(),
                })
            }
            // A capture, void or refund the gateway would not do.
            (_, GatewayAnswer::Declined { decline_code, .. }) => {
                return Err(PaymentError::GatewayDeclined(decline_code.clone()))
            }
            _ => return Err(PaymentError::GatewayNotConsulted),
        };
        Ok(vec![event])
    }

    fn voided(&self, reason: Option<String>) -> PaymentsEvent {
        PaymentsEvent::PaymentVoided(PaymentVoided {
            order_id: self.order_id.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
            reason,
        })
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Facts = GatewayAnswer;
    type Command = PaymentsCommand;
    type Event = PaymentsEvent;
    type Error = PaymentError;

    fn decide(
        &self,
        command: &PaymentsCommand,
        context: &DecisionContext<GatewayAnswer>,
    ) -> Result<Vec<PaymentsEvent>, PaymentError> {
        match self.plan(command)? {
            Step::Decided(events) => Ok(events),
            Step::Ask(_) => self.conclude(command, &context.facts),
        }
    }

    fn evolve(&mut self, event: &PaymentsEvent) {
        match event {
            PaymentsEvent::PaymentAuthorizationPending(e) => {
                self.status = PaymentStatus::Pending;
                self.order_id.clone_from(&e.order_id);
                self.amount_minor = e.amount_minor;
                self.currency.clone_from(&e.currency);
                self.gateway_reference.clone_from(&e.gateway_reference);
            }
            PaymentsEvent::PaymentAuthorized(e) => {
                self.status = PaymentStatus::Authorized;
                self.order_id.clone_from(&e.order_id);
                self.amount_minor = e.amount_minor;
                self.currency.clone_from(&e.currency);
                self.gateway_reference.clone_from(&e.gateway_reference);
                self.authorization_code = Some(e.authorization_code.clone());
            }
            PaymentsEvent::PaymentDeclined(e) => {
                self.status = PaymentStatus::Declined;
                self.order_id.clone_from(&e.order_id);
                self.amount_minor = e.amount_minor;
                self.currency.clone_from(&e.currency);
                self.decline_code = Some(e.decline_code.clone());
            }
            PaymentsEvent::PaymentAuthorizationTimedOut(_) => {
                self.status = PaymentStatus::TimedOut;
            }
            PaymentsEvent::PaymentCaptured(e) => {
                self.status = PaymentStatus::Captured;
                self.captured_minor = e.amount_minor;
                self.capture_reference = Some(e.gateway_reference.clone());
            }
            PaymentsEvent::PaymentVoided(_) => self.status = PaymentStatus::Voided,
            PaymentsEvent::PaymentRefunded(e) => {
                self.refunded_total_minor = e.refunded_total_minor;
            }
        }
    }
}
