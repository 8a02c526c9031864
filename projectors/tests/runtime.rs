//! The projector service, rebuilds and dead letters on the embedded log
//! and the embedded read store, with a small test projection over the
//! catalog's events (a price per SKU and its history) that can be told to
//! fail for one key. The pipelined runtime's case (ADR 0026) also runs on
//! the real broker, registry and CQL node (`*_on_kafka`), where
//! transaction markers leave gaps in the offsets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::kafka::{KafkaConfig, KafkaLog};
use platform::eventlog::{
    read_topic, Cleanup, EventLog, GroupConfig, OffsetCommit, OutgoingRecord, Producer,
    TopicPartition, TopicSpec,
};
use platform::readstore::{
    column, ColumnType as T, CqlStore, EmbeddedStore, Mutation, Order, ReadStore, ReadStoreError,
    Row, TableDef, Value,
};
use platform::testing::{self, TestAdapter};
use projectors::dlq;
use projectors::generations;
use projectors::projection::{row, text, upsert, Input, Projected, Projection, ProjectionError};
use projectors::rebuild::{rebuild, RebuildOptions, RebuildPhase, RebuildProgress};
use projectors::runtime::{
    dead_letter_topic, group_id, Projector, ProjectorConfig, ProjectorStats, Role, PARKED_REASON,
};
use projectors::service::{ProjectorService, RunningService, ServiceConfig, ServiceStatus};
use schemas::catalog::{CatalogEvent, ProductRepriced};
use schemas::registry::{
    ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};
use schemas::{AnyEvent, AvroCodec, Context, EventEnvelope, TopicNames};
use tokio::sync::watch;

const PRICES: TableDef = TableDef {
    name: "test_prices",
    partition_key: &[column("sku", T::Text)],
    clustering: &[],
    columns: &[column("price", T::BigInt), column("version", T::BigInt)],
};

const HISTORY: TableDef = TableDef {
    name: "test_price_history",
    partition_key: &[column("sku", T::Text)],
    clustering: &[(column("version", T::BigInt), Order::Asc)],
    columns: &[column("price", T::BigInt)],
};

/// Prices per SKU; fails for `bad` while `failing` is set, writes a row
/// the store refuses (a column the table lacks) for `refused`, and records
/// the (sku, version) it projected, in order.
#[derive(Debug, Default)]
struct Prices {
    bad: Mutex<Option<String>>,
    failing: AtomicBool,
    refused: Option<String>,
    seen: Mutex<Vec<(String, i64)>>,
}

impl Prices {
    fn failing_for(sku: &str) -> Arc<Self> {
        let p = Self::default();
        *p.bad.lock().unwrap() = Some(sku.to_owned());
        p.failing.store(true, Ordering::SeqCst);
        Arc::new(p)
    }

    fn seen_for(&self, sku: &str) -> Vec<i64> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == sku)
            .map(|(_, v)| *v)
            .collect()
    }
}

impl Projection for Prices {
    fn name(&self) -> &'static str {
        "prices"
    }

    fn tables(&self) -> &'static [TableDef] {
        &[PRICES, HISTORY]
    }

    fn topics(&self, topics: &TopicNames) -> Vec<String> {
        vec![topics.events(Context::Catalog)]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        let sku = envelope.aggregate_id.clone();
        if self.failing.load(Ordering::SeqCst) && self.bad.lock().unwrap().as_deref() == Some(&sku)
        {
            return Err(ProjectionError(format!("{sku} is broken")));
        }
        let AnyEvent::Catalog(CatalogEvent::ProductRepriced(e)) = event else {
            return Ok(Vec::new());
        };
        self.seen
            .lock()
            .unwrap()
            .push((sku.clone(), envelope.version));
        let mut prices = row([
            ("sku", text(sku.clone())),
            ("price", Value::BigInt(e.price_minor)),
            ("version", Value::BigInt(envelope.version)),
        ]);
        if self.refused.as_deref() == Some(sku.as_str()) {
            prices.insert("no_such_column".into(), Value::BigInt(1));
        }
        Ok(vec![
            upsert(PRICES, envelope.version, prices),
            upsert(
                HISTORY,
                envelope.version,
                row([
                    ("sku", text(sku)),
                    ("version", Value::BigInt(envelope.version)),
                    ("price", Value::BigInt(e.price_minor)),
                ]),
            ),
        ])
    }
}

struct Env {
    log: Arc<dyn EventLog>,
    codec: Arc<AvroCodec>,
    store: Arc<dyn ReadStore>,
    topics: TopicNames,
    producer: Box<dyn Producer>,
    input: String,
    /// The case's keyspace on the CQL node, dropped by [`Env::finish`].
    cql: Option<Arc<CqlStore>>,
    _dir: tempfile::TempDir,
}

async fn env() -> Result<Env> {
    env_on(TestAdapter::Embedded).await
}

/// A fresh environment on `adapter`: the embedded log, registry and store,
/// or the real broker, schema registry and CQL node under a fresh topic
/// prefix and keyspace (so cases run in parallel).
async fn env_on(adapter: TestAdapter) -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let Servers {
        log,
        registry,
        store,
        cql,
        topics,
    } = match adapter {
        TestAdapter::Embedded => Servers {
            log: Arc::new(EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?),
            registry: Arc::new(EmbeddedRegistry::in_memory()),
            store: Arc::new(EmbeddedStore::in_memory()?),
            cql: None,
            topics: TopicNames::new("t."),
        },
        TestAdapter::Kafka => real_servers().await?,
    };
    let input = topics.events(Context::Catalog);
    log.create_topics(&[TopicSpec::new(input.clone(), 2, Cleanup::KeepForever)])
        .await?;
    let codec = Arc::new(AvroCodec::new(registry));
    codec.register_contract(&topics).await?;
    let producer = log.producer("test").await?;
    Ok(Env {
        log,
        codec,
        store,
        topics,
        producer,
        input,
        cql,
        _dir: dir,
    })
}

const REGISTRY_ENV: &str = "QS_SCHEMA_REGISTRY_URL";

/// What an [`Env`] runs on.
struct Servers {
    log: Arc<dyn EventLog>,
    registry: Arc<dyn SchemaRegistry>,
    store: Arc<dyn ReadStore>,
    cql: Option<Arc<CqlStore>>,
    topics: TopicNames,
}

/// The real broker, schema registry and CQL node, under a fresh topic
/// prefix and keyspace.
async fn real_servers() -> Result<Servers> {
    let url = std::env::var(REGISTRY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!(
                "{REGISTRY_ENV} is not set: the Kafka cases need a schema registry \
                 (deploy/test.sh starts one)"
            )
        })?;
    let prefix = testing::unique_prefix("rt");
    let keyspace = format!("qs_rt_{}", &prefix[3..15]);
    let cql = Arc::new(
        CqlStore::connect(testing::cql_test_config(keyspace)?)
            .await
            .context("connecting to the CQL node")?,
    );
    Ok(Servers {
        log: Arc::new(KafkaLog::connect(KafkaConfig::new(
            testing::kafka_bootstrap()?,
        ))?),
        registry: Arc::new(ConfluentRegistry::new(ConfluentRegistryConfig::new(url))?),
        store: cql.clone(),
        cql: Some(cql),
        topics: TopicNames::new(prefix),
    })
}

/// The price of `sku` at `version` (so the expected state is known).
fn price(sku: &str, version: i64) -> i64 {
    version * 100 + i64::from(sku.as_bytes()[sku.len() - 1])
}

impl Env {
    /// Drops the case's keyspace (CQL); topics under its fresh prefix stay
    /// on the test broker, which `deploy/test.sh` throws away.
    async fn finish(self) {
        if let Some(cql) = &self.cql {
            if let Err(e) = cql.drop_keyspace().await {
                eprintln!("dropping keyspace {}: {e}", cql.keyspace());
            }
        }
    }

    /// The record of `sku`'s reprice to its `version`'s price.
    fn repriced(&self, sku: &str, version: i64) -> Result<OutgoingRecord> {
        let envelope = EventEnvelope {
            event_id: format!("{sku}-{version}"),
            aggregate_type: "Product".into(),
            aggregate_id: sku.to_owned(),
            version,
            occurred_at: 1_700_000_000_000 + version,
            command_id: "c".into(),
            correlation_id: "k".into(),
            causation_id: "c".into(),
            actor: "admin".into(),
            prev_hash: Vec::new(),
            hash: Vec::new(),
        };
        let event = CatalogEvent::ProductRepriced(ProductRepriced {
            price_minor: price(sku, version),
            currency: "EUR".into(),
            previous_price_minor: price(sku, version - 1),
            previous_currency: "EUR".into(),
        });
        let bytes = self.codec.encode_event(&self.input, &envelope, &event)?;
        Ok(OutgoingRecord::new(self.input.clone(), sku, bytes))
    }

    async fn reprice(&self, sku: &str, version: i64) -> Result<()> {
        self.producer.send(self.repriced(sku, version)?).await?;
        Ok(())
    }

    /// Like [`Self::reprice`] for each of `changes`, but each in a
    /// transaction of its own, as a command processor appends: on Kafka
    /// every record is then followed by a commit marker.
    async fn reprice_in_transactions(&self, changes: &[(&str, i64)]) -> Result<()> {
        let writer = format!("{}writer", self.topics.prefix);
        let mut config = GroupConfig::new(writer.clone(), vec![self.input.clone()]);
        config.transactional_id = Some(writer);
        let mut member = self.log.join_group(config).await?;
        for (sku, version) in changes {
            member.begin().await?;
            member.send(self.repriced(sku, *version)?)?;
            member.commit_transaction(&[]).await?;
        }
        member.close().await?;
        Ok(())
    }

    fn service(&self, projection: Arc<dyn Projection>) -> RunningService {
        ProjectorService::new(
            Arc::clone(&self.log),
            Arc::clone(&self.codec),
            Arc::clone(&self.store),
            self.topics.clone(),
            vec![projection],
            fast_service(),
        )
        .spawn()
    }

    fn projector(&self, projection: Arc<dyn Projection>, generation: u32) -> Started {
        self.projector_with(projection, generation, |_| {})
    }

    /// [`Self::projector`] with `tune` applied to its configuration.
    fn projector_with(
        &self,
        projection: Arc<dyn Projection>,
        generation: u32,
        tune: impl FnOnce(&mut ProjectorConfig),
    ) -> Started {
        let mut config = ProjectorConfig::new(&self.topics, projection.as_ref(), generation);
        config.control_interval = Duration::from_millis(100);
        config.backoff = Duration::from_millis(10);
        tune(&mut config);
        let (tx, stats) = watch::channel(ProjectorStats::default());
        let (stop, stopped) = watch::channel(false);
        let projector = Projector::new(
            Arc::clone(&self.log),
            Arc::clone(&self.codec),
            Arc::clone(&self.store),
            projection,
            self.topics.clone(),
            config,
        )
        .with_progress(tx);
        Started {
            stats,
            stop,
            task: tokio::spawn(projector.run(stopped)),
        }
    }

    async fn ends(&self) -> Result<BTreeMap<(String, i32), i64>> {
        let mut out = BTreeMap::new();
        for p in 0..2 {
            let tp = TopicPartition::new(self.input.clone(), p);
            out.insert((self.input.clone(), p), self.log.end_offset(&tp).await?);
        }
        Ok(out)
    }

    async fn price_row(&self, generation: u32, sku: &str) -> Result<Option<Row>, ReadStoreError> {
        let key: Row = row([("sku", text(sku))]);
        self.store.get(&PRICES, generation, &key).await
    }

    async fn history(&self, generation: u32, sku: &str) -> Result<Vec<i64>> {
        let key: Row = row([("sku", text(sku))]);
        let page = self
            .store
            .scan(&HISTORY, generation, &key, None, 1000)
            .await?;
        Ok(page
            .rows
            .iter()
            .map(|r| match r.get("version") {
                Some(Value::BigInt(v)) => *v,
                other => panic!("{other:?}"),
            })
            .collect())
    }

    async fn dead_letters(&self) -> Result<Vec<dlq::DeadLetter>> {
        Ok(dlq::list(
            self.log.as_ref(),
            Some(&self.codec),
            self.store.as_ref(),
            &self.topics,
            "prices",
        )
        .await?)
    }
}

fn fast_service() -> ServiceConfig {
    ServiceConfig {
        pointer_poll: Duration::from_millis(100),
        status_interval: Duration::from_millis(100),
        restart_backoff: Duration::from_millis(200),
        backoff: Duration::from_millis(10),
        control_interval: Duration::from_millis(100),
        ..ServiceConfig::default()
    }
}

struct Started {
    stats: watch::Receiver<ProjectorStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<ProjectorStats, projectors::runtime::ProjectorError>>,
}

impl Started {
    /// Waits until the positions reach `ends`.
    async fn until(&mut self, ends: &BTreeMap<(String, i32), i64>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            {
                let s = self.stats.borrow_and_update();
                if ends
                    .iter()
                    .all(|(k, end)| *end == 0 || s.positions.get(k).is_some_and(|p| p >= end))
                {
                    return Ok(());
                }
            }
            ensure!(!self.task.is_finished(), "the projector stopped");
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the projector did not reach {ends:?}: {:?}",
                self.stats.borrow().positions
            );
            let _ = tokio::time::timeout(Duration::from_millis(100), self.stats.changed()).await;
        }
    }

    async fn stop(self) -> Result<ProjectorStats> {
        let _ = self.stop.send(true);
        Ok(self.task.await??)
    }
}

/// Waits until `check(status)` holds.
async fn wait_status(
    service: &RunningService,
    what: &str,
    check: impl Fn(&ServiceStatus) -> bool,
) -> Result<ServiceStatus> {
    let mut watch = service.watch();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = watch.borrow_and_update().clone();
        if check(&status) {
            return Ok(status);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {status:#?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), watch.changed()).await;
    }
}

fn caught_up(generation: u32, events: u64) -> impl Fn(&ServiceStatus) -> bool {
    move |s| {
        s.projections.get("prices").is_some_and(|p| {
            p.generation == generation && p.lag == Some(0) && p.events >= events && p.running
        })
    }
}

const SKUS: [&str; 3] = ["SKU-1", "SKU-2", "SKU-3"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_follows_the_pointer_and_its_lag_reaches_zero() -> Result<()> {
    let env = env().await?;
    for v in 1..=5 {
        for sku in SKUS {
            env.reprice(sku, v).await?;
        }
    }
    let service = env.service(Arc::new(Prices::default()));
    let status = wait_status(&service, "generation 1 caught up", caught_up(1, 15)).await?;
    let p = &status.projections["prices"];
    ensure!(p.group == "t.projector.prices.g1", "{}", p.group);
    ensure!(p.lag_by_partition.len() == 2, "{:?}", p.lag_by_partition);
    for sku in SKUS {
        let r = env.price_row(1, sku).await?.context("row")?;
        ensure!(
            r.get("price") == Some(&Value::BigInt(price(sku, 5))),
            "{r:?}"
        );
    }
    // More events: the lag rises and falls back to exactly 0.
    for sku in SKUS {
        env.reprice(sku, 6).await?;
    }
    wait_status(&service, "the new events", caught_up(1, 18)).await?;

    // The pointer moves (as a rebuild's switch does): the service builds
    // generation 2 in its own group from offset 0 and follows it.
    generations::switch(env.store.as_ref(), "prices", 2, 1).await?;
    let status = wait_status(&service, "generation 2 caught up", caught_up(2, 36)).await?;
    ensure!(
        status.projections["prices"].group == "t.projector.prices.g2",
        "{status:?}"
    );
    for sku in SKUS {
        ensure!(
            env.price_row(1, sku).await? == env.price_row(2, sku).await?,
            "{sku} differs between generations"
        );
        ensure!(env.history(2, sku).await? == (1..=6).collect::<Vec<_>>());
    }
    service.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_builds_the_next_generation_beside_the_service_and_switches() -> Result<()> {
    let env = env().await?;
    for v in 1..=20 {
        for sku in SKUS {
            env.reprice(sku, v).await?;
        }
    }
    let service = env.service(Arc::new(Prices::default()));
    wait_status(&service, "generation 1 caught up", caught_up(1, 60)).await?;

    // A failed earlier attempt left committed offsets in generation 2's
    // group (and rows in its tables): the rebuild must start from 0.
    env.store.ensure_tables(&[PRICES, HISTORY], 2).await?;
    env.store
        .write(&[{
            let mut m = upsert(
                PRICES,
                1_000,
                row([("sku", text("GHOST")), ("price", Value::BigInt(1))]),
            );
            m.generation = 2;
            m
        }])
        .await?;
    {
        let mut member = env
            .log
            .join_group(GroupConfig::new(
                "t.projector.prices.g2",
                vec![env.input.clone()],
            ))
            .await?;
        while member.assignment().len() < 2 {
            member.poll(10, Duration::from_millis(100)).await?;
        }
        let commits: Vec<OffsetCommit> = env
            .ends()
            .await?
            .into_iter()
            .map(|((topic, p), end)| OffsetCommit {
                tp: TopicPartition::new(topic, p),
                next_offset: end,
                metadata: String::new(),
            })
            .collect();
        member.commit_offsets(&commits).await?;
        member.close().await?;
    }

    let (progress, mut updates) = watch::channel(RebuildProgress::default());
    // A long lease: the service must move to generation 2 when it sees
    // the pointer, not when the lease runs out.
    let options = RebuildOptions {
        drop_after: Duration::from_millis(300),
        handoff_lease: Duration::from_secs(30),
        ..RebuildOptions::default()
    };
    let rebuilding = tokio::spawn(rebuild(
        Arc::clone(&env.log),
        Arc::clone(&env.codec),
        Arc::clone(&env.store),
        Arc::new(Prices::default()),
        env.topics.clone(),
        options,
        progress,
    ));
    // Events keep arriving while it rebuilds.
    let mut phases = Vec::new();
    let mut v = 21;
    while !rebuilding.is_finished() {
        if v <= 30 {
            for sku in SKUS {
                env.reprice(sku, v).await?;
            }
            v += 1;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), updates.changed()).await;
        let phase = updates.borrow_and_update().phase;
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    let report = rebuilding.await??;
    let phase = updates.borrow().phase;
    if phases.last() != Some(&phase) {
        phases.push(phase);
    }
    ensure!(
        report.old_generation == 1 && report.new_generation == 2 && report.dropped_old,
        "{report:?}"
    );
    ensure!(
        phases.contains(&RebuildPhase::HandingOff) && phases.contains(&RebuildPhase::Switched),
        "{phases:?}"
    );
    // The live projector paused and acknowledged both partitions.
    let acks = env
        .store
        .scan(
            &generations::HANDOFF_ACKS,
            generations::META_GENERATION,
            &row([("projection", text("prices"))]),
            None,
            10,
        )
        .await?;
    ensure!(acks.rows.len() == 2, "{:?}", acks.rows);
    ensure!(
        phases.last() == Some(&RebuildPhase::DroppedOld),
        "{phases:?}"
    );
    ensure!(generations::serving(env.store.as_ref(), "prices").await? == 2);
    let last = v - 1;
    ensure!(last > 21, "no events arrived during the rebuild");
    wait_status(&service, "generation 2 served", caught_up(2, 0)).await?;
    // The lease was kept after the switch (the old generation must not
    // resume while readers may still read it), and the service left the
    // paused generation 1 anyway, long before the lease runs out.
    let control = dlq::control(env.store.as_ref(), "prices").await?;
    ensure!(
        control.handoff_generation == 2 && control.handoff_until > report.switched_at,
        "the hand-off lease was released at the switch: {control:?}"
    );
    ensure!(
        now_ms() < control.handoff_until,
        "the service waited for the lease to expire: {control:?}"
    );
    for sku in SKUS {
        let r = env.price_row(2, sku).await?.context("row")?;
        ensure!(
            r.get("price") == Some(&Value::BigInt(price(sku, last))),
            "{sku}: {r:?}"
        );
        ensure!(
            env.history(2, sku).await? == (1..=last).collect::<Vec<_>>(),
            "{sku} history"
        );
    }
    ensure!(
        env.price_row(2, "GHOST").await?.is_none(),
        "the earlier attempt's rows survived"
    );
    ensure!(
        matches!(
            env.price_row(1, "SKU-1").await,
            Err(ReadStoreError::Invalid(_))
        ),
        "generation 1 was not dropped"
    );
    service.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_keys_survive_a_restart() -> Result<()> {
    let env = env().await?;
    let prices = Prices::failing_for("BAD-1");
    for v in 1..=3 {
        env.reprice("BAD-1", v).await?;
        env.reprice("OK-1", v).await?;
    }
    let mut projector = env.projector(prices.clone(), 1);
    projector.until(&env.ends().await?).await?;
    let stats = projector.stop().await?;
    ensure!(stats.dead_letters == 3 && stats.parked == 1, "{stats:?}");
    let parked = dlq::parked_keys(env.store.as_ref(), "prices", 1).await?;
    ensure!(
        parked.contains(b"BAD-1".as_slice()) && parked.len() == 1,
        "{parked:?}"
    );
    let letters = env.dead_letters().await?;
    ensure!(letters.len() == 3, "{letters:?}");
    ensure!(letters[0].reason.contains("BAD-1 is broken"), "{letters:?}");
    ensure!(
        letters[1].reason.starts_with("parked") && letters[2].reason.starts_with("parked"),
        "{letters:?}"
    );
    ensure!(
        letters.iter().all(|d| d.parked
            && d.event_type.as_deref() == Some("ProductRepriced")
            && d.generation == Some(1)
            && d.key_text() == "BAD-1"),
        "{letters:?}"
    );

    // The cause is fixed, the projector restarts: the key is still parked
    // (a later event must not overtake the dead-lettered ones).
    prices.failing.store(false, Ordering::SeqCst);
    env.reprice("BAD-1", 4).await?;
    env.reprice("OK-1", 4).await?;
    let mut projector = env.projector(prices.clone(), 1);
    projector.until(&env.ends().await?).await?;
    let stats = projector.stop().await?;
    ensure!(stats.dead_letters == 1, "{stats:?}");
    ensure!(
        env.price_row(1, "BAD-1").await?.is_none(),
        "a parked key was applied"
    );
    ensure!(env.history(1, "OK-1").await? == vec![1, 2, 3, 4]);
    ensure!(env.dead_letters().await?.len() == 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_retry_fails_again_then_brings_the_events_back_in_order() -> Result<()> {
    let env = env().await?;
    let prices = Prices::failing_for("BAD-1");
    for v in 1..=3 {
        env.reprice("BAD-1", v).await?;
        env.reprice("OK-1", v).await?;
    }
    let service = env.service(prices.clone());
    wait_status(&service, "caught up", caught_up(1, 6)).await?;
    ensure!(env.dead_letters().await?.len() == 3);

    // Still broken: dead-lettered again, the key stays parked.
    let seq = dlq::request_retry(env.store.as_ref(), "prices").await?;
    let done = dlq::await_retry(env.store.as_ref(), "prices", seq, Duration::from_secs(20)).await?;
    ensure!(
        done.from == 0 && done.upto == 3 && done.succeeded == 0 && done.failed == 3,
        "{done:?}"
    );
    let letters = env.dead_letters().await?;
    ensure!(letters.len() == 6, "{letters:?}");
    ensure!(letters[..3].iter().all(|d| d.retried), "{letters:?}");
    ensure!(
        letters[3..]
            .iter()
            .zip(0..)
            .all(|(d, i)| d.retry_of == Some(i) && !d.retried && d.parked),
        "{letters:?}"
    );
    ensure!(env.price_row(1, "BAD-1").await?.is_none());

    // Fixed: the three come back, in their original order, and the key is
    // unparked — its next event is applied directly.
    prices.failing.store(false, Ordering::SeqCst);
    let seq = dlq::request_retry(env.store.as_ref(), "prices").await?;
    let done = dlq::await_retry(env.store.as_ref(), "prices", seq, Duration::from_secs(20)).await?;
    ensure!(
        done.from == 3 && done.upto == 6 && done.succeeded == 3 && done.failed == 0,
        "{done:?}"
    );
    ensure!(
        prices.seen_for("BAD-1") == vec![1, 2, 3],
        "{:?}",
        prices.seen_for("BAD-1")
    );
    ensure!(env.history(1, "BAD-1").await? == vec![1, 2, 3]);
    ensure!(dlq::parked_keys(env.store.as_ref(), "prices", 1)
        .await?
        .is_empty());
    ensure!(env
        .dead_letters()
        .await?
        .iter()
        .all(|d| d.retried && !d.parked));
    env.reprice("BAD-1", 4).await?;
    wait_status(&service, "the next event", caught_up(1, 7)).await?;
    ensure!(env.history(1, "BAD-1").await? == vec![1, 2, 3, 4]);
    ensure!(
        env.dead_letters().await?.len() == 6,
        "nothing more was dead-lettered"
    );
    service.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_dlq_with_its_reason() -> Result<()> {
    let env = env().await?;
    env.reprice("OK-1", 1).await?;
    env.producer
        .send(OutgoingRecord::new(
            env.input.clone(),
            "JUNK",
            b"not avro at all".to_vec(),
        ))
        .await?;
    env.reprice("OK-1", 2).await?;
    let mut config = ProjectorConfig::new(&env.topics, &Prices::default(), 1);
    config.role = Role::Rebuild;
    ensure!(config.group_id == "t.projector.prices.g1");
    let mut projector = env.projector(Arc::new(Prices::default()), 1);
    projector.until(&env.ends().await?).await?;
    projector.stop().await?;
    let letters = env.dead_letters().await?;
    ensure!(letters.len() == 1, "{letters:?}");
    let d = &letters[0];
    ensure!(d.key_text() == "JUNK" && d.event_type.is_none(), "{d:?}");
    ensure!(
        d.reason.starts_with("decoding:") && d.reason.contains("magic byte"),
        "{d:?}"
    );
    ensure!(
        d.source.as_ref().is_some_and(|tp| tp.topic == env.input),
        "{d:?}"
    );
    ensure!(d.parked, "{d:?}");
    let raw = read_topic(env.log.as_ref(), &dead_letter_topic(&env.topics, "prices")).await?;
    ensure!(
        raw[0].value.as_deref() == Some(&b"not avro at all"[..]),
        "the original bytes are kept"
    );
    ensure!(env.history(1, "OK-1").await? == vec![1, 2]);
    Ok(())
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_of_a_generation_being_built_leaves_it_alone() -> Result<()> {
    let env = env().await?;
    for sku in SKUS {
        env.reprice(sku, 1).await?;
    }
    // A rebuild of generation 2 is under way: its projector is in the
    // group and has written rows.
    let mut first = env.projector(Arc::new(Prices::default()), 2);
    first.until(&env.ends().await?).await?;
    ensure!(env.price_row(2, "SKU-1").await?.is_some());

    // A second rebuild of generation 2 must not touch its tables.
    let (progress, _updates) = watch::channel(RebuildProgress::default());
    let second = rebuild(
        Arc::clone(&env.log),
        Arc::clone(&env.codec),
        Arc::clone(&env.store),
        Arc::new(Prices::default()),
        env.topics.clone(),
        RebuildOptions {
            generation: Some(2),
            reset_timeout: Duration::from_secs(1),
            ..RebuildOptions::default()
        },
        progress,
    )
    .await;
    ensure!(
        matches!(second, Err(projectors::runtime::ProjectorError::Timeout(_))),
        "{second:?}"
    );
    for sku in SKUS {
        ensure!(
            env.history(2, sku).await? == vec![1],
            "the second rebuild emptied the first one's tables ({sku})"
        );
    }
    ensure!(
        !first.task.is_finished(),
        "the first rebuild's projector stopped"
    );
    first.stop().await?;
    Ok(())
}

/// A park row as another instance of the projector writes it (the key's
/// dead letter at `dlq_offset`).
async fn park_elsewhere(env: &Env, generation: u32, key: &str, dlq_offset: i64) -> Result<()> {
    env.store
        .write(&[Mutation {
            table: dlq::PARKED_KEYS,
            generation: generations::META_GENERATION,
            kind: platform::readstore::MutationKind::Upsert(row([
                ("projection", text("prices")),
                ("generation", Value::Int(i32::try_from(generation)?)),
                ("key_hex", text(dlq::key_hex(key.as_bytes()))),
                ("dlq_offset", Value::BigInt(dlq_offset)),
                ("reason", text("parked by another instance")),
                ("parked_at", Value::Timestamp(1)),
            ])),
            timestamp: dlq_offset,
        }])
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_another_instance_parked_stays_parked_after_a_rebalance() -> Result<()> {
    let env = env().await?;
    // Keys on both partitions.
    let mut skus: Vec<String> = Vec::new();
    for i in 1.. {
        let sku = format!("OK-{i}");
        let p = platform::partitioner::partition_for_key(sku.as_bytes(), 2);
        if !skus
            .iter()
            .any(|s| platform::partitioner::partition_for_key(s.as_bytes(), 2) == p)
        {
            skus.push(sku);
        }
        if skus.len() == 2 {
            break;
        }
    }
    for v in 1..=2 {
        for sku in &skus {
            env.reprice(sku, v).await?;
        }
    }
    ensure!(
        env.ends().await?.values().all(|end| *end > 0),
        "both partitions need records"
    );
    // This instance starts with nothing parked and catches up.
    let mut projector = env.projector(Arc::new(Prices::default()), 1);
    projector.until(&env.ends().await?).await?;
    ensure!(projector.stats.borrow().parked == 0);

    // Another instance of the group parks BAD-1 (its dead letter is in the
    // topic, its park row in the store)…
    park_elsewhere(&env, 1, "BAD-1", 0).await?;
    // …and the group rebalances: a member joins, takes partitions, leaves.
    {
        let mut other = env
            .log
            .join_group(GroupConfig::new(
                "t.projector.prices.g1",
                vec![env.input.clone()],
            ))
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while other.assignment().is_empty() {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the other member got no partition"
            );
            other.poll(10, Duration::from_millis(100)).await?;
        }
        other.close().await?;
    }
    // Wait until this instance has its partitions back (it got them
    // reassigned: `Revoked`, then `Assigned` with both), so the next
    // events reach it through the new assignment (the embedded log fences
    // a batch polled across the rebalance, which would stop the projector).
    projector.stats.borrow_and_update();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut moved = false;
    loop {
        ensure!(!projector.task.is_finished(), "the projector stopped");
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no reassignment: {:?}",
            projector.stats.borrow().positions
        );
        if let Ok(changed) =
            tokio::time::timeout(Duration::from_millis(100), projector.stats.changed()).await
        {
            changed?;
            moved = true;
        }
        if moved && projector.stats.borrow_and_update().positions.len() == 2 {
            break;
        }
    }
    // BAD-1's next events, after the reassignment: they must follow the
    // dead-lettered one, not be applied.
    env.reprice("BAD-1", 1).await?;
    env.reprice("BAD-1", 2).await?;
    env.reprice(&skus[0], 3).await?;
    projector.until(&env.ends().await?).await?;
    let stats = projector.stop().await?;
    ensure!(
        env.price_row(1, "BAD-1").await?.is_none(),
        "a key parked by another instance was applied after a rebalance"
    );
    ensure!(stats.dead_letters == 2 && stats.parked == 1, "{stats:?}");
    let letters = env.dead_letters().await?;
    ensure!(
        letters.len() == 2
            && letters
                .iter()
                .all(|d| d.key_text() == "BAD-1" && d.reason.starts_with("parked") && d.parked),
        "{letters:?}"
    );
    ensure!(env.history(1, &skus[0]).await? == vec![1, 2, 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_store_refuses_is_dead_lettered_and_the_rest_written() -> Result<()> {
    let env = env().await?;
    let prices = Arc::new(Prices {
        refused: Some("REFUSED-1".into()),
        ..Prices::default()
    });
    // One batch: the refused key's events among the others'.
    for v in 1..=3 {
        env.reprice("OK-1", v).await?;
        env.reprice("REFUSED-1", v).await?;
        env.reprice("OK-2", v).await?;
    }
    let mut projector = env.projector(prices.clone(), 1);
    projector.until(&env.ends().await?).await?;
    ensure!(
        !projector.task.is_finished(),
        "the projector stopped on a refused write"
    );
    for sku in ["OK-1", "OK-2"] {
        ensure!(env.history(1, sku).await? == vec![1, 2, 3], "{sku}");
        let r = env.price_row(1, sku).await?.context("row")?;
        ensure!(
            r.get("price") == Some(&Value::BigInt(price(sku, 3))),
            "{r:?}"
        );
    }
    ensure!(env.price_row(1, "REFUSED-1").await?.is_none());
    ensure!(env.history(1, "REFUSED-1").await?.is_empty());
    let parked = dlq::parked_keys(env.store.as_ref(), "prices", 1).await?;
    ensure!(
        parked.len() == 1 && parked.contains(b"REFUSED-1".as_slice()),
        "{parked:?}"
    );
    let letters = env.dead_letters().await?;
    ensure!(letters.len() == 3, "{letters:?}");
    ensure!(
        letters[0].reason.starts_with("store refused: ")
            && letters[0].reason.contains("no_such_column"),
        "{letters:?}"
    );
    ensure!(
        letters[1..].iter().all(|d| d.reason == PARKED_REASON),
        "{letters:?}"
    );
    ensure!(
        letters.iter().all(|d| d.key_text() == "REFUSED-1"
            && d.parked
            && d.generation == Some(1)
            && d.source_offset.is_some()),
        "{letters:?}"
    );
    // Dead-lettered in the key's order.
    let offsets: Vec<i64> = letters.iter().filter_map(|d| d.source_offset).collect();
    ensure!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    // It keeps going: the next batch is projected, the key stays parked.
    env.reprice("OK-1", 4).await?;
    env.reprice("REFUSED-1", 4).await?;
    projector.until(&env.ends().await?).await?;
    let stats = projector.stop().await?;
    ensure!(env.history(1, "OK-1").await? == vec![1, 2, 3, 4]);
    ensure!(stats.dead_letters == 4 && stats.parked == 1, "{stats:?}");
    let letters = env.dead_letters().await?;
    ensure!(
        letters.len() == 4 && letters[3].reason == PARKED_REASON,
        "{letters:?}"
    );
    Ok(())
}

/// ADR 0026: the next batch is decoded while this one is written, but
/// whether its records are parked is decided after this one's writes — so
/// a key the store refuses in this batch parks its events of the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_while_the_next_batch_was_decoded_ahead_is_parked_in_it() -> Result<()> {
    refused_while_decoded_ahead(TestAdapter::Embedded).await
}

/// The same on the real broker, registry and CQL node. Each record is
/// appended in a transaction of its own, so on Kafka every partition ends
/// in a commit marker the projector must pass to reach its end and commit
/// it (ADR 0026's trailing gaps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_while_the_next_batch_was_decoded_ahead_is_parked_in_it_on_kafka(
) -> Result<()> {
    refused_while_decoded_ahead(TestAdapter::Kafka).await
}

async fn refused_while_decoded_ahead(adapter: TestAdapter) -> Result<()> {
    let env = env_on(adapter).await?;
    let outcome = refused_while_decoded_ahead_in(&env, adapter).await;
    env.finish().await;
    outcome
}

async fn refused_while_decoded_ahead_in(env: &Env, adapter: TestAdapter) -> Result<()> {
    let prices = Arc::new(Prices {
        refused: Some("REFUSED-1".into()),
        ..Prices::default()
    });
    env.reprice_in_transactions(&[
        ("REFUSED-1", 1),
        ("REFUSED-1", 2),
        ("REFUSED-1", 3),
        // And a key that is written, in the other partition or the same.
        ("OK-2", 1),
    ])
    .await?;
    // A batch per record, and the control row out of the way (no batch
    // looks ahead when it is due).
    let mut projector = env.projector_with(prices.clone(), 1, |c| {
        c.max_batch = 1;
        c.control_interval = Duration::from_secs(3600);
    });
    let ends = env.ends().await?;
    if adapter == TestAdapter::Kafka {
        // Four records, each followed by its commit marker.
        ensure!(ends.values().sum::<i64>() == 8, "{ends:?}");
    }
    projector.until(&ends).await?;
    let stats = projector.stop().await?;
    // Version 2 was decoded during version 1's (refused) write; version 3
    // was not decoded at all: its key was parked by then.
    ensure!(
        prices.seen_for("REFUSED-1") == vec![1, 2],
        "{:?}",
        prices.seen_for("REFUSED-1")
    );
    ensure!(env.price_row(1, "REFUSED-1").await?.is_none());
    ensure!(env.history(1, "OK-2").await? == vec![1]);
    let letters = env.dead_letters().await?;
    ensure!(letters.len() == 3, "{letters:?}");
    ensure!(
        letters[0].reason.starts_with("store refused: ")
            && letters[1..].iter().all(|d| d.reason == PARKED_REASON),
        "{letters:?}"
    );
    // In the order they were appended (Kafka's offsets skip the markers).
    let offsets: Vec<i64> = letters.iter().filter_map(|d| d.source_offset).collect();
    ensure!(
        offsets.len() == 3 && offsets.windows(2).all(|w| w[0] < w[1]),
        "{offsets:?}"
    );
    ensure!(
        stats.events == 4 && stats.batches == 4 && stats.parked == 1,
        "{stats:?}"
    );
    // Every partition's committed offset is its end, markers included:
    // a restarted projector has nothing left to read.
    let partitions: Vec<TopicPartition> = ends
        .keys()
        .map(|(topic, p)| TopicPartition::new(topic.clone(), *p))
        .collect();
    let committed: BTreeMap<(String, i32), i64> = env
        .log
        .committed_offsets(&group_id(&env.topics, "prices", 1), &partitions)
        .await?
        .into_iter()
        .map(|(tp, c)| ((tp.topic, tp.partition), c.next_offset))
        .collect();
    let written: BTreeMap<(String, i32), i64> =
        ends.into_iter().filter(|(_, end)| *end > 0).collect();
    ensure!(
        committed == written,
        "committed {committed:?}, ends {written:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tables_stop_the_projector_instead_of_dead_lettering_everything() -> Result<()> {
    let env = env().await?;
    env.reprice("OK-1", 1).await?;
    let mut projector = env.projector(Arc::new(Prices::default()), 1);
    projector.until(&env.ends().await?).await?;
    // Its generation's tables are dropped under it: every write is
    // refused, but no record is at fault.
    env.store.drop_tables(&[PRICES, HISTORY], 1).await?;
    env.reprice("OK-1", 2).await?;
    env.reprice("OK-2", 1).await?;
    let result = tokio::time::timeout(Duration::from_secs(30), projector.task).await??;
    ensure!(
        matches!(&result, Err(projectors::runtime::ProjectorError::Invalid(m)) if m.contains("does not answer")),
        "{result:?}"
    );
    ensure!(env.dead_letters().await?.is_empty());
    ensure!(dlq::parked_keys(env.store.as_ref(), "prices", 1)
        .await?
        .is_empty());
    Ok(())
}
