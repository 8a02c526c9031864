//! The commerce domain: one module per bounded context, each aggregate pure
//! (`decide`/`evolve`), its refusals a `thiserror` enum with stable codes.

pub mod actor;
pub mod catalog;
pub mod customers;
pub mod deliveries;
pub mod inventory;
pub mod orders;
pub mod payments;
pub(crate) mod validate;
