//! The projections, one module per group of read models.

pub mod audit;
pub mod orders;
pub mod saga_state;

use std::sync::Arc;

use crate::projection::Projection;

/// Every projection QuickStore runs.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(orders::OrdersProjection),
        Arc::new(audit::AuditProjection),
        Arc::new(saga_state::SagaStateProjection),
    ]
}
