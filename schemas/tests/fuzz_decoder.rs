//! No input panics the decoder or makes it allocate without bound: random
//! bytes, random bodies behind valid headers, and random mutations and
//! truncations of valid records all give `Ok` or a typed `Err`. And on every
//! such input the generated readers (the codec's fast path) decide as
//! apache-avro does: the same value, or an error from both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, LazyLock};

use proptest::collection::vec;
use proptest::prelude::*;
use schemas::contract;
use schemas::registry::EmbeddedRegistry;
use schemas::{
    AggregateSnapshot, AnyCommand, AnyEvent, AvroCodec, CodecError, CommandOutcome,
    OrderFulfillmentStep, TopicNames,
};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    codec: AvroCodec,
    /// The same registry, decoding through apache-avro only.
    slow: AvroCodec,
    /// Valid records of every subject of the contract.
    valid: Vec<Vec<u8>>,
    ids: Vec<u32>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let codec = AvroCodec::new(registry.clone());
    let slow = AvroCodec::new(registry).without_fast_path();
    let topics = TopicNames::new("f.");
    runtime.block_on(codec.register_contract(&topics)).unwrap();
    runtime.block_on(slow.register_contract(&topics)).unwrap();
    let mut valid = Vec::new();
    let mut ids = Vec::new();
    for def in contract::subject_defs() {
        let topic = contract::topics_for(def, &topics).remove(0);
        let id = codec.schema_id_for(&topic, def.full_name).unwrap();
        ids.push(id);
        let schema = contract::schema(def.full_name).unwrap();
        for fill in [true, false] {
            valid.push(common::sample::framed(
                id,
                &common::sample::sample_body(schema, fill),
            ));
        }
    }
    Fixture {
        runtime,
        codec,
        slow,
        valid,
        ids,
    }
});

/// Runs every decoding entry point; all must return (not panic).
fn decode_everything(bytes: &[u8]) -> Vec<Result<(), CodecError>> {
    let f = &*FIXTURE;
    let c = &f.codec;
    f.runtime.block_on(async {
        vec![
            c.decode_event::<AnyEvent>(bytes).await.map(drop),
            c.decode_command::<AnyCommand>(bytes).await.map(drop),
            c.decode_record::<CommandOutcome>(bytes).await.map(drop),
            c.decode_record::<AggregateSnapshot>(bytes).await.map(drop),
            c.decode_record::<serde_json::Value>(bytes).await.map(drop),
            c.record_name(bytes).await.map(drop),
            c.chain_link(bytes).await.map(drop),
        ]
    })
}

/// The fast path and apache-avro decide alike on `bytes`: equal values, or
/// an error from both.
fn paths_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let f = &*FIXTURE;
    f.runtime.block_on(async {
        let (fast, slow) = (&f.codec, &f.slow);
        same(
            "event",
            fast.decode_event::<AnyEvent>(bytes).await,
            slow.decode_event::<AnyEvent>(bytes).await,
        )?;
        same(
            "command",
            fast.decode_command::<AnyCommand>(bytes).await,
            slow.decode_command::<AnyCommand>(bytes).await,
        )?;
        same(
            "outcome",
            fast.decode_named::<CommandOutcome>(bytes).await,
            slow.decode_named::<CommandOutcome>(bytes).await,
        )?;
        same(
            "snapshot",
            fast.decode_named::<AggregateSnapshot>(bytes).await,
            slow.decode_named::<AggregateSnapshot>(bytes).await,
        )?;
        same(
            "saga step",
            fast.decode_named::<OrderFulfillmentStep>(bytes).await,
            slow.decode_named::<OrderFulfillmentStep>(bytes).await,
        )
    })
}

fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    fast: Result<T, CodecError>,
    slow: Result<T, CodecError>,
) -> Result<(), TestCaseError> {
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{} decoded differently", what),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(false, "{what}: fast path {fast:?}, apache-avro {slow:?}"),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        bits: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    /// Sets a byte to a small value: Avro's union branches, enum indexes,
    /// booleans and counts are small numbers.
    Small {
        at: usize,
        byte: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
    /// Overwrites with a varint that claims a huge length/count.
    HugeVarint {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), 0u8..8).prop_map(|(at, byte)| Mutation::Small { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..8).prop_map(|(at, len)| Mutation::Remove { at, len }),
        any::<usize>().prop_map(|at| Mutation::HugeVarint { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let pos = |at: usize, len: usize| at % len;
    match m {
        Mutation::Flip { at, bits } => {
            let i = pos(*at, bytes.len());
            bytes[i] ^= bits;
        }
        Mutation::Set { at, byte } | Mutation::Small { at, byte } => {
            let i = pos(*at, bytes.len());
            bytes[i] = *byte;
        }
        Mutation::Truncate { at } => bytes.truncate(pos(*at, bytes.len())),
        Mutation::Insert { at, bytes: new } => {
            let i = pos(*at, bytes.len() + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Remove { at, len } => {
            let i = pos(*at, bytes.len());
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::HugeVarint { at } => {
            // zig-zag of 2^62: 9 bytes 0xff.., claiming ~4.6e18 bytes/items.
            let i = pos(*at, bytes.len());
            let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
            bytes.splice(i..(i + huge.len()).min(bytes.len()), huge);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let results = decode_everything(&bytes);
        if let Some(first) = bytes.first().filter(|b| **b != 0) {
            for r in results {
                prop_assert_eq!(r, Err(CodecError::WrongMagicByte(*first)));
            }
        }
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(which in any::<usize>(), body in vec(any::<u8>(), 0..300)) {
        let f = &*FIXTURE;
        let id = f.ids[which % f.ids.len()];
        let bytes = common::sample::framed(id, &body);
        decode_everything(&bytes);
        paths_agree(&bytes)?;
    }

    #[test]
    fn mutated_valid_records_never_panic(which in any::<usize>(), mutations in vec(mutation(), 1..4)) {
        let f = &*FIXTURE;
        let mut bytes = f.valid[which % f.valid.len()].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        decode_everything(&bytes);
        paths_agree(&bytes)?;
    }
}

#[test]
fn valid_records_decode() {
    let f = &*FIXTURE;
    for bytes in &f.valid {
        paths_agree(bytes).unwrap();
        let results = decode_everything(bytes);
        // record_name and chain_link-or-typed-error; at least the name works.
        assert!(results[5].is_ok());
        assert!(
            results.iter().filter(|r| r.is_ok()).count() >= 2,
            "{results:?}"
        );
    }
}

#[test]
fn header_errors_are_typed() {
    assert_eq!(
        decode_everything(&[])[0],
        Err(CodecError::EmptyOrTooShort { len: 0 })
    );
    assert_eq!(
        decode_everything(&[0, 0, 0])[0],
        Err(CodecError::EmptyOrTooShort { len: 3 })
    );
    assert_eq!(
        decode_everything(&[1, 0, 0, 0, 1])[0],
        Err(CodecError::WrongMagicByte(1))
    );
    assert_eq!(
        decode_everything(&[0, 0x7f, 0xff, 0xff, 0xff])[0],
        Err(CodecError::UnknownSchemaId(0x7fff_ffff))
    );
}

#[test]
fn a_huge_length_prefix_is_refused_before_any_allocation() {
    let f = &*FIXTURE;
    let outcome_id = f
        .codec
        .schema_id_for("f.command-outcomes", "com.quickstore.CommandOutcome")
        .unwrap();
    // CommandOutcome starts with a string: claim 2^61 bytes.
    let mut bytes = vec![0];
    bytes.extend_from_slice(&outcome_id.to_be_bytes());
    bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    bytes.extend_from_slice(b"abc");
    let err = f
        .runtime
        .block_on(f.codec.decode_record::<CommandOutcome>(&bytes))
        .unwrap_err();
    assert!(
        matches!(err, CodecError::BodyDoesNotDecode { .. }),
        "{err:?}"
    );
}

/// Exhaustive where random mutations are thin: every byte of every valid
/// record set to each small value (where branch indexes, enum indexes and
/// counts live), and every truncation; the two paths must agree on each.
#[test]
fn every_small_byte_and_every_truncation_decodes_alike_on_both_paths() {
    let f = &*FIXTURE;
    let mut checked = 0;
    for valid in &f.valid {
        for at in 5..valid.len() {
            for byte in 0u8..8 {
                let mut bytes = valid.clone();
                bytes[at] = byte;
                paths_agree(&bytes).unwrap_or_else(|e| panic!("byte {at} = {byte}: {e}"));
                checked += 1;
            }
            paths_agree(&valid[..at]).unwrap_or_else(|e| panic!("cut at {at}: {e}"));
        }
    }
    assert!(checked > 10_000, "{checked}");
}
