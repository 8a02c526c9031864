//! `Idempotency-Key` on every state-changing request.
//!
//! Same key + same request (method, path, body) → the first final
//! response, byte for byte, and nothing is sent again (a 202 is not final:
//! the retry asks again, see [`IdempotencyStore::finish`]); same key + a
//! different request
//! → 422; a request still running under the key → 409. Keys are scoped to
//! the authenticated subject (or to anonymous callers as a group), so one
//! client can't read another's stored answer by guessing keys.
//!
//! The command id is derived from (subject, key), so even after this
//! store forgot a key (restart, TTL) a retried command is recognised by the
//! command processor's duplicate window and answered with its first
//! outcome: the log never gets it twice.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::problem::AppError;

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;
/// How many keys are remembered at most (oldest forgotten first).
const CAPACITY: usize = 100_000;
/// How long a key is remembered (ms).
pub const TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A stored first response.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl StoredResponse {
    pub fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    }
}

#[derive(Debug)]
enum Entry {
    InFlight {
        fingerprint: [u8; 32],
        since: i64,
    },
    Done {
        fingerprint: [u8; 32],
        response: StoredResponse,
        at: i64,
    },
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Begin {
    /// First time: run it, then [`IdempotencyStore::finish`].
    Run,
    Replay(StoredResponse),
}

/// (scope, key).
type KeyId = (String, String);

/// Remembered keys, and their insertion order for eviction.
type Entries = (HashMap<KeyId, Entry>, std::collections::VecDeque<KeyId>);

#[derive(Debug, Default)]
pub struct IdempotencyStore {
    entries: Mutex<Entries>,
}

/// The fingerprint of a request: what "the same request" means.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

/// The key from the headers: absent is fine, malformed is a 400.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| {
        AppError::bad_request(
            "invalid-idempotency-key",
            "Idempotency-Key must be visible ASCII",
        )
        .with_field("Idempotency-Key")
    })?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(AppError::bad_request(
            "invalid-idempotency-key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )
        .with_field("Idempotency-Key"));
    }
    Ok(Some(key.to_owned()))
}

impl IdempotencyStore {
    pub fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: [u8; 32],
        now: i64,
    ) -> Result<Begin, AppError> {
        let mut guard = self
            .entries
            .lock()
            .map_err(|_| AppError::internal(&"idempotency store poisoned"))?;
        let (entries, order) = &mut *guard;
        let id = (scope.to_owned(), key.to_owned());
        match entries.get(&id) {
            Some(Entry::Done {
                fingerprint: f,
                response,
                at,
            }) if now - at < TTL_MS => {
                if *f == fingerprint {
                    return Ok(Begin::Replay(response.clone()));
                }
                return Err(mismatch());
            }
            Some(Entry::InFlight {
                fingerprint: f,
                since,
            }) if now - since < 60_000 => {
                if *f != fingerprint {
                    return Err(mismatch());
                }
                return Err(AppError::new(
                    StatusCode::CONFLICT,
                    "request-in-progress",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                ));
            }
            _ => {}
        }
        entries.insert(
            id.clone(),
            Entry::InFlight {
                fingerprint,
                since: now,
            },
        );
        order.push_back(id);
        while order.len() > CAPACITY {
            if let Some(old) = order.pop_front() {
                entries.remove(&old);
            }
        }
        Ok(Begin::Run)
    }

    /// Stores the first final response. Not stored, so a retry under the
    /// key runs again:
    /// - a 5xx: it may be retried;
    /// - a 202: "not decided yet" is not an answer. Replaying it would keep
    ///   a client polling a status URL that can stay silent for good — the
    ///   instance that held the command restarted, or its outcome follower
    ///   missed the outcome. Run again, the request carries the same
    ///   command id: the bus answers from the outcomes it has seen, or sends
    ///   the command again and the processor answers that repeat with its
    ///   first outcome, appending nothing (ADR 0028).
    pub fn finish(
        &self,
        scope: &str,
        key: &str,
        fingerprint: [u8; 32],
        response: Option<StoredResponse>,
        now: i64,
    ) {
        let Ok(mut guard) = self.entries.lock() else {
            return;
        };
        let id = (scope.to_owned(), key.to_owned());
        match response {
            Some(response)
                if !response.status.is_server_error()
                    && response.status != StatusCode::ACCEPTED =>
            {
                guard.0.insert(
                    id,
                    Entry::Done {
                        fingerprint,
                        response,
                        at: now,
                    },
                );
            }
            _ => {
                guard.0.remove(&id);
            }
        }
    }
}

fn mismatch() -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "this Idempotency-Key was used for a different request; use a new key",
    )
    .with_field("Idempotency-Key")
}

/// Captures a response so it can be stored and returned.
pub async fn capture(response: Response) -> (Response, Option<StoredResponse>) {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return (
            AppError::internal(&"response body unreadable").into_response(),
            None,
        );
    };
    let stored = StoredResponse {
        status: parts.status,
        headers: parts
            .headers
            .iter()
            .filter(|(n, _)| {
                matches!(
                    n.as_str(),
                    "content-type" | "location" | "etag" | "retry-after"
                )
            })
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: bytes.to_vec(),
    };
    let response = Response::from_parts(parts, Body::from(bytes));
    (response, Some(stored))
}
