//! The commerce domain: one module per bounded context, each aggregate pure
//! (`decide`/`evolve`), its refusals a `thiserror` enum with stable codes.
//! The other contexts' aggregates arrive with the write-side issue.

pub mod catalog;
pub mod customers;
mod validate;
