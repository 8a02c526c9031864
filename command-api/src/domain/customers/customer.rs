//! `Customer`: a registered person with a profile and roles. Every
//! registration starts with the CUSTOMER role; other roles are granted
//! (the command API checks *who* may grant them — the aggregate checks what
//! the grant means for this customer).

use schemas::customers::{
    CustomerProfileUpdated, CustomerRegistered, CustomersCommand, CustomersEvent, GrantRole,
    RegisterCustomer, RevokeRole, Role, RoleGranted, RoleRevoked, UpdateCustomerProfile,
};
use schemas::PostalAddress;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::validate::{self, MAX_TEXT};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// False until `CustomerRegistered`.
    pub registered: bool,
    /// Lower-cased at registration: one account per address, whatever case.
    pub email: String,
    pub display_name: String,
    pub phone: Option<String>,
    pub default_address: Option<PostalAddress>,
    pub roles: Vec<Role>,
}

/// Why a customers command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("the customer is already registered")]
    AlreadyRegistered,
    #[error("no such customer")]
    NotFound,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
}

impl DomainError for CustomerError {
    fn code(&self) -> &'static str {
        match self {
            CustomerError::AlreadyRegistered => "already-registered",
            CustomerError::NotFound => "not-found",
            CustomerError::InvalidField { .. } => "invalid-field",
        }
    }
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), CustomerError> {
    result.map_err(|reason| CustomerError::InvalidField { field, reason })
}

fn check_phone(phone: Option<&String>) -> Result<(), CustomerError> {
    phone.map_or(Ok(()), |p| {
        check("phone", validate::personal(p, validate::phone))
    })
}

/// A name: sealed (checked at the edge) or clear and checked here.
fn check_name(name: &str) -> Result<(), CustomerError> {
    check(
        "display_name",
        validate::personal(name, |v| validate::text(v, MAX_TEXT)),
    )
}

fn check_address(address: &PostalAddress) -> Result<(), CustomerError> {
    validate::address(address).map_err(|(sub, reason)| CustomerError::InvalidField {
        field: match sub {
            "recipient" => "default_address.recipient",
            "line1" => "default_address.line1",
            "line2" => "default_address.line2",
            "city" => "default_address.city",
            "region" => "default_address.region",
            "postal_code" => "default_address.postal_code",
            "country" => "default_address.country",
            _ => "default_address",
        },
        reason,
    })
}

impl Customer {
    fn existing(&self) -> Result<(), CustomerError> {
        if self.registered {
            Ok(())
        } else {
            Err(CustomerError::NotFound)
        }
    }

    fn register(&self, c: &RegisterCustomer) -> Result<Vec<CustomersEvent>, CustomerError> {
        if self.registered {
            return Err(CustomerError::AlreadyRegistered);
        }
        check("email", validate::personal(&c.email, validate::email))?;
        check_name(&c.display_name)?;
        check_phone(c.phone.as_ref())?;
        // A sealed e-mail was normalized before sealing (lower-casing the
        // ciphertext would break it).
        let email = if platform::pii::is_sealed(&c.email) {
            c.email.clone()
        } else {
            c.email.to_lowercase()
        };
        Ok(vec![CustomersEvent::CustomerRegistered(
            CustomerRegistered {
                email,
                display_name: c.display_name.clone(),
                phone: c.phone.clone(),
                roles: vec![Role::Customer],
            },
        )])
    }

    fn update_profile(
        &self,
        c: &UpdateCustomerProfile,
    ) -> Result<Vec<CustomersEvent>, CustomerError> {
        self.existing()?;
        check_name(&c.display_name)?;
        check_phone(c.phone.as_ref())?;
        if let Some(address) = &c.default_address {
            check_address(address)?;
        }
        let unchanged = c.display_name == self.display_name
            && c.phone == self.phone
            && c.default_address == self.default_address;
        if unchanged {
            return Ok(Vec::new());
        }
        Ok(vec![CustomersEvent::CustomerProfileUpdated(
            CustomerProfileUpdated {
                display_name: c.display_name.clone(),
                phone: c.phone.clone(),
                default_address: c.default_address.clone(),
            },
        )])
    }

    fn grant(&self, c: &GrantRole) -> Result<Vec<CustomersEvent>, CustomerError> {
        self.existing()?;
        if self.roles.contains(&c.role) {
            return Ok(Vec::new()); // already held: the request is satisfied
        }
        Ok(vec![CustomersEvent::RoleGranted(RoleGranted {
            role: c.role,
        })])
    }

    fn revoke(&self, c: &RevokeRole) -> Result<Vec<CustomersEvent>, CustomerError> {
        self.existing()?;
        if !self.roles.contains(&c.role) {
            return Ok(Vec::new());
        }
        Ok(vec![CustomersEvent::RoleRevoked(RoleRevoked {
            role: c.role,
        })])
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "Customer";
    type Facts = ();
    type Command = CustomersCommand;
    type Event = CustomersEvent;
    type Error = CustomerError;

    fn decide(
        &self,
        command: &CustomersCommand,
        _: &DecisionContext,
    ) -> Result<Vec<CustomersEvent>, CustomerError> {
        match command {
            CustomersCommand::RegisterCustomer(c) => self.register(c),
            CustomersCommand::UpdateCustomerProfile(c) => self.update_profile(c),
            CustomersCommand::GrantRole(c) => self.grant(c),
            CustomersCommand::RevokeRole(c) => self.revoke(c),
        }
    }

    fn evolve(&mut self, event: &CustomersEvent) {
        match event {
            CustomersEvent::CustomerRegistered(e) => {
                *self = Customer {
                    registered: true,
                    email: e.email.clone(),
                    display_name: e.display_name.clone(),
                    phone: e.phone.clone(),
                    default_address: None,
                    roles: e.roles.clone(),
                }
            }
            CustomersEvent::CustomerProfileUpdated(e) => {
                self.display_name = e.display_name.clone();
                self.phone = e.phone.clone();
                self.default_address = e.default_address.clone();
            }
            CustomersEvent::RoleGranted(e) => {
                if !self.roles.contains(&e.role) {
                    self.roles.push(e.role);
                }
            }
            CustomersEvent::RoleRevoked(e) => self.roles.retain(|r| *r != e.role),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::AggregateTest;

    fn registered() -> CustomersEvent {
        CustomersEvent::CustomerRegistered(CustomerRegistered {
            email: "ada@example.com".into(),
            display_name: "Ada".into(),
            phone: None,
            roles: vec![Role::Customer],
        })
    }

    fn register(email: &str, name: &str, phone: Option<&str>) -> CustomersCommand {
        CustomersCommand::RegisterCustomer(RegisterCustomer {
            email: email.into(),
            display_name: name.into(),
            phone: phone.map(Into::into),
        })
    }

    fn address(country: &str) -> PostalAddress {
        PostalAddress {
            recipient: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: None,
            city: "London".into(),
            region: None,
            postal_code: "SW1Y 4JH".into(),
            country: country.into(),
        }
    }

    fn update(name: &str, address: Option<PostalAddress>) -> CustomersCommand {
        CustomersCommand::UpdateCustomerProfile(UpdateCustomerProfile {
            display_name: name.into(),
            phone: None,
            default_address: address,
        })
    }

    #[test]
    fn register_normalises_the_email_and_starts_as_customer() {
        let state = AggregateTest::<Customer>::given_no_history()
            .when(register("Ada@Example.com", "Ada", None))
            .then_expect_events(vec![registered()]);
        assert_eq!(state.roles, vec![Role::Customer]);
    }

    /// Sealed personal fields (ADR 0014) were checked in clear at the edge:
    /// the aggregate carries them as they are — never lower-cased (that
    /// would break the ciphertext), never refused for their shape.
    #[test]
    #[allow(clippy::unwrap_used, reason = "test code")]
    fn sealed_personal_fields_are_carried_opaquely() {
        let key = platform::pii::DataKey::generate().unwrap();
        let seal =
            |field: &str, clear: &str| platform::pii::seal(&key, "c-1", field, clear).unwrap();
        let (email, name, phone) = (
            seal("email", "ada@example.com"),
            seal("display_name", "Ada"),
            seal("phone", "+49 30 1234567"),
        );
        AggregateTest::<Customer>::given_no_history()
            .when(register(&email, &name, Some(&phone)))
            .then_expect_events(vec![CustomersEvent::CustomerRegistered(
                CustomerRegistered {
                    email: email.clone(),
                    display_name: name.clone(),
                    phone: Some(phone.clone()),
                    roles: vec![Role::Customer],
                },
            )]);
        let mut sealed = address("GB");
        sealed.recipient = seal("address.recipient", "Ada Lovelace");
        sealed.postal_code = seal("address.postal_code", "SW1Y 4JH");
        let state = AggregateTest::<Customer>::given(vec![registered()])
            .when(update(&name, Some(sealed.clone())))
            .then_expect_events(vec![CustomersEvent::CustomerProfileUpdated(
                CustomerProfileUpdated {
                    display_name: name.clone(),
                    phone: None,
                    default_address: Some(sealed),
                },
            )]);
        assert_eq!(state.display_name, name);
        // Clear values keep their checks: a bad country is still refused.
        AggregateTest::<Customer>::given(vec![registered()])
            .when(update(&name, Some(address("gb"))))
            .then_expect_error("invalid-field");
    }

    #[test]
    fn register_refusals() {
        AggregateTest::<Customer>::given(vec![registered()])
            .when(register("ada@example.com", "Ada", None))
            .then_expect_error("already-registered");
        for (email, name, phone) in [
            ("not-an-email", "Ada", None),
            ("ada@example.com", "", None),
            ("ada@example.com", "Ada", Some("x")),
        ] {
            AggregateTest::<Customer>::given_no_history()
                .when(register(email, name, phone))
                .then_expect_error("invalid-field");
        }
    }

    #[test]
    fn update_profile() {
        let state = AggregateTest::<Customer>::given(vec![registered()])
            .when(update("Ada L.", Some(address("GB"))))
            .then_expect_events(vec![CustomersEvent::CustomerProfileUpdated(
                CustomerProfileUpdated {
                    display_name: "Ada L.".into(),
                    phone: None,
                    default_address: Some(address("GB")),
                },
            )]);
        assert_eq!(state.default_address, Some(address("GB")));
        AggregateTest::<Customer>::given(vec![registered()])
            .when(update("Ada", None))
            .then_expect_events(vec![]);
        AggregateTest::<Customer>::given(vec![registered()])
            .when(update("Ada", Some(address("gb"))))
            .then_expect_error("invalid-field");
        AggregateTest::<Customer>::given(vec![registered()])
            .when(update(" ", None))
            .then_expect_error("invalid-field");
        AggregateTest::<Customer>::given_no_history()
            .when(update("Ada", None))
            .then_expect_error("not-found");
    }

    #[test]
    fn grant_and_revoke_roles() {
        let grant = |role| CustomersCommand::GrantRole(GrantRole { role });
        let revoke = |role| CustomersCommand::RevokeRole(RevokeRole { role });
        let state = AggregateTest::<Customer>::given(vec![registered()])
            .when(grant(Role::Courier))
            .then_expect_events(vec![CustomersEvent::RoleGranted(RoleGranted {
                role: Role::Courier,
            })]);
        assert_eq!(state.roles, vec![Role::Customer, Role::Courier]);
        AggregateTest::<Customer>::given(vec![registered()])
            .when(grant(Role::Customer))
            .then_expect_events(vec![]);
        let state = AggregateTest::<Customer>::given(vec![registered()])
            .when(revoke(Role::Customer))
            .then_expect_events(vec![CustomersEvent::RoleRevoked(RoleRevoked {
                role: Role::Customer,
            })]);
        assert!(state.roles.is_empty());
        AggregateTest::<Customer>::given(vec![registered()])
            .when(revoke(Role::Admin))
            .then_expect_events(vec![]);
        AggregateTest::<Customer>::given_no_history()
            .when(grant(Role::Admin))
            .then_expect_error("not-found");
        AggregateTest::<Customer>::given_no_history()
            .when(revoke(Role::Admin))
            .then_expect_error("not-found");
    }
}
