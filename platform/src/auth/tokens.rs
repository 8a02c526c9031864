//! Issuing tokens: a short-lived access JWT plus a long-lived, single-use
//! refresh token.
//!
//! Why two tokens: the access token is checked locally by every service
//! without a lookup, so it cannot be recalled once issued except through a
//! revocation list; keeping it short (15 minutes) bounds that window. The
//! refresh token is looked up on every use, so it can be long-lived (30
//! days) and still be revoked at once.
//!
//! Why rotation with reuse detection: each refresh token works once and is
//! exchanged for a new pair in the same *family* (one family per login). If
//! a used token comes back, two parties hold copies — the client and a
//! thief — and the store cannot tell which one is presenting it now. So the
//! whole family is revoked: the thief's next token dies with the client's,
//! and the client logs in again (OAuth 2.0 Security BCP, §4.14.2).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use super::keys::SigningKeys;
use super::store::{CredentialStore, RefreshRecord, RefreshUse};
use super::verify::{Verifier, ACCESS_TOKEN_TYPE};
use super::{refresh, AuthError, Role};
use crate::config::Secret;

/// Default access-token lifetime.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Default refresh-token lifetime (sliding: each rotation restarts it).
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The access token's claims. `exp`, `nbf` and `iat` are seconds since the
/// epoch; typed fields (not `serde_json::Value`) so a claim of the wrong
/// JSON type fails the whole token instead of being skipped. An unknown role
/// fails it too (closed, not open): roles are added to verifiers first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The customer id.
    pub sub: String,
    pub roles: Vec<Role>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Unique per token: what logout puts on the revocation list.
    pub jti: String,
    /// The session: the refresh family the token was issued in (OpenID's
    /// `sid`). Revoking the family — logout, or a refresh token used twice
    /// — refuses every access token of the session, not only the one that
    /// logged out. Absent on tokens minted outside a login (tests, tools),
    /// and optional so tokens minted before it existed still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// What a login or refresh answers. Both tokens are bearer credentials, so
/// they are [`Secret`]s: serialised as plain strings, never printed.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Mints token pairs, rotates refresh tokens, logs out. Methods block on the
/// store (run them in `spawn_blocking`).
#[derive(Clone)]
pub struct TokenIssuer {
    keys: Arc<SigningKeys>,
    store: Arc<dyn CredentialStore>,
    issuer: String,
    audience: String,
    access_ttl_s: i64,
    refresh_ttl_s: i64,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.keys.kid())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl_s", &self.access_ttl_s)
            .field("refresh_ttl_s", &self.refresh_ttl_s)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl TokenIssuer {
    /// An issuer with the default lifetimes (15 minutes / 30 days).
    pub fn new(
        keys: Arc<SigningKeys>,
        store: Arc<dyn CredentialStore>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            keys,
            store,
            issuer: issuer.into(),
            audience: audience.into(),
            access_ttl_s: secs(DEFAULT_ACCESS_TTL),
            refresh_ttl_s: secs(DEFAULT_REFRESH_TTL),
        }
    }

    pub fn with_ttls(mut self, access: Duration, refresh: Duration) -> Self {
        self.access_ttl_s = secs(access).max(1);
        self.refresh_ttl_s = secs(refresh).max(1);
        self
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.store
    }

    /// A verifier for this issuer's tokens, in process.
    pub fn verifier(&self) -> Result<Verifier, AuthError> {
        Verifier::from_keys(&self.keys, &self.issuer, &self.audience)
    }

    /// A new session (new refresh family) for a customer who just proved
    /// who they are.
    pub fn issue(
        &self,
        customer_id: &str,
        roles: &[Role],
        now_s: i64,
    ) -> Result<TokenPair, AuthError> {
        let family = uuid::Uuid::new_v4().to_string();
        self.issue_in_family(customer_id, roles, &family, now_s)
    }

    fn issue_in_family(
        &self,
        customer_id: &str,
        roles: &[Role],
        family: &str,
        now_s: i64,
    ) -> Result<TokenPair, AuthError> {
        let refresh_token = refresh::generate();
        let record = RefreshRecord {
            family: family.to_owned(),
            customer_id: customer_id.to_owned(),
            roles: roles.to_vec(),
            expires_at: now_s.saturating_add(self.refresh_ttl_s),
            used: false,
        };
        self.store
            .insert_refresh(&refresh::digest(refresh_token.expose()), &record)?;
        let access_token = self.sign_access_in(customer_id, roles, Some(family), now_s)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in: self.access_ttl_s,
        })
    }

    /// Signs an access token for `customer_id` valid from `now_s` for the
    /// access TTL.
    pub fn sign_access(
        &self,
        customer_id: &str,
        roles: &[Role],
        now_s: i64,
    ) -> Result<Secret, AuthError> {
        self.sign_access_in(customer_id, roles, None, now_s)
    }

    /// [`Self::sign_access`] for the session `sid` (a refresh family).
    pub fn sign_access_in(
        &self,
        customer_id: &str,
        roles: &[Role],
        sid: Option<&str>,
        now_s: i64,
    ) -> Result<Secret, AuthError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: customer_id.to_owned(),
            roles: roles.to_vec(),
            iat: now_s,
            nbf: now_s,
            exp: now_s.saturating_add(self.access_ttl_s),
            jti: uuid::Uuid::new_v4().to_string(),
            sid: sid.map(str::to_owned),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.keys.kid().to_owned());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, &claims, self.keys.encoding_key())
            .map(Secret::new)
            .map_err(|e| AuthError::Key(format!("signing an access token failed: {e}")))
    }

    /// Exchanges a refresh token for a new pair in the same family.
    ///
    /// - unknown → [`AuthError::RefreshUnknown`]; expired →
    ///   [`AuthError::TokenExpired`]; family revoked →
    ///   [`AuthError::TokenRevoked`];
    /// - already used → the family is revoked, [`AuthError::RefreshReused`].
    ///
    /// The new access token carries the customer's *current* roles (a role
    /// revoked since login is gone after the next refresh), falling back to
    /// the roles recorded at login if the customer has no login record.
    pub fn refresh(&self, refresh_token: &Secret, now_s: i64) -> Result<TokenPair, AuthError> {
        let hash = refresh::digest(refresh_token.expose());
        match self.store.consume_refresh(&hash, now_s)? {
            RefreshUse::Unknown => Err(AuthError::RefreshUnknown),
            RefreshUse::Expired => Err(AuthError::TokenExpired),
            RefreshUse::Revoked => Err(AuthError::TokenRevoked),
            RefreshUse::Reused(record) => {
                self.store
                    .revoke_family(&record.family, self.family_revoked_until(now_s))?;
                tracing::warn!(
                    customer_id = %record.customer_id,
                    family = %record.family,
                    "refresh token reused; session revoked"
                );
                Err(AuthError::RefreshReused)
            }
            RefreshUse::Fresh(record) => {
                let roles = match self.store.by_customer(&record.customer_id)? {
                    Some(credential) => credential.roles,
                    None => record.roles,
                };
                self.issue_in_family(&record.customer_id, &roles, &record.family, now_s)
            }
        }
    }

    /// Ends a session: the refresh token's family is revoked (every token
    /// of that login, including ones not yet rotated to) and the access
    /// token's `jti` goes on the revocation list until its `exp`. An unknown
    /// refresh token still revokes the access token: logout must not fail
    /// half-way for a client that lost its refresh token.
    pub fn logout(
        &self,
        refresh_token: &Secret,
        access_jti: &str,
        access_exp: i64,
        now_s: i64,
    ) -> Result<(), AuthError> {
        let hash = refresh::digest(refresh_token.expose());
        if let Some(record) = self.store.refresh_record(&hash)? {
            self.store
                .revoke_family(&record.family, self.family_revoked_until(now_s))?;
        }
        self.store.revoke_access(access_jti, access_exp)
    }

    /// The access-token lifetime in seconds: how long a revocation must be
    /// remembered by a verifier (with [`super::verify::MAX_LEEWAY_S`]).
    pub fn access_ttl_s(&self) -> i64 {
        self.access_ttl_s
    }

    /// Every token of a family expires at most one refresh TTL after the
    /// last rotation, which was no later than now.
    fn family_revoked_until(&self, now_s: i64) -> i64 {
        now_s.saturating_add(self.refresh_ttl_s)
    }
}
