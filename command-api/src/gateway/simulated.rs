//! [`SimulatedGateway`]: a deterministic gateway for development and tests.
//!
//! What it answers depends only on the card's last four digits (see
//! [`test_cards`]) and the idempotency key, so a replayed call answers
//! exactly as the first one did — the property a real gateway gives through
//! its idempotency keys, here by construction.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::webhook::WebhookEvent;
use super::{CardError, GatewayAnswer, GatewayError, PaymentGateway, PaymentToken, TokenizeError};

/// The simulator's test cards (spaces allowed when typed). Any other
/// Luhn-valid number is approved.
pub mod test_cards {
    /// Approved.
    pub const APPROVED: &str = "4242 4242 4242 4242";
    /// Declined `card_declined`.
    pub const DECLINED: &str = "4000 0000 0000 0002";
    /// Declined `insufficient_funds`.
    pub const INSUFFICIENT_FUNDS: &str = "4000 0000 0000 9995";
    /// Pending, and no answer ever comes: the saga's timeout must act.
    pub const NEVER_ANSWERS: &str = "4000 0000 0000 0119";
    /// Pending, answered later by a webhook (tests send it).
    pub const ANSWERS_BY_WEBHOOK: &str = "4000 0000 0000 3220";
}

/// Tokens the simulator issues: this prefix and the card's last four digits.
pub const TOKEN_PREFIX: &str = "tok_sim_";

/// A deterministic [`PaymentGateway`]; see [`test_cards`].
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    /// While set, every call fails with [`GatewayError::Unavailable`].
    outage: AtomicBool,
}

impl SimulatedGateway {
    pub fn new() -> Self {
        Self::default()
    }

    /// A gateway that starts down (`true`) or up; see [`Self::set_outage`].
    pub fn with_outage(down: bool) -> Self {
        Self {
            outage: AtomicBool::new(down),
        }
    }

    /// Takes the gateway down or brings it back, to test retries.
    pub fn set_outage(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
    }

    fn available(&self) -> Result<(), GatewayError> {
        if self.outage.load(Ordering::SeqCst) {
            Err(GatewayError::Unavailable(
                "simulated outage (SimulatedGateway::set_outage)".to_owned(),
            ))
        } else {
            Ok(())
        }
    }

    /// The webhook this gateway would send to answer a pending authorization
    /// (card `…3220`): approved with a derived authorization code, or
    /// declined `card_declined`. Its id is derived from the reference, so
    /// sending the same answer twice is a replay.
    pub fn webhook_for(
        &self,
        gateway_reference: &str,
        order_id: &str,
        approved: bool,
    ) -> WebhookEvent {
        let seed = format!("webhook:{gateway_reference}:{approved}");
        let id = format!("evt_sim_{}", digest_hex(&seed, 24));
        if approved {
            WebhookEvent::authorized(
                id,
                gateway_reference,
                order_id,
                authorization_code(gateway_reference),
            )
        } else {
            WebhookEvent::declined(
                id,
                gateway_reference,
                order_id,
                "card_declined",
                Some("Your card was declined.".to_owned()),
            )
        }
    }
}

/// The first `len` hex characters of SHA-256(`input`).
fn digest_hex(input: &str, len: usize) -> String {
    let mut hex = hex::encode(Sha256::digest(input.as_bytes()));
    hex.truncate(len);
    hex
}

/// `sim_` + 24 hex characters of SHA-256(idempotency key): the same key
/// always names the same payment.
fn reference(prefix: &str, idempotency_key: &str) -> String {
    format!("{prefix}{}", digest_hex(idempotency_key, 24))
}

/// Six upper-case hex characters, derived like the reference.
fn authorization_code(seed: &str) -> String {
    digest_hex(&format!("authorization:{seed}"), 6).to_ascii_uppercase()
}

fn declined(code: &str, message: &str) -> GatewayAnswer {
    GatewayAnswer::Declined {
        decline_code: code.to_owned(),
        decline_message: Some(message.to_owned()),
    }
}

/// The card number's digits if it is a plausible card number: only digits,
/// spaces and dashes, 12 to 19 digits, Luhn-valid.
fn card_digits(card_number: &str) -> Result<Vec<u8>, CardError> {
    let mut digits = Vec::with_capacity(19);
    for c in card_number.chars() {
        match c {
            ' ' | '-' => {}
            '0'..='9' => digits.push(c as u8 - b'0'),
            _ => return Err(CardError::NotDigits),
        }
    }
    if !(12..=19).contains(&digits.len()) {
        return Err(CardError::Length {
            digits: digits.len(),
        });
    }
    if !luhn_valid(&digits) {
        return Err(CardError::Checksum);
    }
    Ok(digits)
}

/// The Luhn check: from the right, every second digit doubled (minus 9 when
/// above 9); the sum must end in 0.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The last four digits a simulator token carries, if it is one.
fn token_last4(token: &str) -> Option<&str> {
    token
        .strip_prefix(TOKEN_PREFIX)
        .filter(|last4| last4.len() == 4 && last4.bytes().all(|b| b.is_ascii_digit()))
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn tokenize(&self, card_number: &str) -> Result<PaymentToken, TokenizeError> {
        self.available()?;
        let digits = card_digits(card_number)?;
        let last4: String = digits[digits.len() - 4..]
            .iter()
            .map(|d| char::from(b'0' + d))
            .collect();
        Ok(PaymentToken::new(format!("{TOKEN_PREFIX}{last4}")))
    }

    async fn authorize(
        &self,
        idempotency_key: &str,
        token: &str,
        amount_minor: i64,
        _currency: &str,
    ) -> Result<GatewayAnswer, GatewayError> {
        self.available()?;
        let Some(last4) = token_last4(token) else {
            return Ok(declined(
                "invalid_token",
                "The card token is not one this gateway issued.",
            ));
        };
        if amount_minor <= 0 {
            return Ok(declined("invalid_amount", "The amount must be positive."));
        }
        let gateway_reference = reference("sim_", idempotency_key);
        Ok(match last4 {
            "0002" => declined("card_declined", "Your card was declined."),
            "9995" => declined("insufficient_funds", "Your card has insufficient funds."),
            "0119" | "3220" => GatewayAnswer::Pending { gateway_reference },
            _ => GatewayAnswer::Authorized {
                authorization_code: authorization_code(&gateway_reference),
                gateway_reference,
            },
        })
    }

    async fn capture(
        &self,
        idempotency_key: &str,
        _gateway_reference: &str,
        _amount_minor: i64,
        _currency: &str,
    ) -> Result<GatewayAnswer, GatewayError> {
        self.available()?;
        Ok(GatewayAnswer::Captured {
            gateway_reference: reference("sim_cap_", idempotency_key),
        })
    }

    async fn void(
        &self,
        _idempotency_key: &str,
        _gateway_reference: &str,
    ) -> Result<GatewayAnswer, GatewayError> {
        self.available()?;
        Ok(GatewayAnswer::Voided)
    }

    async fn refund(
        &self,
        idempotency_key: &str,
        _gateway_reference: &str,
        _amount_minor: i64,
        _currency: &str,
    ) -> Result<GatewayAnswer, GatewayError> {
        self.available()?;
        Ok(GatewayAnswer::Refunded {
            gateway_reference: reference("sim_ref_", idempotency_key),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn tokenize(card: &str) -> Result<PaymentToken, TokenizeError> {
        block(SimulatedGateway::new().tokenize(card))
    }

    fn authorize(gateway: &SimulatedGateway, key: &str, card: &str) -> GatewayAnswer {
        let token = block(gateway.tokenize(card)).unwrap();
        block(gateway.authorize(key, token.as_str(), 1000, "EUR")).unwrap()
    }

    #[test]
    fn tokenize_keeps_only_the_last_four_digits() {
        assert_eq!(
            tokenize("4242 4242 4242 4242").unwrap().as_str(),
            "tok_sim_4242"
        );
        assert_eq!(
            tokenize("4000-0000-0000-0002").unwrap().as_str(),
            "tok_sim_0002"
        );
        // 12 and 19 digits are the bounds.
        assert_eq!(tokenize("000000000000").unwrap().as_str(), "tok_sim_0000");
        assert_eq!(
            tokenize("4242424242424242006").unwrap().as_str(),
            "tok_sim_2006"
        );
    }

    #[test]
    fn tokenize_names_what_is_wrong_without_repeating_the_number() {
        let card = |c: &str| match tokenize(c) {
            Err(TokenizeError::Card(e)) => e,
            other => panic!("{c}: expected a card error, got {other:?}"),
        };
        assert_eq!(card("4242 4242 4242 424x"), CardError::NotDigits);
        assert_eq!(card("4242.4242.4242.4242"), CardError::NotDigits);
        assert_eq!(card("42424242424"), CardError::Length { digits: 11 });
        assert_eq!(card(""), CardError::Length { digits: 0 });
        assert_eq!(
            card("42424242424242420000"),
            CardError::Length { digits: 20 }
        );
        let typo = card("4242 4242 4242 4241");
        assert_eq!(typo, CardError::Checksum);
        assert!(!typo.to_string().contains("4241"), "{typo}");
        assert_eq!(typo.code(), "card-checksum");
    }

    #[test]
    fn luhn_accepts_every_test_card() {
        for card in [
            test_cards::APPROVED,
            test_cards::DECLINED,
            test_cards::INSUFFICIENT_FUNDS,
            test_cards::NEVER_ANSWERS,
            test_cards::ANSWERS_BY_WEBHOOK,
            "5555 5555 5555 4444",
            "3782 822463 10005",
        ] {
            assert!(tokenize(card).is_ok(), "{card}");
        }
    }

    #[test]
    fn each_test_card_answers_as_documented() {
        let gateway = SimulatedGateway::new();
        let reference = reference("sim_", "cmd-1");
        assert!(reference.starts_with("sim_") && reference.len() == 28);
        match authorize(&gateway, "cmd-1", test_cards::APPROVED) {
            GatewayAnswer::Authorized {
                authorization_code,
                gateway_reference,
            } => {
                assert_eq!(gateway_reference, reference);
                assert_eq!(authorization_code.len(), 6);
            }
            other => panic!("4242 should approve, got {other:?}"),
        }
        let decline_code = |card| match authorize(&gateway, "cmd-1", card) {
            GatewayAnswer::Declined { decline_code, .. } => decline_code,
            other => panic!("{card} should decline, got {other:?}"),
        };
        assert_eq!(decline_code(test_cards::DECLINED), "card_declined");
        assert_eq!(
            decline_code(test_cards::INSUFFICIENT_FUNDS),
            "insufficient_funds"
        );
        for card in [test_cards::NEVER_ANSWERS, test_cards::ANSWERS_BY_WEBHOOK] {
            assert_eq!(
                authorize(&gateway, "cmd-1", card),
                GatewayAnswer::Pending {
                    gateway_reference: reference.clone()
                }
            );
        }
        // Any other valid card approves.
        assert!(matches!(
            authorize(&gateway, "cmd-1", "5555 5555 5555 4444"),
            GatewayAnswer::Authorized { .. }
        ));
    }

    #[test]
    fn answers_are_deterministic_per_idempotency_key() {
        let gateway = SimulatedGateway::new();
        let first = authorize(&gateway, "cmd-1", test_cards::APPROVED);
        assert_eq!(first, authorize(&gateway, "cmd-1", test_cards::APPROVED));
        assert_eq!(
            first,
            authorize(&SimulatedGateway::new(), "cmd-1", test_cards::APPROVED),
            "another instance (a restart) answers the same"
        );
        assert_ne!(first, authorize(&gateway, "cmd-2", test_cards::APPROVED));
        let capture = |key| block(gateway.capture(key, "sim_x", 1000, "EUR")).unwrap();
        assert_eq!(capture("c-1"), capture("c-1"));
        assert_ne!(capture("c-1"), capture("c-2"));
        let refund = |key| block(gateway.refund(key, "sim_x", 100, "EUR")).unwrap();
        assert_eq!(refund("r-1"), refund("r-1"));
        assert!(matches!(refund("r-1"), GatewayAnswer::Refunded { .. }));
        assert_eq!(
            block(gateway.void("v-1", "sim_x")).unwrap(),
            GatewayAnswer::Voided
        );
    }

    #[test]
    fn foreign_tokens_and_bad_amounts_are_declined() {
        let gateway = SimulatedGateway::new();
        for token in [
            "tok_visa",
            "tok_sim_424",
            "tok_sim_42a2",
            "tok_sim_42424",
            "",
        ] {
            match block(gateway.authorize("k", token, 1000, "EUR")).unwrap() {
                GatewayAnswer::Declined { decline_code, .. } => {
                    assert_eq!(decline_code, "invalid_token", "{token}");
                }
                other => panic!("{token}: {other:?}"),
            }
        }
        assert!(matches!(
            block(gateway.authorize("k", "tok_sim_4242", 0, "EUR")).unwrap(),
            GatewayAnswer::Declined { .. }
        ));
    }

    #[test]
    fn an_outage_fails_every_call_until_lifted() {
        let gateway = SimulatedGateway::with_outage(true);
        assert!(matches!(
            block(gateway.tokenize(test_cards::APPROVED)),
            Err(TokenizeError::Gateway(GatewayError::Unavailable(_)))
        ));
        assert!(block(gateway.authorize("k", "tok_sim_4242", 1, "EUR")).is_err());
        assert!(block(gateway.capture("k", "r", 1, "EUR")).is_err());
        assert!(block(gateway.void("k", "r")).is_err());
        assert!(block(gateway.refund("k", "r", 1, "EUR")).is_err());
        gateway.set_outage(false);
        assert!(block(gateway.authorize("k", "tok_sim_4242", 1, "EUR")).is_ok());
    }

    #[test]
    fn webhooks_for_a_reference_are_stable() {
        let gateway = SimulatedGateway::new();
        let yes = gateway.webhook_for("sim_abc", "o-1", true);
        assert_eq!(yes, gateway.webhook_for("sim_abc", "o-1", true));
        assert!(yes.id.starts_with("evt_sim_"));
        let (order, answer) = yes.to_command().unwrap();
        assert_eq!(order, "o-1");
        assert!(answer.approved && answer.authorization_code.is_some());
        let (_, no) = gateway
            .webhook_for("sim_abc", "o-1", false)
            .to_command()
            .unwrap();
        assert_eq!(no.decline_code.as_deref(), Some("card_declined"));
    }
}
