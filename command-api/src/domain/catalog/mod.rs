//! Catalog: what is for sale, at what price.

mod product;

pub use product::{Product, ProductError};
