//! Checks of ids taken from the path. The store refuses an empty partition
//! key (that would be a 500), and nothing legitimate is long or holds
//! control characters, so such ids are a 400 naming the parameter.

use crate::problem::AppError;

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 200;

/// `value` if it is a plausible id.
pub fn path_id<'a>(value: &'a str, field: &str) -> Result<&'a str, AppError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(AppError::bad_request(
            "invalid-id",
            field,
            format!("{field} must be 1 to {MAX_ID_LEN} bytes of printable text"),
        ));
    }
    Ok(value)
}
