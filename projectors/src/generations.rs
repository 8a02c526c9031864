//! Which table generation of each projection readers use.
//!
//! One row per projection in `projection_generations` (a generation-0
//! table): `serving`, the generation the query API reads. A rebuild writes
//! a new generation beside the serving one and, once it has caught up,
//! switches by writing `serving` once — one cell, so readers see the old
//! generation or the new one, never a mix. The cell's write timestamp is
//! the generation number itself, so a switch can only move forward, and a
//! repeated switch (a retried rebuild) writes the same cell again.
//!
//! **Hand-off.** Readers must never lose a row they have seen when the
//! switch happens, so at the switch the new generation must hold at least
//! everything the old one exposed. The old generation's live projector
//! keeps writing while a rebuild catches up, so the rebuild asks it to
//! pause first ([`request_handoff`]: a lease in the projection's control
//! row). Each live projector of an older generation sees the lease between
//! batches (it reads the control row at most once a second), stops
//! consuming, and acknowledges per partition with the position its
//! durable output has reached ([`HANDOFF_ACKS`]). The rebuild then catches
//! up to the log's ends (which are at or past every acknowledged
//! position), switches, and the services move to the new generation
//! within their pointer poll. The lease expires on its own: a successful
//! rebuild does not release it, so the old generation stays paused while
//! readers may still use it (see [`crate::rebuild`]) — its services stop
//! it when they see the pointer move, without waiting for the lease; a
//! rebuild that dies mid-way stalls the old generation for the lease's
//! length at most. Partitions nobody acknowledges within a grace period
//! (no live projector, or one in the middle of a rebalance) are assumed
//! idle.

use std::collections::HashMap;
use std::time::Duration;

use platform::eventlog::TopicPartition;
use platform::readstore::{
    column, ColumnType as T, Mutation, MutationKind, Order, ReadStore, ReadStoreError, Row,
    TableDef, Value,
};

use crate::dlq::{control, control_write};
use crate::projection::{row, text, upsert};

pub const PROJECTION_GENERATIONS: TableDef = TableDef {
    name: "projection_generations",
    partition_key: &[column("projection", T::Text)],
    clustering: &[],
    columns: &[
        column("serving", T::Int),
        column("switched_at", T::Timestamp),
    ],
};

/// The generation of the metadata tables themselves.
pub const META_GENERATION: u32 = 0;

/// The generation a projection starts with.
pub const FIRST_GENERATION: u32 = 1;

/// Live projectors' acknowledgements of a hand-off lease, per input
/// partition: paused, with their output durable up to `position`.
pub const HANDOFF_ACKS: TableDef = TableDef {
    name: "projection_handoff_acks",
    partition_key: &[column("projection", T::Text)],
    clustering: &[
        (column("topic", T::Text), Order::Asc),
        (column("partition", T::Int), Order::Asc),
    ],
    columns: &[
        column("handoff_id", T::BigInt),
        column("generation", T::Int),
        column("position", T::BigInt),
        column("acked_at", T::Timestamp),
    ],
};

/// Creates the metadata tables (generation pointers, dead-letter
/// bookkeeping, hand-off) if they do not exist.
pub async fn ensure(store: &dyn ReadStore) -> Result<(), ReadStoreError> {
    store
        .ensure_tables(crate::meta_tables(), META_GENERATION)
        .await
}

/// The generation readers of `projection` use ([`FIRST_GENERATION`] until
/// a rebuild switched).
pub async fn serving(store: &dyn ReadStore, projection: &str) -> Result<u32, ReadStoreError> {
    let key: Row = row([("projection", text(projection))]);
    let found = store
        .get(&PROJECTION_GENERATIONS, META_GENERATION, &key)
        .await?;
    Ok(match found.as_ref().and_then(|r| r.get("serving")) {
        Some(Value::Int(g)) if *g > 0 => u32::try_from(*g).unwrap_or(FIRST_GENERATION),
        _ => FIRST_GENERATION,
    })
}

/// Makes `generation` the one readers of `projection` use; `at` is the
/// switch time (ms since the epoch) for operators.
pub async fn switch(
    store: &dyn ReadStore,
    projection: &str,
    generation: u32,
    at: i64,
) -> Result<(), ReadStoreError> {
    let value = i32::try_from(generation)
        .map_err(|_| ReadStoreError::Invalid(format!("generation {generation} is too large")))?;
    store
        .write(&[{
            let mut m = upsert(
                PROJECTION_GENERATIONS,
                i64::from(generation),
                row([
                    ("projection", text(projection)),
                    ("serving", Value::Int(value)),
                    ("switched_at", Value::Timestamp(at)),
                ]),
            );
            m.generation = META_GENERATION;
            m
        }])
        .await
}

/// A hand-off lease a rebuild holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handoff {
    /// Unique per request (ms since the epoch, made strictly increasing):
    /// also the timestamp of its cells.
    pub id: i64,
    pub generation: u32,
    /// ms since the epoch.
    pub until: i64,
}

/// Asks the live projectors of generations older than `generation` to
/// pause for `lease` (see the module doc).
pub async fn request_handoff(
    store: &dyn ReadStore,
    projection: &str,
    generation: u32,
    lease: Duration,
    now_ms: i64,
) -> Result<Handoff, ReadStoreError> {
    let previous = control(store, projection).await?;
    let id = now_ms.max(previous.handoff_id + 2);
    let until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let value = i32::try_from(generation)
        .map_err(|_| ReadStoreError::Invalid(format!("generation {generation} is too large")))?;
    store
        .write(&[control_write(
            projection,
            id,
            vec![
                ("handoff_id", Value::BigInt(id)),
                ("handoff_generation", Value::Int(value)),
                ("handoff_until", Value::Timestamp(until)),
            ],
        )])
        .await?;
    Ok(Handoff {
        id,
        generation,
        until,
    })
}

/// Ends a lease early (the old generation resumes at once): what a
/// rebuild does when it could not catch up within the lease, before it
/// tries again — never after a switch.
pub async fn release_handoff(
    store: &dyn ReadStore,
    projection: &str,
    handoff: &Handoff,
) -> Result<(), ReadStoreError> {
    store
        .write(&[control_write(
            projection,
            handoff.id + 1,
            vec![("handoff_until", Value::Timestamp(0))],
        )])
        .await
}

/// A live projector's acknowledgement: paused for `handoff_id`, its output
/// durable up to `positions`.
pub(crate) fn ack_handoff(
    projection: &str,
    handoff_id: i64,
    generation: u32,
    positions: &[(TopicPartition, i64)],
    now_ms: i64,
) -> Vec<Mutation> {
    positions
        .iter()
        .map(|(tp, position)| {
            let mut m = Mutation {
                table: HANDOFF_ACKS,
                generation: META_GENERATION,
                kind: MutationKind::Upsert(row([
                    ("projection", text(projection)),
                    ("topic", text(tp.topic.clone())),
                    ("partition", Value::Int(tp.partition)),
                    ("handoff_id", Value::BigInt(handoff_id)),
                    (
                        "generation",
                        Value::Int(i32::try_from(generation).unwrap_or(i32::MAX)),
                    ),
                    ("position", Value::BigInt(*position)),
                    ("acked_at", Value::Timestamp(now_ms)),
                ])),
                timestamp: handoff_id,
            };
            m.generation = META_GENERATION;
            m
        })
        .collect()
}

/// The partitions acknowledged for `handoff_id`, with their positions.
pub async fn handoff_acks(
    store: &dyn ReadStore,
    projection: &str,
    handoff_id: i64,
) -> Result<HashMap<TopicPartition, i64>, ReadStoreError> {
    let partition: Row = row([("projection", text(projection))]);
    let mut out = HashMap::new();
    let mut page = None;
    loop {
        let p = store
            .scan(
                &HANDOFF_ACKS,
                META_GENERATION,
                &partition,
                page.as_ref(),
                500,
            )
            .await?;
        for r in p.rows {
            if r.get("handoff_id") != Some(&Value::BigInt(handoff_id)) {
                continue;
            }
            if let (Some(Value::Text(topic)), Some(Value::Int(part)), Some(Value::BigInt(pos))) =
                (r.get("topic"), r.get("partition"), r.get("position"))
            {
                out.insert(TopicPartition::new(topic.clone(), *part), *pos);
            }
        }
        match p.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

/// When `serving` was switched to (ms since the epoch), if ever.
pub async fn switched_at(
    store: &dyn ReadStore,
    projection: &str,
) -> Result<Option<i64>, ReadStoreError> {
    let key: Row = row([("projection", text(projection))]);
    let found = store
        .get(&PROJECTION_GENERATIONS, META_GENERATION, &key)
        .await?;
    Ok(match found.as_ref().and_then(|r| r.get("switched_at")) {
        Some(Value::Timestamp(t)) => Some(*t),
        _ => None,
    })
}

/// Creates the metadata tables and, for each of `projections`, the tables
/// of the generation readers use.
///
/// The query API calls this before it answers: a reader that arrives before
/// the projector created its tables would otherwise find no table at all
/// (an error) instead of an empty one (a "not yet" it can wait on).
pub async fn prepare_serving_tables(
    store: &dyn ReadStore,
    projections: &[std::sync::Arc<dyn crate::projection::Projection>],
) -> Result<(), ReadStoreError> {
    ensure(store).await?;
    for projection in projections {
        let generation = serving(store, projection.name()).await?;
        store.ensure_tables(projection.tables(), generation).await?;
    }
    Ok(())
}
