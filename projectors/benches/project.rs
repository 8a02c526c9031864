//! The orders projection's cost per event: `OrdersProjection::project` on
//! a pre-decoded `OrderPlaced`, beside its floor — the same three rows built
//! by hand (the same cells, the same JSON, no projection code around them).
//! No log, no decoding, no store: `quickstore bench projections` measures
//! those.
//!
//! `cargo bench -p projectors --bench project` (add `-- --quick` for a short
//! run). Criterion reports each side in events/s; the ratio is printed at the
//! end from a separate interleaved timing loop, so both sides see the same
//! machine load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use platform::readstore::{Mutation, MutationKind, Row, Value};
use projectors::projection::{Input, Projected, Projection};
use projectors::projections::orders::{
    OrdersProjection, ORDERS_BY_CUSTOMER, ORDERS_BY_ID, ORDER_TIMELINE,
};
use schemas::orders::{OrderLine, OrderPlaced, OrderTotals, OrdersEvent};
use schemas::{AnyEvent, EventEnvelope, PostalAddress};

fn input() -> Projected {
    let envelope = EventEnvelope {
        event_id: "6f1c2a9e-3b7d-5c4e-9a8b-1d2e3f4a5b6c".into(),
        aggregate_type: "Order".into(),
        aggregate_id: "019a8f3e-7c2d-7b1a-9e4f-3c5d6e7f8a9b".into(),
        version: 1,
        occurred_at: 1_767_225_600_000,
        command_id: "cmd-8d3f".into(),
        correlation_id: "cmd-8d3f".into(),
        causation_id: "cmd-8d3f".into(),
        actor: "customer:customer-7".into(),
        prev_hash: Vec::new(),
        hash: vec![0xab; 32],
    };
    let line = |line_no: i32, sku: &str| OrderLine {
        line_no,
        sku: sku.into(),
        quantity: 2,
        unit_price_minor: 1299,
        currency: "EUR".into(),
    };
    let event = AnyEvent::Orders(OrdersEvent::OrderPlaced(OrderPlaced {
        customer_id: "customer-7".into(),
        lines: vec![line(1, "SKU-MUG"), line(2, "SKU-TEA"), line(3, "SKU-SPOON")],
        shipping_address: PostalAddress {
            recipient: "Ada Lovelace".into(),
            line1: "1 Analytical St".into(),
            line2: Some("Flat 2".into()),
            city: "London".into(),
            region: None,
            postal_code: "N1 9GU".into(),
            country: "GB".into(),
        },
        totals: OrderTotals {
            subtotal_minor: 7794,
            shipping_minor: 495,
            tax_minor: 1244,
            total_minor: 8289,
            currency: "EUR".into(),
        },
        payment_token: Some("tok_sim_4242".into()),
    }));
    Projected {
        topic: "orders.events".into(),
        partition: 3,
        offset: 42,
        input: Input::Event { envelope, event },
    }
}

fn projection(input: &Projected) -> Vec<Mutation> {
    OrdersProjection.project(input).unwrap()
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn upsert(table: platform::readstore::TableDef, timestamp: i64, row: Row) -> Mutation {
    Mutation {
        table,
        generation: 0,
        kind: MutationKind::Upsert(row),
        timestamp,
    }
}

/// The same three rows, built by hand for exactly this event.
fn by_hand(input: &Projected) -> Vec<Mutation> {
    let Input::Event {
        envelope,
        event: AnyEvent::Orders(OrdersEvent::OrderPlaced(p)),
    } = &input.input
    else {
        panic!("the fixture is an OrderPlaced");
    };
    let (id, v, at) = (
        &envelope.aggregate_id,
        envelope.version,
        envelope.occurred_at,
    );
    let mut order = Row::new();
    order.insert("order_id".into(), text(id));
    order.insert("customer_id".into(), text(&p.customer_id));
    order.insert("status".into(), text("PLACED"));
    order.insert("placed_at".into(), Value::Timestamp(at));
    order.insert("status_at".into(), Value::Timestamp(at));
    order.insert("total_minor".into(), Value::BigInt(p.totals.total_minor));
    order.insert("currency".into(), text(&p.totals.currency));
    order.insert("order_version".into(), Value::BigInt(v));
    order.insert(
        "lines_json".into(),
        Value::Text(serde_json::to_string(&p.lines).unwrap()),
    );
    order.insert(
        "shipping_address_json".into(),
        Value::Text(serde_json::to_string(&p.shipping_address).unwrap()),
    );
    let mut by_customer = Row::new();
    by_customer.insert("customer_id".into(), text(&p.customer_id));
    by_customer.insert("placed_at".into(), Value::Timestamp(at));
    by_customer.insert("order_id".into(), text(id));
    by_customer.insert("total_minor".into(), Value::BigInt(p.totals.total_minor));
    by_customer.insert("currency".into(), text(&p.totals.currency));
    by_customer.insert(
        "line_count".into(),
        Value::Int(i32::try_from(p.lines.len()).unwrap()),
    );
    let mut timeline = Row::new();
    timeline.insert("order_id".into(), text(id));
    timeline.insert("occurred_at".into(), Value::Timestamp(at));
    timeline.insert("event_id".into(), text(&envelope.event_id));
    timeline.insert("event_type".into(), text("OrderPlaced"));
    timeline.insert("aggregate_type".into(), text(&envelope.aggregate_type));
    timeline.insert("version".into(), Value::BigInt(v));
    timeline.insert("actor".into(), text(&envelope.actor));
    timeline.insert("correlation_id".into(), text(&envelope.correlation_id));
    timeline.insert("causation_id".into(), text(&envelope.causation_id));
    timeline.insert(
        "detail".into(),
        Value::Text(format!(
            "{} lines, total {} {}",
            p.lines.len(),
            p.totals.total_minor,
            p.totals.currency
        )),
    );
    vec![
        upsert(ORDERS_BY_ID, v, order),
        upsert(ORDERS_BY_CUSTOMER, v, by_customer),
        upsert(ORDER_TIMELINE, v, timeline),
    ]
}

type Side = fn(&Projected) -> Vec<Mutation>;

const SIDES: [(&str, Side); 2] = [("by hand", by_hand), ("OrdersProjection", projection)];

fn bench(c: &mut Criterion) {
    let input = input();
    // Both sides must make the same rows, or the comparison is meaningless.
    assert_eq!(projection(&input), by_hand(&input));
    let mut group = c.benchmark_group("OrderPlaced -> rows");
    group.throughput(Throughput::Elements(1));
    for (name, side) in SIDES {
        group.bench_function(name, |b| b.iter(|| side(black_box(&input))));
    }
    group.finish();
    // Best of several interleaved rounds: the least disturbed by whatever
    // else the machine is doing.
    let per_call = |side: Side| {
        let iterations = 20_000u32;
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(side(black_box(&input)));
        }
        start.elapsed() / iterations
    };
    let (mut hand, mut projected) = (Duration::MAX, Duration::MAX);
    for _ in 0..7 {
        hand = hand.min(per_call(by_hand));
        projected = projected.min(per_call(projection));
    }
    println!(
        "\nOrderPlaced -> 3 rows, best of 7 interleaved rounds: by hand {hand:.2?} ({:.0} events/s), \
         OrdersProjection {projected:.2?} ({:.0} events/s); ratio (projection events/s / by hand) {:.2}",
        1.0 / hand.as_secs_f64(),
        1.0 / projected.as_secs_f64(),
        hand.as_secs_f64() / projected.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
