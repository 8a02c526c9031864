//! Corrupt length prefixes and block counts cannot make the decoder
//! allocate without bound. This binary runs under an allocator capped at
//! what it already uses plus 128 MiB: an allocation beyond that aborts the
//! process, failing the test. (Without the codec's guard, a block count of
//! 2^25 makes apache-avro reserve 2^25 values, over a gigabyte.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::System;
use std::sync::Arc;

use cap::Cap;
use schemas::contract;
use schemas::registry::EmbeddedRegistry;
use schemas::{AnyCommand, AnyEvent, AvroCodec, CommandOutcome, TopicNames};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

fn zigzag(v: i64) -> Vec<u8> {
    // The codec's own zig-zag varint writer, tested against apache-avro.
    let mut out = Vec::new();
    schemas::codec::fast::write_long(&mut out, v);
    out
}

#[test]
fn corrupt_lengths_and_counts_allocate_in_proportion_to_the_input() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let codec = AvroCodec::new(Arc::new(EmbeddedRegistry::in_memory()));
    let topics = TopicNames::new("m.");
    runtime.block_on(codec.register_contract(&topics)).unwrap();
    let mut records = Vec::new();
    for def in contract::subject_defs() {
        let topic = contract::topics_for(def, &topics).remove(0);
        let id = codec.schema_id_for(&topic, def.full_name).unwrap();
        let schema = contract::schema(def.full_name).unwrap();
        records.push(common::sample::framed(
            id,
            &common::sample::sample_body(schema, true),
        ));
    }

    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + 128 * 1024 * 1024)
        .unwrap();
    let mut decoded = 0usize;
    for record in &records {
        for at in 5..record.len() {
            for magnitude in [1i64 << 16, 1 << 20, 1 << 23, 1 << 25, -(1 << 25)] {
                let varint = zigzag(magnitude);
                let mut bytes = record.clone();
                let end = (at + varint.len()).min(bytes.len());
                bytes.splice(at..end, varint);
                runtime.block_on(async {
                    let _ = codec.decode_event::<AnyEvent>(&bytes).await;
                    let _ = codec.decode_command::<AnyCommand>(&bytes).await;
                    let _ = codec.decode_record::<CommandOutcome>(&bytes).await;
                    let _ = codec.chain_link(&bytes).await;
                });
                decoded += 1;
            }
        }
    }
    assert!(decoded > 10_000, "{decoded}");
}
