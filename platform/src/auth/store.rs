//! The credential store port and its in-memory adapter.
//!
//! One store holds three things that must change atomically with the checks
//! made on them:
//! - credentials: e-mail (lower-cased) → customer id, argon2id PHC, roles;
//! - refresh-token records, keyed by SHA-256 of the token (the token itself
//!   is never stored, so a copy of the store cannot be replayed), and the
//!   families revoked after a reuse or a logout;
//! - revoked access-token ids (`jti` → `exp`), kept until the token would
//!   have expired anyway.
//!
//! The port is synchronous (redb is): async callers use `spawn_blocking`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::password::PasswordHasher;
use super::verify::MAX_LEEWAY_S;
use super::{AuthError, Role};
use crate::config::Secret;

/// The one normal form of an e-mail address used as a login: trimmed and
/// lower-cased, so `Ada@Example.com` and `ada@example.com` are one account
/// (matching the Customer aggregate, which stores it lower-cased).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// One customer's login. `Debug` leaves the hash out: a record in a log
/// line must not hand out offline guessing material.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Normalised ([`normalize_email`]).
    pub email: String,
    pub customer_id: String,
    /// argon2id PHC string.
    pub phc: String,
    pub roles: Vec<Role>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("email", &self.email)
            .field("customer_id", &self.customer_id)
            .field("phc", &"***")
            .field("roles", &self.roles)
            .finish()
    }
}

/// What the store keeps about one refresh token (keyed by its digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// Every token descended from one login shares a family id; revoking the
    /// family ends the whole session.
    pub family: String,
    pub customer_id: String,
    pub roles: Vec<Role>,
    /// Seconds since the epoch; the token is refused from this instant on.
    pub expires_at: i64,
    /// Set when the token is exchanged; a second exchange is a reuse.
    pub used: bool,
}

/// The outcome of presenting a refresh token ([`CredentialStore::consume_refresh`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// First use: the record is now marked used; issue the next token.
    Fresh(RefreshRecord),
    /// Already used before: someone holds a copy. The caller revokes the
    /// family.
    Reused(RefreshRecord),
    /// Its family was revoked (logout, or a reuse detected earlier).
    Revoked,
    Expired,
    Unknown,
}

/// Decides what presenting `record` at `now_s` means, shared by the adapters
/// so they cannot disagree. Returns the outcome and the record to write back
/// (when it changes).
pub(crate) fn classify(
    record: Option<RefreshRecord>,
    family_revoked: impl FnOnce(&str) -> bool,
    now_s: i64,
) -> (RefreshUse, Option<RefreshRecord>) {
    let Some(record) = record else {
        return (RefreshUse::Unknown, None);
    };
    if family_revoked(&record.family) {
        (RefreshUse::Revoked, None)
    } else if now_s >= record.expires_at {
        (RefreshUse::Expired, None)
    } else if record.used {
        (RefreshUse::Reused(record), None)
    } else {
        let used = RefreshRecord {
            used: true,
            ..record.clone()
        };
        (RefreshUse::Fresh(record), Some(used))
    }
}

/// How long a revoked `jti` is kept: until no verifier would accept the
/// token anyway (its `exp` plus the largest leeway).
pub(crate) fn revocation_expired(exp_s: i64, now_s: i64) -> bool {
    exp_s.saturating_add(MAX_LEEWAY_S) < now_s
}

/// The revoked access-token ids a [`super::Verifier`] can consult. A
/// separate trait from [`CredentialStore`] so a service without the store
/// can plug in another source (a replicated list, a cache).
pub trait RevocationList: Send + Sync {
    fn is_revoked(&self, jti: &str) -> Result<bool, AuthError>;

    /// Whether the session (refresh family, the access token's `sid`) was
    /// revoked: by a logout, or because one of its refresh tokens was used
    /// twice. A list that only knows token ids answers `false`.
    fn is_session_revoked(&self, _family: &str) -> Result<bool, AuthError> {
        Ok(false)
    }
}

/// The credential store port. All methods block.
pub trait CredentialStore: RevocationList + fmt::Debug {
    /// Registers a login. `email` is normalised here too, so uniqueness is
    /// case-insensitive whatever the caller did. [`AuthError::EmailTaken`]
    /// if the e-mail has a login; [`AuthError::Store`] if the customer has
    /// one under another e-mail.
    fn register(
        &self,
        email: &str,
        customer_id: &str,
        phc: &str,
        roles: &[Role],
    ) -> Result<(), AuthError>;

    fn by_email(&self, email: &str) -> Result<Option<Credential>, AuthError>;

    fn by_customer(&self, customer_id: &str) -> Result<Option<Credential>, AuthError>;

    /// Replaces the customer's roles; `false` if the customer has no login.
    fn set_roles(&self, customer_id: &str, roles: &[Role]) -> Result<bool, AuthError>;

    /// Stores a new refresh token's record. [`AuthError::TokenRevoked`] if
    /// its family was revoked meanwhile (a reuse detected while this
    /// rotation was in flight must not leave a live token behind).
    fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        record: &RefreshRecord,
    ) -> Result<(), AuthError>;

    /// Looks the token up and, on first use, marks it used — one atomic
    /// step, so two concurrent exchanges of one token cannot both succeed.
    fn consume_refresh(&self, token_hash: &[u8; 32], now_s: i64) -> Result<RefreshUse, AuthError>;

    /// The record, unchanged (for logout).
    fn refresh_record(&self, token_hash: &[u8; 32]) -> Result<Option<RefreshRecord>, AuthError>;

    /// Revokes every token of `family`, present and future, until `until_s`
    /// (by then every token of the family has expired).
    fn revoke_family(&self, family: &str, until_s: i64) -> Result<(), AuthError>;

    /// Puts an access token's `jti` on the revocation list until its `exp`.
    fn revoke_access(&self, jti: &str, exp_s: i64) -> Result<(), AuthError>;

    /// Drops expired refresh records, family revocations and revoked ids;
    /// returns how many entries went.
    fn purge_expired(&self, now_s: i64) -> Result<usize, AuthError>;
}

/// Checks an e-mail and password against the store. Unknown e-mail and wrong
/// password give the same [`AuthError::InvalidCredentials`] after the same
/// argon2 work, so neither the answer nor its timing says which e-mails
/// exist.
pub fn authenticate(
    store: &dyn CredentialStore,
    hasher: &PasswordHasher,
    email: &str,
    password: &Secret,
) -> Result<Credential, AuthError> {
    match store.by_email(email)? {
        Some(credential) if hasher.verify(password, &credential.phc) => Ok(credential),
        Some(_) => Err(AuthError::InvalidCredentials),
        None => {
            hasher.verify_dummy(password);
            Err(AuthError::InvalidCredentials)
        }
    }
}

/// The in-memory adapter, for tests and single-process experiments.
#[derive(Debug, Default)]
pub struct MemoryCredentialStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    credentials: HashMap<String, Credential>,
    /// customer id → e-mail
    customers: HashMap<String, String>,
    refresh: HashMap<[u8; 32], RefreshRecord>,
    /// family → revoked until
    families: HashMap<String, i64>,
    /// jti → exp
    revoked: HashMap<String, i64>,
}

impl MemoryCredentialStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every operation leaves the maps consistent before it can panic, so a
    /// poisoned lock still guards good data.
    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RevocationList for MemoryCredentialStore {
    fn is_revoked(&self, jti: &str) -> Result<bool, AuthError> {
        Ok(self.lock().revoked.contains_key(jti))
    }

    fn is_session_revoked(&self, family: &str) -> Result<bool, AuthError> {
        Ok(self.lock().families.contains_key(family))
    }
}

impl CredentialStore for MemoryCredentialStore {
    fn register(
        &self,
        email: &str,
        customer_id: &str,
        phc: &str,
        roles: &[Role],
    ) -> Result<(), AuthError> {
        let email = normalize_email(email);
        let mut state = self.lock();
        if state.credentials.contains_key(&email) {
            return Err(AuthError::EmailTaken);
        }
        if state.customers.contains_key(customer_id) {
            return Err(AuthError::Store(format!(
                "customer {customer_id} already has a login"
            )));
        }
        state
            .customers
            .insert(customer_id.to_owned(), email.clone());
        state.credentials.insert(
            email.clone(),
            Credential {
                email,
                customer_id: customer_id.to_owned(),
                phc: phc.to_owned(),
                roles: roles.to_vec(),
            },
        );
        Ok(())
    }

    fn by_email(&self, email: &str) -> Result<Option<Credential>, AuthError> {
        Ok(self
            .lock()
            .credentials
            .get(&normalize_email(email))
            .cloned())
    }

    fn by_customer(&self, customer_id: &str) -> Result<Option<Credential>, AuthError> {
        let state = self.lock();
        Ok(state
            .customers
            .get(customer_id)
            .and_then(|email| state.credentials.get(email))
            .cloned())
    }

    fn set_roles(&self, customer_id: &str, roles: &[Role]) -> Result<bool, AuthError> {
        let mut state = self.lock();
        let Some(email) = state.customers.get(customer_id).cloned() else {
            return Ok(false);
        };
        match state.credentials.get_mut(&email) {
            Some(credential) => {
                credential.roles = roles.to_vec();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        record: &RefreshRecord,
    ) -> Result<(), AuthError> {
        let mut state = self.lock();
        if state.families.contains_key(&record.family) {
            return Err(AuthError::TokenRevoked);
        }
        state.refresh.insert(*token_hash, record.clone());
        Ok(())
    }

    fn consume_refresh(&self, token_hash: &[u8; 32], now_s: i64) -> Result<RefreshUse, AuthError> {
        let mut state = self.lock();
        let record = state.refresh.get(token_hash).cloned();
        let families = &state.families;
        let (outcome, write) = classify(record, |f| families.contains_key(f), now_s);
        if let Some(write) = write {
            state.refresh.insert(*token_hash, write);
        }
        Ok(outcome)
    }

    fn refresh_record(&self, token_hash: &[u8; 32]) -> Result<Option<RefreshRecord>, AuthError> {
        Ok(self.lock().refresh.get(token_hash).cloned())
    }

    fn revoke_family(&self, family: &str, until_s: i64) -> Result<(), AuthError> {
        let mut state = self.lock();
        let until = state.families.entry(family.to_owned()).or_insert(until_s);
        *until = (*until).max(until_s);
        Ok(())
    }

    fn revoke_access(&self, jti: &str, exp_s: i64) -> Result<(), AuthError> {
        self.lock().revoked.insert(jti.to_owned(), exp_s);
        Ok(())
    }

    fn purge_expired(&self, now_s: i64) -> Result<usize, AuthError> {
        let mut state = self.lock();
        let before = state.refresh.len() + state.families.len() + state.revoked.len();
        state.refresh.retain(|_, r| now_s < r.expires_at);
        state.families.retain(|_, until| now_s < *until);
        state
            .revoked
            .retain(|_, exp| !revocation_expired(*exp, now_s));
        let after = state.refresh.len() + state.families.len() + state.revoked.len();
        Ok(before - after)
    }
}
