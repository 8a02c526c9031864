//! The auditor's tools on both twins (embedded log + store; real Kafka + a
//! real CQL node): `quickstore audit verify|stream` as the binary a user
//! runs — clean after real orders, then every kind of tampering written
//! behind the system's back straight to the topic is found where it is —
//! and the query API's audit routes for auditors.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use platform::auth::Role;
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::{EventLog, OutgoingRecord};
use platform::testing::TestAdapter;
use quickstore::read_side::{ReadSide, ReadSideOptions};
use reqwest::{Method, StatusCode};
use schemas::catalog::{CatalogEvent, ProductCreated, ProductRepriced};
use schemas::{AnyEvent, Context, EventEnvelope};
use serde_json::{json, Value};

use crate::app::{spawn_app, TestApp, APPROVE, REGISTRY_ENV};

/// A fresh id under this test's prefix.
fn unique(app: &TestApp, name: &str) -> String {
    format!(
        "{name}-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    )
}

/// The binary, configured like the app: same log, registry, prefix.
pub(crate) fn quickstore(app: &TestApp, adapter: TestAdapter) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") {
            command.env_remove(key);
        }
    }
    let s = &app.system.settings;
    command
        .env("QS_DATA_DIR", &s.data_dir)
        .env("QS_TOPIC_PREFIX", &s.topic_prefix)
        .env("QS_PARTITIONS", s.partitions.to_string())
        .stdin(Stdio::null());
    if adapter == TestAdapter::Kafka {
        command
            .env("QS_EVENT_LOG", "kafka")
            .env("QS_KAFKA_BOOTSTRAP", &s.kafka_bootstrap)
            .env(
                REGISTRY_ENV,
                s.schema_registry_url.clone().unwrap_or_default(),
            );
    }
    command
}

/// Runs it: (exit code, stdout, stderr).
pub(crate) async fn run(mut command: Command) -> Result<(i32, String, String)> {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running the quickstore binary")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn cli(app: &TestApp, adapter: TestAdapter, args: &[&str]) -> Result<(i32, String, String)> {
    let mut command = quickstore(app, adapter);
    command.args(args);
    run(command).await
}

/// The log to write behind the system's back. The embedded log is one
/// process's at a time: the app has let go of it (see [`release_log`]),
/// so the test opens it, and drops it before the binary runs.
pub(crate) async fn raw_log(app: &TestApp, adapter: TestAdapter) -> Result<Arc<dyn EventLog>> {
    if adapter == TestAdapter::Kafka {
        return Ok(Arc::clone(&app.system.log));
    }
    // The write side's last tasks let go of their handles a moment after
    // it stopped.
    let dir = app.system.settings.data_dir.join("log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match EmbeddedLog::open(&dir, EmbeddedOptions::default()) {
            Ok(log) => return Ok(Arc::new(log)),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// On the embedded twin, closes the app's log (a placeholder takes its
/// place) so the binary can open the directory.
pub(crate) fn release_log(app: &mut TestApp, adapter: TestAdapter) -> Result<tempfile::TempDir> {
    let scratch = tempfile::tempdir()?;
    if adapter == TestAdapter::Embedded {
        let placeholder: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(
            scratch.path(),
            EmbeddedOptions::default(),
        )?);
        drop(std::mem::replace(&mut app.system.log, placeholder));
    }
    Ok(scratch)
}

/// The product's events from the log: (envelope, event, raw value).
async fn product_events(
    app: &TestApp,
    log: &dyn EventLog,
    sku: &str,
) -> Result<Vec<(EventEnvelope, CatalogEvent, Vec<u8>, (i32, i64))>> {
    let topic = app.system.topics.events(Context::Catalog);
    let mut out = Vec::new();
    for record in platform::eventlog::read_topic(log, &topic).await? {
        if record.key != sku.as_bytes() {
            continue;
        }
        let value = record.value.clone().unwrap_or_default();
        let (envelope, event) = app.system.codec.decode_event::<AnyEvent>(&value).await?;
        if let AnyEvent::Catalog(e) = event {
            out.push((envelope, e, value, (record.partition, record.offset)));
        }
    }
    out.sort_by_key(|(e, ..)| e.version);
    Ok(out)
}

/// Appends `value` under `key` where murmur2 puts it; its offset.
pub(crate) async fn append(
    log: &dyn EventLog,
    topic: &str,
    key: &str,
    value: Vec<u8>,
) -> Result<(i32, i64)> {
    let partitions = log.partition_count(topic).await?;
    let mut record = OutgoingRecord::new(topic, key, value);
    record.partition = Some(platform::partitioner::partition_for_key(
        key.as_bytes(),
        partitions,
    ));
    let producer = log.producer("intruder").await?;
    let at = producer.send(record).await?;
    Ok((at.partition, at.offset))
}

/// Versions 1..=n of a product `id`, properly sealed, encoded.
fn forged_chain(
    app: &TestApp,
    id: &str,
    n: i64,
    first_event_id: Option<&str>,
) -> Result<Vec<Vec<u8>>> {
    let topic = app.system.topics.events(Context::Catalog);
    let mut prev = Vec::new();
    let mut out = Vec::new();
    for version in 1..=n {
        let event = if version == 1 {
            CatalogEvent::ProductCreated(ProductCreated {
                sku: id.into(),
                name: "Forged".into(),
                description: None,
                category: "test".into(),
                price_minor: 100,
                currency: "EUR".into(),
            })
        } else {
            CatalogEvent::ProductRepriced(ProductRepriced {
                price_minor: 100 + version,
                currency: "EUR".into(),
                previous_price_minor: 99 + version,
                previous_currency: "EUR".into(),
            })
        };
        let mut envelope = EventEnvelope {
            event_id: match (version, first_event_id) {
                (1, Some(id)) => id.to_owned(),
                _ => uuid::Uuid::new_v4().to_string(),
            },
            aggregate_type: "Product".into(),
            aggregate_id: id.into(),
            version,
            occurred_at: 1_700_000_000_000 + version,
            command_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: uuid::Uuid::new_v4().to_string(),
            causation_id: uuid::Uuid::new_v4().to_string(),
            actor: "admin:intruder".into(),
            prev_hash: prev.clone(),
            hash: Vec::new(),
        };
        let bytes = app
            .system
            .codec
            .encode_sealed_event(&topic, &mut envelope, &event)?;
        prev = envelope.hash.clone();
        out.push(bytes);
    }
    Ok(out)
}

fn findings_of(report: &Value) -> Vec<(String, i32, i64, String)> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["topic"].as_str().unwrap_or_default().to_owned(),
                        i32::try_from(f["partition"].as_i64().unwrap_or(-1)).unwrap(),
                        f["offset"].as_i64().unwrap_or(-1),
                        f["kind"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the scenario left in the log.
struct Scenario {
    sku: String,
    order_id: String,
    customer_id: String,
}

/// A product created and repriced a minute later, and an order confirmed
/// by the saga. On a runtime of its own, dropped at the end: every task of
/// the write side (and its handle on the embedded log) goes with it, so
/// the binary and the test can open the log directory afterwards.
fn scenario(adapter: TestAdapter) -> Result<(TestApp, Scenario)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = runtime.block_on(async {
        let mut app = spawn_app(adapter).await?;
        let admin = app.admin().await?;
        let sku = unique(&app, "AUDIT");
        app.product(&sku, 1500, 5).await?;
        app.advance(Duration::from_secs(60));
        app.ok(
            Method::PUT,
            &format!("/products/{sku}/price"),
            &admin,
            json!({"price_minor": 1200, "currency": "EUR"}),
        )
        .await?;
        // An order through the saga: its events and the saga's are chained too.
        let (customer_id, customer) = app.customer("ada").await?;
        let (status, placed) = app.place_order(&customer, &[(&sku, 1)], APPROVE).await?;
        ensure!(
            status == StatusCode::CREATED,
            "place order: {status} {placed}"
        );
        let order_id = placed["order_id"].as_str().context("order_id")?.to_owned();
        app.wait_for(Context::Orders, &order_id, "OrderConfirmed")
            .await?;
        if let Some(side) = app.side.take() {
            side.stop().await?;
        }
        Ok::<_, anyhow::Error>((
            app,
            Scenario {
                sku,
                order_id,
                customer_id,
            },
        ))
    });
    drop(runtime);
    out
}

pub async fn audit_cli_is_clean_then_finds_every_tampering(adapter: TestAdapter) -> Result<()> {
    let (
        mut app,
        Scenario {
            sku,
            order_id,
            customer_id,
        },
    ) = tokio::task::spawn_blocking(move || scenario(adapter)).await??;
    let _scratch = release_log(&mut app, adapter)?;

    let log = raw_log(&app, adapter).await?;
    let real = product_events(&app, log.as_ref(), &sku).await?;
    drop(log);
    ensure!(real.len() == 2, "two product events: {real:?}");
    let (created, repriced) = (&real[0], &real[1]);

    // Clean: exit 0, every topic, nothing found.
    let (code, out, err) = cli(&app, adapter, &["audit", "verify"]).await?;
    ensure!(code == 0, "verify on a clean log: {code}\n{out}\n{err}");
    ensure!(
        out.contains("0 findings: every chain is intact") && out.contains("in 7 topics"),
        "{out}"
    );

    // The history: every event with who, when and why.
    let (code, out, err) = cli(&app, adapter, &["audit", "stream", "Product", &sku]).await?;
    ensure!(code == 0, "stream: {code}\n{out}\n{err}");
    for needle in [
        "ProductCreated",
        "ProductRepriced",
        created.0.actor.as_str(),
        created.0.command_id.as_str(),
        repriced.0.command_id.as_str(),
        repriced.0.correlation_id.as_str(),
        "chain: intact, 2 events, head version 2",
    ] {
        ensure!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    ensure!(
        created.0.actor.starts_with("admin:"),
        "{:?}",
        created.0.actor
    );
    let (code, out, err) = cli(&app, adapter, &["audit", "stream", "Order", &order_id]).await?;
    ensure!(code == 0, "stream order: {code}\n{out}\n{err}");
    ensure!(
        out.contains("OrderPlaced") && out.contains(&format!("customer:{customer_id}")),
        "{out}"
    );
    let (code, out, err) = cli(
        &app,
        adapter,
        &["audit", "stream", "OrderFulfillment", &order_id],
    )
    .await?;
    ensure!(
        code == 0 && out.contains("OrderFulfillmentStep"),
        "saga: {code}\n{out}\n{err}"
    );

    // As of a moment between the two events: the earlier price.
    let between = created.0.occurred_at + 30_000;
    ensure!(between < repriced.0.occurred_at);
    let (code, out, err) = cli(
        &app,
        adapter,
        &[
            "audit",
            "stream",
            "Product",
            &sku,
            "--as-of",
            &between.to_string(),
            "--json",
        ],
    )
    .await?;
    ensure!(code == 0, "as-of: {code}\n{out}\n{err}");
    let v: Value = serde_json::from_str(&out)?;
    ensure!(v["state_at"]["version"] == 1, "{v}");
    ensure!(v["state_at"]["state"]["price_minor"] == 1500, "{v}");
    ensure!(v["events"].as_array().map(Vec::len) == Some(2), "{v}");
    ensure!(v["events"][1]["actor"] == json!(repriced.0.actor), "{v}");
    let after = query_api::time::rfc3339(repriced.0.occurred_at);
    let (code, out, _) = cli(
        &app,
        adapter,
        &["audit", "stream", "Product", &sku, "--as-of", &after],
    )
    .await?;
    ensure!(code == 0, "{out}");
    ensure!(
        out.contains("version 2") && out.contains("\"price_minor\": 1200"),
        "{out}"
    );
    let (code, _, err) = cli(
        &app,
        adapter,
        &[
            "audit",
            "stream",
            "Product",
            &sku,
            "--as-of",
            "last tuesday",
        ],
    )
    .await?;
    ensure!(code == 2 && err.contains("RFC 3339"), "{code} {err}");
    let (code, _, err) = cli(&app, adapter, &["audit", "stream", "Widget", &sku]).await?;
    ensure!(
        code == 2 && err.contains("unknown aggregate type"),
        "{code} {err}"
    );
    let (code, _, err) = cli(
        &app,
        adapter,
        &["audit", "stream", "Product", "NO-SUCH-SKU"],
    )
    .await?;
    ensure!(
        code == 1 && err.contains("no events of Product"),
        "{code} {err}"
    );

    // Behind the system's back, straight to the topic.
    let topic = app.system.topics.events(Context::Catalog);
    let log = raw_log(&app, adapter).await?;
    // (a) a copy of a real event with one byte of its payload flipped (the
    // last byte: `previous_currency`'s "EUR" becomes "EUS").
    let mut flipped = repriced.2.clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    let (pa, oa) = append(log.as_ref(), &topic, &sku, flipped).await?;
    // (b) a fresh aggregate with version 3 removed: 1, 2, 4 (4 sealed
    // over 3's hash, as the system wrote it).
    let b = unique(&app, "REMOVED");
    let chain = forged_chain(&app, &b, 4, None)?;
    for i in [0, 1] {
        append(log.as_ref(), &topic, &b, chain[i].clone()).await?;
    }
    let (pb, ob) = append(log.as_ref(), &topic, &b, chain[3].clone()).await?;
    // (c) two events swapped: 1, 3, 2.
    let c = unique(&app, "SWAPPED");
    let chain = forged_chain(&app, &c, 3, None)?;
    append(log.as_ref(), &topic, &c, chain[0].clone()).await?;
    let (pc3, oc3) = append(log.as_ref(), &topic, &c, chain[2].clone()).await?;
    let (pc2, oc2) = append(log.as_ref(), &topic, &c, chain[1].clone()).await?;
    // (d) a properly sealed event reusing a real event's id.
    let d = unique(&app, "DUPLICATE");
    let chain = forged_chain(&app, &d, 1, Some(&created.0.event_id))?;
    let (pd, od) = append(log.as_ref(), &topic, &d, chain[0].clone()).await?;
    // (e) a record that is no event at all.
    let (pe, oe) = append(log.as_ref(), &topic, "JUNK", b"not an event".to_vec()).await?;
    drop(log);

    let (code, out, err) = cli(&app, adapter, &["audit", "verify", "--json"]).await?;
    ensure!(code == 1, "verify after tampering: {code}\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out)?;
    let found = findings_of(&report);
    let at = |p: i32, o: i64, kind: &str| (topic.clone(), p, o, kind.to_owned());
    let expected = vec![
        at(pa, oa, "duplicate-event-id"),
        at(pa, oa, "hash-mismatch"),
        at(pa, oa, "version-out-of-order"),
        at(pb, ob, "version-gap"),
        at(pc3, oc3, "version-gap"),
        at(pc2, oc2, "version-out-of-order"),
        at(pe, oe, "undecodable"),
    ];
    // (d): the scan goes partition by partition, so whichever of the real
    // event and the forged one it meets second carries the finding, naming
    // the other.
    let (pr, or) = created.3;
    let dup =
        |p: i32, o: i64| {
            report["findings"].as_array().unwrap().iter().find(|f| {
                f["kind"] == "duplicate-event-id" && f["partition"] == p && f["offset"] == o
            })
        };
    let (finding_d, other) = match (dup(pd, od), dup(pr, or)) {
        (Some(f), None) => (f, (pr, or)),
        (None, Some(f)) => (f, (pd, od)),
        _ => anyhow::bail!("(d) not found once: {report}"),
    };
    ensure!(
        finding_d["detail"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("{topic}/{}@{}", other.0, other.1)),
        "{finding_d}"
    );
    ensure!(
        finding_d["event_id"] == json!(created.0.event_id),
        "{finding_d}"
    );
    let expected: Vec<_> = expected
        .into_iter()
        .chain([(
            topic.clone(),
            i32::try_from(finding_d["partition"].as_i64().unwrap())?,
            finding_d["offset"].as_i64().unwrap(),
            "duplicate-event-id".to_owned(),
        )])
        .collect();
    let mut sorted = found.clone();
    sorted.sort();
    let mut want = expected.clone();
    want.sort();
    ensure!(
        sorted == want,
        "findings:\n{found:#?}\nexpected:\n{expected:#?}"
    );
    ensure!(report["findings_total"] == 8, "{report}");
    let flipped_finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "hash-mismatch")
        .unwrap();
    ensure!(
        flipped_finding["aggregate_id"] == json!(sku)
            && flipped_finding["version"] == 2
            && flipped_finding["event_id"] == json!(repriced.0.event_id),
        "{flipped_finding}"
    );

    // The table says the same, with the location.
    let (code, out, _) = cli(
        &app,
        adapter,
        &["audit", "verify", "--topic", "catalog.events"],
    )
    .await?;
    ensure!(code == 1, "{out}");
    for needle in [
        "hash-mismatch",
        "version-gap",
        "version 3 is missing",
        "8 findings",
        &b,
    ] {
        ensure!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    // Only catalog.events was touched.
    let (code, out, err) = cli(
        &app,
        adapter,
        &["audit", "verify", "--topic", "orders.events"],
    )
    .await?;
    ensure!(
        code == 0,
        "orders.events is untouched: {code}\n{out}\n{err}"
    );
    let (code, _, err) = cli(
        &app,
        adapter,
        &["audit", "verify", "--topic", "no.such.events"],
    )
    .await?;
    ensure!(
        code == 2 && err.contains("quickstore topics"),
        "{code} {err}"
    );
    // One aggregate's stream shows its own chain's finding.
    let (code, out, _) = cli(&app, adapter, &["audit", "stream", "Product", &b]).await?;
    ensure!(code == 1 && out.contains("version-gap"), "{out}");

    app.stop().await
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> Result<(StatusCode, Value)> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

pub async fn auditors_read_state_and_chain_on_the_query_api(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    let store = crate::read_side::store(adapter).await?;
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.service.pointer_poll = Duration::from_millis(200);
    options.query.generation_refresh = Duration::from_millis(300);
    let side = ReadSide::start(&app.system, store, options).await?;
    let http = reqwest::Client::new();
    let admin = app.admin().await?;
    let (_, auditor) = app.user("auditor-1", &[Role::Auditor]).await?;
    let (_, customer) = app.customer("cy").await?;
    let sku = unique(&app, "QAUDIT");
    app.product(&sku, 1500, 0).await?;
    app.advance(Duration::from_secs(60));
    app.ok(
        Method::PUT,
        &format!("/products/{sku}/price"),
        &admin,
        json!({"price_minor": 1200, "currency": "EUR"}),
    )
    .await?;
    let events: Vec<EventEnvelope> = app
        .events(Context::Catalog)
        .await?
        .into_iter()
        .filter(|(id, ..)| *id == sku)
        .map(|(_, _, e, _)| e)
        .collect();
    ensure!(events.len() == 2, "{events:?}");
    let base = format!("{}/audit/Product/{sku}", side.url());

    let between = events[0].occurred_at + 30_000;
    let (status, body) = get(&http, &format!("{base}/state?as_of={between}"), &auditor).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(
        body["version"] == 1 && body["state"]["price_minor"] == 1500,
        "{body}"
    );
    ensure!(
        body["as_of"] == json!(query_api::time::rfc3339(between)),
        "{body}"
    );
    let later = query_api::time::rfc3339(events[1].occurred_at);
    let (status, body) = get(&http, &format!("{base}/state?as_of={later}"), &admin).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(
        body["version"] == 2 && body["state"]["price_minor"] == 1200,
        "{body}"
    );
    let (status, body) = get(&http, &format!("{base}/state?as_of=soon"), &auditor).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST
            && body["field"] == "as_of"
            && body["code"] == "invalid-as-of",
        "{status} {body}"
    );
    let (status, body) = get(&http, &format!("{base}/state"), &customer).await?;
    ensure!(status == StatusCode::FORBIDDEN, "{status} {body}");

    let (status, body) = get(&http, &format!("{base}/verify"), &auditor).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(
        body["intact"] == true && body["events"] == 2 && body["last_version"] == 2,
        "{body}"
    );
    ensure!(
        body["head_hash"] == json!(hex::encode(&events[1].hash)),
        "{body}"
    );
    let (status, _) = get(&http, &format!("{base}/verify"), &customer).await?;
    ensure!(status == StatusCode::FORBIDDEN);
    let (status, body) = get(
        &http,
        &format!("{}/audit/Widget/{sku}/verify", side.url()),
        &auditor,
    )
    .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["field"] == "aggregate_type",
        "{status} {body}"
    );
    let (status, body) = get(
        &http,
        &format!("{}/audit/Product/NO-SUCH/verify", side.url()),
        &auditor,
    )
    .await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status} {body}");

    // The audit index (a read model) holds the same history, paged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(&http, &format!("{base}/events?limit=1"), &auditor).await?;
        if status == StatusCode::OK && body["next_cursor"].is_string() {
            ensure!(
                body["items"][0]["event_id"] == json!(events[0].event_id),
                "{body}"
            );
            let cursor = body["next_cursor"].as_str().unwrap();
            let (_, rest) = get(&http, &format!("{base}/events?cursor={cursor}"), &auditor).await?;
            ensure!(
                rest["items"][0]["actor"] == json!(events[1].actor),
                "{rest}"
            );
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "never indexed: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    side.stop().await?;
    app.stop().await
}
