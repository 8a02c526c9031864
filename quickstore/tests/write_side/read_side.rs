//! The orders projection over the saga's scenarios: on the embedded log
//! with the embedded store, and on real Kafka with a real CQL node. Rows
//! hold exactly what the events say, and a rebuild from offset 0 into a new
//! generation reads back identical.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use platform::readstore::{CqlConfig, CqlStore, EmbeddedStore, ReadStore, Row, Value};
use platform::testing::TestAdapter;
use projectors::projection::Projection;
use projectors::projections::orders::{OrdersProjection, ORDERS_BY_ID, ORDER_TIMELINE};
use projectors::runtime::{Projector, ProjectorConfig, ProjectorStats};
use schemas::Context;
use tokio::sync::watch;

use crate::app::{spawn_app_with, TestApp, APPROVE, DECLINE};

pub(crate) async fn store(adapter: TestAdapter) -> Result<Arc<dyn ReadStore>> {
    Ok(match adapter {
        TestAdapter::Embedded => Arc::new(EmbeddedStore::in_memory()?),
        TestAdapter::Kafka => {
            let contact_points = platform::testing::cql_contact_points()?;
            let keyspace = format!(
                "qs_test_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            Arc::new(CqlStore::connect(CqlConfig::new(contact_points, keyspace)).await?)
        }
    })
}

/// Runs a projector of generation `generation` (its own group) until it
/// has passed every input topic's end, then stops it.
async fn project(app: &TestApp, store: &Arc<dyn ReadStore>, generation: u32) -> Result<()> {
    project_with(app, store, Arc::new(OrdersProjection), generation).await
}

/// [`project`] for any projection.
pub(crate) async fn project_with(
    app: &TestApp,
    store: &Arc<dyn ReadStore>,
    projection: Arc<dyn Projection>,
    generation: u32,
) -> Result<()> {
    // Its own group per generation: `<prefix>projector.orders.g<generation>`.
    let config = ProjectorConfig::new(&app.system.topics, projection.as_ref(), generation);
    let (tx, mut rx) = watch::channel(ProjectorStats::default());
    let (stop, stopped) = watch::channel(false);
    let topics = projection.topics(&app.system.topics);
    let projector = Projector::new(
        Arc::clone(&app.system.log),
        Arc::clone(&app.system.codec),
        Arc::clone(store),
        projection,
        app.system.topics.clone(),
        config,
    )
    .with_progress(tx);
    let running = tokio::spawn(projector.run(stopped));
    // The ends to reach (read_committed ends, markers included on Kafka:
    // positions pass them once the last record before them is projected).
    let mut targets = Vec::new();
    for topic in &topics {
        for p in 0..app.system.settings.partitions {
            let tp = platform::eventlog::TopicPartition::new(topic.clone(), p);
            let end = app.system.log.end_offset(&tp).await?;
            let last = platform::eventlog::read_topic(app.system.log.as_ref(), topic)
                .await?
                .into_iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset + 1)
                .max();
            if let Some(last) = last {
                targets.push(((topic.clone(), p), last.min(end)));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done = {
            let stats = rx.borrow();
            targets
                .iter()
                .all(|(k, end)| stats.positions.get(k).is_some_and(|p| p >= end))
        };
        if done {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the projector did not catch up"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
    let _ = stop.send(true);
    running.await??;
    Ok(())
}

async fn order_row(store: &Arc<dyn ReadStore>, generation: u32, order: &str) -> Result<Row> {
    let key: Row = [("order_id".to_owned(), Value::Text(order.to_owned()))].into();
    Ok(store
        .get(&ORDERS_BY_ID, generation, &key)
        .await?
        .unwrap_or_default())
}

async fn timeline(store: &Arc<dyn ReadStore>, generation: u32, order: &str) -> Result<Vec<Row>> {
    let key: Row = [("order_id".to_owned(), Value::Text(order.to_owned()))].into();
    let mut rows = Vec::new();
    let mut page = None;
    loop {
        let p = store
            .scan(&ORDER_TIMELINE, generation, &key, page.as_ref(), 2)
            .await?;
        rows.extend(p.rows);
        match p.next {
            Some(next) => page = Some(next),
            None => return Ok(rows),
        }
    }
}

fn text(row: &Row, column: &str) -> String {
    match row.get(column) {
        Some(Value::Text(t)) => t.clone(),
        other => format!("{other:?}"),
    }
}

pub async fn orders_projection_holds_what_the_events_say(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app_with(adapter, |o| {
        o.simulated_couriers = vec!["courier-sim".into()]
    })
    .await?;
    let item = format!(
        "PROJ-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    );
    app.product(&item, 1500, 3).await?;
    let (customer_id, customer) = app.customer("pia").await?;
    let mut orders = Vec::new();
    for (quantity, card) in [(1, APPROVE), (1, DECLINE), (5, APPROVE)] {
        let (status, body) = app
            .place_order(&customer, &[(&item, quantity)], card)
            .await?;
        ensure!(status.is_success(), "{status} {body}");
        orders.push(body["order_id"].as_str().unwrap().to_owned());
    }
    app.wait_for(Context::Orders, &orders[0], "OrderCompleted")
        .await?;
    app.wait_for(Context::Orders, &orders[1], "OrderCancelled")
        .await?;
    app.wait_for(Context::Orders, &orders[2], "OrderRejected")
        .await?;

    let store = store(adapter).await?;
    project(&app, &store, 1).await?;
    let done = order_row(&store, 1, &orders[0]).await?;
    ensure!(text(&done, "status") == "COMPLETED", "{done:?}");
    ensure!(
        text(&done, "payment_status") == "CAPTURED"
            && text(&done, "shipment_status") == "DELIVERED",
        "{done:?}"
    );
    ensure!(
        done.get("total_minor") == Some(&Value::BigInt(1500 + 499)),
        "{done:?}"
    );
    ensure!(
        text(&done, "customer_id") == customer_id && text(&done, "courier_id") == "courier-sim",
        "{done:?}"
    );
    let declined = order_row(&store, 1, &orders[1]).await?;
    ensure!(
        text(&declined, "status") == "CANCELLED" && text(&declined, "payment_status") == "DECLINED",
        "{declined:?}"
    );
    ensure!(
        text(&declined, "status_reason").contains("declined"),
        "{declined:?}"
    );
    let rejected = order_row(&store, 1, &orders[2]).await?;
    ensure!(
        text(&rejected, "status") == "REJECTED"
            && rejected.get("payment_status") == Some(&Value::Null),
        "{rejected:?}"
    );
    // The timeline: every status change of the order, its payment, its shipment.
    let steps: Vec<String> = timeline(&store, 1, &orders[0])
        .await?
        .iter()
        .map(|r| text(r, "event_type"))
        .collect();
    let mut expected = vec![
        "OrderPlaced",
        "PaymentAuthorized",
        "OrderConfirmed",
        "ShipmentScheduled",
        "CourierAssigned",
        "ShipmentPickedUp",
        "OrderShipped",
        "PaymentCaptured",
        "ShipmentDelivered",
        "OrderCompleted",
    ];
    let mut sorted = steps.clone();
    sorted.sort();
    expected.sort_unstable();
    ensure!(sorted == expected, "timeline {steps:?}");

    // Rebuild from offset 0 into generation 2: identical rows.
    project(&app, &store, 2).await?;
    for order in &orders {
        ensure!(
            order_row(&store, 1, order).await? == order_row(&store, 2, order).await?,
            "order {order} differs after a rebuild"
        );
        ensure!(
            timeline(&store, 1, order).await? == timeline(&store, 2, order).await?,
            "timeline {order} differs"
        );
    }
    app.stop().await
}
