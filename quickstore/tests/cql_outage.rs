//! The CQL node goes away for 30 s while orders keep flowing (real Kafka, a
//! real Cassandra node of this test's own): the projectors retry, nothing
//! is dead-lettered, they catch up once the node is back, nothing is lost,
//! and the lag metric falls back to 0. The query API answers 503 (with
//! Retry-After), not 500, while the node is down.
//!
//! Its own node, so stopping it disturbs no other test; a test binary of
//! its own, so cargo runs it alone. `QS_OUTAGE_SECS` shortens the outage
//! for a quick local run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

#[path = "write_side/app.rs"]
#[allow(
    dead_code,
    reason = "the write-side suite's helpers; this test uses some"
)]
mod app;
#[path = "support/own_server.rs"]
mod own_server;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use platform::readstore::{CqlConfig, CqlStore, ReadStore};
use platform::testing::TestAdapter;
use quickstore::read_side::{ReadSide, ReadSideOptions};
use reqwest::StatusCode;
use schemas::Context;

use app::{spawn_app_with, APPROVE};
use own_server::{Kind, OwnServer};

async fn order_status(
    http: &reqwest::Client,
    side: &ReadSide,
    admin: &str,
    id: &str,
) -> Result<(StatusCode, serde_json::Value)> {
    let response = http
        .get(format!("{}/orders/{id}", side.url()))
        .bearer_auth(admin)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or_default()))
}

async fn outage(adapter: TestAdapter) -> Result<()> {
    let outage = Duration::from_secs(
        std::env::var("QS_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let node = OwnServer::start(Kind::Cql, "outage").await?;
    let mut app = spawn_app_with(adapter, |o| {
        o.simulated_couriers = vec!["courier-sim".into()]
    })
    .await?;
    let keyspace = format!(
        "qs_outage_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let mut config = CqlConfig::new(vec![node.address.clone()], keyspace);
    // Fail fast while the node is down, so the retries are visible.
    config.request_timeout = Duration::from_secs(2);
    let store: Arc<dyn ReadStore> = Arc::new(CqlStore::connect(config).await?);
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.service.status_interval = Duration::from_millis(250);
    options.service.pointer_poll = Duration::from_millis(250);
    options.query.generation_refresh = Duration::from_millis(250);
    let side = ReadSide::start(&app.system, store, options).await?;
    let http = reqwest::Client::new();
    let admin = app.admin().await?;
    let item = format!(
        "OUTAGE-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    );
    app.product(&item, 700, 10_000).await?;
    let (_, customer) = app.customer("olga").await?;
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(place_one(&app, &customer, &item).await?);
    }
    let mut status = side.watch().context("projectors run")?;
    wait_lag_zero(&mut status, Duration::from_secs(120)).await?;
    let before = side.status();
    let retries_before: u64 = before.projections.values().map(|p| p.store_retries).sum();

    // The node goes away; orders keep coming.
    node.stop().await?;
    let down_since = tokio::time::Instant::now();
    let mut saw_503 = false;
    while down_since.elapsed() < outage {
        orders.push(place_one(&app, &customer, &item).await?);
        let (code, body) = order_status(&http, &side, &admin, &orders[0]).await?;
        match code {
            StatusCode::SERVICE_UNAVAILABLE => saw_503 = true,
            // The query API's cache may still answer from a live connection
            // in the first moments; anything else is wrong.
            StatusCode::OK => {}
            other => bail!("while the node is down the query API answered {other} {body}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(saw_503, "the query API never said it was unavailable");
    let during = side.status();
    let retries_during: u64 = during.projections.values().map(|p| p.store_retries).sum();
    ensure!(
        retries_during > retries_before,
        "no projector retried the store: {during:#?}"
    );
    ensure!(
        during.lag().unwrap_or(1) > 0,
        "lag stayed 0 while nothing could be written"
    );

    // Back: they catch up, nothing lost, nothing dead-lettered.
    node.resume().await?;
    for id in &orders {
        app.wait_for(Context::Orders, id, "OrderCompleted").await?;
    }
    wait_lag_zero(&mut status, Duration::from_secs(180)).await?;
    let after = side.status();
    ensure!(
        after
            .projections
            .values()
            .all(|p| p.dead_letters == 0 && p.lag == Some(0)),
        "{after:#?}"
    );
    for id in &orders {
        let (code, order) = order_status(&http, &side, &admin, id).await?;
        ensure!(code == StatusCode::OK, "order {id}: {code} {order}");
        ensure!(
            order["status"] == "COMPLETED"
                && order["payment"]["status"] == "CAPTURED"
                && order["shipment"]["status"] == "DELIVERED",
            "order {id} after the outage: {order}"
        );
    }
    side.stop().await?;
    app.stop().await?;
    drop(node);
    Ok(())
}

async fn place_one(app: &app::TestApp, customer: &str, item: &str) -> Result<String> {
    let (status, body) = app.place_order(customer, &[(item, 1)], APPROVE).await?;
    ensure!(status.is_success(), "{status} {body}");
    Ok(body["order_id"].as_str().unwrap().to_owned())
}

async fn wait_lag_zero(
    status: &mut tokio::sync::watch::Receiver<projectors::service::ServiceStatus>,
    within: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    let since = status.borrow_and_update().measured;
    loop {
        {
            let now = status.borrow_and_update();
            if now.measured > since + 1 && now.lag() == Some(0) {
                return Ok(());
            }
        }
        if tokio::time::timeout_at(deadline, status.changed())
            .await
            .is_err()
        {
            bail!(
                "the lag did not reach 0 within {within:?}: {:#?}",
                *status.borrow()
            );
        }
    }
}

#[test]
fn projectors_ride_out_a_cql_outage() {
    if let Err(e) = platform::testing::run_case(outage(TestAdapter::Kafka)) {
        panic!("{e}");
    }
}
