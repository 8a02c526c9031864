//! Every Kafka topic name of QuickStore, in one place.
//!
//! Names are `<prefix><rest>` where the prefix is the deployment's
//! configurable `topic_prefix` (e.g. `""` in production, `"t42."` in a
//! test). Standard Kafka tooling sees plain, predictable names.

use std::fmt;
use std::str::FromStr;

/// A bounded context: one event topic, one command topic, one snapshot topic each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// Products.
    Catalog,
    /// Stock items (one per SKU).
    Inventory,
    /// Carts and orders.
    Orders,
    /// Payments.
    Payments,
    /// Shipments.
    Deliveries,
    /// Customers.
    Customers,
}

impl Context {
    /// All six contexts.
    pub const ALL: [Context; 6] = [
        Context::Catalog,
        Context::Inventory,
        Context::Orders,
        Context::Payments,
        Context::Deliveries,
        Context::Customers,
    ];

    /// The name used in topics and Avro namespaces (`com.quickstore.<name>`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Context::Catalog => "catalog",
            Context::Inventory => "inventory",
            Context::Orders => "orders",
            Context::Payments => "payments",
            Context::Deliveries => "deliveries",
            Context::Customers => "customers",
        }
    }

    /// The Avro namespace of the context's records.
    pub fn namespace(&self) -> String {
        format!("com.quickstore.{}", self.as_str())
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not the name of a context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown context {0:?} (expected one of catalog, inventory, orders, payments, deliveries, customers)")]
pub struct UnknownContext(pub String);

impl FromStr for Context {
    type Err = UnknownContext;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Context::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownContext(s.to_owned()))
    }
}

/// Topic names under a prefix.
/// The order-fulfillment saga's name in its topics
/// (`sagas.order-fulfillment.events`, `sagas.order-fulfillment.replies`).
pub const ORDER_FULFILLMENT: &str = "order-fulfillment";

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TopicNames {
    /// Prepended verbatim to every name (include your own separator, e.g. `"qs."`).
    pub prefix: String,
}

impl TopicNames {
    /// Topic names under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// `<prefix><context>.events`: the context's event log (kept forever, never compacted).
    pub fn events(&self, context: Context) -> String {
        format!("{}{}.events", self.prefix, context.as_str())
    }

    /// `<prefix><context>.commands`: commands for the context's aggregates.
    pub fn commands(&self, context: Context) -> String {
        format!("{}{}.commands", self.prefix, context.as_str())
    }

    /// `<prefix><context>.snapshots`: the command processor's compacted state changelog.
    pub fn snapshots(&self, context: Context) -> String {
        format!("{}{}.snapshots", self.prefix, context.as_str())
    }

    /// [`Self::events`] for a context named by a string: the six contexts'
    /// names, or one outside them (tests use a `counter` context).
    pub fn events_for(&self, context: &str) -> String {
        format!("{}{context}.events", self.prefix)
    }

    /// [`Self::commands`] for a context named by a string.
    pub fn commands_for(&self, context: &str) -> String {
        format!("{}{context}.commands", self.prefix)
    }

    /// [`Self::snapshots`] for a context named by a string.
    pub fn snapshots_for(&self, context: &str) -> String {
        format!("{}{context}.snapshots", self.prefix)
    }

    /// `<prefix>command-outcomes`: one outcome per decided command.
    pub fn command_outcomes(&self) -> String {
        format!("{}command-outcomes", self.prefix)
    }

    /// `<prefix>auth.revocations`: revoked access tokens and sessions, from
    /// every command-API replica to every verifier (ADR 0022).
    pub fn auth_revocations(&self) -> String {
        format!("{}auth.revocations", self.prefix)
    }

    /// `<prefix>sagas.<saga>.events`: a saga's own event-sourced state.
    pub fn saga_events(&self, saga: &str) -> String {
        format!("{}sagas.{saga}.events", self.prefix)
    }

    /// `<prefix>sagas.<saga>.replies`: command outcomes sent back to a saga.
    pub fn saga_replies(&self, saga: &str) -> String {
        format!("{}sagas.{saga}.replies", self.prefix)
    }

    /// `<prefix><consumer>.dlq`: records a consumer could not process.
    pub fn dlq(&self, consumer: &str) -> String {
        format!("{}{consumer}.dlq", self.prefix)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact() {
        let t = TopicNames::new("qs.");
        assert_eq!(t.events(Context::Catalog), "qs.catalog.events");
        assert_eq!(t.commands(Context::Inventory), "qs.inventory.commands");
        assert_eq!(t.snapshots(Context::Orders), "qs.orders.snapshots");
        assert_eq!(t.command_outcomes(), "qs.command-outcomes");
        assert_eq!(t.auth_revocations(), "qs.auth.revocations");
        assert_eq!(
            t.saga_events("order-fulfillment"),
            "qs.sagas.order-fulfillment.events"
        );
        assert_eq!(
            t.saga_replies("order-fulfillment"),
            "qs.sagas.order-fulfillment.replies"
        );
        assert_eq!(t.dlq("projector-orders"), "qs.projector-orders.dlq");
        assert_eq!(
            TopicNames::default().events(Context::Payments),
            "payments.events"
        );
        for c in Context::ALL {
            assert_eq!(t.events_for(c.as_str()), t.events(c));
            assert_eq!(t.commands_for(c.as_str()), t.commands(c));
            assert_eq!(t.snapshots_for(c.as_str()), t.snapshots(c));
        }
        assert_eq!(t.events_for("counter"), "qs.counter.events");
    }

    #[test]
    fn contexts_round_trip_through_strings() {
        for c in Context::ALL {
            assert_eq!(c.as_str().parse::<Context>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert!("shipping".parse::<Context>().is_err());
        assert_eq!(Context::Deliveries.namespace(), "com.quickstore.deliveries");
    }
}
