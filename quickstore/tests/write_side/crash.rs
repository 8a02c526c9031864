//! kill -9 the process running the saga mid-run, restart it: every saga
//! still ends, and no step was done twice.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use platform::testing::TestAdapter;
use quickstore::system::System;
use schemas::{Context, OrderFulfillmentStep};
use serde_json::json;

use crate::app::{self, settings};

struct Server {
    child: Child,
    url: String,
}

fn start(settings: &platform::config::Settings, url_file: &std::path::Path) -> Result<Server> {
    let _ = std::fs::remove_file(url_file);
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") {
            command.env_remove(key);
        }
    }
    command
        .env("QS_DATA_DIR", &settings.data_dir)
        .env("QS_TOPIC_PREFIX", &settings.topic_prefix)
        .env("QS_PARTITIONS", settings.partitions.to_string())
        .env("QS_PAYMENT_WEBHOOK_SECRET", app::WEBHOOK_SECRET)
        .env(
            "QS_EVENT_LOG",
            match settings.event_log {
                platform::config::EventLogBackend::Kafka => "kafka",
                platform::config::EventLogBackend::Embedded => "embedded",
            },
        )
        .env("QS_KAFKA_BOOTSTRAP", &settings.kafka_bootstrap)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--simulated-couriers",
            "2",
            "--seed-demo",
            "--url-file",
        ])
        .arg(url_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = &settings.schema_registry_url {
        command.env("QS_SCHEMA_REGISTRY_URL", url);
    }
    let mut child = command.spawn().context("starting quickstore serve")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(url) = std::fs::read_to_string(url_file) {
            return Ok(Server { child, url });
        }
        if let Some(status) = child.try_wait()? {
            bail!("quickstore serve exited early: {status}");
        }
        ensure!(
            Instant::now() < deadline,
            "quickstore serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &mut Child, sig: &str) -> Result<()> {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()?;
    child.wait()?;
    Ok(())
}

pub async fn saga_survives_kill_9(adapter: TestAdapter) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = settings(adapter, dir.path())?;
    let url_file = dir.path().join("api.url");
    let mut server = start(&settings, &url_file)?;
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{}/auth/login", server.url))
        .json(&json!({"email": quickstore::seed::DEMO_CUSTOMER, "password": quickstore::seed::DEMO_PASSWORD}))
        .send().await?.json().await?;
    let token = login["access_token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let orders = futures::future::join_all((0..40).map(|i| {
        let (http, url, token) = (http.clone(), server.url.clone(), token.clone());
        async move {
            // Enough stock for all (the demo shop has 100 mugs, 250 teas).
            let quantity = 1 + i % 2;
            let response = http.post(format!("{url}/orders")).bearer_auth(&token)
                .json(&json!({"lines": [{"sku": "MUG-1", "quantity": quantity}, {"sku": "TEA-1", "quantity": 1}],
                    "shipping_address": app::address(), "payment": {"card_number": app::APPROVE}}))
                .send().await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            ensure!(status.is_success(), "{status} {body}");
            Ok::<String, anyhow::Error>(body["order_id"].as_str().unwrap_or_default().to_owned())
        }
    })).await;
    let orders: Vec<String> = orders.into_iter().collect::<Result<_>>()?;
    // Mid-run: sagas are reserving, authorizing, delivering.
    signal(&mut server.child, "-KILL")?;
    server = start(&settings, &url_file)?;

    // Let it finish; check (the embedded log is one process's: stop first).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        signal(&mut server.child, "-TERM")?;
        let system = System::connect(settings.clone()).await?;
        let done = check(&system, &orders).await;
        drop(system);
        match done {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline && e.to_string().contains("not yet") => {
                server = start(&settings, &url_file)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every order completed once; every step and command at most once.
async fn check(system: &System, orders: &[String]) -> Result<()> {
    let mut per_aggregate: HashMap<(String, String), Vec<String>> = HashMap::new();
    for context in [
        Context::Orders,
        Context::Payments,
        Context::Deliveries,
        Context::Inventory,
    ] {
        let topic = system.topics.events(context);
        for record in platform::eventlog::read_topic(system.log.as_ref(), &topic).await? {
            let (envelope, event) = system
                .codec
                .decode_event::<schemas::AnyEvent>(record.value.as_deref().unwrap_or_default())
                .await?;
            let name = schemas::EventPayload::record_name(&event);
            let short = name.rsplit('.').next().unwrap_or(name).to_owned();
            let key = match &event {
                schemas::AnyEvent::Inventory(
                    schemas::inventory::InventoryEvent::StockReserved(e),
                ) => (e.order_id.clone(), format!("{short}#{}", e.line_no)),
                schemas::AnyEvent::Inventory(
                    schemas::inventory::InventoryEvent::StockCommitted(e),
                ) => (e.order_id.clone(), format!("{short}#{}", e.line_no)),
                schemas::AnyEvent::Inventory(_) => continue,
                _ => (envelope.aggregate_id.clone(), short.clone()),
            };
            per_aggregate
                .entry(key)
                .or_default()
                .push(envelope.event_id.clone());
        }
    }
    for order in orders {
        ensure!(
            !per_aggregate.contains_key(&(order.clone(), "OrderRejected".into())),
            "order {order} was rejected: the test must have stock for every order"
        );
        if !per_aggregate.contains_key(&(order.clone(), "OrderCompleted".into())) {
            let mut seen: Vec<&String> = per_aggregate
                .keys()
                .filter(|(o, _)| o == order)
                .map(|(_, t)| t)
                .collect();
            seen.sort();
            bail!("not yet: order {order} has not completed (so far: {seen:?})");
        }
        for event in [
            "OrderPlaced",
            "OrderConfirmed",
            "OrderShipped",
            "OrderCompleted",
            "PaymentAuthorized",
            "PaymentCaptured",
            "ShipmentScheduled",
            "CourierAssigned",
            "ShipmentPickedUp",
            "ShipmentDelivered",
            "StockReserved#1",
            "StockReserved#2",
            "StockCommitted#1",
            "StockCommitted#2",
        ] {
            let n = per_aggregate
                .get(&(order.clone(), event.into()))
                .map_or(0, Vec::len);
            ensure!(n == 1, "order {order}: {event} happened {n} times");
        }
    }
    // The saga's own steps: versions 1..n per order, no gap, no repeat.
    let topic = system.topics.saga_events(schemas::ORDER_FULFILLMENT);
    let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for record in platform::eventlog::read_topic(system.log.as_ref(), &topic).await? {
        let step: OrderFulfillmentStep = system
            .codec
            .decode_named(record.value.as_deref().unwrap_or_default())
            .await?;
        versions
            .entry(step.envelope.aggregate_id)
            .or_default()
            .push(step.envelope.version);
    }
    for order in orders {
        let v = versions.get(order).cloned().unwrap_or_default();
        let expected: Vec<i64> = (1..=i64::try_from(v.len()).unwrap_or(0)).collect();
        ensure!(!v.is_empty() && v == expected, "saga {order} steps {v:?}");
    }
    Ok(())
}
