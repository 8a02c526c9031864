//! Sealing personal fields at the edge (ADR 0014): the command API
//! encrypts names, e-mail, phone and address lines with the customer's
//! data key *before* the command is produced, so neither the commands
//! topic nor the events the aggregate decides ever hold them in clear.
//! The aggregates carry the sealed text opaquely; the fields were checked
//! here, in clear, by the same rules the aggregates apply.
//!
//! Country and region stay clear: they are not personal on their own, and
//! sales and shipping read them.

use axum::http::StatusCode;
use platform::pii::{self, DataKey, KeyStoreError};
use schemas::PostalAddress;

use super::problem::AppError;
use super::state::AppState;

/// The logical field names sealed values carry (their associated data).
pub mod field {
    pub const EMAIL: &str = "email";
    pub const DISPLAY_NAME: &str = "display_name";
    pub const PHONE: &str = "phone";
    pub const RECIPIENT: &str = "address.recipient";
    pub const LINE1: &str = "address.line1";
    pub const LINE2: &str = "address.line2";
    pub const CITY: &str = "address.city";
    pub const POSTAL_CODE: &str = "address.postal_code";
}

/// The customer's data key (created at their first personal data); a
/// forgotten customer is refused with 410 `customer-erased`, nothing written.
pub async fn key_for(state: &AppState, customer_id: &str) -> Result<DataKey, AppError> {
    if customer_id.contains(':') {
        // The sealed format separates its parts with `:`; minted ids never hold one.
        return Err(AppError::invalid(
            "customer_id",
            "customer_id may not contain `:`",
        ));
    }
    state
        .keys
        .get_or_create(customer_id, state.now_ms())
        .await
        .map_err(|e| match e {
            KeyStoreError::Forgotten { .. } => AppError::new(
                StatusCode::GONE,
                "customer-erased",
                format!(
                    "customer {customer_id}'s personal data was erased: no new personal data is \
                     accepted for them"
                ),
            ),
            KeyStoreError::Store(e) if e.is_retriable() => AppError::unavailable(&e),
            other => AppError::internal(&other),
        })
}

/// `clear` sealed for `customer_id`'s `field`.
pub fn seal(
    key: &DataKey,
    customer_id: &str,
    field: &str,
    clear: &str,
) -> Result<String, AppError> {
    pii::seal(key, customer_id, field, clear).map_err(|e| AppError::internal(&e))
}

/// An optional field sealed.
pub fn seal_opt(
    key: &DataKey,
    customer_id: &str,
    field: &str,
    clear: Option<String>,
) -> Result<Option<String>, AppError> {
    clear.map(|c| seal(key, customer_id, field, &c)).transpose()
}

/// An address with its personal lines sealed (region and country stay clear).
pub fn seal_address(
    key: &DataKey,
    customer_id: &str,
    a: PostalAddress,
) -> Result<PostalAddress, AppError> {
    Ok(PostalAddress {
        recipient: seal(key, customer_id, field::RECIPIENT, &a.recipient)?,
        line1: seal(key, customer_id, field::LINE1, &a.line1)?,
        line2: seal_opt(key, customer_id, field::LINE2, a.line2)?,
        city: seal(key, customer_id, field::CITY, &a.city)?,
        region: a.region,
        postal_code: seal(key, customer_id, field::POSTAL_CODE, &a.postal_code)?,
        country: a.country,
    })
}
