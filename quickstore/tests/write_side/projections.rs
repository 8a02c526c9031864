//! The projector service on both adapters (embedded log + store; Kafka +
//! a real CQL node): a rebuild while orders flow and readers read, and a
//! dead-letter round trip through the library API. Both also check that
//! the service's lag reaches exactly 0 (on Kafka its positions must pass
//! the transaction markers).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use platform::readstore::{Mutation, ReadStore, Row, Value};
use platform::testing::TestAdapter;
use projectors::dlq;
use projectors::generations;
use projectors::projection::{Projected, Projection, ProjectionError};
use projectors::projections::orders::{OrdersProjection, ORDERS_BY_ID};
use projectors::rebuild::{rebuild, RebuildOptions, RebuildPhase, RebuildProgress};
use projectors::service::{ProjectorService, RunningService, ServiceConfig, ServiceStatus};
use schemas::Context;
use tokio::sync::watch;

use crate::app::{spawn_app_with, TestApp, APPROVE};
use crate::read_side::store;

fn service(
    app: &TestApp,
    store: &Arc<dyn ReadStore>,
    projection: Arc<dyn Projection>,
) -> RunningService {
    ProjectorService::new(
        Arc::clone(&app.system.log),
        Arc::clone(&app.system.codec),
        Arc::clone(store),
        app.system.topics.clone(),
        vec![projection],
        ServiceConfig {
            pointer_poll: Duration::from_millis(200),
            status_interval: Duration::from_millis(250),
            control_interval: Duration::from_millis(250),
            ..ServiceConfig::default()
        },
    )
    .spawn()
}

/// Waits until `orders` serves `generation` with a lag of exactly 0.
async fn caught_up(service: &RunningService, generation: u32) -> Result<ServiceStatus> {
    let mut watch = service.watch();
    // Measured after the call (not by a measurement already under way):
    // the events appended before it count.
    let since = watch.borrow_and_update().measured;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let status = watch.borrow_and_update().clone();
        if status.measured > since + 1
            && status
                .projections
                .get("orders")
                .is_some_and(|p| p.generation == generation && p.running && p.lag == Some(0))
        {
            return Ok(status);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "orders never caught up on generation {generation}: {status:#?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), watch.changed()).await;
    }
}

fn key(order: &str) -> Row {
    [("order_id".to_owned(), Value::Text(order.to_owned()))].into()
}

fn status_of(row: &Row) -> String {
    match row.get("status") {
        Some(Value::Text(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

async fn place(app: &TestApp, customer: &str, item: &str) -> Result<String> {
    let (status, body) = app.place_order(customer, &[(item, 1)], APPROVE).await?;
    ensure!(status.is_success(), "{status} {body}");
    Ok(body["order_id"].as_str().context("order_id")?.to_owned())
}

/// What the readers saw.
#[derive(Debug, Default)]
struct Reads {
    reads: AtomicU64,
    on_new_generation: AtomicU64,
    violations: Mutex<Vec<String>>,
}

/// Reads every placed order through the serving generation, in a loop:
/// an error, or no row for an order this reader saw before, is a
/// violation.
async fn reader(
    store: Arc<dyn ReadStore>,
    placed: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reads: Arc<Reads>,
) {
    let mut seen: HashSet<String> = HashSet::new();
    while !stop.load(Ordering::SeqCst) {
        let orders = placed.lock().unwrap().clone();
        for order in orders {
            let serving = match generations::serving(store.as_ref(), "orders").await {
                Ok(g) => g,
                Err(e) => {
                    reads
                        .violations
                        .lock()
                        .unwrap()
                        .push(format!("serving: {e}"));
                    continue;
                }
            };
            match store.get(&ORDERS_BY_ID, serving, &key(&order)).await {
                Ok(Some(_)) => {
                    seen.insert(order);
                }
                Ok(None) if seen.contains(&order) => reads
                    .violations
                    .lock()
                    .unwrap()
                    .push(format!("{order} vanished from generation {serving}")),
                Ok(None) => {}
                Err(e) => reads
                    .violations
                    .lock()
                    .unwrap()
                    .push(format!("{order} on generation {serving}: {e}")),
            }
            reads.reads.fetch_add(1, Ordering::Relaxed);
            if serving > 1 {
                reads.on_new_generation.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn rebuild_while_serving_loses_no_row(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app_with(adapter, |o| {
        o.simulated_couriers = vec!["courier-sim".into()]
    })
    .await?;
    let item = format!(
        "REB-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    );
    app.product(&item, 1200, 10_000).await?;
    let (_, customer) = app.customer("rita").await?;
    let placed: Arc<Mutex<Vec<String>>> = Arc::default();
    for _ in 0..10 {
        let id = place(&app, &customer, &item).await?;
        placed.lock().unwrap().push(id);
    }
    let store = store(adapter).await?;
    let projectors = service(&app, &store, Arc::new(OrdersProjection));
    caught_up(&projectors, 1).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(Reads::default());
    let readers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(reader(
                Arc::clone(&store),
                Arc::clone(&placed),
                Arc::clone(&stop),
                Arc::clone(&reads),
            ))
        })
        .collect();

    let (progress, mut updates) = watch::channel(RebuildProgress::default());
    let rebuilding = tokio::spawn(rebuild(
        Arc::clone(&app.system.log),
        Arc::clone(&app.system.codec),
        Arc::clone(&store),
        Arc::new(OrdersProjection),
        app.system.topics.clone(),
        RebuildOptions {
            drop_after: Duration::from_secs(2),
            ..RebuildOptions::default()
        },
        progress,
    ));
    // Orders keep flowing through the rebuild, the switch and the drop.
    let mut phases = Vec::new();
    while !rebuilding.is_finished() {
        let id = place(&app, &customer, &item).await?;
        placed.lock().unwrap().push(id);
        let phase = updates.borrow_and_update().phase;
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    let report = rebuilding.await??;
    ensure!(
        report.old_generation == 1 && report.new_generation == 2 && report.dropped_old,
        "{report:?}"
    );
    ensure!(
        phases.contains(&RebuildPhase::Building) || phases.contains(&RebuildPhase::CatchingUp),
        "{phases:?}"
    );
    for _ in 0..5 {
        let id = place(&app, &customer, &item).await?;
        placed.lock().unwrap().push(id);
    }
    caught_up(&projectors, 2).await?;
    // One more full round of reads on the new generation.
    let before = reads.reads.load(Ordering::Relaxed);
    let total = u64::try_from(placed.lock().unwrap().len())?;
    while reads.reads.load(Ordering::Relaxed) < before + 2 * total {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.await?;
    }
    let violations = reads.violations.lock().unwrap().clone();
    ensure!(violations.is_empty(), "readers saw: {violations:?}");
    ensure!(
        reads.on_new_generation.load(Ordering::Relaxed) > 0,
        "no read reached generation 2"
    );
    // Every order is in the new generation.
    let all = placed.lock().unwrap().clone();
    for order in &all {
        ensure!(
            store.get(&ORDERS_BY_ID, 2, &key(order)).await?.is_some(),
            "{order} missing from generation 2"
        );
    }
    projectors.stop().await?;
    app.stop().await
}

/// The orders projection, failing for one order while `failing` is set.
#[derive(Debug)]
struct FailingOrders {
    bad: String,
    failing: AtomicBool,
}

impl Projection for FailingOrders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn tables(&self) -> &'static [platform::readstore::TableDef] {
        OrdersProjection.tables()
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        OrdersProjection.topics(topics)
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        if self.failing.load(Ordering::SeqCst) && input.envelope().aggregate_id == self.bad {
            return Err(ProjectionError(format!("order {} is broken", self.bad)));
        }
        OrdersProjection.project(input)
    }
}

pub async fn dlq_round_trip_through_the_library(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app_with(adapter, |o| {
        o.simulated_couriers = vec!["courier-sim".into()]
    })
    .await?;
    let item = format!(
        "DLQ-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    );
    app.product(&item, 900, 100).await?;
    let (_, customer) = app.customer("dora").await?;
    let bad = place(&app, &customer, &item).await?;
    let good = place(&app, &customer, &item).await?;
    app.wait_for(Context::Orders, &bad, "OrderCompleted")
        .await?;
    app.wait_for(Context::Orders, &good, "OrderCompleted")
        .await?;

    let store = store(adapter).await?;
    let projection = Arc::new(FailingOrders {
        bad: bad.clone(),
        failing: AtomicBool::new(true),
    });
    let projectors = service(&app, &store, projection.clone());
    caught_up(&projectors, 1).await?;
    let log = app.system.log.as_ref();
    let list = || {
        dlq::list(
            log,
            Some(&app.system.codec),
            store.as_ref(),
            &app.system.topics,
            "orders",
        )
    };
    let letters = list().await?;
    let n = i64::try_from(letters.len())?;
    ensure!(
        n >= 3,
        "the bad order's events were not all dead-lettered: {letters:?}"
    );
    ensure!(
        letters
            .iter()
            .all(|d| d.key_text() == bad && d.parked && d.pending(1)),
        "{letters:?}"
    );
    ensure!(letters[0].reason.contains("is broken"), "{:?}", letters[0]);
    ensure!(
        letters
            .iter()
            .any(|d| d.event_type.as_deref() == Some("OrderPlaced")),
        "{letters:?}"
    );
    ensure!(store.get(&ORDERS_BY_ID, 1, &key(&bad)).await?.is_none());
    let good_row = store
        .get(&ORDERS_BY_ID, 1, &key(&good))
        .await?
        .context("good order")?;
    ensure!(status_of(&good_row) == "COMPLETED", "{good_row:?}");

    // Still broken: everything is dead-lettered again, in order.
    let seq = dlq::request_retry(store.as_ref(), "orders").await?;
    let done = dlq::await_retry(store.as_ref(), "orders", seq, Duration::from_secs(60)).await?;
    ensure!(done.succeeded == 0 && done.failed == n, "{done:?}");
    let letters = list().await?;
    ensure!(letters.len() == usize::try_from(2 * n)?, "{letters:?}");
    ensure!(
        letters[usize::try_from(n)?..]
            .iter()
            .all(|d| d.retry_of.is_some() && d.parked && !d.retried),
        "{letters:?}"
    );

    // Fixed: the order comes back complete and its key is unparked.
    projection.failing.store(false, Ordering::SeqCst);
    let seq = dlq::request_retry(store.as_ref(), "orders").await?;
    let done = dlq::await_retry(store.as_ref(), "orders", seq, Duration::from_secs(60)).await?;
    ensure!(done.succeeded == n && done.failed == 0, "{done:?}");
    let row = store
        .get(&ORDERS_BY_ID, 1, &key(&bad))
        .await?
        .context("bad order back")?;
    ensure!(status_of(&row) == "COMPLETED", "{row:?}");
    ensure!(dlq::parked_keys(store.as_ref(), "orders", 1)
        .await?
        .is_empty());
    ensure!(
        list().await?.iter().all(|d| !d.pending(1)),
        "pending after the retry"
    );
    // Nothing new to do: the lag is (still) exactly 0.
    caught_up(&projectors, 1).await?;
    projectors.stop().await?;
    app.stop().await
}
