//! [`OrdersAggregate`]: carts and orders share one command topic
//! (`orders.commands`), partitioned by aggregate id, so one processor
//! decides for both. It holds, per aggregate id, whichever of the two that
//! id names; this sum is what it decides with and snapshots.

use schemas::orders::{OrdersCommand, OrdersEvent};
use serde::{Deserialize, Serialize};

use super::cart::{Cart, CartError};
use super::order::{Order, OrderError};
use crate::aggregate::{Aggregate, DecisionContext, DomainError};

/// A cart, an order, or (before its first event) neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrdersAggregate {
    /// No event yet: the first command decides which aggregate this id is.
    #[default]
    Empty,
    Cart(Cart),
    /// Boxed: an order (lines, address, totals) is several times a cart's
    /// size, and the processor keeps one of these per live aggregate id.
    Order(Box<Order>),
}

/// Why an orders command is refused: the aggregate's own refusal, or a
/// command for the other kind of aggregate than the id already is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrdersError {
    #[error(transparent)]
    Cart(#[from] CartError),
    #[error(transparent)]
    Order(#[from] OrderError),
    /// Cart ids are customer ids and order ids are order ids: should the
    /// two ever collide, the first to exist keeps the id and the other's
    /// commands are refused, rather than one aggregate's events landing in
    /// the other's history.
    #[error("`{command}` cannot be decided by a {aggregate}")]
    WrongAggregate {
        command: &'static str,
        aggregate: &'static str,
    },
}

impl DomainError for OrdersError {
    fn code(&self) -> &'static str {
        match self {
            OrdersError::Cart(e) => e.code(),
            OrdersError::Order(e) => e.code(),
            OrdersError::WrongAggregate { .. } => "wrong-aggregate",
        }
    }
}

fn is_cart_record(aggregate_type: &str) -> bool {
    aggregate_type == Cart::TYPE
}

impl Aggregate for OrdersAggregate {
    /// What the processor names when it must name one type (the sum has
    /// two: see [`Aggregate::handles`]).
    const TYPE: &'static str = Order::TYPE;
    type Facts = ();
    type Command = OrdersCommand;
    type Event = OrdersEvent;
    type Error = OrdersError;

    fn decide(
        &self,
        command: &OrdersCommand,
        context: &DecisionContext,
    ) -> Result<Vec<OrdersEvent>, OrdersError> {
        let for_cart = is_cart_record(command.aggregate_type());
        match self {
            OrdersAggregate::Empty if for_cart => Ok(Cart::default().decide(command, context)?),
            OrdersAggregate::Empty => Ok(Order::default().decide(command, context)?),
            OrdersAggregate::Cart(cart) if for_cart => Ok(cart.decide(command, context)?),
            OrdersAggregate::Order(order) if !for_cart => Ok(order.decide(command, context)?),
            OrdersAggregate::Cart(_) | OrdersAggregate::Order(_) => {
                Err(OrdersError::WrongAggregate {
                    command: command.name(),
                    aggregate: self.type_name(),
                })
            }
        }
    }

    /// The first event makes an empty id a cart or an order. An event of
    /// the other kind cannot follow (`decide` refuses its command) and is
    /// ignored by the variant's own `evolve`.
    fn evolve(&mut self, event: &OrdersEvent) {
        match self {
            OrdersAggregate::Empty => {
                if is_cart_record(event.aggregate_type()) {
                    let mut cart = Cart::default();
                    cart.evolve(event);
                    *self = OrdersAggregate::Cart(cart);
                } else {
                    let mut order = Box::<Order>::default();
                    order.evolve(event);
                    *self = OrdersAggregate::Order(order);
                }
            }
            OrdersAggregate::Cart(cart) => cart.evolve(event),
            OrdersAggregate::Order(order) => order.evolve(event),
        }
    }

    fn handles(aggregate_type: &str) -> bool {
        aggregate_type == Cart::TYPE || aggregate_type == Order::TYPE
    }

    /// `Order` while empty: an empty state has nothing to snapshot, and the
    /// processor needs some name.
    fn type_name(&self) -> &'static str {
        match self {
            OrdersAggregate::Cart(_) => Cart::TYPE,
            OrdersAggregate::Empty | OrdersAggregate::Order(_) => Order::TYPE,
        }
    }
}

#[cfg(test)]
mod tests {
    use schemas::orders::{
        AddCartLine, CartLineAdded, ConfirmOrder, OrderConfirmed, RemoveCartLine,
    };

    use super::*;
    use crate::domain::orders::fixtures::{added, place, placed};
    use crate::testkit::AggregateTest;

    fn add(sku: &str) -> OrdersCommand {
        OrdersCommand::AddCartLine(AddCartLine {
            sku: sku.into(),
            quantity: 1,
            unit_price_minor: 1000,
            currency: "EUR".into(),
        })
    }

    #[test]
    fn handles_both_types_and_names_each_variant() {
        assert!(OrdersAggregate::handles("Cart"));
        assert!(OrdersAggregate::handles("Order"));
        assert!(!OrdersAggregate::handles("Product"));
        assert_eq!(OrdersAggregate::TYPE, "Order");
        assert_eq!(OrdersAggregate::Empty.type_name(), "Order");
        assert_eq!(OrdersAggregate::Cart(Cart::default()).type_name(), "Cart");
        assert_eq!(OrdersAggregate::Order(Box::default()).type_name(), "Order");
    }

    #[test]
    fn a_cart_command_on_an_empty_id_makes_a_cart() {
        let state = AggregateTest::<OrdersAggregate>::given_no_history()
            .when(add("MUG-1"))
            .then_expect_events(vec![OrdersEvent::CartLineAdded(CartLineAdded {
                sku: "MUG-1".into(),
                quantity: 1,
                unit_price_minor: 1000,
                currency: "EUR".into(),
            })]);
        assert!(matches!(&state, OrdersAggregate::Cart(c) if c.lines.len() == 1));
        assert_eq!(state.type_name(), "Cart");
    }

    #[test]
    fn an_order_command_on_an_empty_id_makes_an_order() {
        let state = AggregateTest::<OrdersAggregate>::given_no_history()
            .when(place())
            .then_expect_events(vec![placed()]);
        assert!(matches!(&state, OrdersAggregate::Order(o) if o.customer_id == "c-1"));
        assert_eq!(state.type_name(), "Order");
    }

    #[test]
    fn commands_reach_the_aggregate_the_id_already_is() {
        AggregateTest::<OrdersAggregate>::given(vec![added("MUG-1", 1, 1000)])
            .when(add("CUP-1"))
            .then_expect_events(vec![added("CUP-1", 1, 1000)]);
        AggregateTest::<OrdersAggregate>::given(vec![placed()])
            .when(OrdersCommand::ConfirmOrder(ConfirmOrder {
                payment_id: None,
            }))
            .then_expect_events(vec![OrdersEvent::OrderConfirmed(OrderConfirmed {
                payment_id: None,
            })]);
    }

    #[test]
    fn refusals_keep_the_aggregates_codes() {
        AggregateTest::<OrdersAggregate>::given_no_history()
            .when(OrdersCommand::RemoveCartLine(RemoveCartLine {
                sku: "MUG-1".into(),
            }))
            .then_expect_error("no-such-line");
        AggregateTest::<OrdersAggregate>::given_no_history()
            .when(OrdersCommand::ConfirmOrder(ConfirmOrder {
                payment_id: None,
            }))
            .then_expect_error("not-found");
        AggregateTest::<OrdersAggregate>::given(vec![placed()])
            .when(place())
            .then_expect_error("order-exists");
        AggregateTest::<OrdersAggregate>::given(vec![added("MUG-1", 1, 1000)])
            .when_as(add("CUP-1"), "customer:someone-else")
            .then_expect_error("not-your-cart");
    }

    #[test]
    fn a_command_for_the_other_aggregate_is_refused() {
        AggregateTest::<OrdersAggregate>::given(vec![added("MUG-1", 1, 1000)])
            .when(place())
            .then_expect_error("wrong-aggregate");
        AggregateTest::<OrdersAggregate>::given(vec![added("MUG-1", 1, 1000)])
            .when(OrdersCommand::ConfirmOrder(ConfirmOrder {
                payment_id: None,
            }))
            .then_expect_error("wrong-aggregate");
        AggregateTest::<OrdersAggregate>::given(vec![placed()])
            .when(add("MUG-1"))
            .then_expect_error("wrong-aggregate");
    }

    #[test]
    fn events_of_the_other_aggregate_change_nothing() {
        let mut cart = OrdersAggregate::default();
        cart.evolve(&added("MUG-1", 1, 1000));
        let before = cart.clone();
        cart.evolve(&placed());
        assert_eq!(cart, before);
        let mut order = OrdersAggregate::default();
        order.evolve(&placed());
        let before = order.clone();
        order.evolve(&added("MUG-1", 1, 1000));
        assert_eq!(order, before);
    }

    #[test]
    fn the_sum_snapshots_and_restores_through_serde() {
        for events in [vec![added("MUG-1", 2, 1000)], vec![placed()], vec![]] {
            let mut state = OrdersAggregate::default();
            for e in &events {
                state.evolve(e);
            }
            let json = serde_json::to_string(&state).map_err(|e| e.to_string());
            let back = json.and_then(|j| {
                serde_json::from_str::<OrdersAggregate>(&j).map_err(|e| e.to_string())
            });
            assert_eq!(back, Ok(state));
        }
    }

    #[test]
    fn the_wrapped_refusal_reads_like_the_aggregates() {
        let e = OrdersError::from(OrderError::NotFound);
        assert_eq!(e.to_string(), "no such order");
        let wrong = OrdersError::WrongAggregate {
            command: "PlaceOrder",
            aggregate: "Cart",
        };
        assert_eq!(wrong.code(), "wrong-aggregate");
    }
}
