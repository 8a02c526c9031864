//! Field checks shared by the aggregates: each returns the refusal's
//! reason, and the aggregate wraps it in its own error with the field name.

/// Longest free-text field we accept (names, reasons, categories).
pub(crate) const MAX_TEXT: usize = 200;
/// Longest URL or object key we accept.
pub(crate) const MAX_URL: usize = 2048;

/// A required, single-line text of at most `max` characters.
pub(crate) fn text(value: &str, max: usize) -> Result<(), &'static str> {
    if value.trim().is_empty() {
        return Err("must not be empty");
    }
    if value.chars().count() > max {
        return Err("is too long");
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
pub(crate) fn currency(code: &str) -> Result<(), &'static str> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err("must be an ISO 4217 code such as EUR")
    }
}

/// A price in minor units: zero (free) or positive.
pub(crate) fn price(minor: i64) -> Result<(), &'static str> {
    if minor >= 0 {
        Ok(())
    } else {
        Err("must not be negative")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(text("Mug", MAX_TEXT).is_ok());
        assert!(text("  ", MAX_TEXT).is_err());
        assert!(text("a\nb", MAX_TEXT).is_err());
        assert!(text(&"x".repeat(MAX_TEXT + 1), MAX_TEXT).is_err());
        assert!(
            text(&"é".repeat(MAX_TEXT), MAX_TEXT).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn currency_rules() {
        assert!(currency("EUR").is_ok());
        for bad in ["eur", "EURO", "E1R", "", "€UR"] {
            assert!(currency(bad).is_err(), "{bad}");
        }
    }
}
