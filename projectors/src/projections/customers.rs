//! Customer profiles. Roles are one boolean cell each (`role_admin`, …) so
//! a grant or a revoke sets its cell from the event alone, without reading
//! the current set.

use platform::readstore::{column, ColumnType as T, Mutation, TableDef};
use schemas::Context;

use crate::projection::{Projected, Projection, ProjectionError};

pub const CUSTOMER_PROFILES: TableDef = TableDef {
    name: "customer_profiles",
    partition_key: &[column("customer_id", T::Text)],
    clustering: &[],
    columns: &[
        column("email", T::Text),
        column("display_name", T::Text),
        column("phone", T::Text),
        column("default_address_json", T::Text),
        column("role_customer", T::Boolean),
        column("role_admin", T::Boolean),
        column("role_courier", T::Boolean),
        column("role_auditor", T::Boolean),
        column("registered_at", T::Timestamp),
        column("updated_at", T::Timestamp),
        column("customer_version", T::BigInt),
    ],
};

const TABLES: &[TableDef] = &[CUSTOMER_PROFILES];

#[derive(Debug, Default, Clone, Copy)]
pub struct CustomersProjection;

impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Customers)]
    }

    fn project(&self, _input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        Ok(Vec::new())
    }
}
