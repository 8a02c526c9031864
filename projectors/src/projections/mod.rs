//! The projections, one module per group of read models.

pub mod audit;
pub mod catalog;
mod cells;
pub mod customers;
pub mod orders;
pub mod payments;
pub mod saga_state;
pub mod sales;
pub mod shipments;
pub mod stock;

use std::sync::Arc;

use crate::projection::Projection;

/// Every projection QuickStore runs.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(orders::OrdersProjection),
        Arc::new(catalog::CatalogProjection),
        Arc::new(stock::StockProjection),
        Arc::new(shipments::ShipmentsProjection),
        Arc::new(payments::PaymentsProjection),
        Arc::new(sales::SalesProjection),
        Arc::new(customers::CustomersProjection),
        Arc::new(audit::AuditProjection),
        Arc::new(saga_state::SagaStateProjection),
    ]
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
