//! Audit reads straight from the event log — an optional capability of the
//! query API.
//!
//! The audit index (`GET /audit/{type}/{id}/events`) is a read model: it
//! says what the projector saw. An auditor also needs what the *log*
//! holds: the aggregate's chain checked record by record, and its state as
//! of a past moment folded from the events themselves. Those need the
//! event log and the codec, which a query API on a read store alone does
//! not have, so they come in through this port: `quickstore` implements it
//! over the log (`quickstore::audit::LogAudit`) and sets it with
//! [`crate::QueryState::with_audit_log`]. Without it the routes answer 503
//! `audit-log-unavailable`.

use std::fmt::Debug;

use futures::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

/// Why an audit read from the log failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditLogError {
    /// Not an aggregate type the contract knows.
    #[error("unknown aggregate type `{0}` (expected one of {list})", list = AGGREGATE_TYPES.join(", "))]
    UnknownType(String),
    /// The log holds no event of this aggregate.
    #[error("no events of {0} {1} in the log")]
    NotFound(String, String),
    /// The log, the registry or a record could not be read.
    #[error("the event log could not be read: {0}")]
    Unavailable(String),
}

/// Every aggregate type whose events carry a hash chain, with the saga's.
pub const AGGREGATE_TYPES: &[&str] = &[
    "Product",
    "StockItem",
    "Cart",
    "Order",
    "Payment",
    "Shipment",
    "Customer",
    "OrderFulfillment",
];

/// One event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LoggedEvent {
    pub version: i64,
    pub event_id: String,
    /// The record's short name (`ProductRepriced`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 UTC.
    pub occurred_at: String,
    /// Milliseconds since the epoch (the same instant).
    pub occurred_at_ms: i64,
    pub actor: String,
    pub command_id: String,
    pub correlation_id: String,
    pub causation_id: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Hex; empty for version 1.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
}

/// An aggregate's state at a moment, folded from its events.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StateAt {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The moment asked for (RFC 3339 UTC).
    pub as_of: String,
    /// The last version at or before `as_of` (0: the aggregate did not exist yet).
    pub version: i64,
    /// When that version happened (absent for version 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_occurred_at: Option<String>,
    /// The aggregate's state after that version, as the command side's
    /// `evolve` builds it (the saga: the state its last step recorded).
    #[schema(value_type = Object)]
    pub state: serde_json::Value,
}

/// What is wrong with one record of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainFinding {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Absent when the record did not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `hash-mismatch`, `broken-link`, `version-gap`, `version-out-of-order`,
    /// `duplicate-event-id`, `key-mismatch`, `wrong-partition`, `undecodable`.
    pub kind: String,
    /// In words.
    pub detail: String,
}

/// The chain of one aggregate, checked from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainReport {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Records of the aggregate checked.
    pub events: u64,
    /// The last version seen in order.
    pub last_version: i64,
    /// Hex hash of the chain's head (what a later check can be pinned to).
    pub head_hash: String,
    /// True when nothing was found.
    pub intact: bool,
    pub findings: Vec<ChainFinding>,
}

/// Audit reads from the event log (see the module docs).
pub trait AuditLog: Send + Sync + Debug + 'static {
    /// Every event of the aggregate in log order, from its partition.
    fn history<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LoggedEvent>, AuditLogError>>;

    /// The aggregate's state after its last event with `occurred_at <= as_of_ms`.
    fn state_at<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
        as_of_ms: i64,
    ) -> BoxFuture<'a, Result<StateAt, AuditLogError>>;

    /// The aggregate's chain checked record by record.
    fn verify<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<ChainReport, AuditLogError>>;
}

/// A moment: RFC 3339 (`2026-11-22T07:30:00Z`, `…+01:00`, fractions of a
/// second to milliseconds) or milliseconds since the epoch. `None` for
/// anything else.
pub fn parse_as_of(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    parse_rfc3339(text)
}

/// What [`parse_as_of`] accepts, in words (for error messages).
pub const AS_OF_FORMATS: &str =
    "an RFC 3339 time (e.g. 2026-11-22T07:30:00Z or 2026-11-22T08:30:00.250+01:00) or milliseconds since the Unix epoch";

fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start || end - start > 9 {
            return None;
        }
        let digits = std::str::from_utf8(b.get(start..end)?).ok()?;
        let padded = format!("{digits:0<3}");
        millis = padded.get(..3)?.parse().ok()?;
        i = end;
    }
    let offset_minutes = match b.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let m = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;
    use crate::time::rfc3339;

    #[test]
    fn as_of_takes_rfc3339_and_epoch_millis() {
        assert_eq!(parse_as_of("0"), Some(0));
        assert_eq!(parse_as_of("1763796600000"), Some(1_763_796_600_000));
        assert_eq!(parse_as_of("1970-01-01T00:00:00Z"), Some(0));
        let ms = parse_as_of("2026-11-22T07:30:00.250Z").unwrap();
        assert_eq!(rfc3339(ms), "2026-11-22T07:30:00.250Z");
        assert_eq!(parse_as_of("2026-11-22T08:30:00.25+01:00"), Some(ms));
        assert_eq!(
            parse_as_of("2024-02-29T00:00:00Z").map(rfc3339).unwrap(),
            "2024-02-29T00:00:00.000Z"
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-22T07:30:00",
            "2026-11-22T07:30:00+1:00",
            "-5",
            "12.5",
            "2026-11-22T07:30:00.Z",
            "99999999999999999999",
        ] {
            assert_eq!(parse_as_of(bad), None, "{bad}");
        }
    }
}
