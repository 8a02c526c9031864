//! Given/when/then for projections: events in, rows out, through a real
//! read store (the embedded one, in memory), so a test sees what a reader
//! would — write timestamps, row tombstones and all.
//!
//! ```ignore
//! let mut mug = Stream::new("Product", "MUG-1");
//! let mut test = ProjectionTest::given(CatalogProjection, [mug.next(created())]).await;
//! test.when([mug.next(renamed())]).await;
//! let product = test.expect_row(PRODUCTS_BY_ID, row([("sku", text("MUG-1"))])).await;
//! assert_replay_safe(CatalogProjection, &inputs).await;
//! ```
//!
//! Async, because the store is: use it from `#[tokio::test]`. A failure
//! panics, like `assert!`: this is test support.

use std::collections::{BTreeMap, VecDeque};

use platform::readstore::{EmbeddedStore, Mutation, MutationKind, ReadStore, Row, TableDef};
use schemas::{AnyEvent, EventEnvelope};

use crate::projection::{Input, Projected, Projection};

/// The table generation the harness writes and reads.
pub const GENERATION: u32 = 1;

/// When the first event of a [`Stream`] happens (2024-03-01T00:00:00Z), in
/// ms: a date far from the epoch, so day boundaries are real ones.
pub const START_MS: i64 = 1_709_251_200_000;

/// An envelope for the event `version` of `aggregate_type`/`aggregate_id`,
/// at `occurred_at` (ms), with made-up ids.
pub fn envelope(
    aggregate_type: &str,
    aggregate_id: &str,
    version: i64,
    occurred_at: i64,
) -> EventEnvelope {
    EventEnvelope {
        event_id: format!("{aggregate_type}/{aggregate_id}/{version}"),
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version,
        occurred_at,
        command_id: format!("command/{aggregate_id}/{version}"),
        correlation_id: format!("correlation/{aggregate_id}"),
        causation_id: format!("cause/{aggregate_id}/{version}"),
        actor: "tester".to_owned(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

/// A projection input holding `event` under `envelope` (on topic `test`,
/// at an offset equal to the version).
pub fn projected(envelope: EventEnvelope, event: impl Into<AnyEvent>) -> Projected {
    Projected {
        topic: "test".to_owned(),
        partition: 0,
        offset: envelope.version,
        input: Input::Event {
            envelope,
            event: event.into(),
        },
    }
}

/// The events of one aggregate, numbered 1, 2, 3… as the event store
/// numbers them, one second apart from [`START_MS`] unless told otherwise.
#[derive(Debug, Clone)]
pub struct Stream {
    aggregate_type: String,
    aggregate_id: String,
    version: i64,
    clock_ms: i64,
}

impl Stream {
    pub fn new(aggregate_type: &str, aggregate_id: &str) -> Self {
        Self {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version: 0,
            clock_ms: START_MS,
        }
    }

    /// The next event of the stream, one second after the previous one.
    pub fn next(&mut self, event: impl Into<AnyEvent>) -> Projected {
        let at = self.clock_ms.saturating_add(1_000);
        self.next_at(at, event)
    }

    /// The next event of the stream, at `occurred_at` (ms).
    pub fn next_at(&mut self, occurred_at: i64, event: impl Into<AnyEvent>) -> Projected {
        self.version = self.version.saturating_add(1);
        self.clock_ms = occurred_at;
        projected(
            envelope(
                &self.aggregate_type,
                &self.aggregate_id,
                self.version,
                occurred_at,
            ),
            event,
        )
    }

    /// The version of the last event made.
    pub fn version(&self) -> i64 {
        self.version
    }
}

/// A projection over an in-memory store, and the partitions it wrote.
#[derive(Debug)]
pub struct ProjectionTest<P: Projection> {
    projection: P,
    store: EmbeddedStore,
}

impl<P: Projection> ProjectionTest<P> {
    /// The projection's tables, empty.
    #[allow(
        clippy::panic,
        reason = "test support reports a failure by panicking, like assert!"
    )]
    pub async fn new(projection: P) -> Self {
        let store =
            EmbeddedStore::in_memory().unwrap_or_else(|e| panic!("an in-memory read store: {e}"));
        store
            .ensure_tables(projection.tables(), GENERATION)
            .await
            .unwrap_or_else(|e| panic!("creating the tables of {}: {e}", projection.name()));
        Self { projection, store }
    }

    /// The tables after `inputs`, projected and written in order.
    pub async fn given(projection: P, inputs: impl IntoIterator<Item = Projected>) -> Self {
        let mut test = Self::new(projection).await;
        test.when(inputs).await;
        test
    }

    /// Projects `inputs` in order and writes each one's mutations, as the
    /// runtime does.
    #[allow(
        clippy::panic,
        reason = "test support reports a failure by panicking, like assert!"
    )]
    pub async fn when(&mut self, inputs: impl IntoIterator<Item = Projected>) -> &mut Self {
        for input in inputs {
            let mutations = project(&self.projection, &input);
            self.store
                .write(&mutations)
                .await
                .unwrap_or_else(|e| panic!("writing the mutations of {:?}: {e}", input.envelope()));
        }
        self
    }

    /// The row `key` (every key column) names in `table`, if it exists.
    #[allow(
        clippy::panic,
        reason = "test support reports a failure by panicking, like assert!"
    )]
    pub async fn row(&self, table: TableDef, key: Row) -> Option<Row> {
        self.store
            .get(&table, GENERATION, &key)
            .await
            .unwrap_or_else(|e| panic!("reading {key:?} of {}: {e}", table.name))
    }

    /// The row `key` names in `table`, which must exist.
    #[allow(
        clippy::panic,
        reason = "test support reports a failure by panicking, like assert!"
    )]
    pub async fn expect_row(&self, table: TableDef, key: Row) -> Row {
        match self.row(table, key.clone()).await {
            Some(row) => row,
            None => panic!("no row {key:?} in {}", table.name),
        }
    }

    /// Every row of the partition `partition` (the partition-key columns)
    /// names, in clustering order.
    #[allow(
        clippy::panic,
        reason = "test support reports a failure by panicking, like assert!"
    )]
    pub async fn rows(&self, table: TableDef, partition: Row) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut page = None;
        loop {
            let next = self
                .store
                .scan(&table, GENERATION, &partition, page.as_ref(), 100)
                .await
                .unwrap_or_else(|e| panic!("scanning {partition:?} of {}: {e}", table.name));
            rows.extend(next.rows);
            match next.next {
                Some(token) => page = Some(token),
                None => return rows,
            }
        }
    }

    /// Every row of every partition `inputs` write to, by table and
    /// partition: what two runs over the same inputs must agree on.
    pub async fn snapshot(&self, inputs: &[Projected]) -> BTreeMap<(String, Row), Vec<Row>> {
        let mut partitions = BTreeMap::new();
        for input in inputs {
            for m in project(&self.projection, input) {
                let (MutationKind::Upsert(cells) | MutationKind::Delete(cells)) = &m.kind;
                let partition: Row = m
                    .table
                    .partition_key
                    .iter()
                    .filter_map(|c| Some((c.name.to_owned(), cells.get(c.name)?.clone())))
                    .collect();
                partitions.insert((m.table.name.to_owned(), partition), m.table);
            }
        }
        let mut out = BTreeMap::new();
        for ((name, partition), table) in partitions {
            let rows = self.rows(table, partition.clone()).await;
            out.insert((name, partition), rows);
        }
        out
    }
}

/// The mutations of `input`, which must project.
#[track_caller]
#[allow(
    clippy::panic,
    reason = "test support reports a failure by panicking, like assert!"
)]
fn project(projection: &impl Projection, input: &Projected) -> Vec<Mutation> {
    let mut mutations = projection
        .project(input)
        .unwrap_or_else(|e| panic!("{} refused {:?}: {e}", projection.name(), input.input));
    for m in &mut mutations {
        m.generation = GENERATION;
    }
    mutations
}

/// xorshift64: the same "random" orders on every run, so a failure
/// reproduces.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// `inputs` interleaved at random, keeping each aggregate's own order (all
/// a partition guarantees: other aggregates' events may come between).
fn interleaved(inputs: &[Projected], rng: &mut Rng) -> Vec<Projected> {
    let mut by_key: BTreeMap<&str, VecDeque<&Projected>> = BTreeMap::new();
    for input in inputs {
        by_key
            .entry(input.envelope().aggregate_id.as_str())
            .or_default()
            .push_back(input);
    }
    let mut queues: Vec<VecDeque<&Projected>> = by_key.into_values().collect();
    let mut out = Vec::with_capacity(inputs.len());
    while !queues.is_empty() {
        let i = rng.below(queues.len());
        if let Some(next) = queues[i].pop_front() {
            out.push(next.clone());
        }
        if queues[i].is_empty() {
            queues.swap_remove(i);
        }
    }
    out
}

/// Asserts the projection is idempotent and order-insensitive across keys:
/// `inputs` projected once, in order, leave the same rows as
/// - everything delivered twice (a redelivered batch, a replay from 0);
/// - several interleavings that keep each aggregate's order, each followed
///   by the redelivery of a suffix (a consumer restarting from an older
///   committed offset).
#[allow(
    clippy::panic,
    reason = "test support reports a failure by panicking, like assert!"
)]
pub async fn assert_replay_safe<P: Projection + Clone>(projection: P, inputs: &[Projected]) {
    let expected = ProjectionTest::given(projection.clone(), inputs.to_vec())
        .await
        .snapshot(inputs)
        .await;
    assert!(
        expected.values().any(|rows| !rows.is_empty()),
        "the inputs wrote no rows: nothing is checked"
    );
    let twice = ProjectionTest::given(
        projection.clone(),
        inputs.iter().chain(inputs.iter()).cloned(),
    )
    .await
    .snapshot(inputs)
    .await;
    assert_eq!(twice, expected, "delivering every input twice changed rows");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..8 {
        let order = interleaved(inputs, &mut rng);
        let from = rng.below(order.len().saturating_add(1));
        let redelivered = order.iter().chain(order.iter().skip(from)).cloned();
        let got = ProjectionTest::given(projection.clone(), redelivered)
            .await
            .snapshot(inputs)
            .await;
        if got != expected {
            let order: Vec<String> = order
                .iter()
                .map(|i| {
                    let e = i.envelope();
                    format!("{}@{}", e.aggregate_id, e.version)
                })
                .collect();
            panic!(
                "round {round}: the order {order:?}, redelivered from {from}, left other rows:\n\
                 got      {got:?}\nexpected {expected:?}"
            );
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use platform::readstore::{column, ColumnType as T, Value};
    use schemas::customers::{CustomersEvent, RoleGranted};

    use super::*;
    use crate::projection::{row, text, upsert, ProjectionError};

    const SEEN: TableDef = TableDef {
        name: "seen",
        partition_key: &[column("id", T::Text)],
        clustering: &[],
        columns: &[column("deliveries", T::BigInt)],
    };

    /// Counts deliveries: exactly what a projection must not do.
    #[derive(Debug, Clone, Default)]
    struct Counting(Arc<AtomicI64>);

    impl Projection for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn tables(&self) -> &'static [TableDef] {
            &[SEEN]
        }

        fn topics(&self, _: &schemas::TopicNames) -> Vec<String> {
            Vec::new()
        }

        fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(vec![upsert(
                SEEN,
                input.envelope().version,
                row([
                    ("id", text(&input.envelope().aggregate_id)),
                    ("deliveries", Value::BigInt(n)),
                ]),
            )])
        }
    }

    fn grant() -> CustomersEvent {
        CustomersEvent::RoleGranted(RoleGranted {
            role: schemas::customers::Role::Admin,
        })
    }

    #[tokio::test]
    #[should_panic(expected = "changed rows")]
    async fn a_projection_with_state_is_caught() {
        let mut a = Stream::new("Customer", "a");
        assert_replay_safe(Counting::default(), &[a.next(grant()), a.next(grant())]).await;
    }

    #[test]
    fn interleavings_keep_each_aggregates_order() {
        let (mut a, mut b, mut c) = (
            Stream::new("Customer", "a"),
            Stream::new("Customer", "b"),
            Stream::new("Customer", "c"),
        );
        let mut inputs = Vec::new();
        for _ in 0..4 {
            inputs.extend([a.next(grant()), b.next(grant()), c.next(grant())]);
        }
        let mut rng = Rng(7);
        let mut orders = BTreeSet::new();
        for _ in 0..20 {
            let order: Vec<(String, i64)> = interleaved(&inputs, &mut rng)
                .iter()
                .map(|i| (i.envelope().aggregate_id.clone(), i.envelope().version))
                .collect();
            assert_eq!(order.len(), inputs.len());
            for key in ["a", "b", "c"] {
                let versions: Vec<i64> = order
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| *v)
                    .collect();
                assert_eq!(versions, [1, 2, 3, 4], "{key} in {order:?}");
            }
            orders.insert(order);
        }
        assert!(orders.len() > 10, "the orders vary: {}", orders.len());
    }
}
