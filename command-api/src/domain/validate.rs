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

/// An e-mail address, checked for shape only (delivery proves the rest):
/// `local@domain.tld`, no spaces, at most 254 characters.
pub(crate) fn email(value: &str) -> Result<(), &'static str> {
    let shape = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if shape {
        Ok(())
    } else {
        Err("must be an e-mail address such as ada@example.com")
    }
}

/// A phone number: digits with optional `+`, spaces, dashes, dots and
/// parentheses; 5 to 20 digits.
pub(crate) fn phone(value: &str) -> Result<(), &'static str> {
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if allowed && (5..=20).contains(&digits) {
        Ok(())
    } else {
        Err("must be a phone number such as +49 30 1234567")
    }
}

/// An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters.
pub(crate) fn country(code: &str) -> Result<(), &'static str> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err("must be an ISO 3166-1 alpha-2 code such as DE")
    }
}

/// A personal field (ADR 0014): a sealed value (`pii:v1:…`) was checked in
/// clear by the command API before it was sealed, and only the command API
/// writes commands, so the aggregate carries it as is; a clear value (an
/// event from before sealing, a test) gets `check`.
pub(crate) fn personal(
    value: &str,
    check: impl FnOnce(&str) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    if platform::pii::is_sealed(value) {
        Ok(())
    } else {
        check(value)
    }
}

/// A postal address: on failure, the sub-field at fault (`line1`,
/// `country`…) and why; callers prefix it with their own field name.
pub(crate) fn address(
    address: &schemas::PostalAddress,
) -> Result<(), (&'static str, &'static str)> {
    let at = |field: &'static str| move |reason| (field, reason);
    let line = |v: &str| text(v, MAX_TEXT);
    personal(&address.recipient, line).map_err(at("recipient"))?;
    personal(&address.line1, line).map_err(at("line1"))?;
    if let Some(line2) = &address.line2 {
        personal(line2, line).map_err(at("line2"))?;
    }
    personal(&address.city, line).map_err(at("city"))?;
    if let Some(region) = &address.region {
        text(region, MAX_TEXT).map_err(at("region"))?;
    }
    personal(&address.postal_code, |v| text(v, 20)).map_err(at("postal_code"))?;
    country(&address.country).map_err(at("country"))
}

/// A positive quantity of at most [`MAX_QUANTITY`] units.
pub(crate) fn quantity(value: i32) -> Result<(), &'static str> {
    if value <= 0 {
        Err("must be positive")
    } else if value > MAX_QUANTITY {
        Err("is larger than 999")
    } else {
        Ok(())
    }
}

/// Most units of one SKU on one order or cart line.
pub(crate) const MAX_QUANTITY: i32 = 999;

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
    fn email_rules() {
        assert!(email("ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phone_and_country_rules() {
        assert!(phone("+49 (30) 123-4567").is_ok());
        assert!(phone("12").is_err());
        assert!(phone("call me").is_err());
        assert!(country("DE").is_ok());
        assert!(country("de").is_err() && country("DEU").is_err());
    }

    #[test]
    fn sealed_personal_values_pass_and_clear_ones_are_checked() {
        assert!(personal("pii:v1:c-1:email:AAAA", email).is_ok());
        assert!(personal("not an address", email).is_err());
        assert!(personal("ada@example.com", email).is_ok());
    }

    #[test]
    fn currency_rules() {
        assert!(currency("EUR").is_ok());
        for bad in ["eur", "EURO", "E1R", "", "€UR"] {
            assert!(currency(bad).is_err(), "{bad}");
        }
    }
}
