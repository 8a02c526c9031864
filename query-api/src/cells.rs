//! Typed reads of a row's cells. A read returns every column, unset cells
//! as `Null`; a cell of an unexpected type is treated as unset rather than
//! failing the request (the store already checks types on write, so that
//! only happens if a table definition changed under a running reader).
//! JSON cells (`lines_json`…) are parsed here; one that does not parse is
//! our bug, answered as an opaque 500 with the cause logged.

use platform::readstore::{Row, Value};
use serde::de::DeserializeOwned;

use crate::problem::AppError;
use crate::time::rfc3339;

pub fn text(row: &Row, column: &str) -> Option<String> {
    match row.get(column) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

pub fn big(row: &Row, column: &str) -> Option<i64> {
    match row.get(column) {
        Some(Value::BigInt(v)) => Some(*v),
        _ => None,
    }
}

pub fn int(row: &Row, column: &str) -> Option<i32> {
    match row.get(column) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

pub fn boolean(row: &Row, column: &str) -> Option<bool> {
    match row.get(column) {
        Some(Value::Boolean(v)) => Some(*v),
        _ => None,
    }
}

/// A timestamp cell in milliseconds.
pub fn millis(row: &Row, column: &str) -> Option<i64> {
    match row.get(column) {
        Some(Value::Timestamp(v)) => Some(*v),
        _ => None,
    }
}

/// A timestamp cell as RFC 3339.
pub fn time(row: &Row, column: &str) -> Option<String> {
    millis(row, column).map(rfc3339)
}

/// A blob cell as lowercase hex.
pub fn hex(row: &Row, column: &str) -> Option<String> {
    match row.get(column) {
        Some(Value::Blob(b)) => Some(::hex::encode(b)),
        _ => None,
    }
}

/// A JSON text cell parsed as `T` (`None` when unset).
pub fn json<T: DeserializeOwned>(
    row: &Row,
    table: &str,
    column: &str,
) -> Result<Option<T>, AppError> {
    match row.get(column) {
        Some(Value::Text(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| AppError::internal(&format!("{table}.{column} does not parse: {e}"))),
        _ => Ok(None),
    }
}
