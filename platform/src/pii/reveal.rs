//! Sealed text back to clear text — or to [`ERASED`] when the customer was
//! forgotten. Used by the query API on the rows it serves and by exports
//! and audits on decoded events.
//!
//! Deterministic by construction: a value either opens with the customer's
//! current key or reads [`ERASED`]; nothing depends on when a row was
//! written, so a rebuilt read model shows exactly what the old one did.

use serde_json::Value as Json;

use super::cipher::{self, is_sealed, Sealed};
use super::keystore::{KeyState, KeyStore, KeyStoreError};

/// What a personal field reads once its customer was forgotten (or when a
/// sealed value does not open: it is never shown half-decoded).
pub const ERASED: &str = "[erased]";

/// `text` in clear: itself when it is not sealed, the opened value when
/// its customer's key exists, else [`ERASED`]. `expected_field` (the
/// logical field the caller's column holds) makes a value moved from
/// another field read as erased. Fails only when the key store cannot be
/// read (never "erased" for an outage).
pub async fn reveal_str(
    keys: &KeyStore,
    text: &str,
    expected_field: Option<&str>,
) -> Result<String, KeyStoreError> {
    if !is_sealed(text) {
        return Ok(text.to_owned());
    }
    let Ok(sealed) = Sealed::parse(text) else {
        return Ok(ERASED.to_owned());
    };
    match keys.get(sealed.customer_id).await? {
        KeyState::Active(key) => {
            Ok(cipher::open(&key, &sealed, expected_field).unwrap_or_else(|_| ERASED.to_owned()))
        }
        KeyState::Forgotten { .. } | KeyState::Absent => Ok(ERASED.to_owned()),
    }
}

/// [`reveal_str`] on every string inside `value` (a decoded event or
/// command as JSON, a response body): each sealed value is replaced by its
/// clear text or [`ERASED`]; everything else is returned as it was.
pub async fn reveal_json(value: Json, keys: &KeyStore) -> Result<Json, KeyStoreError> {
    let mut value = value;
    reveal_in_place(&mut value, keys).await?;
    Ok(value)
}

/// Iterative, so a deeply nested value cannot overflow the stack.
async fn reveal_in_place(value: &mut Json, keys: &KeyStore) -> Result<(), KeyStoreError> {
    let mut stack: Vec<&mut Json> = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Json::String(s) if is_sealed(s) => *s = reveal_str(keys, s, None).await?,
            Json::Array(items) => stack.extend(items.iter_mut()),
            Json::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::pii::seal;
    use crate::readstore::{EmbeddedStore, ReadStore};

    async fn keys() -> KeyStore {
        let store: Arc<dyn ReadStore> = Arc::new(EmbeddedStore::in_memory().unwrap());
        let keys = KeyStore::new(store, Duration::ZERO);
        keys.ensure().await.unwrap();
        keys
    }

    #[tokio::test]
    async fn sealed_strings_read_clear_until_the_customer_is_forgotten() {
        let keys = keys().await;
        let ada = keys.get_or_create("c-ada", 1).await.unwrap();
        let bob = keys.get_or_create("c-bob", 1).await.unwrap();
        let event = json!({
            "envelope": {"aggregate_id": "c-ada", "hash": "abc"},
            "email": seal(&ada, "c-ada", "email", "ada@example.com").unwrap(),
            "phone": null,
            "roles": ["CUSTOMER"],
            "shipping_address": {
                "recipient": seal(&ada, "c-ada", "address.recipient", "Ada Lovelace").unwrap(),
                "country": "GB",
            },
            "other": [seal(&bob, "c-bob", "display_name", "Bob").unwrap(), 3],
        });
        let clear = reveal_json(event.clone(), &keys).await.unwrap();
        assert_eq!(clear["email"], "ada@example.com");
        assert_eq!(clear["shipping_address"]["recipient"], "Ada Lovelace");
        assert_eq!(clear["shipping_address"]["country"], "GB");
        assert_eq!(clear["other"], json!(["Bob", 3]));
        assert_eq!(clear["envelope"], event["envelope"], "untouched");

        keys.forget("c-ada", 2).await.unwrap();
        let erased = reveal_json(event, &keys).await.unwrap();
        assert_eq!(erased["email"], ERASED);
        assert_eq!(erased["shipping_address"]["recipient"], ERASED);
        assert_eq!(
            erased["other"],
            json!(["Bob", 3]),
            "another customer's stay"
        );
    }

    #[tokio::test]
    async fn reveal_str_checks_the_expected_field_and_never_shows_garbage() {
        let keys = keys().await;
        let k = keys.get_or_create("c-1", 1).await.unwrap();
        let s = seal(&k, "c-1", "email", "ada@example.com").unwrap();
        assert_eq!(
            reveal_str(&keys, &s, Some("email")).await.unwrap(),
            "ada@example.com"
        );
        assert_eq!(reveal_str(&keys, &s, Some("phone")).await.unwrap(), ERASED);
        assert_eq!(
            reveal_str(&keys, "plain", Some("email")).await.unwrap(),
            "plain"
        );
        assert_eq!(
            reveal_str(&keys, "pii:v1:broken", None).await.unwrap(),
            ERASED
        );
        assert_eq!(
            reveal_str(
                &keys,
                "pii:v1:c-404:email:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                None
            )
            .await
            .unwrap(),
            ERASED,
            "no key at all"
        );
    }
}
