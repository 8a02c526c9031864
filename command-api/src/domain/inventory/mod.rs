//! Inventory: how many units of each SKU are in the warehouse, and how many
//! of them are promised to order lines — the stock the order-fulfillment
//! saga reserves, releases and commits.

mod stock_item;

pub use stock_item::{StockError, StockItem};
