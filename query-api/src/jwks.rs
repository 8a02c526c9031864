//! Where the token verifier's keys come from: a fixed [`Verifier`] (one
//! process, tests) or the command API's JWKS document fetched over HTTP.
//!
//! The JWKS is fetched lazily and again when a token names a `kid` the
//! current keys do not hold — how a key rotation reaches us. Refetches are
//! rate-limited ([`JwksConfig::min_refresh`]) so a stream of tokens with
//! made-up `kid`s cannot turn into a stream of requests to the issuer, and
//! the keys are refreshed anyway once older than [`JwksConfig::max_age`],
//! so a key the issuer withdrew stops being trusted. A failed fetch keeps
//! the keys we have; with none at all, requests are answered 503 (the
//! problem is ours, not the caller's token).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use platform::auth::{AuthError, Claims, Verifier};

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The token is bad (401).
    #[error(transparent)]
    Rejected(AuthError),
    /// No keys to check it with (503).
    #[error("verification keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// Tunables of the JWKS source.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    /// Least time between two fetches caused by unknown `kid`s.
    pub min_refresh: Duration,
    /// Keys older than this are refetched on the next request.
    pub max_age: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            min_refresh: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The keys fetched from a JWKS URL.
pub struct JwksSource {
    url: String,
    issuer: String,
    audience: String,
    config: JwksConfig,
    client: reqwest::Client,
    /// The current keys and when they were fetched.
    current: RwLock<Option<(Arc<Verifier>, Instant)>>,
    /// Held while fetching (one fetch at a time); holds when the last
    /// fetch was attempted.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("url", &self.url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Largest JWKS document accepted: ours is a few hundred bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

impl JwksSource {
    pub fn new(
        url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        config: JwksConfig,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(config.timeout).build()?;
        Ok(Self {
            url: url.into(),
            issuer: issuer.into(),
            audience: audience.into(),
            config,
            client,
            current: RwLock::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    fn current(&self) -> Option<(Arc<Verifier>, Instant)> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `verifier` can check a token naming `kid` and is young enough.
    fn usable(&self, current: &Option<(Arc<Verifier>, Instant)>, kid: Option<&str>) -> bool {
        current.as_ref().is_some_and(|(v, at)| {
            at.elapsed() < self.config.max_age
                && kid.is_none_or(|kid| v.kids().any(|known| known == kid))
        })
    }

    /// The verifier for a token naming `kid`, fetching the JWKS if needed
    /// and allowed.
    pub async fn verifier_for(&self, kid: Option<&str>) -> Result<Arc<Verifier>, VerifyError> {
        let current = self.current();
        if self.usable(&current, kid) {
            if let Some((v, _)) = current {
                return Ok(v);
            }
        }
        let knows_kid = current
            .as_ref()
            .is_some_and(|(v, _)| kid.is_none_or(|kid| v.kids().any(|k| k == kid)));
        let mut last = if knows_kid {
            // Only old: one request refreshes, the others carry on with
            // the keys we have instead of queueing behind the fetch.
            match self.last_attempt.try_lock() {
                Ok(guard) => guard,
                Err(_) => {
                    if let Some((v, _)) = current {
                        return Ok(v);
                    }
                    self.last_attempt.lock().await
                }
            }
        } else {
            self.last_attempt.lock().await
        };
        // Another request may have fetched while this one waited.
        let current = self.current();
        if self.usable(&current, kid) {
            if let Some((v, _)) = current {
                return Ok(v);
            }
        }
        // With no keys at all, retry sooner: every request fails until then.
        let gap = if current.is_some() {
            self.config.min_refresh
        } else {
            self.config.min_refresh.min(Duration::from_secs(1))
        };
        let due = last.is_none_or(|at| at.elapsed() >= gap);
        if due {
            *last = Some(Instant::now());
            match self.fetch().await {
                Ok(v) => {
                    let v = Arc::new(v);
                    *self
                        .current
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((v.clone(), Instant::now()));
                    return Ok(v);
                }
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed");
                    if current.is_none() {
                        return Err(VerifyError::KeysUnavailable(e));
                    }
                }
            }
        }
        // Not due, or the fetch failed: the keys we have decide (an unknown
        // kid is then refused as such).
        match current {
            Some((v, _)) => Ok(v),
            None => Err(VerifyError::KeysUnavailable(
                "no JWKS fetched yet".to_owned(),
            )),
        }
    }

    async fn fetch(&self) -> Result<Verifier, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("JWKS of {} bytes is too large", bytes.len()));
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| e.to_string())?;
        Verifier::from_jwks_json(text, &self.issuer, &self.audience).map_err(|e| e.to_string())
    }
}

/// Where keys come from.
#[derive(Debug)]
pub enum VerifierSource {
    Fixed(Arc<Verifier>),
    Jwks(Box<JwksSource>),
}

impl VerifierSource {
    pub fn fixed(verifier: Verifier) -> Self {
        Self::Fixed(Arc::new(verifier))
    }

    /// Keys from `url` (the command API's `/.well-known/jwks.json`).
    pub fn jwks(
        url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        config: JwksConfig,
    ) -> Result<Self, reqwest::Error> {
        JwksSource::new(url, issuer, audience, config).map(|s| Self::Jwks(Box::new(s)))
    }

    /// Verifies `token` at `now_s`: signature, claims, time. Revocation is
    /// checked by the caller against the view followed from the log
    /// ([`crate::QueryState::with_revocations`], ADR 0022).
    pub async fn verify(&self, token: &str, now_s: i64) -> Result<Claims, VerifyError> {
        let verifier = match self {
            Self::Fixed(v) => v.clone(),
            Self::Jwks(source) => source.verifier_for(kid_of(token).as_deref()).await?,
        };
        verifier
            .verify(token, now_s, None)
            .map_err(VerifyError::Rejected)
    }
}

/// The `kid` of a JWT's header, read unverified only to choose keys (the
/// verifier checks everything again).
fn kid_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    if header.len() > 2048 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kid_is_read_from_the_header() {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"ES256","kid":"k1"}"#);
        assert_eq!(kid_of(&format!("{header}.x.y")).as_deref(), Some("k1"));
        assert_eq!(kid_of("garbage"), None);
        assert_eq!(kid_of(""), None);
    }
}
