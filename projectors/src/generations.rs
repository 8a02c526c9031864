//! Which table generation of each projection readers use.
//!
//! One row per projection in `projection_generations` (a generation-0
//! table): `serving`, the generation the query API reads. A rebuild writes
//! a new generation beside the serving one and, once it has caught up,
//! switches by writing `serving` once — one cell, so readers see the old
//! generation or the new one, never a mix. The cell's write timestamp is
//! the generation number itself, so a switch can only move forward, and a
//! repeated switch (a retried rebuild) writes the same cell again.

use platform::readstore::{
    column, ColumnType as T, ReadStore, ReadStoreError, Row, TableDef, Value,
};

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

/// Creates the metadata table if it does not exist.
pub async fn ensure(store: &dyn ReadStore) -> Result<(), ReadStoreError> {
    store
        .ensure_tables(&[PROJECTION_GENERATIONS], META_GENERATION)
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
