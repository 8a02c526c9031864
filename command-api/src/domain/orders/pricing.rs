//! What lines cost: one function, shared by the cart (which computes the
//! totals at checkout), the order (which checks that the totals it is asked
//! to record are the ones its lines add up to) and the HTTP layer (which
//! shows them before the customer commits). One implementation means the
//! three can never disagree by a cent.
//!
//! Prices include tax (QuickStore sells to consumers, whose prices are
//! quoted tax-inclusive), so `tax_minor` is 0: there is nothing to add on
//! top. Shipping is a flat fee, waived from [`FREE_SHIPPING_FROM_MINOR`].
//!
//! All money is `i64` minor units and every step is checked: an amount that
//! does not fit is a refusal ([`PricingError::AmountTooLarge`]), never a
//! panic or a silently wrapped total.

use schemas::orders::{OrderLine, OrderTotals};

use crate::aggregate::DomainError;

/// The flat shipping fee, in minor units, below the free-shipping threshold.
pub const SHIPPING_MINOR: i64 = 499;
/// From this subtotal (minor units) on, shipping is free.
pub const FREE_SHIPPING_FROM_MINOR: i64 = 5_000;

/// Why lines have no totals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("there are no lines to price")]
    NoLines,
    #[error("all lines must be in one currency")]
    MixedCurrencies,
    #[error("the amount is too large to represent")]
    AmountTooLarge,
}

impl DomainError for PricingError {
    fn code(&self) -> &'static str {
        match self {
            PricingError::NoLines => "no-lines",
            PricingError::MixedCurrencies => "mixed-currencies",
            PricingError::AmountTooLarge => "amount-too-large",
        }
    }
}

/// The totals of `lines`: subtotal = Σ quantity × unit price; shipping
/// [`SHIPPING_MINOR`], or 0 from [`FREE_SHIPPING_FROM_MINOR`]; tax 0
/// (prices include it); total = subtotal + shipping; all in the lines' one
/// currency.
///
/// The lines' fields are assumed validated by the caller (positive
/// quantities, non-negative prices, a valid currency): this only adds up.
pub fn totals(lines: &[OrderLine]) -> Result<OrderTotals, PricingError> {
    let currency = &lines.first().ok_or(PricingError::NoLines)?.currency;
    let mut subtotal: i64 = 0;
    for line in lines {
        if &line.currency != currency {
            return Err(PricingError::MixedCurrencies);
        }
        subtotal = i64::from(line.quantity)
            .checked_mul(line.unit_price_minor)
            .and_then(|amount| subtotal.checked_add(amount))
            .ok_or(PricingError::AmountTooLarge)?;
    }
    let shipping = if subtotal >= FREE_SHIPPING_FROM_MINOR {
        0
    } else {
        SHIPPING_MINOR
    };
    let total = subtotal
        .checked_add(shipping)
        .ok_or(PricingError::AmountTooLarge)?;
    Ok(OrderTotals {
        subtotal_minor: subtotal,
        shipping_minor: shipping,
        tax_minor: 0,
        total_minor: total,
        currency: currency.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(line_no: i32, quantity: i32, unit_price_minor: i64, currency: &str) -> OrderLine {
        OrderLine {
            line_no,
            sku: format!("SKU-{line_no}"),
            quantity,
            unit_price_minor,
            currency: currency.into(),
        }
    }

    fn priced(subtotal: i64, shipping: i64) -> Result<OrderTotals, PricingError> {
        Ok(OrderTotals {
            subtotal_minor: subtotal,
            shipping_minor: shipping,
            tax_minor: 0,
            total_minor: subtotal + shipping,
            currency: "EUR".into(),
        })
    }

    #[test]
    fn subtotal_is_quantity_times_price_plus_shipping_below_the_threshold() {
        let lines = [line(1, 2, 1299, "EUR"), line(2, 1, 500, "EUR")];
        assert_eq!(totals(&lines), priced(3098, SHIPPING_MINOR));
    }

    #[test]
    fn shipping_is_free_from_the_threshold_on() {
        assert_eq!(
            totals(&[line(1, 1, FREE_SHIPPING_FROM_MINOR - 1, "EUR")]),
            priced(4999, SHIPPING_MINOR)
        );
        assert_eq!(
            totals(&[line(1, 1, FREE_SHIPPING_FROM_MINOR, "EUR")]),
            priced(5000, 0)
        );
        assert_eq!(
            totals(&[line(1, 2, 2500, "EUR")]),
            priced(5000, 0),
            "the threshold applies to the subtotal, not to a line's price"
        );
    }

    #[test]
    fn free_lines_still_pay_shipping() {
        assert_eq!(totals(&[line(1, 3, 0, "EUR")]), priced(0, SHIPPING_MINOR));
    }

    #[test]
    fn refusals() {
        assert_eq!(totals(&[]), Err(PricingError::NoLines));
        assert_eq!(
            totals(&[line(1, 1, 100, "EUR"), line(2, 1, 100, "USD")]),
            Err(PricingError::MixedCurrencies)
        );
    }

    #[test]
    fn overflow_is_a_refusal_not_a_panic() {
        assert_eq!(
            totals(&[line(1, 999, i64::MAX, "EUR")]),
            Err(PricingError::AmountTooLarge)
        );
        assert_eq!(
            totals(&[line(1, 1, i64::MAX, "EUR"), line(2, 1, 1, "EUR")]),
            Err(PricingError::AmountTooLarge)
        );
        // The largest representable subtotal ships free, so it still fits.
        assert_eq!(totals(&[line(1, 1, i64::MAX, "EUR")]), priced(i64::MAX, 0));
        // Negative inputs (unvalidated) cannot overflow silently either.
        assert_eq!(
            totals(&[line(1, 999, i64::MIN, "EUR")]),
            Err(PricingError::AmountTooLarge)
        );
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(PricingError::NoLines.code(), "no-lines");
        assert_eq!(PricingError::MixedCurrencies.code(), "mixed-currencies");
        assert_eq!(PricingError::AmountTooLarge.code(), "amount-too-large");
    }
}
