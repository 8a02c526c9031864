//! The endpoints, one module per group of read models.

pub mod audit;
pub mod catalog;
pub mod customers;
pub mod health;
pub mod ops;
pub mod orders;
pub mod sales;
pub mod shipments;
pub mod stock;
