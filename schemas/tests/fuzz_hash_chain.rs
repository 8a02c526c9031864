//! The hash chain catches tampering, whatever the tamperer does, and never
//! panics doing so (issue 6: bad input everywhere it can enter).
//!
//! A chain of sealed, encoded catalog events is the fixture. Properties:
//! - a mutation of the encoded bytes of one event (bit flips, overwrites,
//!   truncation, insertion) is either refused by the decoder, or breaks the
//!   link (`is_intact`/`follows`), or changed nothing the chain covers;
//! - removing, duplicating or reordering events breaks the chain;
//! - changing any envelope or payload field without resealing is caught by
//!   `verify`, and resealing one event (as a forger who knows the scheme
//!   would) is caught by the next event's `prev_hash`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, LazyLock};

use proptest::collection::vec;
use proptest::prelude::*;
use schemas::catalog::{CatalogEvent, ProductCreated, ProductRepriced};
use schemas::hash_chain::{seal, verify, ChainLink};
use schemas::registry::EmbeddedRegistry;
use schemas::{AvroCodec, Context, EventEnvelope, TopicNames};

const LENGTH: i64 = 6;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    codec: AvroCodec,
    topic: String,
    /// The events as sealed (envelope, payload), version 1..=LENGTH.
    events: Vec<(EventEnvelope, CatalogEvent)>,
    /// Their encodings, as the log holds them.
    encoded: Vec<Vec<u8>>,
    /// Their links, decoded from `encoded`.
    links: Vec<ChainLink>,
}

fn envelope(version: i64, prev_hash: Vec<u8>) -> EventEnvelope {
    EventEnvelope {
        event_id: format!("00000000-0000-4000-8000-{version:012}"),
        aggregate_type: "Product".into(),
        aggregate_id: "MUG-1".into(),
        version,
        occurred_at: 1_700_000_000_000 + version,
        command_id: format!("c-{version}"),
        correlation_id: "k".into(),
        causation_id: format!("c-{version}"),
        actor: "admin-1".into(),
        prev_hash,
        hash: Vec::new(),
    }
}

fn payload(version: i64) -> CatalogEvent {
    if version == 1 {
        CatalogEvent::ProductCreated(ProductCreated {
            sku: "MUG-1".into(),
            name: "Enamel mug".into(),
            description: Some("Blue, 300 ml".into()),
            category: "kitchen".into(),
            price_minor: 1299,
            currency: "EUR".into(),
        })
    } else {
        CatalogEvent::ProductRepriced(ProductRepriced {
            price_minor: 1000 + version,
            currency: "EUR".into(),
            previous_price_minor: 999 + version,
            previous_currency: "EUR".into(),
        })
    }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let codec = AvroCodec::new(Arc::new(EmbeddedRegistry::in_memory()));
    let topics = TopicNames::new("h.");
    runtime.block_on(codec.register_contract(&topics)).unwrap();
    let topic = topics.events(Context::Catalog);
    let mut events = Vec::new();
    let mut encoded = Vec::new();
    let mut prev = Vec::new();
    for version in 1..=LENGTH {
        let mut env = envelope(version, prev);
        let event = payload(version);
        let bytes = codec.encode_sealed_event(&topic, &mut env, &event).unwrap();
        prev = env.hash.clone();
        encoded.push(bytes);
        events.push((env, event));
    }
    let links = encoded
        .iter()
        .map(|b| runtime.block_on(codec.chain_link(b)).unwrap())
        .collect();
    Fixture {
        runtime,
        codec,
        topic,
        events,
        encoded,
        links,
    }
});

/// What an auditor checks: the first event starts the chain, every event's
/// hash matches its content, and every event follows the one before.
fn chain_holds(links: &[ChainLink]) -> bool {
    links.first().is_none_or(ChainLink::is_first)
        && links.iter().all(ChainLink::is_intact)
        && links.windows(2).all(|w| w[1].follows(&w[0]))
}

fn link_of(bytes: &[u8]) -> Option<ChainLink> {
    let f = &*FIXTURE;
    f.runtime.block_on(f.codec.chain_link(bytes)).ok()
}

#[test]
fn the_untouched_chain_holds() {
    let f = &*FIXTURE;
    assert_eq!(f.links.len(), LENGTH as usize);
    assert!(chain_holds(&f.links));
    for (env, event) in &f.events {
        assert!(verify(env, event).unwrap());
    }
}

#[derive(Debug, Clone)]
enum ByteMutation {
    Flip { at: usize, bits: u8 },
    Set { at: usize, byte: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| ByteMutation::Flip { at, bits }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| ByteMutation::Set { at, byte }),
        any::<usize>().prop_map(|at| ByteMutation::Truncate { at }),
        (any::<usize>(), vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| ByteMutation::Insert { at, bytes }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &ByteMutation) {
    let len = bytes.len();
    match m {
        ByteMutation::Flip { at, bits } => bytes[at % len] ^= bits,
        ByteMutation::Set { at, byte } => bytes[at % len] = *byte,
        ByteMutation::Truncate { at } => bytes.truncate(at % len),
        ByteMutation::Insert { at, bytes: ins } => {
            let at = at % (len + 1);
            bytes.splice(at..at, ins.iter().copied());
        }
    }
}

/// Two decodings describe the same chained event: everything the hash
/// covers, and the hashes themselves.
fn same_link(a: &ChainLink, b: &ChainLink) -> bool {
    a.canonical == b.canonical && a.hash == b.hash && a.prev_hash == b.prev_hash
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A mutated encoding is refused, or breaks the chain, or decodes to
    /// the very same link (e.g. bytes past the end the decoder ignores).
    #[test]
    fn mutated_bytes_are_refused_or_break_the_chain(
        which in 0..LENGTH as usize,
        mutations in vec(byte_mutation(), 1..4),
    ) {
        let f = &*FIXTURE;
        let mut bytes = f.encoded[which].clone();
        for m in &mutations {
            if bytes.is_empty() {
                break;
            }
            apply(&mut bytes, m);
        }
        if let Some(link) = link_of(&bytes) {
            let mut links = f.links.clone();
            links[which] = link.clone();
            prop_assert!(
                !chain_holds(&links) || same_link(&link, &f.links[which]),
                "a tampered event of version {} passed the chain check", which + 1
            );
        }
    }

    /// Removing, duplicating or reordering events breaks the chain.
    #[test]
    fn removed_duplicated_or_reordered_events_break_the_chain(
        order in vec(0..LENGTH as usize, 1..=(LENGTH as usize + 2)),
    ) {
        let f = &*FIXTURE;
        let identity: Vec<usize> = (0..order.len()).collect();
        // A prefix of the chain is a shorter, intact chain (the log's end is
        // checked against the read model's version, not by the chain).
        prop_assume!(order != identity);
        let links: Vec<ChainLink> = order.iter().map(|&i| f.links[i].clone()).collect();
        prop_assert!(!chain_holds(&links), "order {order:?} passed the chain check");
    }

    /// Any change to an envelope or payload field is caught by `verify`
    /// without resealing; resealed, it is caught by the next event's link.
    #[test]
    fn changed_fields_are_caught(
        which in 0..(LENGTH as usize - 1),
        field in 0..8usize,
        text in "[a-z0-9-]{1,12}",
        number in any::<i64>(),
    ) {
        let f = &*FIXTURE;
        let (env, event) = &f.events[which];
        let mut env = env.clone();
        let mut event = event.clone();
        match field {
            0 => env.aggregate_id = format!("{}{text}", env.aggregate_id),
            1 => env.actor = format!("{}{text}", env.actor),
            2 => env.command_id = format!("{}{text}", env.command_id),
            3 => env.occurred_at = env.occurred_at.wrapping_add(number | 1),
            4 => env.causation_id = format!("{}{text}", env.causation_id),
            5 => env.correlation_id = format!("{}{text}", env.correlation_id),
            _ => match &mut event {
                CatalogEvent::ProductCreated(p) => {
                    p.price_minor = p.price_minor.wrapping_add(number | 1);
                }
                CatalogEvent::ProductRepriced(p) => {
                    p.price_minor = p.price_minor.wrapping_add(number | 1);
                }
                _ => unreachable!("the fixture holds only these two"),
            },
        }
        prop_assert!(!verify(&env, &event).unwrap(), "an unsealed change passed verify");

        // The forger reseals the changed event and re-encodes it.
        seal(&mut env, &event).unwrap();
        let bytes = f.codec.encode_sealed_event(&f.topic, &mut env, &event).unwrap();
        let forged = link_of(&bytes).unwrap();
        prop_assert!(forged.is_intact());
        let mut links = f.links.clone();
        links[which] = forged;
        prop_assert!(!chain_holds(&links), "a resealed change passed the chain check");
    }
}
