//! Personal fields revealed at read time (ADR 0014). Read models hold the
//! sealed text the events carry (`pii:v1:…`), so the read store never holds
//! personal data in clear; each answer opens it with the customer's data
//! key — or shows `[erased]` once the customer was forgotten. Rebuilt read
//! models hold the same sealed text, so they answer the same.

use platform::pii::{reveal_str, KeyStoreError};

use crate::problem::AppError;
use crate::state::QueryState;
use crate::views::Address;

fn store_error(e: &KeyStoreError) -> AppError {
    match e {
        KeyStoreError::Store(s) if s.is_retriable() => AppError::unavailable(e),
        _ => AppError::internal(e),
    }
}

/// One text cell in clear (`field`: the logical field it holds).
pub async fn reveal(
    state: &QueryState,
    text: Option<String>,
    field: &str,
) -> Result<Option<String>, AppError> {
    match text {
        None => Ok(None),
        Some(t) => reveal_str(&state.keys, &t, Some(field))
            .await
            .map(Some)
            .map_err(|e| store_error(&e)),
    }
}

async fn one(state: &QueryState, text: String, field: &str) -> Result<String, AppError> {
    reveal_str(&state.keys, &text, Some(field))
        .await
        .map_err(|e| store_error(&e))
}

/// An address with its personal lines in clear.
pub async fn reveal_address(
    state: &QueryState,
    address: Option<Address>,
) -> Result<Option<Address>, AppError> {
    let Some(a) = address else {
        return Ok(None);
    };
    Ok(Some(Address {
        recipient: one(state, a.recipient, "address.recipient").await?,
        line1: one(state, a.line1, "address.line1").await?,
        line2: reveal(state, a.line2, "address.line2").await?,
        city: one(state, a.city, "address.city").await?,
        region: a.region,
        postal_code: one(state, a.postal_code, "address.postal_code").await?,
        country: a.country,
    }))
}
