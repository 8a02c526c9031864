//! The verifier every service runs locally: ES256 signature against the
//! issuer's published keys, then issuer, audience, time window, and
//! (optionally) the revocation list.
//!
//! Only ES256 is accepted, decided *before* any key is used. A verifier that
//! lets the token's header choose the algorithm can be fooled: `alg: none`
//! skips the signature, and `alg: HS256` makes a naive library use the
//! public key's bytes as an HMAC secret — which the attacker also has
//! (algorithm confusion). The key is chosen by `kid` among the keys we
//! trust, never taken from the token (`jwk`/`jku` headers are ignored).
//!
//! Time is passed in (`now_s`) rather than read here: expiry and
//! not-before are tested by choosing a time, one request uses one "now"
//! for all its checks, and the `jsonwebtoken` crate's own clock-reading
//! exp/nbf checks are switched off in favour of ours.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest as _, Sha256};

use super::keys::{PublicJwk, SigningKeys};
use super::store::RevocationList;
use super::tokens::Claims;
use super::AuthError;

/// The largest clock-skew allowance, in seconds. More would stretch a
/// 15-minute token noticeably and delay revocation-by-expiry.
pub const MAX_LEEWAY_S: i64 = 30;

/// The access token's JOSE `typ` (RFC 9068), so a JWT minted for another
/// purpose by the same key can never pass as an access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Longest token accepted, in bytes: ours are well under 1 KiB, so this
/// only bounds the work an attacker can ask of the parser.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Tokens whose signature and claims were verified, kept for reuse. A
/// client sends the same access token with every request for its 15
/// minutes, and an ES256 signature check is the most expensive step of
/// serving a read (docs/performance.md); what a token's bytes say cannot
/// change, so verifying them once per verifier is enough. Bounded: when
/// full it starts again empty, so a flood of distinct tokens costs at most
/// what no cache would.
const VERIFIED_CAPACITY: usize = 16_384;

/// Verified tokens by the SHA-256 of their bytes (not the bearer
/// credential itself), with their claims.
type VerifiedTokens = Mutex<HashMap<[u8; 32], Claims>>;

/// Verifies access tokens of one issuer for one audience. Cheap to clone
/// (clones share what was verified).
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    issuer: String,
    audience: String,
    leeway_s: i64,
    validation: Validation,
    /// Only what cannot change for these keys, issuer and audience: the
    /// signature and the claims. Time and revocation are checked on every
    /// call. Keys never change inside a verifier (a new JWKS is a new
    /// verifier, with an empty cache).
    verified: Arc<VerifiedTokens>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Verifier")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_s", &self.leeway_s)
            .finish()
    }
}

fn invalid(reason: impl Into<String>) -> AuthError {
    AuthError::TokenInvalid(reason.into())
}

impl Verifier {
    fn new(
        keys: HashMap<String, DecodingKey>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        if keys.is_empty() {
            return Err(AuthError::Key("no ES256 P-256 verification key".into()));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        // exp/nbf: checked by us against the caller's `now` (the crate would
        // read the system clock). Our `Claims` has them as required integers,
        // so a token without them, or with a string there, fails to decode.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_s: MAX_LEEWAY_S,
            validation,
            verified: Arc::default(),
        })
    }

    /// From the issuer's own keys (current and previous), in process.
    pub fn from_keys(keys: &SigningKeys, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let map = keys
            .public_keys()
            .map(|k| Ok((k.kid.clone(), k.decoding_key()?)))
            .collect::<Result<HashMap<_, _>, AuthError>>()?;
        Self::new(map, issuer, audience)
    }

    /// From a JWKS document (`{"keys":[…]}`, as served at `/jwks.json`).
    /// Keys that are not P-256 signature keys for ES256 are skipped (a JWKS
    /// may publish others); a malformed ES256 key, a repeated `kid` or no
    /// usable key at all is an error.
    pub fn from_jwks(
        jwks: &serde_json::Value,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let entries = jwks
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| AuthError::Key("JWKS has no `keys` array".into()))?;
        let mut map = HashMap::new();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<PublicJwk>(entry.clone()) else {
                continue;
            };
            if !jwk.is_es256() {
                continue;
            }
            let key = jwk.decoding_key()?;
            if map.insert(jwk.kid.clone(), key).is_some() {
                return Err(AuthError::Key(format!("JWKS repeats kid {}", jwk.kid)));
            }
        }
        Self::new(map, issuer, audience)
    }

    /// [`Verifier::from_jwks`] from the document's text.
    pub fn from_jwks_json(text: &str, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let value = serde_json::from_str(text)
            .map_err(|e| AuthError::Key(format!("JWKS is not JSON: {e}")))?;
        Self::from_jwks(&value, issuer, audience)
    }

    /// Clock-skew allowance for `exp` and `nbf` (default and maximum
    /// [`MAX_LEEWAY_S`]; larger values are capped).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        let secs = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        self.leeway_s = secs.min(MAX_LEEWAY_S);
        self
    }

    /// The key ids this verifier trusts.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Verifies `token` at `now_s` (seconds since the epoch) and returns its
    /// claims. With `revocations`, a revoked `jti` is refused too.
    pub fn verify(
        &self,
        token: &str,
        now_s: i64,
        revocations: Option<&dyn RevocationList>,
    ) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too long"));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .cloned();
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature_and_claims(token)?;
                let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
                verified.insert(digest, claims.clone());
                claims
            }
        };
        self.check_time_and_revocation(claims, now_s, revocations)
    }

    /// Everything about `token` that does not depend on the time or on
    /// revocations: header, algorithm, key, signature, issuer, audience,
    /// claim types.
    fn verify_signature_and_claims(&self, token: &str) -> Result<Claims, AuthError> {
        // The header is read unverified only to pick the algorithm and key;
        // nothing in it is trusted beyond that.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("malformed header or unsupported algorithm"))?;
        if header.alg != Algorithm::ES256 {
            return Err(invalid(format!(
                "algorithm {:?} not accepted (only ES256)",
                header.alg
            )));
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(invalid(format!("typ must be {ACCESS_TOKEN_TYPE}")));
        }
        if header.crit.is_some() {
            return Err(invalid("critical header extensions not supported"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("missing kid"))?;
        let key = self.keys.get(kid).ok_or_else(|| invalid("unknown kid"))?;

        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::InvalidSignature => invalid("bad signature"),
                    ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                    ErrorKind::InvalidAudience => invalid("wrong audience"),
                    ErrorKind::MissingRequiredClaim(claim) => invalid(format!("missing {claim}")),
                    ErrorKind::InvalidAlgorithm => invalid("algorithm mismatch"),
                    ErrorKind::Json(_) => invalid("malformed claims"),
                    ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                        invalid("malformed token")
                    }
                    _ => invalid("rejected"),
                }
            })?;
        Ok(data.claims)
    }

    fn check_time_and_revocation(
        &self,
        claims: Claims,
        now_s: i64,
        revocations: Option<&dyn RevocationList>,
    ) -> Result<Claims, AuthError> {
        if now_s >= claims.exp.saturating_add(self.leeway_s) {
            return Err(AuthError::TokenExpired);
        }
        if now_s.saturating_add(self.leeway_s) < claims.nbf {
            return Err(AuthError::TokenNotYetValid);
        }
        if let Some(list) = revocations {
            if list.is_revoked(&claims.jti)? {
                return Err(AuthError::TokenRevoked);
            }
            if let Some(sid) = &claims.sid {
                if list.is_session_revoked(sid)? {
                    return Err(AuthError::TokenRevoked);
                }
            }
        }
        Ok(claims)
    }
}
