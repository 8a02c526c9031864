//! Answer shapes shared by several endpoints. The HTTP contract is its own:
//! JSON field names stay stable if the tables or the Avro contract grow.
//! Money is always integer minor units with its currency; times are RFC
//! 3339 UTC strings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A postal address (as the command API takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Address {
    pub recipient: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Money {
    /// In minor units of `currency` (cents…).
    pub amount_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
}
