//! The per-customer key store, on the read store (`customer_keys_g0`: the
//! CQL adapter in production, the embedded one in `quickstore dev`).
//!
//! Writes use fixed timestamps rather than the clock, so the outcome does
//! not depend on arrival order (the read store is last-write-wins per cell):
//! - a key is created at timestamp [`CREATED_TS`]; two creators racing for
//!   one customer converge on one key (the greater blob wins a tie on both
//!   adapters) and each reads back what won — registration creates the key
//!   for a customer id it has just minted, so only customers registered
//!   before this feature can race at all (ADR 0014);
//! - a forget nulls the key and sets `forgotten_at` at [`FORGOTTEN_TS`],
//!   far above anything a create writes, so no later create can resurrect
//!   a forgotten customer's key. The row stays, with no key material, as
//!   the tombstone that tells "forgotten" from "never had a key".
//!
//! A small cache in front (per process) keeps the hot path off the store;
//! its entries live [`KeyStore::ttl`], which bounds how long another
//! process may still see a key after a forget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::readstore::{
    column, ColumnType as T, Mutation, MutationKind, ReadStore, ReadStoreError, Row, TableDef,
    Value,
};

use super::cipher::{DataKey, PiiError};

/// The key table (generation 0, like the other metadata: it is never
/// rebuilt — it is not derived from the log, and losing it forgets everyone).
pub const CUSTOMER_KEYS: TableDef = TableDef {
    name: "customer_keys",
    partition_key: &[column("customer_id", T::Text)],
    clustering: &[],
    columns: &[
        column("data_key", T::Blob),
        column("created_at", T::Timestamp),
        column("forgotten_at", T::Timestamp),
    ],
};

/// The generation the key table lives in.
pub const KEYS_GENERATION: u32 = 0;
/// Write timestamp of a key's creation.
pub const CREATED_TS: i64 = 1;
/// Write timestamp of a forget: beats every create, whenever it arrives.
pub const FORGOTTEN_TS: i64 = 1 << 62;

/// What the store knows of a customer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The customer has a key.
    Active(DataKey),
    /// The key was deleted at `at_ms` (Unix ms); no key material is left.
    Forgotten { at_ms: i64 },
    /// No key was ever created for this customer.
    Absent,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "customer {customer_id}'s personal data was erased: new personal data for them is refused"
    )]
    Forgotten { customer_id: String },
    #[error(transparent)]
    Store(#[from] ReadStoreError),
    #[error(transparent)]
    Crypto(#[from] PiiError),
}

/// The key store with its cache. Cheap to share behind an `Arc`.
pub struct KeyStore {
    store: Arc<dyn ReadStore>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (KeyState, Instant)>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// How long a cached key (or a cached "forgotten") is trusted by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// Largest number of cached customers before the cache is emptied (a
/// crude bound: memory must not grow with the number of customers).
const MAX_CACHED: usize = 100_000;

fn key_row(customer_id: &str) -> Row {
    [(
        "customer_id".to_owned(),
        Value::Text(customer_id.to_owned()),
    )]
    .into()
}

impl KeyStore {
    /// A key store over `store` whose cache entries live `ttl`
    /// (`Duration::ZERO`: no cache). Call [`KeyStore::ensure`] once.
    pub fn new(store: Arc<dyn ReadStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the key table if it does not exist (`schema apply` does it
    /// on CQL too; this is idempotent).
    pub async fn ensure(&self) -> Result<(), KeyStoreError> {
        self.store
            .ensure_tables(&[CUSTOMER_KEYS], KEYS_GENERATION)
            .await?;
        Ok(())
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn cached(&self, customer_id: &str) -> Option<KeyState> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(customer_id)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(state, _)| state.clone())
    }

    fn remember(&self, customer_id: &str, state: &KeyState) {
        if self.ttl.is_zero() || *state == KeyState::Absent {
            return; // a key may be created any moment: never cache its absence
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(customer_id.to_owned(), (state.clone(), Instant::now()));
    }

    /// What the store (or a fresh cache entry) says of `customer_id`'s key.
    pub async fn get(&self, customer_id: &str) -> Result<KeyState, KeyStoreError> {
        if let Some(state) = self.cached(customer_id) {
            return Ok(state);
        }
        let state = self.read(customer_id).await?;
        self.remember(customer_id, &state);
        Ok(state)
    }

    async fn read(&self, customer_id: &str) -> Result<KeyState, KeyStoreError> {
        let row = self
            .store
            .get(&CUSTOMER_KEYS, KEYS_GENERATION, &key_row(customer_id))
            .await?;
        let Some(row) = row else {
            return Ok(KeyState::Absent);
        };
        if let Some(Value::Timestamp(at_ms)) = row.get("forgotten_at") {
            return Ok(KeyState::Forgotten { at_ms: *at_ms });
        }
        match row.get("data_key") {
            Some(Value::Blob(bytes)) => Ok(KeyState::Active(DataKey::from_bytes(bytes)?)),
            _ => Ok(KeyState::Absent),
        }
    }

    /// The customer's key, created if they have none; refused when they
    /// were forgotten (their new personal data must not be written).
    pub async fn get_or_create(
        &self,
        customer_id: &str,
        now_ms: i64,
    ) -> Result<DataKey, KeyStoreError> {
        match self.get(customer_id).await? {
            KeyState::Active(key) => return Ok(key),
            KeyState::Forgotten { .. } => {
                return Err(KeyStoreError::Forgotten {
                    customer_id: customer_id.to_owned(),
                })
            }
            KeyState::Absent => {}
        }
        let key = DataKey::generate()?;
        let mut row = key_row(customer_id);
        row.insert("data_key".into(), Value::Blob(key.expose().to_vec()));
        row.insert("created_at".into(), Value::Timestamp(now_ms));
        self.store
            .write(&[Mutation {
                table: CUSTOMER_KEYS,
                generation: KEYS_GENERATION,
                kind: MutationKind::Upsert(row),
                timestamp: CREATED_TS,
            }])
            .await?;
        // Read back what won (a racing creator's key, or a forget).
        let state = self.read(customer_id).await?;
        self.remember(customer_id, &state);
        match state {
            KeyState::Active(key) => Ok(key),
            _ => Err(KeyStoreError::Forgotten {
                customer_id: customer_id.to_owned(),
            }),
        }
    }

    /// Deletes the customer's key for good, leaving the tombstone row.
    /// Idempotent: forgetting twice keeps the first time. Returns what the
    /// store held before.
    pub async fn forget(&self, customer_id: &str, now_ms: i64) -> Result<KeyState, KeyStoreError> {
        let before = self.read(customer_id).await?;
        if let KeyState::Forgotten { .. } = before {
            self.remember(customer_id, &before);
            return Ok(before);
        }
        let mut row = key_row(customer_id);
        row.insert("data_key".into(), Value::Null);
        row.insert("forgotten_at".into(), Value::Timestamp(now_ms));
        self.store
            .write(&[Mutation {
                table: CUSTOMER_KEYS,
                generation: KEYS_GENERATION,
                kind: MutationKind::Upsert(row),
                timestamp: FORGOTTEN_TS,
            }])
            .await?;
        self.remember(customer_id, &KeyState::Forgotten { at_ms: now_ms });
        Ok(before)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
mod tests {
    use super::*;
    use crate::readstore::EmbeddedStore;

    async fn keys(ttl: Duration) -> KeyStore {
        let store: Arc<dyn ReadStore> = Arc::new(EmbeddedStore::in_memory().unwrap());
        let keys = KeyStore::new(store, ttl);
        keys.ensure().await.unwrap();
        keys
    }

    #[tokio::test]
    async fn a_key_is_created_once_then_forgotten_for_good() {
        let keys = keys(Duration::ZERO).await;
        assert_eq!(keys.get("c-1").await.unwrap(), KeyState::Absent);
        let k = keys.get_or_create("c-1", 1_000).await.unwrap();
        assert_eq!(
            keys.get_or_create("c-1", 2_000).await.unwrap(),
            k,
            "the same key"
        );
        assert_eq!(keys.get("c-1").await.unwrap(), KeyState::Active(k.clone()));

        assert_eq!(
            keys.forget("c-1", 5_000).await.unwrap(),
            KeyState::Active(k)
        );
        assert_eq!(
            keys.get("c-1").await.unwrap(),
            KeyState::Forgotten { at_ms: 5_000 }
        );
        // Forgetting again keeps the first time; creating is refused.
        keys.forget("c-1", 9_000).await.unwrap();
        assert_eq!(
            keys.get("c-1").await.unwrap(),
            KeyState::Forgotten { at_ms: 5_000 }
        );
        assert!(matches!(
            keys.get_or_create("c-1", 10_000).await,
            Err(KeyStoreError::Forgotten { .. })
        ));
        // Other customers are untouched.
        assert_eq!(keys.get("c-2").await.unwrap(), KeyState::Absent);
    }

    #[tokio::test]
    async fn a_customer_without_a_key_can_be_forgotten_and_stays_so() {
        let keys = keys(Duration::ZERO).await;
        assert_eq!(keys.forget("c-9", 1_000).await.unwrap(), KeyState::Absent);
        assert_eq!(
            keys.get("c-9").await.unwrap(),
            KeyState::Forgotten { at_ms: 1_000 }
        );
        assert!(keys.get_or_create("c-9", 2_000).await.is_err());
    }

    #[tokio::test]
    async fn the_cache_answers_within_its_ttl_and_sees_a_forget_after_it() {
        let store: Arc<dyn ReadStore> = Arc::new(EmbeddedStore::in_memory().unwrap());
        let a = KeyStore::new(Arc::clone(&store), Duration::from_millis(200));
        let b = KeyStore::new(store, Duration::ZERO);
        a.ensure().await.unwrap();
        let k = a.get_or_create("c-1", 1).await.unwrap();
        b.forget("c-1", 2).await.unwrap();
        assert_eq!(a.get("c-1").await.unwrap(), KeyState::Active(k), "cached");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            a.get("c-1").await.unwrap(),
            KeyState::Forgotten { at_ms: 2 }
        );
    }
}
