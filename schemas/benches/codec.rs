//! Encoding and decoding cost, apache-avro vs the generated fast paths, on
//! the records the command processor writes per command: an event (here
//! `OrderPlaced`, one of the larger ones, with its envelope) and a
//! `CommandOutcome`. Decoding `OrderPlaced` is what a projector and the
//! saga do with every event.
//!
//! `cargo bench -p schemas --bench codec` (add `-- --quick` for a short run).
//! Criterion reports each path; the ratio is printed at the end from a
//! separate interleaved timing loop, so both sides see the same machine load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use schemas::orders::{OrderLine, OrderPlaced, OrderTotals, OrdersEvent};
use schemas::registry::EmbeddedRegistry;
use schemas::{
    hash_chain, AnyEvent, AvroCodec, CommandOutcome, CommandStatus, Context, EventEnvelope,
    PostalAddress, TopicNames,
};

struct Fixture {
    rt: tokio::runtime::Runtime,
    /// `OrderPlaced` and the outcome, encoded.
    event_bytes: Vec<u8>,
    outcome_bytes: Vec<u8>,
    fast: AvroCodec,
    slow: AvroCodec,
    events: String,
    outcomes: String,
    envelope: EventEnvelope,
    event: AnyEvent,
    outcome: CommandOutcome,
}

fn fixture() -> Fixture {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let fast = AvroCodec::new(registry.clone());
    let slow = AvroCodec::new(registry).without_fast_path();
    let topics = TopicNames::new("bench.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        fast.register_contract(&topics).await.unwrap();
        slow.register_contract(&topics).await.unwrap();
    });
    let envelope = EventEnvelope {
        event_id: "6f1c2a9e-3b7d-5c4e-9a8b-1d2e3f4a5b6c".into(),
        aggregate_type: "Order".into(),
        aggregate_id: "order-000042".into(),
        version: 7,
        occurred_at: 1_700_000_000_000,
        command_id: "cmd-8d3f".into(),
        correlation_id: "checkout-1234".into(),
        causation_id: "cmd-8d3f".into(),
        actor: "customer-7".into(),
        prev_hash: vec![0xab; 32],
        hash: Vec::new(),
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
        payment_token: None,
    }));
    let outcome = CommandOutcome {
        command_id: "cmd-8d3f".into(),
        aggregate_type: "Order".into(),
        aggregate_id: "order-000042".into(),
        correlation_id: "checkout-1234".into(),
        status: CommandStatus::Accepted,
        version: 7,
        event_count: 1,
        error_code: None,
        error_message: None,
        decided_at: 1_700_000_000_123,
        event_types: vec!["CounterIncremented".to_owned()],
    };
    let mut fixture = Fixture {
        rt,
        event_bytes: Vec::new(),
        outcome_bytes: Vec::new(),
        fast,
        slow,
        events: topics.events(Context::Orders),
        outcomes: topics.command_outcomes(),
        envelope,
        event,
        outcome,
    };
    // The two paths must agree, or the comparison is meaningless.
    assert_eq!(event_fast(&fixture), event_slow(&fixture));
    assert_eq!(sealed_fast(&fixture), sealed_slow(&fixture));
    assert_eq!(outcome_fast(&fixture), outcome_slow(&fixture));
    fixture.event_bytes = sealed_fast(&fixture);
    fixture.outcome_bytes = outcome_fast(&fixture);
    assert_eq!(
        decode_event(&fixture, &fixture.fast),
        decode_event(&fixture, &fixture.slow)
    );
    assert_eq!(
        decode_outcome(&fixture, &fixture.fast),
        decode_outcome(&fixture, &fixture.slow)
    );
    fixture
}

/// What a projector does with every record of an events topic. The
/// writer schema is cached, so the future completes without waiting.
fn decode_event(f: &Fixture, codec: &AvroCodec) -> (EventEnvelope, AnyEvent) {
    f.rt.block_on(codec.decode_event::<AnyEvent>(&f.event_bytes))
        .unwrap()
}

/// What the command API does with every outcome it waits for.
fn decode_outcome(f: &Fixture, codec: &AvroCodec) -> CommandOutcome {
    f.rt.block_on(codec.decode_named::<CommandOutcome>(&f.outcome_bytes))
        .unwrap()
}

fn event_fast(f: &Fixture) -> Vec<u8> {
    f.fast
        .encode_event(&f.events, &f.envelope, &f.event)
        .unwrap()
}

fn event_slow(f: &Fixture) -> Vec<u8> {
    f.slow
        .encode_event(&f.events, &f.envelope, &f.event)
        .unwrap()
}

/// What the processor did before: `seal` (one apache-avro encode of the
/// canonical body) + `encode_event` (another).
fn sealed_slow(f: &Fixture) -> Vec<u8> {
    let mut envelope = f.envelope.clone();
    let canonical = hash_chain::canonical_event_bytes_generic(&envelope, &f.event).unwrap();
    envelope.hash = hash_chain::event_hash(&envelope.prev_hash, &canonical).to_vec();
    f.slow.encode_event(&f.events, &envelope, &f.event).unwrap()
}

/// What it does now: the fused seal-and-encode on the fast path.
fn sealed_fast(f: &Fixture) -> Vec<u8> {
    let mut envelope = f.envelope.clone();
    f.fast
        .encode_sealed_event(&f.events, &mut envelope, &f.event)
        .unwrap()
}

fn outcome_fast(f: &Fixture) -> Vec<u8> {
    f.fast
        .encode_record(&f.outcomes, CommandOutcome::FULL_NAME, &f.outcome)
        .unwrap()
}

fn outcome_slow(f: &Fixture) -> Vec<u8> {
    f.slow
        .encode_record(&f.outcomes, CommandOutcome::FULL_NAME, &f.outcome)
        .unwrap()
}

type Path = fn(&Fixture);

const CASES: [(&str, Path, Path); 5] = [
    (
        "OrderPlaced encode_event",
        |f| drop(black_box(event_slow(f))),
        |f| drop(black_box(event_fast(f))),
    ),
    (
        "OrderPlaced seal + encode",
        |f| drop(black_box(sealed_slow(f))),
        |f| drop(black_box(sealed_fast(f))),
    ),
    (
        "CommandOutcome encode_record",
        |f| drop(black_box(outcome_slow(f))),
        |f| drop(black_box(outcome_fast(f))),
    ),
    (
        "OrderPlaced decode_event",
        |f| drop(black_box(decode_event(f, &f.slow))),
        |f| drop(black_box(decode_event(f, &f.fast))),
    ),
    (
        "CommandOutcome decode_named",
        |f| drop(black_box(decode_outcome(f, &f.slow))),
        |f| drop(black_box(decode_outcome(f, &f.fast))),
    ),
];

fn bench(c: &mut Criterion) {
    let f = fixture();
    for (name, slow, fast) in CASES {
        let mut group = c.benchmark_group(name);
        group.bench_function("apache-avro", |b| b.iter(|| slow(black_box(&f))));
        group.bench_function("fast", |b| b.iter(|| fast(black_box(&f))));
        group.finish();
    }
    // Best of several interleaved rounds: the least disturbed by whatever
    // else the machine is doing.
    println!("\nratio (apache-avro time / fast time), best of 7 interleaved rounds:");
    for (name, slow, fast) in CASES {
        let per_call = |path: Path| {
            let iterations = 20_000u32;
            let start = Instant::now();
            for _ in 0..iterations {
                path(black_box(&f));
            }
            start.elapsed() / iterations
        };
        let (mut best_slow, mut best_fast) = (Duration::MAX, Duration::MAX);
        for _ in 0..7 {
            best_slow = best_slow.min(per_call(slow));
            best_fast = best_fast.min(per_call(fast));
        }
        println!(
            "  {name:<30} apache-avro {best_slow:>9.2?}  fast {best_fast:>9.2?}  ratio {:.1}x",
            best_slow.as_secs_f64() / best_fast.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
