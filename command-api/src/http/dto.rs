//! Request shapes shared by several endpoints, and their checks. The HTTP
//! contract is its own: JSON field names are stable even if the Avro
//! contract grows.

use schemas::PostalAddress;
use serde::Deserialize;
use utoipa::ToSchema;

use super::problem::AppError;
use super::state::SharedState;
use crate::domain::validate;
use crate::gateway::TokenizeError;

/// A postal address.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressDto {
    pub recipient: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default)]
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
}

impl AddressDto {
    /// Checked here so the answer names the field; the aggregate checks again.
    pub fn into_address(self, field: &str) -> Result<PostalAddress, AppError> {
        let address = PostalAddress {
            recipient: self.recipient,
            line1: self.line1,
            line2: self.line2,
            city: self.city,
            region: self.region,
            postal_code: self.postal_code,
            country: self.country,
        };
        // Clients send clear text: a value shaped like a sealed one would
        // skip the aggregate's checks, so it is refused here.
        let sealed = [
            ("recipient", Some(&address.recipient)),
            ("line1", Some(&address.line1)),
            ("line2", address.line2.as_ref()),
            ("city", Some(&address.city)),
            ("postal_code", Some(&address.postal_code)),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some_and(|v| platform::pii::is_sealed(v)));
        if let Some((sub, _)) = sealed {
            return Err(AppError::invalid(
                &format!("{field}.{sub}"),
                format!(
                    "{field}.{sub} may not start with `{}`",
                    platform::pii::PREFIX
                ),
            ));
        }
        validate::address(&address).map_err(|(sub, reason)| {
            AppError::invalid(&format!("{field}.{sub}"), format!("{field}.{sub} {reason}"))
        })?;
        Ok(address)
    }
}

/// How the customer pays. The card number goes to the gateway's tokenizer
/// at the edge and only the token travels on: never logged, never in an event.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodDto {
    /// A card number (the simulated gateway's test cards are in docs/payments.md).
    pub card_number: String,
}

impl std::fmt::Debug for PaymentMethodDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentMethodDto { card_number: *** }")
    }
}

impl PaymentMethodDto {
    pub async fn tokenize(&self, state: &SharedState, field: &str) -> Result<String, AppError> {
        match state.gateway.tokenize(&self.card_number).await {
            Ok(token) => Ok(token.into_string()),
            Err(TokenizeError::Card(e)) => Err(AppError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                e.code(),
                e.to_string(),
            )
            .with_field(format!("{field}.card_number"))),
            Err(e) => Err(AppError::unavailable(&e)),
        }
    }
}

/// A quantity as sent: wide, so a huge number is a 422 naming the field,
/// not a parse error.
pub fn quantity(value: i64, field: &str) -> Result<i32, AppError> {
    match i32::try_from(value) {
        Ok(q) if (1..=validate::MAX_QUANTITY).contains(&q) => Ok(q),
        _ => Err(AppError::invalid(
            field,
            format!("{field} must be between 1 and {}", validate::MAX_QUANTITY),
        )),
    }
}

/// A required single-line text.
pub fn text(value: &str, field: &str) -> Result<(), AppError> {
    validate::text(value, validate::MAX_TEXT)
        .map_err(|reason| AppError::invalid(field, format!("{field} {reason}")))
}

/// An optional reason.
pub fn reason(value: Option<&String>, field: &str) -> Result<(), AppError> {
    value.map_or(Ok(()), |v| text(v, field))
}

/// An amount in minor units: positive.
pub fn amount(value: i64, field: &str) -> Result<i64, AppError> {
    if value > 0 {
        Ok(value)
    } else {
        Err(AppError::invalid(
            field,
            format!("{field} must be positive (minor units)"),
        ))
    }
}

/// An ISO 4217 code.
pub fn currency(value: &str, field: &str) -> Result<(), AppError> {
    validate::currency(value)
        .map_err(|reason| AppError::invalid(field, format!("{field} {reason}")))
}

/// A path id: non-empty, printable, bounded.
pub fn path_id(value: &str, field: &str) -> Result<(), AppError> {
    if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return Err(
            AppError::bad_request("invalid-path", format!("{field} is not a valid id"))
                .with_field(field),
        );
    }
    Ok(())
}
