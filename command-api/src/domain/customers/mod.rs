//! Customers: who is who, and what they may do (roles). Credentials are the
//! auth module's business and never appear here or in any event.

mod customer;

pub use customer::{Customer, CustomerError};
