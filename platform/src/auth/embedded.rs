//! The embedded credential store: one redb file (ACID, crash-safe, one
//! process at a time), used by `quickstore dev` and by an auth service that
//! keeps its own disk.
//!
//! Tables:
//! - `credentials`: e-mail → JSON [`Credential`]
//! - `customers`:   customer id → e-mail
//! - `refresh`:     SHA-256(token) → JSON [`RefreshRecord`]
//! - `families`:    revoked family id → revoked until (s)
//! - `revoked`:     access-token `jti` → `exp` (s)
//!
//! Each method is one transaction, so a check and the write that depends on
//! it (e-mail uniqueness, marking a refresh token used) are atomic.

use std::path::Path;

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use super::store::{
    classify, normalize_email, revocation_expired, Credential, CredentialStore, RefreshRecord,
    RefreshUse, RevocationList,
};
use super::{store_err, AuthError, Role};

const CREDENTIALS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("credentials");
const CUSTOMERS: TableDefinition<'_, &str, &str> = TableDefinition::new("customers");
const REFRESH: TableDefinition<'_, &[u8; 32], &[u8]> = TableDefinition::new("refresh");
const FAMILIES: TableDefinition<'_, &str, i64> = TableDefinition::new("families");
const REVOKED: TableDefinition<'_, &str, i64> = TableDefinition::new("revoked");

/// The redb adapter of [`CredentialStore`].
#[derive(Debug)]
pub struct EmbeddedCredentialStore {
    db: Database,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(bytes).map_err(|e| AuthError::Store(format!("corrupt record: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(value).map_err(store_err)
}

impl EmbeddedCredentialStore {
    /// Opens (creating if needed) the store file at `path`, with its parent
    /// directories. Fails if another handle (in this process or another)
    /// has it open.
    pub fn open(path: &Path) -> Result<Self, AuthError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| AuthError::Store(format!("creating {}: {e}", parent.display())))?;
        }
        let db = Database::create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => AuthError::Store(format!(
                "credential store {} is in use by another process",
                path.display()
            )),
            other => AuthError::Store(format!("opening {}: {other}", path.display())),
        })?;
        let txn = db.begin_write().map_err(store_err)?;
        {
            txn.open_table(CREDENTIALS).map_err(store_err)?;
            txn.open_table(CUSTOMERS).map_err(store_err)?;
            txn.open_table(REFRESH).map_err(store_err)?;
            txn.open_table(FAMILIES).map_err(store_err)?;
            txn.open_table(REVOKED).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)?;
        Ok(Self { db })
    }

    fn credential_by_email(&self, email: &str) -> Result<Option<Credential>, AuthError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(CREDENTIALS).map_err(store_err)?;
        let found = table.get(email).map_err(store_err)?;
        found.map(|v| decode(v.value())).transpose()
    }
}

impl RevocationList for EmbeddedCredentialStore {
    fn is_revoked(&self, jti: &str) -> Result<bool, AuthError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(REVOKED).map_err(store_err)?;
        Ok(table.get(jti).map_err(store_err)?.is_some())
    }

    fn is_session_revoked(&self, family: &str) -> Result<bool, AuthError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(FAMILIES).map_err(store_err)?;
        Ok(table.get(family).map_err(store_err)?.is_some())
    }
}

impl CredentialStore for EmbeddedCredentialStore {
    fn register(
        &self,
        email: &str,
        customer_id: &str,
        phc: &str,
        roles: &[Role],
    ) -> Result<(), AuthError> {
        let email = normalize_email(email);
        let credential = Credential {
            email: email.clone(),
            customer_id: customer_id.to_owned(),
            phc: phc.to_owned(),
            roles: roles.to_vec(),
        };
        let bytes = encode(&credential)?;
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut credentials = txn.open_table(CREDENTIALS).map_err(store_err)?;
            let mut customers = txn.open_table(CUSTOMERS).map_err(store_err)?;
            if credentials
                .get(email.as_str())
                .map_err(store_err)?
                .is_some()
            {
                return Err(AuthError::EmailTaken);
            }
            if customers.get(customer_id).map_err(store_err)?.is_some() {
                return Err(AuthError::Store(format!(
                    "customer {customer_id} already has a login"
                )));
            }
            credentials
                .insert(email.as_str(), bytes.as_slice())
                .map_err(store_err)?;
            customers
                .insert(customer_id, email.as_str())
                .map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }

    fn by_email(&self, email: &str) -> Result<Option<Credential>, AuthError> {
        self.credential_by_email(&normalize_email(email))
    }

    fn by_customer(&self, customer_id: &str) -> Result<Option<Credential>, AuthError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let customers = txn.open_table(CUSTOMERS).map_err(store_err)?;
        let credentials = txn.open_table(CREDENTIALS).map_err(store_err)?;
        let Some(email) = customers.get(customer_id).map_err(store_err)? else {
            return Ok(None);
        };
        let found = credentials.get(email.value()).map_err(store_err)?;
        found.map(|v| decode(v.value())).transpose()
    }

    fn set_roles(&self, customer_id: &str, roles: &[Role]) -> Result<bool, AuthError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        let updated = {
            let customers = txn.open_table(CUSTOMERS).map_err(store_err)?;
            let mut credentials = txn.open_table(CREDENTIALS).map_err(store_err)?;
            let email = match customers.get(customer_id).map_err(store_err)? {
                Some(email) => email.value().to_owned(),
                None => return Ok(false),
            };
            let current: Option<Credential> = credentials
                .get(email.as_str())
                .map_err(store_err)?
                .map(|v| decode(v.value()))
                .transpose()?;
            match current {
                Some(mut credential) => {
                    credential.roles = roles.to_vec();
                    let bytes = encode(&credential)?;
                    credentials
                        .insert(email.as_str(), bytes.as_slice())
                        .map_err(store_err)?;
                    true
                }
                None => false,
            }
        };
        txn.commit().map_err(store_err)?;
        Ok(updated)
    }

    fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        record: &RefreshRecord,
    ) -> Result<(), AuthError> {
        let bytes = encode(record)?;
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let families = txn.open_table(FAMILIES).map_err(store_err)?;
            if families
                .get(record.family.as_str())
                .map_err(store_err)?
                .is_some()
            {
                return Err(AuthError::TokenRevoked);
            }
            let mut refresh = txn.open_table(REFRESH).map_err(store_err)?;
            refresh
                .insert(token_hash, bytes.as_slice())
                .map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }

    fn consume_refresh(&self, token_hash: &[u8; 32], now_s: i64) -> Result<RefreshUse, AuthError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        let outcome = {
            let families = txn.open_table(FAMILIES).map_err(store_err)?;
            let mut refresh = txn.open_table(REFRESH).map_err(store_err)?;
            let record: Option<RefreshRecord> = refresh
                .get(token_hash)
                .map_err(store_err)?
                .map(|v| decode(v.value()))
                .transpose()?;
            let family_revoked = match &record {
                Some(r) => families
                    .get(r.family.as_str())
                    .map_err(store_err)?
                    .is_some(),
                None => false,
            };
            let (outcome, write) = classify(record, |_| family_revoked, now_s);
            if let Some(write) = write {
                let bytes = encode(&write)?;
                refresh
                    .insert(token_hash, bytes.as_slice())
                    .map_err(store_err)?;
            }
            outcome
        };
        txn.commit().map_err(store_err)?;
        Ok(outcome)
    }

    fn refresh_record(&self, token_hash: &[u8; 32]) -> Result<Option<RefreshRecord>, AuthError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(REFRESH).map_err(store_err)?;
        let found = table.get(token_hash).map_err(store_err)?;
        found.map(|v| decode(v.value())).transpose()
    }

    fn revoke_family(&self, family: &str, until_s: i64) -> Result<(), AuthError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut families = txn.open_table(FAMILIES).map_err(store_err)?;
            let current = families.get(family).map_err(store_err)?.map(|v| v.value());
            let until = current.map_or(until_s, |c| c.max(until_s));
            families.insert(family, until).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }

    fn revoke_access(&self, jti: &str, exp_s: i64) -> Result<(), AuthError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut revoked = txn.open_table(REVOKED).map_err(store_err)?;
            revoked.insert(jti, exp_s).map_err(store_err)?;
        }
        txn.commit().map_err(store_err)
    }

    fn purge_expired(&self, now_s: i64) -> Result<usize, AuthError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        let removed = {
            let mut refresh = txn.open_table(REFRESH).map_err(store_err)?;
            let mut families = txn.open_table(FAMILIES).map_err(store_err)?;
            let mut revoked = txn.open_table(REVOKED).map_err(store_err)?;
            let before = refresh.len().map_err(store_err)?
                + families.len().map_err(store_err)?
                + revoked.len().map_err(store_err)?;
            // A record that no longer decodes is dropped too: it could never
            // be exchanged.
            refresh
                .retain(|_, bytes| {
                    serde_json::from_slice::<RefreshRecord>(bytes)
                        .is_ok_and(|r| now_s < r.expires_at)
                })
                .map_err(store_err)?;
            families
                .retain(|_, until| now_s < until)
                .map_err(store_err)?;
            revoked
                .retain(|_, exp| !revocation_expired(exp, now_s))
                .map_err(store_err)?;
            let after = refresh.len().map_err(store_err)?
                + families.len().map_err(store_err)?
                + revoked.len().map_err(store_err)?;
            before.saturating_sub(after)
        };
        txn.commit().map_err(store_err)?;
        usize::try_from(removed).map_err(store_err)
    }
}
