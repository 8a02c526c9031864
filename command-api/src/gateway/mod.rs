//! The payment gateway: the one outside system a command decision depends
//! on.
//!
//! - [`PaymentGateway`] — the port: tokenize a card at the edge, then
//!   authorize, capture, void and refund by token and reference.
//! - [`GatewayAnswer`] — what the gateway said, handed to the pure `Payment`
//!   aggregate as its `facts` (see [`crate::aggregate::DecisionContext`]).
//! - [`SimulatedGateway`] — the deterministic default, driven by test cards
//!   (`docs/payments.md`).
//! - [`PaymentConsultant`] — asks the gateway inside the command processor,
//!   before `decide`, and only when the decision would use the answer.
//! - [`webhook`] — verifying and parsing the gateway's signed late answers.
//!
//! Card numbers stop at [`PaymentGateway::tokenize`]: everything after it —
//! commands, events, logs — carries a [`PaymentToken`] only.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

mod consultant;
mod simulated;
pub mod webhook;

pub use consultant::PaymentConsultant;
pub use simulated::{test_cards, SimulatedGateway};

/// What the gateway answered for one command: the aggregate's facts.
///
/// A decline is an answer (it is recorded as `PaymentDeclined`); the gateway
/// not answering at all is a [`GatewayError`] and never becomes facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum GatewayAnswer {
    /// Nobody asked the gateway (the command needed no answer).
    #[default]
    NotConsulted,
    /// The amount is held on the card.
    Authorized {
        authorization_code: String,
        gateway_reference: String,
    },
    /// The gateway said no (authorization), or refused the operation.
    Declined {
        decline_code: String,
        decline_message: Option<String>,
    },
    /// The gateway took the authorization and will answer by webhook.
    Pending { gateway_reference: String },
    /// The capture went through; the reference is the capture's.
    Captured { gateway_reference: String },
    /// The authorization (or pending request) was released.
    Voided,
    /// The refund went through; the reference is the refund's.
    Refunded { gateway_reference: String },
}

/// A gateway's stand-in for a card number: safe to store, log and send.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentToken(String);

impl PaymentToken {
    /// Wraps a token the gateway issued.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a card number was not tokenized. The messages name what is wrong and
/// never repeat the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("a card number may contain only digits, spaces and dashes")]
    NotDigits,
    #[error("a card number has 12 to 19 digits, this one has {digits}")]
    Length { digits: usize },
    #[error("the card number's check digit is wrong (Luhn check failed): a typo?")]
    Checksum,
}

impl CardError {
    /// A stable code for the HTTP answer.
    pub fn code(&self) -> &'static str {
        match self {
            CardError::NotDigits => "card-not-digits",
            CardError::Length { .. } => "card-length",
            CardError::Checksum => "card-checksum",
        }
    }
}

/// The gateway did not answer. Retried (the processor aborts the batch), never
/// recorded: it says nothing about the payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
}

/// Why [`PaymentGateway::tokenize`] gave no token: the card is wrong (the
/// customer fixes it), or the gateway is down (try again later).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// The payment gateway port.
///
/// Every money-moving call takes an idempotency key: the processor may ask
/// again for the same command (a batch aborted after the call), and the
/// gateway must then answer what it answered the first time instead of
/// charging twice. The [`PaymentConsultant`] uses the command id.
#[async_trait]
pub trait PaymentGateway: Send + Sync + fmt::Debug + 'static {
    /// Exchanges a card number for a token. Called by the command API at its
    /// edge, so a card number never reaches a command, an event or a log.
    async fn tokenize(&self, card_number: &str) -> Result<PaymentToken, TokenizeError>;

    /// Holds `amount_minor` on the card: `Authorized`, `Declined` or
    /// `Pending` (the answer comes later, by webhook).
    async fn authorize(
        &self,
        idempotency_key: &str,
        token: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<GatewayAnswer, GatewayError>;

    /// Takes (part of) an authorized amount: `Captured`.
    async fn capture(
        &self,
        idempotency_key: &str,
        gateway_reference: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<GatewayAnswer, GatewayError>;

    /// Releases an authorization, or cancels a pending one: `Voided`.
    async fn void(
        &self,
        idempotency_key: &str,
        gateway_reference: &str,
    ) -> Result<GatewayAnswer, GatewayError>;

    /// Gives (part of) a captured amount back: `Refunded`.
    async fn refund(
        &self,
        idempotency_key: &str,
        gateway_reference: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<GatewayAnswer, GatewayError>;
}
