//! Crypto-shredding of personal data (ADR 0014, docs/privacy.md).
//!
//! Personal fields (names, e-mail, phone, address lines) are sealed with a
//! per-customer data key *before* a command or event is written, so the log
//! only ever holds ciphertext for them. Forgetting a customer deletes the
//! key: every copy of their personal data — in the log, in its replicas,
//! in read-store rows, in backups — becomes unreadable at once, while no
//! byte of the log changes (so every event's hash still verifies).
//!
//! - [`cipher`] — the sealed-text format `pii:v1:<customer>:<field>:<b64>`
//!   (AES-256-GCM, random nonce per field, customer + field as associated
//!   data) and the [`DataKey`] secret type;
//! - [`keystore`] — the per-customer key store on the read store (table
//!   `customer_keys_g0`, CQL or embedded) with a short in-process cache;
//!   [`KeyStore::forget`] leaves a tombstone, so "forgotten" and "never had
//!   a key" stay distinguishable;
//! - [`reveal`] — turns sealed text back into clear text, or into
//!   [`ERASED`] when the key is gone (the query API, exports, audits).

pub mod cipher;
pub mod keystore;
pub mod reveal;

pub use cipher::{is_sealed, open, seal, DataKey, PiiError, Sealed, PREFIX};
pub use keystore::{KeyState, KeyStore, KeyStoreError, CUSTOMER_KEYS};
pub use reveal::{reveal_json, reveal_str, ERASED};
