//! Customer profiles. Roles are one boolean cell each (`role_admin`, …) so
//! a grant or a revoke sets its cell from the event alone, without reading
//! the current set.
//!
//! Every input is a `Customer` event, every cell written with that
//! Customer's version.

use platform::readstore::{column, ColumnType as T, Mutation, TableDef, Value};
use schemas::customers::{CustomersEvent, Role};
use schemas::{AnyEvent, Context};

use super::cells::opt_json;
use crate::projection::{
    opt_text, row, text, upsert, Input, Projected, Projection, ProjectionError,
};

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

/// The cell that says whether a customer holds `role`.
pub fn role_column(role: Role) -> &'static str {
    match role {
        Role::Customer => "role_customer",
        Role::Admin => "role_admin",
        Role::Courier => "role_courier",
        Role::Auditor => "role_auditor",
    }
}

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

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        // Only customers events are on its topic.
        let AnyEvent::Customers(event) = event else {
            return Ok(Vec::new());
        };
        let at = envelope.occurred_at;
        let mut cells = match event {
            CustomersEvent::CustomerRegistered(e) => {
                let mut cells = row([
                    ("email", text(&e.email)),
                    ("display_name", text(&e.display_name)),
                    ("phone", opt_text(e.phone.as_deref())),
                    ("default_address_json", Value::Null),
                    ("registered_at", Value::Timestamp(at)),
                ]);
                // Every role cell, held or not: the registration states
                // the whole set.
                for role in Role::ALL {
                    cells.insert(
                        role_column(role).into(),
                        Value::Boolean(e.roles.contains(&role)),
                    );
                }
                cells
            }
            // Values after the change: a null phone or address was removed.
            CustomersEvent::CustomerProfileUpdated(e) => {
                let mut cells = row([
                    ("display_name", text(&e.display_name)),
                    ("phone", opt_text(e.phone.as_deref())),
                ]);
                cells.insert(
                    "default_address_json".into(),
                    opt_json(e.default_address.as_ref())?,
                );
                cells
            }
            CustomersEvent::RoleGranted(e) => row([(role_column(e.role), Value::Boolean(true))]),
            CustomersEvent::RoleRevoked(e) => row([(role_column(e.role), Value::Boolean(false))]),
        };
        cells.extend(row([
            ("customer_id", text(&envelope.aggregate_id)),
            ("updated_at", Value::Timestamp(at)),
            ("customer_version", Value::BigInt(envelope.version)),
        ]));
        Ok(vec![upsert(CUSTOMER_PROFILES, envelope.version, cells)])
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
mod tests {
    use platform::readstore::Row;
    use schemas::customers::{
        CustomerProfileUpdated, CustomerRegistered, RoleGranted, RoleRevoked,
    };
    use schemas::PostalAddress;

    use super::*;
    use crate::testkit::{assert_replay_safe, ProjectionTest, Stream, START_MS};

    fn registered(email: &str) -> CustomersEvent {
        CustomersEvent::CustomerRegistered(CustomerRegistered {
            email: email.into(),
            display_name: "Ada".into(),
            phone: Some("+4930123456".into()),
            roles: vec![Role::Customer],
        })
    }

    fn granted(role: Role) -> CustomersEvent {
        CustomersEvent::RoleGranted(RoleGranted { role })
    }

    fn revoked(role: Role) -> CustomersEvent {
        CustomersEvent::RoleRevoked(RoleRevoked { role })
    }

    fn customer(id: &str) -> Row {
        row([("customer_id", text(id))])
    }

    /// `(customer, admin, courier, auditor)` of a profile.
    fn roles(row: &Row) -> [Value; 4] {
        Role::ALL.map(|r| row[role_column(r)].clone())
    }

    fn flags(flags: [bool; 4]) -> [Value; 4] {
        flags.map(Value::Boolean)
    }

    #[tokio::test]
    async fn a_registration_sets_the_profile_and_every_role_cell() {
        let mut ada = Stream::new("Customer", "c-1");
        let test =
            ProjectionTest::given(CustomersProjection, [ada.next(registered("ada@x.org"))]).await;
        let row = test.expect_row(CUSTOMER_PROFILES, customer("c-1")).await;
        assert_eq!(row["email"], text("ada@x.org"));
        assert_eq!(row["display_name"], text("Ada"));
        assert_eq!(row["phone"], text("+4930123456"));
        assert_eq!(row["default_address_json"], Value::Null);
        assert_eq!(roles(&row), flags([true, false, false, false]));
        assert_eq!(row["registered_at"], Value::Timestamp(START_MS + 1_000));
        assert_eq!(row["customer_version"], Value::BigInt(1));
    }

    #[tokio::test]
    async fn grants_and_revokes_set_one_cell_each() {
        let mut ada = Stream::new("Customer", "c-1");
        let mut test = ProjectionTest::given(
            CustomersProjection,
            [
                ada.next(registered("ada@x.org")),
                ada.next(granted(Role::Admin)),
                ada.next(granted(Role::Courier)),
            ],
        )
        .await;
        let row = test.expect_row(CUSTOMER_PROFILES, customer("c-1")).await;
        assert_eq!(roles(&row), flags([true, true, true, false]));
        test.when([ada.next(revoked(Role::Admin))]).await;
        let row = test.expect_row(CUSTOMER_PROFILES, customer("c-1")).await;
        assert_eq!(roles(&row), flags([true, false, true, false]));
        assert_eq!(row["customer_version"], Value::BigInt(4));
        assert_eq!(row["email"], text("ada@x.org"), "other cells stay");
    }

    #[tokio::test]
    async fn a_profile_update_replaces_name_phone_and_address() {
        let mut ada = Stream::new("Customer", "c-1");
        let address = PostalAddress {
            recipient: "Ada Lovelace".into(),
            line1: "Hauptstr. 1".into(),
            line2: None,
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "DE".into(),
        };
        let test = ProjectionTest::given(
            CustomersProjection,
            [
                ada.next(registered("ada@x.org")),
                ada.next(CustomersEvent::CustomerProfileUpdated(
                    CustomerProfileUpdated {
                        display_name: "Ada L.".into(),
                        phone: None,
                        default_address: Some(address),
                    },
                )),
            ],
        )
        .await;
        let row = test.expect_row(CUSTOMER_PROFILES, customer("c-1")).await;
        assert_eq!(row["display_name"], text("Ada L."));
        assert_eq!(row["phone"], Value::Null, "removed");
        let Value::Text(json) = &row["default_address_json"] else {
            panic!("default_address_json: {:?}", row["default_address_json"]);
        };
        let address: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(address["postal_code"], "10115");
        assert_eq!(row["registered_at"], Value::Timestamp(START_MS + 1_000));
        assert_eq!(row["updated_at"], Value::Timestamp(START_MS + 2_000));
    }

    #[tokio::test]
    async fn redelivery_and_interleaving_change_nothing() {
        let mut ada = Stream::new("Customer", "c-1");
        let mut bob = Stream::new("Customer", "c-2");
        let inputs = [
            ada.next(registered("ada@x.org")),
            bob.next(registered("bob@x.org")),
            ada.next(granted(Role::Auditor)),
            bob.next(granted(Role::Courier)),
            ada.next(revoked(Role::Auditor)),
            bob.next(revoked(Role::Customer)),
            ada.next(granted(Role::Auditor)),
        ];
        assert_replay_safe(CustomersProjection, &inputs).await;
        let test = ProjectionTest::given(CustomersProjection, inputs).await;
        let row = test.expect_row(CUSTOMER_PROFILES, customer("c-1")).await;
        assert_eq!(roles(&row), flags([true, false, false, true]));
        let row = test.expect_row(CUSTOMER_PROFILES, customer("c-2")).await;
        assert_eq!(roles(&row), flags([false, false, true, false]));
    }
}
