//! # auth — who is calling, proven without a round trip
//!
//! The auth service owns credentials and issues tokens; every other service
//! checks those tokens *locally* with a [`Verifier`] built from the issuer's
//! public keys (its JWKS document). Nothing here reads the clock: callers
//! pass `now` in seconds since the Unix epoch, so expiry, not-yet-valid and
//! rotation are tested by choosing a time instead of sleeping, and one
//! request sees one consistent "now" across every check it makes.
//!
//! Layout:
//! - [`password`] — argon2id PHC hashes and the password rules.
//! - [`store`] — the [`CredentialStore`] port (credentials, refresh-token
//!   records, revoked access-token ids) and its in-memory adapter;
//!   [`embedded`] — the redb-file adapter.
//! - [`keys`] — the ES256 signing key pair, its `kid`, PEM persistence, the
//!   JWKS, and the previous keys still accepted while keys rotate.
//! - [`tokens`] — the [`TokenIssuer`]: access JWT + rotating refresh token
//!   pairs, refresh with reuse detection, logout.
//! - [`refresh`] — the opaque refresh-token format (random bytes, stored
//!   only as a SHA-256 digest).
//! - [`verify`] — the [`Verifier`] every service runs.
//! - [`revocations`] — revocations as records on the event log, and the
//!   [`revocations::RevocationView`] a service without the store (the query
//!   API) follows them into.
//!
//! Every store call blocks (redb is synchronous, argon2 is deliberately
//! slow): async callers wrap them in `tokio::task::spawn_blocking`.

pub mod embedded;
pub mod keys;
pub mod password;
pub mod refresh;
pub mod revocations;
pub mod store;
pub mod tokens;
pub mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedCredentialStore;
pub use keys::{PublicJwk, SigningKeys};
pub use password::PasswordHasher;
pub use store::{
    normalize_email, Credential, CredentialStore, MemoryCredentialStore, RefreshRecord, RefreshUse,
    RevocationList,
};
pub use tokens::{Claims, TokenIssuer, TokenPair};
pub use verify::Verifier;

/// What a caller may do. Carried in the access token's `roles` claim, so a
/// service authorises from the token alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
    Courier,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Customer, Role::Admin, Role::Courier, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Courier => "courier",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected customer, admin, courier or auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Every way authentication can fail, shaped for the HTTP layer: 401 for the
/// credential and token variants, 409 for [`AuthError::EmailTaken`], 422 for
/// [`AuthError::WeakPassword`], 500 for [`AuthError::Store`] and
/// [`AuthError::Key`].
///
/// Messages never contain a password, hash or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The same message for an unknown e-mail and a wrong password, so the
    /// answer does not tell which e-mails are registered.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("this e-mail is already registered")]
    EmailTaken,
    #[error("password rejected: {0}")]
    WeakPassword(String),
    #[error("token expired")]
    TokenExpired,
    #[error("token not yet valid")]
    TokenNotYetValid,
    /// Wrong algorithm, unknown key id, bad signature, wrong issuer or
    /// audience, malformed token.
    #[error("invalid token: {0}")]
    TokenInvalid(String),
    #[error("token revoked")]
    TokenRevoked,
    /// A refresh token was presented a second time: its whole family is now
    /// revoked (see [`TokenIssuer::refresh`]).
    #[error("refresh token reused; the session has been revoked")]
    RefreshReused,
    #[error("unknown refresh token")]
    RefreshUnknown,
    #[error("credential store: {0}")]
    Store(String),
    /// The signing key could not be generated, parsed or persisted.
    #[error("signing key: {0}")]
    Key(String),
}

/// Maps any storage error to [`AuthError::Store`].
pub(crate) fn store_err(e: impl fmt::Display) -> AuthError {
    AuthError::Store(e.to_string())
}
