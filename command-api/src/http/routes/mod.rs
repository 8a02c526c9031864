//! The endpoints, one module per area of the domain.

pub mod auth;
pub mod catalog;
pub mod commands;
pub mod customers;
pub mod deliveries;
pub mod inventory;
pub mod orders;
pub mod payments;
