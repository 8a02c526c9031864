//! Payments: the [`Payment`] of each order (its id is the order id),
//! authorized, captured, voided and refunded through the payment gateway
//! ([`crate::gateway`]).
//!
//! Card data appears only as a gateway token: the card number is exchanged
//! for one at the command API's edge and never reaches a command or event.

mod payment;

#[cfg(test)]
mod tests;

pub use payment::{GatewayRequest, Payment, PaymentError, PaymentStatus, LATE_APPROVAL_REASON};
