//! The pure ledgers on hand-made histories: each invariant passes on a
//! conserving history and names the record that breaks it.
#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::HashMap;

use platform::eventlog::TopicPartition;
use schemas::inventory::{
    InventoryEvent, StockCommitted, StockReleased, StockReserved, StockRestocked,
};
use schemas::orders::{OrderCompleted, OrdersEvent};
use schemas::payments::{PaymentAuthorized, PaymentCaptured, PaymentRefunded, PaymentsEvent};
use schemas::{CommandOutcome, CommandStatus};

use super::commands::CommandLedger;
use super::money::MoneyLedger;
use super::report::Position;
use super::stock::StockLedger;

fn at(topic: &str, partition: i32, offset: i64) -> Position {
    Position {
        topic: topic.into(),
        partition,
        offset,
    }
}

fn kinds(r: &super::InvariantReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.kind.as_str()).collect()
}

fn restocked(quantity: i32, on_hand_after: i32) -> InventoryEvent {
    InventoryEvent::StockRestocked(StockRestocked {
        quantity,
        on_hand_after,
        reference: None,
        available_after: None,
    })
}

fn reserved(line: i32, quantity: i32, available_after: i32) -> InventoryEvent {
    InventoryEvent::StockReserved(StockReserved {
        order_id: "o".into(),
        line_no: line,
        quantity,
        available_after,
        on_hand_after: None,
    })
}

#[test]
fn stock_is_conserved_through_reserve_release_and_commit() {
    let mut l = StockLedger::default();
    let p = at("inventory.events", 0, 0);
    l.apply("MUG", 1, &restocked(10, 10), &p);
    l.apply("MUG", 2, &reserved(1, 3, 7), &p);
    l.apply("MUG", 3, &reserved(2, 2, 5), &p);
    l.apply(
        "MUG",
        4,
        &InventoryEvent::StockReleased(StockReleased {
            order_id: "o".into(),
            line_no: 2,
            quantity: 2,
            available_after: 7,
            on_hand_after: Some(10),
        }),
        &p,
    );
    l.apply(
        "MUG",
        5,
        &InventoryEvent::StockCommitted(StockCommitted {
            order_id: "o".into(),
            line_no: 1,
            quantity: 3,
            on_hand_after: 7,
            available_after: Some(7),
        }),
        &p,
    );
    let r = l.report();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.checked["available"], 7);
    assert_eq!(r.checked["committed"], 3);
}

#[test]
fn a_stated_level_the_movements_do_not_give_is_found() {
    let mut l = StockLedger::default();
    l.apply("MUG", 1, &restocked(10, 10), &at("t", 0, 0));
    l.apply("MUG", 2, &restocked(5, 50), &at("t", 0, 1));
    l.apply(
        "MUG",
        3,
        &InventoryEvent::StockCommitted(StockCommitted {
            order_id: "x".into(),
            line_no: 1,
            quantity: 1,
            on_hand_after: 14,
            available_after: None,
        }),
        &at("t", 0, 2),
    );
    let r = l.report();
    assert_eq!(kinds(&r), ["level-mismatch", "unreserved-commit"]);
    assert_eq!(r.findings[0].offset, Some(1));
}

#[test]
fn overselling_is_found() {
    let mut l = StockLedger::default();
    l.apply("MUG", 1, &restocked(1, 1), &at("t", 0, 0));
    l.apply("MUG", 2, &reserved(1, 2, -1), &at("t", 0, 1));
    assert_eq!(kinds(&l.report()), ["oversold"]);
}

fn captured(order: &str, amount: i64) -> PaymentsEvent {
    PaymentsEvent::PaymentCaptured(PaymentCaptured {
        order_id: order.into(),
        amount_minor: amount,
        currency: "EUR".into(),
        gateway_reference: "g".into(),
    })
}

fn placed(total: i64) -> OrdersEvent {
    let mut e: schemas::orders::OrderPlaced = serde_json::from_value(serde_json::json!({
        "customer_id": "c", "lines": [], "payment_token": null,
        "shipping_address": {"recipient": "r", "line1": "l", "line2": null, "city": "c", "region": null, "postal_code": "p", "country": "GB"},
        "totals": {"subtotal_minor": total, "shipping_minor": 0, "tax_minor": 0, "total_minor": total, "currency": "EUR"}
    }))
    .unwrap();
    e.totals.total_minor = total;
    OrdersEvent::OrderPlaced(e)
}

#[test]
fn money_of_a_completed_order_is_its_total_and_nothing_more() {
    let p = at("t", 0, 0);
    let mut l = MoneyLedger::default();
    l.order("o1", &placed(2499), &p);
    l.payment(
        &PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
            order_id: "o1".into(),
            amount_minor: 2499,
            currency: "EUR".into(),
            authorization_code: "a".into(),
            gateway_reference: "g".into(),
        }),
        &p,
    );
    l.payment(&captured("o1", 2499), &p);
    l.order(
        "o1",
        &OrdersEvent::OrderCompleted(OrderCompleted {
            shipment_id: None,
            lines: vec![],
            totals: None,
        }),
        &p,
    );
    let r = l.report();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.checked["captured_minor"], 2499);

    let mut l = MoneyLedger::default();
    l.order("o1", &placed(2499), &p);
    l.payment(&captured("o1", 2499), &p);
    l.payment(&captured("o1", 2499), &at("t", 0, 7));
    l.payment(
        &PaymentsEvent::PaymentRefunded(PaymentRefunded {
            order_id: "o1".into(),
            amount_minor: 9999,
            currency: "EUR".into(),
            refunded_total_minor: 9999,
            reason: None,
            gateway_reference: "g".into(),
        }),
        &p,
    );
    let r = l.report();
    assert_eq!(kinds(&r), ["captured-twice", "refund-exceeds-capture"]);
    assert_eq!(r.findings[0].offset, Some(7));
}

fn outcome(id: &str, events: i32) -> CommandOutcome {
    CommandOutcome {
        command_id: id.into(),
        aggregate_type: "Order".into(),
        aggregate_id: "o".into(),
        correlation_id: "c".into(),
        status: CommandStatus::Accepted,
        version: 1,
        event_count: events,
        error_code: None,
        error_message: None,
        decided_at: 0,
        event_types: vec![],
    }
}

#[test]
fn a_command_without_outcome_is_missing_once_consumed_and_in_flight_before() {
    let mut l = CommandLedger::default();
    l.command("a", at("orders.commands", 0, 0));
    l.outcome(&outcome("a", 1), at("command-outcomes", 0, 0));
    l.event("a");
    l.command("b", at("orders.commands", 0, 1));
    l.command("c", at("orders.commands", 0, 2));
    // The processor committed offset 2: b was consumed, c not yet.
    let consumed = HashMap::from([(TopicPartition::new("orders.commands", 0), 2)]);
    let r = l.report(&consumed);
    let mut k = kinds(&r);
    k.sort_unstable();
    assert_eq!(k, ["in-flight", "missing-outcome"]);
    assert_eq!(r.checked["answered"], 1);
}

#[test]
fn an_accepted_outcome_counts_its_events() {
    let mut l = CommandLedger::default();
    l.command("a", at("orders.commands", 0, 0));
    l.outcome(&outcome("a", 1), at("command-outcomes", 0, 0));
    l.event("a");
    l.event("a");
    assert_eq!(kinds(&l.report(&HashMap::new())), ["event-count-mismatch"]);
}

#[test]
fn durations_parse_with_their_units() {
    use std::time::Duration;
    assert_eq!(
        super::parse_duration("500ms"),
        Some(Duration::from_millis(500))
    );
    assert_eq!(super::parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(super::parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(super::parse_duration("2h"), Some(Duration::from_secs(7200)));
    assert_eq!(super::parse_duration("7"), Some(Duration::from_secs(7)));
    assert_eq!(super::parse_duration("soon"), None);
    assert_eq!(super::parse_duration("99999999999999999999h"), None);
}

mod read_models_follow_the_log {
    use projectors::projection::Projected;
    use projectors::testkit::Stream;
    use schemas::catalog::{CatalogEvent, ProductCreated, ProductDetailsUpdated};
    use schemas::{Context, TopicNames};

    use super::super::read_models::ReadModelFold;
    use platform::readstore::{EmbeddedStore, ReadStore};

    fn created() -> CatalogEvent {
        CatalogEvent::ProductCreated(ProductCreated {
            sku: "MUG-1".into(),
            name: "Mug".into(),
            description: None,
            category: "kitchen".into(),
            price_minor: 1299,
            currency: "EUR".into(),
        })
    }

    fn renamed() -> CatalogEvent {
        CatalogEvent::ProductDetailsUpdated(ProductDetailsUpdated {
            name: "Big mug".into(),
            description: None,
            previous_name: Some("Mug".into()),
            category: None,
        })
    }

    /// The live store as the projectors left it after `inputs`.
    async fn projected_store(names: &TopicNames, inputs: &[Projected]) -> EmbeddedStore {
        let live = EmbeddedStore::in_memory().unwrap();
        let projections = projectors::projections::all();
        projectors::generations::prepare_serving_tables(&live, &projections)
            .await
            .unwrap();
        for input in inputs {
            for p in projections
                .iter()
                .filter(|p| p.topics(names).contains(&input.topic))
            {
                let mut mutations = p.project(input).unwrap();
                for m in &mut mutations {
                    m.generation = projectors::generations::FIRST_GENERATION;
                }
                live.write(&mutations).await.unwrap();
            }
        }
        live
    }

    /// A saga deadline firing during a check: the projector applied an
    /// event the scan had not read. The row differs at first, matches once
    /// the fold is fed that event, and is then no finding; a row the events
    /// never give stays one.
    #[tokio::test]
    async fn a_row_the_projector_moved_past_the_scan_matches_once_the_fold_follows() {
        let names = TopicNames::new("t.");
        let on_topic = |mut p: Projected| {
            p.topic = names.events(Context::Catalog);
            p
        };
        let mut mug = Stream::new("Product", "MUG-1");
        let first = on_topic(mug.next(created()));
        let second = on_topic(mug.next(renamed()));
        let live = projected_store(&names, &[first.clone(), second.clone()]).await;

        let mut fold = ReadModelFold::new(&names).await.unwrap();
        fold.feed(&first).await.unwrap();
        let before = fold.compare(&live).await.unwrap();
        assert!(
            before.differing_rows() > 0,
            "the store is ahead of the scan"
        );
        fold.feed(&second).await.unwrap();
        let after = fold.recompare(&live, &before).await.unwrap();
        assert_eq!(after.differing_rows(), 0, "{after:?}");
        let report = fold.report(&before, &after, std::time::Duration::from_secs(1));
        assert!(report.ok, "{report:?}");
        assert_eq!(
            report.checked.get("matched_after_following_the_log"),
            Some(&(before.differing_rows() as i64))
        );

        // A row the log does not give (no event follows) differs however
        // often it is compared again.
        let mut fold = ReadModelFold::new(&names).await.unwrap();
        fold.feed(&first).await.unwrap();
        let before = fold.compare(&live).await.unwrap();
        let after = fold.recompare(&live, &before).await.unwrap();
        assert_eq!(after.differing_rows(), before.differing_rows());
        assert!(
            !fold
                .report(&before, &after, std::time::Duration::from_secs(1))
                .ok
        );
    }
}
