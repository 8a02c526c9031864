//! The gateway's webhooks: late answers to pending authorizations.
//!
//! A webhook arrives on a public endpoint, so anyone can post one. The
//! gateway signs each delivery Stripe-style, in the [`SIGNATURE_HEADER`]:
//!
//! ```text
//! Gateway-Signature: t=1700000000,v1=<hex HMAC-SHA256(secret, "1700000000.<raw body>")>
//! ```
//!
//! The HTTP handler, for each delivery:
//!
//! 1. [`verify`] — the body is the gateway's (HMAC over the timestamp and
//!    the raw bytes, compared in constant time) and recent (the timestamp is
//!    signed, so an old delivery can't be re-posted with a new one).
//! 2. [`ReplayGuard::check`] — the same event id twice inside the tolerance
//!    window is a replay (older ones already fail step 1).
//! 3. [`WebhookEvent::parse`] and [`WebhookEvent::to_command`] — the
//!    `RecordGatewayAnswer` command for the payment (its id: the order id).
//!
//! The guard is the first line against replays; the `Payment` aggregate is
//! the second: a replayed answer for a payment already decided changes
//! nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use hmac::{Hmac, Mac};
use platform::config::Secret;
use schemas::payments::RecordGatewayAnswer;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The HTTP header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Gateway-Signature";
/// How far a signature's timestamp may be from now, either way (Stripe's
/// default): absorbs clock skew and delivery delay, bounds replays.
pub const DEFAULT_TOLERANCE_S: i64 = 300;
/// Event ids a [`ReplayGuard`] remembers at most by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// `v1` signatures per header at most: each costs an HMAC over the body.
const MAX_SIGNATURES: usize = 8;

/// The event type of an approval.
pub const PAYMENT_AUTHORIZED: &str = "payment.authorized";
/// The event type of a decline.
pub const PAYMENT_DECLINED: &str = "payment.declined";

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook delivery is not accepted. Messages never contain the secret
/// or a signature.
///
/// Suggested answers: `NoSecret` → 500 (misconfiguration); `Replayed` → 200
/// (already taken, so the gateway stops retrying); everything else → 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "no webhook secret is configured: refusing every webhook, since any signature would verify"
    )]
    NoSecret,
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    #[error("the signature header has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches: wrong secret, or the body was altered")]
    SignatureMismatch,
    #[error(
        "the signature timestamp is {} s {} now; at most {tolerance_s} s is accepted",
        age_s.unsigned_abs(),
        if *age_s < 0 { "ahead of" } else { "behind" }
    )]
    OutsideTolerance {
        /// Now minus the signed timestamp: negative = from the future.
        age_s: i64,
        tolerance_s: i64,
    },
    #[error("webhook event `{0}` was already received")]
    Replayed(String),
    #[error("the webhook body is not a gateway event: {0}")]
    InvalidBody(String),
    #[error("unknown webhook event type `{0}` (expected payment.authorized or payment.declined)")]
    UnknownEventType(String),
    #[error("the webhook event lacks `{0}`")]
    MissingField(&'static str),
}

impl WebhookError {
    /// A stable code for the HTTP answer and the logs.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::NoSecret => "webhook-secret-missing",
            WebhookError::Malformed(_) => "signature-malformed",
            WebhookError::NoSignature => "signature-missing",
            WebhookError::SignatureMismatch => "signature-mismatch",
            WebhookError::OutsideTolerance { .. } => "signature-expired",
            WebhookError::Replayed(_) => "webhook-replayed",
            WebhookError::InvalidBody(_) => "webhook-invalid",
            WebhookError::UnknownEventType(_) => "webhook-unknown-type",
            WebhookError::MissingField(_) => "webhook-missing-field",
        }
    }
}

/// The HMAC of `<t>.<body>` under `secret`, `t` exactly as written in the
/// header.
fn signed_payload_mac(secret: &Secret, t: &str, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes keys of any length: this never fails.
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The signature header for `body` at unix time `t`: what the gateway sends.
/// For tests and the simulator.
pub fn sign(body: &[u8], secret: &Secret, t: i64) -> String {
    let signature = signed_payload_mac(secret, &t.to_string(), body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={t},v1={signature}")
}

/// A parsed signature header.
struct SignatureHeader<'h> {
    /// As written: the signature covers these exact characters.
    t_raw: &'h str,
    t: i64,
    v1: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<SignatureHeader<'_>, WebhookError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for element in header.split(',') {
        let Some((key, value)) = element.split_once('=') else {
            return Err(WebhookError::Malformed("every element must be key=value"));
        };
        let value = value.trim();
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::Malformed("more than one t="));
                }
                let t = value
                    .parse::<i64>()
                    .map_err(|_| WebhookError::Malformed("t= must be a unix time in seconds"))?;
                timestamp = Some((value, t));
            }
            "v1" => {
                if v1.len() == MAX_SIGNATURES {
                    return Err(WebhookError::Malformed("too many v1 signatures"));
                }
                let signature = hex::decode(value)
                    .map_err(|_| WebhookError::Malformed("v1= must be hexadecimal"))?;
                v1.push(signature);
            }
            // Other schemes (v0, ones not invented yet): not ours to check.
            _ => {}
        }
    }
    let Some((t_raw, t)) = timestamp else {
        return Err(WebhookError::Malformed("no t= timestamp"));
    };
    if v1.is_empty() {
        return Err(WebhookError::NoSignature);
    }
    Ok(SignatureHeader { t_raw, t, v1 })
}

/// Checks that `body` was signed by the gateway with `secret`, at a time
/// within `tolerance_s` seconds of `now_s` ([`DEFAULT_TOLERANCE_S`]).
///
/// `body` must be the raw bytes received, before any JSON parsing: the
/// signature covers bytes, and a re-serialised body would not match.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &Secret,
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), WebhookError> {
    if secret.expose().is_empty() {
        return Err(WebhookError::NoSecret);
    }
    let header = parse_header(header)?;
    let mac = signed_payload_mac(secret, header.t_raw, body).ok_or(WebhookError::NoSecret)?;
    // `verify_slice` compares in constant time (`subtle`), so a forger
    // learns nothing from how long a wrong guess took.
    let matches = header
        .v1
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok());
    if !matches {
        return Err(WebhookError::SignatureMismatch);
    }
    let age_s = now_s.saturating_sub(header.t);
    if age_s.saturating_abs() > tolerance_s {
        return Err(WebhookError::OutsideTolerance { age_s, tolerance_s });
    }
    Ok(())
}

/// Remembers the webhook event ids seen recently; a second delivery of one
/// is refused. Thread-safe.
///
/// Bounded twice: ids older than the window are forgotten (a delivery that
/// old fails [`verify`]'s timestamp check anyway), and past `capacity` the
/// oldest go first (a replay that slips through is still harmless: the
/// aggregate ignores an answer it already has).
#[derive(Debug)]
pub struct ReplayGuard {
    window_s: i64,
    capacity: usize,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Event id → when it was first seen (unix seconds).
    at: HashMap<String, i64>,
    /// The same ids, oldest first, for eviction.
    order: VecDeque<(i64, String)>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(DEFAULT_TOLERANCE_S, DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayGuard {
    /// Remembers ids for `window_s` seconds (use the signature tolerance),
    /// `capacity` of them at most.
    pub fn new(window_s: i64, capacity: usize) -> Self {
        Self {
            window_s,
            capacity: capacity.max(1),
            seen: Mutex::new(Seen::default()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A panic while holding the lock leaves a consistent map: keep going.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts `event_id` once: remembers it, or refuses it as
    /// [`WebhookError::Replayed`] if it was seen within the window.
    pub fn check(&self, event_id: &str, now_s: i64) -> Result<(), WebhookError> {
        let mut seen = self.seen();
        let oldest_kept = now_s.saturating_sub(self.window_s);
        while let Some((at, _)) = seen.order.front() {
            if *at >= oldest_kept && seen.order.len() < self.capacity {
                break;
            }
            if let Some((_, id)) = seen.order.pop_front() {
                seen.at.remove(&id);
            }
        }
        if seen.at.contains_key(event_id) {
            return Err(WebhookError::Replayed(event_id.to_owned()));
        }
        seen.at.insert(event_id.to_owned(), now_s);
        seen.order.push_back((now_s, event_id.to_owned()));
        Ok(())
    }

    /// Forgets `event_id`: for a handler that accepted a delivery but could
    /// not pass it on, so the gateway's retry of it is not refused.
    pub fn forget(&self, event_id: &str) {
        let mut seen = self.seen();
        if seen.at.remove(event_id).is_some() {
            seen.order.retain(|(_, id)| id != event_id);
        }
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.seen().at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A webhook body:
///
/// ```json
/// {"id": "evt_…", "type": "payment.authorized",
///  "data": {"gateway_reference": "sim_…", "order_id": "o-1", "authorization_code": "A1B2C3"}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The gateway's event id; a redelivery carries the same one.
    pub id: String,
    /// [`PAYMENT_AUTHORIZED`] or [`PAYMENT_DECLINED`].
    #[serde(rename = "type")]
    pub kind: String,
    pub data: WebhookData,
}

/// What a webhook says about which payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookData {
    pub gateway_reference: String,
    /// The payment's aggregate id.
    pub order_id: String,
    /// Required in `payment.authorized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_code: Option<String>,
    /// Required in `payment.declined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_message: Option<String>,
}

/// An unknown type is echoed in the error, cut to a readable length.
const MAX_ECHOED_TYPE: usize = 64;

fn required<'a>(value: &'a str, field: &'static str) -> Result<&'a str, WebhookError> {
    if value.trim().is_empty() {
        Err(WebhookError::MissingField(field))
    } else {
        Ok(value)
    }
}

impl WebhookEvent {
    /// An approval (for tests and the simulator).
    pub fn authorized(
        id: impl Into<String>,
        gateway_reference: impl Into<String>,
        order_id: impl Into<String>,
        authorization_code: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            kind: PAYMENT_AUTHORIZED.to_owned(),
            data: WebhookData {
                gateway_reference: gateway_reference.into(),
                order_id: order_id.into(),
                authorization_code: Some(authorization_code.into()),
                decline_code: None,
                decline_message: None,
            },
        }
    }

    /// A decline (for tests and the simulator).
    pub fn declined(
        id: impl Into<String>,
        gateway_reference: impl Into<String>,
        order_id: impl Into<String>,
        decline_code: impl Into<String>,
        decline_message: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            kind: PAYMENT_DECLINED.to_owned(),
            data: WebhookData {
                gateway_reference: gateway_reference.into(),
                order_id: order_id.into(),
                authorization_code: None,
                decline_code: Some(decline_code.into()),
                decline_message,
            },
        }
    }

    /// Reads a (verified) body.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidBody(e.to_string()))
    }

    /// The body the gateway would send.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and options only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The payment's aggregate id (the order id) and the command recording
    /// this answer.
    pub fn to_command(&self) -> Result<(String, RecordGatewayAnswer), WebhookError> {
        let id = required(&self.id, "id")?;
        let reference = required(&self.data.gateway_reference, "data.gateway_reference")?;
        let order_id = required(&self.data.order_id, "data.order_id")?;
        let approved = match self.kind.as_str() {
            PAYMENT_AUTHORIZED => true,
            PAYMENT_DECLINED => false,
            other => {
                return Err(WebhookError::UnknownEventType(
                    other.chars().take(MAX_ECHOED_TYPE).collect(),
                ))
            }
        };
        let present = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let command = if approved {
            RecordGatewayAnswer {
                gateway_reference: reference.to_owned(),
                webhook_event_id: id.to_owned(),
                approved: true,
                authorization_code: Some(
                    present(&self.data.authorization_code)
                        .ok_or(WebhookError::MissingField("data.authorization_code"))?,
                ),
                decline_code: None,
                decline_message: None,
            }
        } else {
            RecordGatewayAnswer {
                gateway_reference: reference.to_owned(),
                webhook_event_id: id.to_owned(),
                approved: false,
                authorization_code: None,
                decline_code: Some(
                    present(&self.data.decline_code)
                        .ok_or(WebhookError::MissingField("data.decline_code"))?,
                ),
                decline_message: present(&self.data.decline_message),
            }
        };
        Ok((order_id.to_owned(), command))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn secret() -> Secret {
        Secret::new("whsec_test")
    }

    fn body() -> Vec<u8> {
        WebhookEvent::authorized("evt_1", "sim_abc", "o-1", "A1B2C3").to_json()
    }

    fn check(header: &str, body: &[u8]) -> Result<(), WebhookError> {
        verify(header, body, &secret(), NOW, DEFAULT_TOLERANCE_S)
    }

    #[test]
    fn a_good_signature_passes() {
        let header = sign(&body(), &secret(), NOW);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(check(&header, &body()), Ok(()));
        // Within the tolerance either way.
        for t in [NOW - 300, NOW + 300] {
            assert_eq!(check(&sign(&body(), &secret(), t), &body()), Ok(()));
        }
    }

    #[test]
    fn the_signature_matches_a_known_vector() {
        // printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
        let header = sign(b"{}", &secret(), NOW);
        assert_eq!(
            header,
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn several_signatures_and_unknown_schemes_are_allowed() {
        let good = sign(&body(), &secret(), NOW);
        let v1 = good.split_once(",v1=").unwrap().1;
        let rotated = Secret::new("whsec_old");
        let old = sign(&body(), &rotated, NOW);
        let old_v1 = old.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW}, v0=whatever, v1={old_v1}, v1={v1}, scheme2=x");
        assert_eq!(check(&header, &body()), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_is_a_mismatch() {
        let header = sign(&body(), &secret(), NOW);
        let mut tampered = body();
        tampered.push(b' ');
        assert_eq!(
            check(&header, &tampered),
            Err(WebhookError::SignatureMismatch)
        );
        let forged = sign(&body(), &Secret::new("guess"), NOW);
        assert_eq!(
            check(&forged, &body()),
            Err(WebhookError::SignatureMismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(check(&moved, &body()), Err(WebhookError::SignatureMismatch));
        let short = format!("t={NOW},v1=abcd");
        assert_eq!(check(&short, &body()), Err(WebhookError::SignatureMismatch));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let stale = check(&sign(&body(), &secret(), NOW - 301), &body());
        assert_eq!(
            stale,
            Err(WebhookError::OutsideTolerance {
                age_s: 301,
                tolerance_s: 300
            })
        );
        assert!(stale.unwrap_err().to_string().contains("301 s behind now"));
        let future = check(&sign(&body(), &secret(), NOW + 3600), &body()).unwrap_err();
        assert_eq!(future.code(), "signature-expired");
        assert!(
            future.to_string().contains("3600 s ahead of now"),
            "{future}"
        );
        let far = check(&sign(&body(), &secret(), i64::MIN), &body());
        assert!(matches!(far, Err(WebhookError::OutsideTolerance { .. })));
    }

    #[test]
    fn garbled_headers_are_malformed() {
        let malformed = |header: &str| match check(header, &body()) {
            Err(WebhookError::Malformed(why)) => why,
            other => panic!("{header:?}: {other:?}"),
        };
        assert_eq!(malformed(""), "every element must be key=value");
        assert_eq!(malformed("garbage"), "every element must be key=value");
        assert_eq!(malformed("v1=abcd"), "no t= timestamp");
        assert_eq!(
            malformed("t=soon,v1=abcd"),
            "t= must be a unix time in seconds"
        );
        assert_eq!(malformed("t=1,t=2,v1=abcd"), "more than one t=");
        assert_eq!(
            malformed(&format!("t={NOW},v1=xyz")),
            "v1= must be hexadecimal"
        );
        let many = format!("t={NOW}{}", ",v1=00".repeat(9));
        assert_eq!(malformed(&many), "too many v1 signatures");
        assert_eq!(
            check(&format!("t={NOW},v0=abcd"), &body()),
            Err(WebhookError::NoSignature)
        );
    }

    #[test]
    fn an_empty_secret_refuses_everything() {
        let empty = Secret::new("");
        let header = sign(&body(), &empty, NOW);
        assert_eq!(
            verify(&header, &body(), &empty, NOW, DEFAULT_TOLERANCE_S),
            Err(WebhookError::NoSecret)
        );
    }

    #[test]
    fn errors_never_show_the_secret_or_the_signature() {
        let header = sign(&body(), &secret(), NOW);
        let v1 = header.split_once(",v1=").unwrap().1.to_owned();
        for err in [
            check(&header, b"other").unwrap_err(),
            check(&format!("t=x,v1={v1}"), &body()).unwrap_err(),
        ] {
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains("whsec_test") && !text.contains(&v1),
                "{text}"
            );
        }
    }

    #[test]
    fn the_replay_guard_refuses_a_second_delivery() {
        let guard = ReplayGuard::default();
        assert_eq!(guard.check("evt_1", NOW), Ok(()));
        assert_eq!(
            guard.check("evt_1", NOW + 10),
            Err(WebhookError::Replayed("evt_1".into()))
        );
        assert_eq!(guard.check("evt_2", NOW + 10), Ok(()));
        // Past the window the id is forgotten (verify refuses such a delivery).
        assert_eq!(guard.check("evt_1", NOW + 301), Ok(()));
        assert_eq!(guard.len(), 2);
        // A handler that could not pass the answer on lets the retry in.
        guard.forget("evt_2");
        assert_eq!(guard.check("evt_2", NOW + 302), Ok(()));
    }

    #[test]
    fn the_replay_guard_is_bounded() {
        let guard = ReplayGuard::new(DEFAULT_TOLERANCE_S, 3);
        for id in ["a", "b", "c", "d"] {
            guard.check(id, NOW).unwrap();
        }
        assert_eq!(guard.len(), 3);
        assert_eq!(guard.check("a", NOW), Ok(()), "the oldest went first");
        assert!(guard.check("d", NOW).is_err());
    }

    #[test]
    fn the_replay_guard_is_shared_across_threads() {
        let guard = std::sync::Arc::new(ReplayGuard::default());
        let accepted: usize = (0..8)
            .map(|_| {
                let guard = guard.clone();
                std::thread::spawn(move || usize::from(guard.check("evt_same", NOW).is_ok()))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(accepted, 1);
    }

    #[test]
    fn events_become_gateway_answers() {
        let approved = WebhookEvent::parse(&body()).unwrap();
        let (order_id, command) = approved.to_command().unwrap();
        assert_eq!(order_id, "o-1");
        assert_eq!(
            command,
            RecordGatewayAnswer {
                gateway_reference: "sim_abc".into(),
                webhook_event_id: "evt_1".into(),
                approved: true,
                authorization_code: Some("A1B2C3".into()),
                decline_code: None,
                decline_message: None,
            }
        );
        let raw = br#"{"id":"evt_2","type":"payment.declined","data":{"gateway_reference":"sim_abc","order_id":"o-1","decline_code":"card_declined","decline_message":"Declined."}}"#;
        let (_, declined) = WebhookEvent::parse(raw).unwrap().to_command().unwrap();
        assert!(!declined.approved);
        assert_eq!(declined.decline_code.as_deref(), Some("card_declined"));
        assert_eq!(declined.decline_message.as_deref(), Some("Declined."));
    }

    #[test]
    fn bad_events_say_what_is_wrong() {
        assert!(matches!(
            WebhookEvent::parse(b"not json"),
            Err(WebhookError::InvalidBody(_))
        ));
        assert!(matches!(
            WebhookEvent::parse(br#"{"id":"evt_1","type":"payment.authorized"}"#),
            Err(WebhookError::InvalidBody(_))
        ));
        let mut event = WebhookEvent::authorized("evt_1", "sim_abc", "o-1", "A1");
        event.kind = "charge.refunded".into();
        assert_eq!(
            event.to_command(),
            Err(WebhookError::UnknownEventType("charge.refunded".into()))
        );
        event.kind = "x".repeat(1000);
        match event.to_command() {
            Err(WebhookError::UnknownEventType(t)) => assert_eq!(t.len(), MAX_ECHOED_TYPE),
            other => panic!("{other:?}"),
        }
        let no_code = WebhookEvent {
            data: WebhookData {
                authorization_code: None,
                ..WebhookEvent::authorized("evt_1", "sim_abc", "o-1", "A1").data
            },
            ..WebhookEvent::authorized("evt_1", "sim_abc", "o-1", "A1")
        };
        assert_eq!(
            no_code.to_command(),
            Err(WebhookError::MissingField("data.authorization_code"))
        );
        let no_decline = WebhookEvent::declined("evt_1", "sim_abc", "o-1", " ", None);
        assert_eq!(
            no_decline.to_command(),
            Err(WebhookError::MissingField("data.decline_code"))
        );
        let no_order = WebhookEvent::authorized("evt_1", "sim_abc", "", "A1");
        assert_eq!(
            no_order.to_command(),
            Err(WebhookError::MissingField("data.order_id"))
        );
    }
}
