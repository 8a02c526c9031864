//! `quickstore check` on both twins (embedded log + store; real Kafka + a
//! real CQL node): after real orders through every saga path (approved and
//! delivered, declined, out of stock, delivery failure, cancelled) every
//! invariant holds with the expected counts — in the library and as the
//! binary (exit 0) — then each kind of damage written behind the system's
//! back is found by its invariant: a command with no outcome (first in
//! flight, then consumed and missing), a duplicated event id, a version
//! gap, a stock event that breaks conservation, a payment captured twice,
//! a refund beyond the capture, a read-model row changed in the store; the
//! binary then exits 1 with the report, and 2 when it cannot run.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use platform::eventlog::{EventLog, GroupConfig, OffsetCommit, TopicPartition};
use platform::readstore::{
    CqlConfig, CqlStore, EmbeddedStore, Mutation, MutationKind, ReadStore, Value,
};
use platform::testing::TestAdapter;
use quickstore::check::scan;
use quickstore::check::{CheckOptions, Report};
use quickstore::read_side::{ReadSide, ReadSideOptions};
use reqwest::Method;
use schemas::{AnyCommand, AnyEvent, CommandEnvelope, Context, EventEnvelope};
use serde_json::{json, Value as Json};

use crate::app::{spawn_app, TestApp, APPROVE, DECLINE};
use crate::audit::{append, quickstore, raw_log, release_log, run};
use crate::cases::assign_and_pick_up;
use crate::read_models::caught_up;

fn unique(app: &TestApp, name: &str) -> String {
    format!(
        "{name}-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    )
}

fn order_id(body: &Json) -> String {
    body["order_id"].as_str().unwrap_or_default().to_owned()
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

/// The checker as a library, over `log` (and `store`'s read models).
async fn check(app: &TestApp, log: &dyn EventLog, store: Option<&dyn ReadStore>) -> Result<Report> {
    let topics = scan::topics(log, &app.system.topics).await?;
    let options = CheckOptions {
        now_ms: now_ms(),
        saga_timeout_ms: None,
        // The cases here are at rest: a row that differs is tampered with.
        follow: Duration::from_secs(2),
    };
    scan::check(
        log,
        &app.system.codec,
        &app.system.topics,
        &topics,
        store,
        &options,
    )
    .await
}

fn count(report: &Report, invariant: &str, name: &str) -> i64 {
    report
        .invariant(invariant)
        .and_then(|i| i.checked.get(name).copied())
        .unwrap_or(-1)
}

fn has(report: &Report, invariant: &str, kind: &str) -> bool {
    report
        .kinds()
        .iter()
        .any(|(i, k)| *i == invariant && k == kind)
}

/// The read store (its CQL keyspace, for the binary) and the read side on it.
async fn read_side(
    app: &TestApp,
    adapter: TestAdapter,
) -> Result<(Arc<dyn ReadStore>, Option<String>, ReadSide)> {
    let (store, keyspace): (Arc<dyn ReadStore>, Option<String>) = match adapter {
        TestAdapter::Embedded => (Arc::new(EmbeddedStore::in_memory()?), None),
        TestAdapter::Kafka => {
            let keyspace = format!(
                "qs_check_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let points = platform::testing::cql_contact_points()?;
            (
                Arc::new(CqlStore::connect(CqlConfig::new(points, keyspace.clone())).await?),
                Some(keyspace),
            )
        }
    };
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.keys = app.keys();
    options.service.pointer_poll = Duration::from_millis(200);
    options.service.status_interval = Duration::from_millis(250);
    let side = ReadSide::start(&app.system, Arc::clone(&store), options).await?;
    Ok((store, keyspace, side))
}

/// The last event of aggregate `id` on `topic`: (envelope, raw value).
async fn last_event(
    app: &TestApp,
    log: &dyn EventLog,
    topic: &str,
    id: &str,
) -> Result<(EventEnvelope, Vec<u8>)> {
    let mut last: Option<(EventEnvelope, Vec<u8>)> = None;
    for record in platform::eventlog::read_topic(log, topic).await? {
        if record.key != id.as_bytes() {
            continue;
        }
        let value = record.value.clone().unwrap_or_default();
        let (envelope, _) = app.system.codec.decode_event::<AnyEvent>(&value).await?;
        if last
            .as_ref()
            .is_none_or(|(e, _)| envelope.version > e.version)
        {
            last = Some((envelope, value));
        }
    }
    last.with_context(|| format!("no events of {id} in {topic}"))
}

/// Appends `event` to `id`'s chain as version `version`, sealed onto the
/// aggregate's current head: the chain stays intact unless `version`
/// skips one.
async fn forge(
    app: &TestApp,
    log: &dyn EventLog,
    context: Context,
    id: &str,
    version_step: i64,
    event: AnyEvent,
) -> Result<()> {
    let topic = app.system.topics.events(context);
    let (head, _) = last_event(app, log, &topic, id).await?;
    let mut envelope = EventEnvelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        version: head.version + version_step,
        occurred_at: head.occurred_at + 1,
        command_id: uuid::Uuid::new_v4().to_string(),
        correlation_id: uuid::Uuid::new_v4().to_string(),
        causation_id: uuid::Uuid::new_v4().to_string(),
        actor: "admin:intruder".into(),
        prev_hash: head.hash.clone(),
        hash: Vec::new(),
        ..head
    };
    let bytes = app
        .system
        .codec
        .encode_sealed_event(&topic, &mut envelope, &event)?;
    append(log, &topic, id, bytes).await?;
    Ok(())
}

/// Commits the orders processor group's offset at the commands' end, as a
/// processor that consumed a command and lost its outcome would have.
async fn consume_commands_behind_the_processors_back(
    app: &TestApp,
    log: &dyn EventLog,
    key: &str,
) -> Result<()> {
    let topic = app.system.topics.commands(Context::Orders);
    let partitions = log.partition_count(&topic).await?;
    let tp = TopicPartition::new(
        topic.clone(),
        platform::partitioner::partition_for_key(key.as_bytes(), partitions),
    );
    let end = log.end_offset(&tp).await?;
    let group = format!("{}orders.command-processor", app.system.topics.prefix);
    let mut member = log.join_group(GroupConfig::new(group, vec![topic])).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !member.assignment().contains(&tp) {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "never got {tp} assigned"
        );
        member.poll(100, Duration::from_millis(300)).await?;
    }
    member
        .commit_offsets(&[OffsetCommit {
            tp,
            next_offset: end,
            metadata: String::new(),
        }])
        .await?;
    member.close().await?;
    Ok(())
}

/// What the scenario left.
struct Scenario {
    store: Arc<dyn ReadStore>,
    keyspace: Option<String>,
    item: String,
    scarce: String,
    completed: String,
    declined: String,
    failed: String,
}

/// Orders through every saga path, checked clean by the library, then the
/// system stopped. On a runtime of its own, dropped at the end: every task
/// of the write and read sides (and their handles on the embedded log) go
/// with it, so the binary and the intruder can open the log directory.
fn scenario(adapter: TestAdapter) -> Result<(TestApp, Scenario)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = runtime.block_on(async {
        let mut app = spawn_app(adapter).await?;
        let (store, keyspace, side) = read_side(&app, adapter).await?;
        let (item, scarce) = (unique(&app, "ITEM"), unique(&app, "SCARCE"));
        app.product(&item, 1000, 10).await?;
        app.product(&scarce, 500, 1).await?;
        let (_, customer) = app.customer("ada").await?;
        let courier = app.courier("cora").await?;

        // Approved and delivered.
        let (_, body) = app.place_order(&customer, &[(&item, 2)], APPROVE).await?;
        let completed = order_id(&body);
        assign_and_pick_up(&mut app, &completed, &courier).await?;
        app.ok(
            Method::POST,
            &format!("/shipments/{completed}/delivery"),
            &courier.1,
            json!({"received_by": "Ada"}),
        )
        .await?;
        // Declined card; out of stock.
        let (_, body) = app.place_order(&customer, &[(&item, 1)], DECLINE).await?;
        let declined = order_id(&body);
        let (_, body) = app.place_order(&customer, &[(&scarce, 2)], APPROVE).await?;
        let _out_of_stock = order_id(&body);
        // Delivery failure: refunded, stock returned.
        let (_, body) = app.place_order(&customer, &[(&item, 1)], APPROVE).await?;
        let failed = order_id(&body);
        assign_and_pick_up(&mut app, &failed, &courier).await?;
        app.ok(
            Method::POST,
            &format!("/shipments/{failed}/failure"),
            &courier.1,
            json!({"reason": "address not found"}),
        )
        .await?;
        // Cancelled by the customer before pickup.
        let (_, body) = app.place_order(&customer, &[(&item, 1)], APPROVE).await?;
        let cancelled = order_id(&body);
        app.wait_for(Context::Deliveries, &cancelled, "ShipmentScheduled")
            .await?;
        app.ok(
            Method::POST,
            &format!("/orders/{cancelled}/cancellation"),
            &customer,
            json!({"reason": "changed my mind"}),
        )
        .await?;

        // Quiet once every saga is terminal, every command answered and the
        // projectors have caught up: then every invariant holds.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let report = loop {
            caught_up(&side).await?;
            let report = check(&app, app.system.log.as_ref(), Some(store.as_ref())).await?;
            if report.ok {
                break report;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the checker never passed:\n{}",
                report.text()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let text = report.text();
        ensure!(
            count(&report, "sagas-terminal-or-timely", "sagas") == 5
                && count(&report, "sagas-terminal-or-timely", "terminal") == 5,
            "{text}"
        );
        ensure!(
            count(&report, "money-conservation", "orders") == 5
                && count(&report, "money-conservation", "completed") == 1
                && count(&report, "money-conservation", "cancelled_or_rejected") == 4,
            "{text}"
        );
        // 2 × 10.00 + 4.99 shipping captured and kept; 1 × 10.00 + 4.99
        // captured and refunded on the failed delivery.
        ensure!(
            count(&report, "money-conservation", "captured_minor") == 2499 + 1499
                && count(&report, "money-conservation", "refunded_minor") == 1499
                && count(&report, "money-conservation", "completed_total_minor") == 2499,
            "{text}"
        );
        ensure!(
            count(&report, "stock-conservation", "skus") == 2
                && count(&report, "stock-conservation", "available") == 8 + 1
                && count(&report, "stock-conservation", "committed") == 3,
            "{text}"
        );
        ensure!(
            count(&report, "command-outcomes", "in_flight") == 0
                && count(&report, "command-outcomes", "commands") > 20,
            "{text}"
        );
        ensure!(
            count(&report, "read-models", "differing_rows") == 0
                && count(&report, "read-models", "rows") > 20,
            "{text}"
        );
        ensure!(
            count(&report, "aggregate-chains", "aggregates") > 15,
            "{text}"
        );
        // The system stops; from here on only the intruder writes.
        side.stop().await?;
        if let Some(write_side) = app.side.take() {
            write_side.stop().await?;
        }
        Ok::<_, anyhow::Error>((
            app,
            Scenario {
                store,
                keyspace,
                item,
                scarce,
                completed,
                declined,
                failed,
            },
        ))
    });
    drop(runtime);
    out
}

pub async fn checker_passes_then_finds_every_tampering(adapter: TestAdapter) -> Result<()> {
    let (
        mut app,
        Scenario {
            store,
            keyspace,
            item,
            scarce,
            completed,
            declined,
            failed,
        },
    ) = tokio::task::spawn_blocking(move || scenario(adapter)).await??;
    // A CQL session lives on the runtime that opened it: open another.
    let store: Arc<dyn ReadStore> = match &keyspace {
        Some(ks) => Arc::new(
            CqlStore::connect(CqlConfig::new(
                platform::testing::cql_contact_points()?,
                ks.clone(),
            ))
            .await?,
        ),
        None => store,
    };

    // The binary agrees: exit 0 (on the embedded twin the log is one
    // process's at a time, and its read store lived in this process).
    let _scratch = release_log(&mut app, adapter)?;
    // Wait until the stopped tasks let go of the directory.
    drop(raw_log(&app, adapter).await?);
    let json_file = app.system.settings.data_dir.join("check.json");
    let binary = |extra: &[&str]| {
        let mut command = quickstore(&app, adapter);
        if let Some(ks) = &keyspace {
            command
                .env("QS_READ_STORE", "cql")
                .env(
                    "QS_CQL_CONTACT_POINTS",
                    platform::testing::cql_contact_points()
                        .unwrap_or_default()
                        .join(","),
                )
                .env("QS_CQL_KEYSPACE", ks);
        }
        command
            .arg("check")
            .args(["--follow", "2s"])
            .arg("--json")
            .arg(&json_file);
        if keyspace.is_none() {
            command.arg("--skip-read-models");
        }
        command.args(extra);
        command
    };
    let (code, stdout, stderr) = run(binary(&[])).await?;
    ensure!(code == 0, "exit {code}\n{stdout}\n{stderr}");
    for line in [
        "PASS  command-outcomes",
        "PASS  unique-event-ids",
        "PASS  aggregate-chains",
        "PASS  sagas-terminal-or-timely",
        "PASS  stock-conservation",
        "PASS  money-conservation",
        "OK: all 7 invariants hold",
    ] {
        ensure!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    let body: Json = serde_json::from_slice(&std::fs::read(&json_file)?)?;
    ensure!(
        body["ok"] == true && body["invariants"].as_array().map(Vec::len) == Some(7),
        "{body}"
    );

    // Behind the system's back.
    let raw_handle = raw_log(&app, adapter).await?;
    let log = raw_handle.as_ref();
    let store = store.as_ref();

    // 1. A command with no outcome: first not consumed (in flight), then
    //    consumed by a "processor" that lost its outcome (missing).
    let topic = app.system.topics.commands(Context::Orders);
    let envelope = CommandEnvelope {
        command_id: uuid::Uuid::new_v4().to_string(),
        aggregate_type: "Order".into(),
        aggregate_id: completed.clone(),
        expected_version: None,
        issued_at: now_ms(),
        correlation_id: uuid::Uuid::new_v4().to_string(),
        causation_id: uuid::Uuid::new_v4().to_string(),
        actor: "admin:intruder".into(),
        reply_to: None,
    };
    let command = AnyCommand::Orders(schemas::orders::OrdersCommand::CancelOrder(
        schemas::orders::CancelOrder {
            reason: "forged".into(),
        },
    ));
    let bytes = app
        .system
        .codec
        .encode_command(&topic, &envelope, &command)?;
    append(log, &topic, &completed, bytes).await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "command-outcomes", "in-flight")
            && !has(&report, "command-outcomes", "missing-outcome"),
        "in flight:\n{}",
        report.text()
    );
    consume_commands_behind_the_processors_back(&app, log, &completed).await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "command-outcomes", "missing-outcome"),
        "a command with no outcome:\n{}",
        report.text()
    );

    // 2. A duplicated event: the completed order's last event again.
    let orders_topic = app.system.topics.events(Context::Orders);
    let (_, raw) = last_event(&app, log, &orders_topic, &completed).await?;
    append(log, &orders_topic, &completed, raw).await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "unique-event-ids", "duplicate-event-id"),
        "a duplicated event:\n{}",
        report.text()
    );

    // 3. A version gap: a properly sealed reprice two versions ahead.
    forge(
        &app,
        log,
        Context::Catalog,
        &item,
        2,
        AnyEvent::Catalog(schemas::catalog::CatalogEvent::ProductRepriced(
            schemas::catalog::ProductRepriced {
                price_minor: 1,
                currency: "EUR".into(),
                previous_price_minor: 1000,
                previous_currency: "EUR".into(),
            },
        )),
    )
    .await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "aggregate-chains", "version-gap"),
        "a version gap:\n{}",
        report.text()
    );
    ensure!(
        !has(&report, "stock-conservation", "level-mismatch"),
        "stock still conserved:\n{}",
        report.text()
    );

    // 4. A stock event that breaks conservation: 5 units in, 50 claimed.
    forge(
        &app,
        log,
        Context::Inventory,
        &scarce,
        1,
        AnyEvent::Inventory(schemas::inventory::InventoryEvent::StockRestocked(
            schemas::inventory::StockRestocked {
                quantity: 5,
                on_hand_after: 51,
                reference: None,
                available_after: Some(51),
            },
        )),
    )
    .await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "stock-conservation", "level-mismatch"),
        "a stock event breaking conservation:\n{}",
        report.text()
    );
    ensure!(
        !has(&report, "money-conservation", "captured-twice"),
        "money still conserved:\n{}",
        report.text()
    );

    // 5. A payment captured twice, then a refund beyond the capture.
    forge(
        &app,
        log,
        Context::Payments,
        &completed,
        1,
        AnyEvent::Payments(schemas::payments::PaymentsEvent::PaymentCaptured(
            schemas::payments::PaymentCaptured {
                order_id: completed.clone(),
                amount_minor: 2499,
                currency: "EUR".into(),
                gateway_reference: "forged".into(),
            },
        )),
    )
    .await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "money-conservation", "captured-twice"),
        "a payment captured twice:\n{}",
        report.text()
    );
    forge(
        &app,
        log,
        Context::Payments,
        &failed,
        1,
        AnyEvent::Payments(schemas::payments::PaymentsEvent::PaymentRefunded(
            schemas::payments::PaymentRefunded {
                order_id: failed.clone(),
                amount_minor: 1,
                currency: "EUR".into(),
                refunded_total_minor: 1500,
                reason: None,
                gateway_reference: "forged".into(),
            },
        )),
    )
    .await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "money-conservation", "refund-exceeds-capture"),
        "a refund beyond the capture:\n{}",
        report.text()
    );

    // 6. A read-model row changed in the store: the declined order shown
    //    as delivered (newer than any event's write).
    let generation = projectors::generations::serving(store, "orders").await?;
    let mut row = platform::readstore::Row::new();
    row.insert("order_id".into(), Value::Text(declined.clone()));
    row.insert("status".into(), Value::Text("COMPLETED".into()));
    store
        .write(&[Mutation {
            table: projectors::projections::orders::ORDERS_BY_ID,
            generation,
            kind: MutationKind::Upsert(row),
            timestamp: 1 << 40,
        }])
        .await?;
    let report = check(&app, log, Some(store)).await?;
    ensure!(
        has(&report, "read-models", "changed-row"),
        "a read-model row changed in the store:\n{}",
        report.text()
    );
    ensure!(!report.ok, "{}", report.text());

    // The binary: exit 1 and the report names each.
    drop(raw_handle);
    let (code, stdout, stderr) = run(binary(&[])).await?;
    ensure!(code == 1, "exit {code}\n{stdout}\n{stderr}");
    for line in [
        "FAIL  command-outcomes",
        "FAIL  unique-event-ids",
        "FAIL  aggregate-chains",
        "FAIL  stock-conservation",
        "FAIL  money-conservation",
        "missing-outcome",
        "duplicate-event-id",
        "version-gap",
        "level-mismatch",
        "captured-twice",
        "refund-exceeds-capture",
        "FAILED:",
    ] {
        ensure!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    if keyspace.is_some() {
        ensure!(
            stdout.contains("FAIL  read-models") && stdout.contains("changed-row"),
            "{stdout}"
        );
    }
    let body: Json = serde_json::from_slice(&std::fs::read(&json_file)?)?;
    ensure!(body["ok"] == false, "{body}");
    let money = body["invariants"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == "money-conservation"))
        .context("money in the JSON")?;
    ensure!(
        money["ok"] == false
            && money["findings"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["kind"] == "captured-twice")),
        "{money}"
    );

    // Exit 2: cannot run (bad input; no such log), with the fix.
    let (code, _, stderr) = run(binary(&["--now", "yesterday"])).await?;
    ensure!(
        code == 2 && stderr.contains("--now"),
        "exit {code}: {stderr}"
    );
    let mut elsewhere = binary(&[]);
    elsewhere.env("QS_TOPIC_PREFIX", "nothing-here.");
    let (code, _, stderr) = run(elsewhere).await?;
    ensure!(
        code == 2 && stderr.contains("QS_TOPIC_PREFIX"),
        "exit {code}: {stderr}"
    );
    Ok(())
}
