//! Orders: what a customer is about to buy ([`Cart`], one per customer, its
//! id the customer id) and what they bought ([`Order`], its id the order
//! id).
//!
//! Both live on one command topic (`orders.commands`), so one processor
//! decides for both: [`OrdersAggregate`] is their sum, routing each command
//! to the aggregate it names. What lines cost is [`totals`], shared by the
//! two and by the HTTP layer.

mod cart;
mod context;
mod order;
mod pricing;

#[cfg(test)]
mod fixtures;

pub use cart::{Cart, CartError, CartLine};
pub use context::{OrdersAggregate, OrdersError};
pub use order::{Order, OrderError, OrderStatus};
pub use pricing::{totals, PricingError, FREE_SHIPPING_FROM_MINOR, SHIPPING_MINOR};

use schemas::PostalAddress;

use crate::domain::validate;

/// Lines per cart or order at most: a shopping basket, not a bulk import
/// (and a bound on the work one decision does).
pub const MAX_LINES: usize = 100;

/// Checks a shipping address; on failure, the field at fault
/// (`shipping_address.line1`…) and why. The field names are spelt out so
/// they stay `&'static str`, like every other refusal's field.
fn check_shipping_address(address: &PostalAddress) -> Result<(), (&'static str, &'static str)> {
    validate::address(address).map_err(|(sub, reason)| {
        let field = match sub {
            "recipient" => "shipping_address.recipient",
            "line1" => "shipping_address.line1",
            "line2" => "shipping_address.line2",
            "city" => "shipping_address.city",
            "region" => "shipping_address.region",
            "postal_code" => "shipping_address.postal_code",
            "country" => "shipping_address.country",
            _ => "shipping_address",
        };
        (field, reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_refusals_name_the_sub_field() {
        let good = fixtures::address();
        assert_eq!(check_shipping_address(&good), Ok(()));
        type Spoil = fn(&mut PostalAddress);
        let cases: [(Spoil, &str); 7] = [
            (|a| a.recipient = " ".into(), "shipping_address.recipient"),
            (|a| a.line1 = String::new(), "shipping_address.line1"),
            (|a| a.line2 = Some("\n".into()), "shipping_address.line2"),
            (|a| a.city = String::new(), "shipping_address.city"),
            (
                |a| a.region = Some(String::new()),
                "shipping_address.region",
            ),
            (
                |a| a.postal_code = "1".repeat(21),
                "shipping_address.postal_code",
            ),
            (|a| a.country = "de".into(), "shipping_address.country"),
        ];
        for (spoil, field) in cases {
            let mut bad = good.clone();
            spoil(&mut bad);
            assert_eq!(check_shipping_address(&bad).map_err(|(f, _)| f), Err(field));
        }
    }
}
