//! The projections, one module per group of read models.

pub mod orders;
