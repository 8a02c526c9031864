//! Who issued a command, as the envelope's `actor` carries it:
//! `<role>:<id>` — `customer:<customer id>`, `courier:<customer id>`,
//! `admin:<customer id>`, `auditor:<customer id>`, or `system:<component>`
//! for QuickStore's own workers (the order-fulfillment saga).
//!
//! Roles are checked at the HTTP edge; aggregates use the actor only for
//! object-level rules that need their state (a customer acts on their own
//! orders only, a courier on the shipments assigned to them), because only
//! the aggregate knows the owner.

/// The role part of an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorRole {
    Customer,
    Courier,
    Admin,
    Auditor,
    /// QuickStore itself (sagas, policies).
    System,
    /// Anything else (tests, tools): treated as a privileged operator.
    Other,
}

/// A parsed `actor` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor<'a> {
    pub role: ActorRole,
    pub id: &'a str,
}

impl<'a> Actor<'a> {
    pub fn parse(actor: &'a str) -> Self {
        let (role, id) = actor.split_once(':').unwrap_or(("", actor));
        let role = match role {
            "customer" => ActorRole::Customer,
            "courier" => ActorRole::Courier,
            "admin" => ActorRole::Admin,
            "auditor" => ActorRole::Auditor,
            "system" => ActorRole::System,
            _ => ActorRole::Other,
        };
        Actor { role, id }
    }

    /// A customer acting for someone else.
    pub fn is_customer_other_than(&self, owner: &str) -> bool {
        self.role == ActorRole::Customer && self.id != owner
    }

    /// A courier acting on a shipment that is not theirs.
    pub fn is_courier_other_than(&self, assigned: Option<&str>) -> bool {
        self.role == ActorRole::Courier && assigned != Some(self.id)
    }
}

/// The actor string for `role` and `id`.
pub fn actor(role: &str, id: &str) -> String {
    format!("{role}:{id}")
}

/// The order-fulfillment saga's actor.
pub const ORDER_FULFILLMENT_ACTOR: &str = "system:order-fulfillment";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_parse_into_role_and_id() {
        let a = Actor::parse("customer:c-1");
        assert_eq!((a.role, a.id), (ActorRole::Customer, "c-1"));
        assert!(a.is_customer_other_than("c-2"));
        assert!(!a.is_customer_other_than("c-1"));
        let courier = Actor::parse("courier:k-1");
        assert!(courier.is_courier_other_than(Some("k-2")));
        assert!(courier.is_courier_other_than(None));
        assert!(!courier.is_courier_other_than(Some("k-1")));
        assert_eq!(
            Actor::parse(ORDER_FULFILLMENT_ACTOR).role,
            ActorRole::System
        );
        assert_eq!(Actor::parse("tester").role, ActorRole::Other);
        assert!(!Actor::parse("admin:a").is_customer_other_than("c"));
    }
}
