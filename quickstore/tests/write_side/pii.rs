//! Crypto-shredding end to end (ADR 0014), on the embedded log + embedded
//! store and on real Kafka + a real CQL node: personal fields are sealed in
//! every record of every topic, the owner reads them in clear through the
//! query API, `customers forget` (the real CLI binary on the CQL case)
//! deletes the key, and then every answer, a rebuild and `reveal_json` say
//! `[erased]` while every event's hash still verifies and new personal data
//! for that customer is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use platform::pii::{reveal_json, KeyState, KeyStore, ERASED};
use platform::readstore::{CqlConfig, CqlStore, EmbeddedStore, ReadStore, Row, Value};
use platform::testing::TestAdapter;
use projectors::projections::customers::{CustomersProjection, CUSTOMER_PROFILES};
use projectors::projections::orders::{OrdersProjection, ORDERS_BY_ID};
use quickstore::read_side::{ReadSide, ReadSideOptions};
use reqwest::{Method, StatusCode};
use schemas::Context;
use serde_json::{json, Value as Json};

use crate::app::{address, spawn_app_with, TestApp, APPROVE, PASSWORD};
use crate::read_side::project_with;

/// The read store, and the CQL keyspace when it is one (for the CLI).
async fn store(adapter: TestAdapter) -> Result<(Arc<dyn ReadStore>, Option<String>)> {
    Ok(match adapter {
        TestAdapter::Embedded => (Arc::new(EmbeddedStore::in_memory()?), None),
        TestAdapter::Kafka => {
            let contact_points = platform::testing::cql_contact_points()?;
            let keyspace = format!(
                "qs_pii_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let store = CqlStore::connect(CqlConfig::new(contact_points, keyspace.clone())).await?;
            (Arc::new(store), Some(keyspace))
        }
    })
}

async fn get(app: &TestApp, url: &str, token: &str) -> Result<(StatusCode, Json)> {
    let response = app.http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Json::String(text)),
    ))
}

/// Polls `url` until `done` holds (projection lag, key caches), at most 60 s.
async fn until(
    app: &TestApp,
    url: &str,
    token: &str,
    what: &str,
    done: impl Fn(&Json) -> bool,
) -> Result<Json> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(app, url, token).await?;
        if status == StatusCode::OK && done(&body) {
            return Ok(body);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: {url} still answers {status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every record of every topic of this app: (topic, key, value, header bytes).
async fn all_records(app: &TestApp) -> Result<Vec<(String, Vec<u8>)>> {
    let prefix = &app.system.topics.prefix;
    let mut out = Vec::new();
    for topic in app.system.log.list_topics().await? {
        if !topic.starts_with(prefix.as_str()) {
            continue;
        }
        for r in platform::eventlog::read_topic(app.system.log.as_ref(), &topic).await? {
            let mut bytes = r.key.clone();
            bytes.extend_from_slice(r.value.as_deref().unwrap_or_default());
            for h in &r.headers {
                bytes.extend_from_slice(h.key.as_bytes());
                bytes.extend_from_slice(&h.value);
            }
            out.push((topic.clone(), bytes));
        }
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every event of every events topic has an intact hash that chains to the
/// previous event of its aggregate.
async fn every_hash_verifies(app: &TestApp) -> Result<usize> {
    let mut last: HashMap<(String, String), schemas::hash_chain::ChainLink> = HashMap::new();
    let mut checked = 0;
    for context in Context::ALL {
        let topic = app.system.topics.events(context);
        let mut links = Vec::new();
        for r in platform::eventlog::read_topic(app.system.log.as_ref(), &topic).await? {
            links.push(
                app.system
                    .codec
                    .chain_link(r.value.as_deref().unwrap_or_default())
                    .await?,
            );
        }
        links.sort_by_key(|l| (l.aggregate_id.clone(), l.version));
        for link in links {
            ensure!(
                link.is_intact(),
                "{topic}: {} v{} hash does not verify",
                link.aggregate_id,
                link.version
            );
            let key = (link.aggregate_type.clone(), link.aggregate_id.clone());
            match last.get(&key) {
                Some(prev) => ensure!(
                    link.follows(prev),
                    "{topic}: {} v{} breaks the chain",
                    link.aggregate_id,
                    link.version
                ),
                None => ensure!(
                    link.is_first(),
                    "{topic}: {} starts at v{}",
                    link.aggregate_id,
                    link.version
                ),
            }
            last.insert(key, link);
            checked += 1;
        }
    }
    Ok(checked)
}

async fn row(
    store: &Arc<dyn ReadStore>,
    table: &platform::readstore::TableDef,
    generation: u32,
    key: (&str, &str),
) -> Result<Row> {
    let k: Row = [(key.0.to_owned(), Value::Text(key.1.to_owned()))].into();
    store
        .get(table, generation, &k)
        .await?
        .with_context(|| format!("{} {} in generation {generation}", table.name, key.1))
}

/// `customers forget ID`: the real binary on the CQL store; the library
/// call on the in-memory store (no other process can reach it).
async fn forget(
    keys: &KeyStore,
    keyspace: Option<&str>,
    customer: &str,
    settings: &platform::config::Settings,
) -> Result<()> {
    let Some(keyspace) = keyspace else {
        keys.forget(customer, quickstore::write_side::system_clock()())
            .await?;
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let contact_points = platform::testing::cql_contact_points()?.join(",");
    // The real binary, configured only by what it is given here.
    let cli = |args: &[&str]| -> Result<(bool, String, String)> {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_quickstore"));
        for (key, _) in std::env::vars() {
            if key.starts_with("QS_") {
                command.env_remove(key);
            }
        }
        let output = command
            .env("QS_DATA_DIR", dir.path())
            .env("QS_READ_STORE", "cql")
            .env("QS_CQL_CONTACT_POINTS", &contact_points)
            .env("QS_CQL_KEYSPACE", keyspace)
            .env("QS_CQL_REPLICATION_FACTOR", "1")
            .env("QS_EVENT_LOG", "kafka")
            .env("QS_KAFKA_BOOTSTRAP", &settings.kafka_bootstrap)
            .env(
                "QS_SCHEMA_REGISTRY_URL",
                settings.schema_registry_url.as_deref().unwrap_or_default(),
            )
            .env("QS_TOPIC_PREFIX", &settings.topic_prefix)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    };
    let (ok, out, err) = cli(&["customers", "forget", customer])?;
    ensure!(
        ok && out.contains("data key deleted"),
        "customers forget: {out}{err}"
    );
    // Twice is fine, and says so.
    let (ok, out, err) = cli(&["customers", "forget", customer])?;
    ensure!(ok && out.contains("already forgotten"), "again: {out}{err}");
    let (ok, out, err) = cli(&["customers", "key", customer])?;
    ensure!(
        ok && out.contains("forgotten at"),
        "customers key: {out}{err}"
    );
    // Exports open sealed fields with the keys: the forgotten customer's
    // show `[erased]`; `--personal-data sealed` gives the log's ciphertext.
    let topic = format!("{}customers.events", settings.topic_prefix);
    let export = ["events", "export", "--topic", &topic, "--format", "jsonl"];
    let (ok, out, err) = cli(&export)?;
    ensure!(
        ok && out.contains(ERASED) && !out.contains("pii:v1:"),
        "export after forget: {out}{err}"
    );
    let sealed = [&export[..], &["--personal-data", "sealed"]].concat();
    let (ok, out, err) = cli(&sealed)?;
    ensure!(
        ok && out.contains("pii:v1:") && !out.contains(ERASED),
        "sealed export: {out}{err}"
    );
    // A bad id is refused with what to pass instead.
    let (ok, out, err) = cli(&["customers", "forget", "a:b"])?;
    ensure!(
        !ok && err.contains("not a customer id"),
        "bad id: {out}{err}"
    );
    Ok(())
}

pub async fn personal_data_is_sealed_shown_and_forgotten(adapter: TestAdapter) -> Result<()> {
    let (store, keyspace) = store(adapter).await?;
    let keys = quickstore::customers_cmd::key_store(&store).await?;
    let mut app = {
        let keys = Arc::clone(&keys);
        spawn_app_with(adapter, move |o| o.keys = Some(keys)).await?
    };
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let sku = format!("PII-{tag}");
    app.product(&sku, 1299, 10).await?;

    // Register with every personal field, set a profile address, order.
    let (email, name, phone) = (
        format!("zelda-{tag}@example.com"),
        format!("Zelda Quux {tag}"),
        "+44 20 7946 0958",
    );
    let (status, reg) = app
        .send(
            Method::POST,
            "/auth/register",
            None,
            None,
            Some(
                json!({"email": email, "password": PASSWORD, "display_name": name, "phone": phone}),
            ),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "register: {status} {reg}");
    let customer = reg["customer_id"].as_str().unwrap().to_owned();
    let token = reg["access_token"].as_str().unwrap().to_owned();
    let home = json!({"recipient": name, "line1": format!("{tag} Babbage Row"), "city": "Cambridge", "postal_code": "CB2 1TN", "country": "GB"});
    app.ok(
        Method::PUT,
        &format!("/customers/{customer}/profile"),
        &token,
        json!({"display_name": name, "phone": phone, "default_address": home}),
    )
    .await?;
    let (status, placed) = app.place_order(&token, &[(&sku, 1)], APPROVE).await?;
    ensure!(status == StatusCode::CREATED, "order: {status} {placed}");
    let order = placed["order_id"].as_str().unwrap().to_owned();
    app.wait_for(Context::Deliveries, &order, "ShipmentScheduled")
        .await?;

    // No clear personal byte in any record of any topic (commands, events,
    // snapshots, saga topics); sealed values are there instead.
    let shipping = address();
    let clear = [
        email.as_str(),
        name.as_str(),
        phone,
        "Babbage Row",
        "CB2 1TN",
        shipping["recipient"].as_str().unwrap(),
        shipping["line1"].as_str().unwrap(),
        shipping["postal_code"].as_str().unwrap(),
    ];
    let records = all_records(&app).await?;
    let mut sealed_topics = std::collections::BTreeSet::new();
    for (topic, bytes) in &records {
        for c in clear {
            ensure!(!contains(bytes, c), "{topic} holds `{c}` in clear");
        }
        if contains(bytes, &format!("pii:v1:{customer}:")) {
            sealed_topics.insert(
                topic
                    .rsplit_once(&app.system.topics.prefix)
                    .map_or(topic.clone(), |(_, t)| t.to_owned()),
            );
        }
    }
    for t in [
        "customers.commands",
        "customers.events",
        "orders.commands",
        "orders.events",
        "deliveries.commands",
        "deliveries.events",
    ] {
        ensure!(
            sealed_topics.iter().any(|s| s.ends_with(t)),
            "no sealed value in {t}: {sealed_topics:?}"
        );
    }

    // The owner reads them in clear through the query API.
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.keys = Some(Arc::clone(&keys));
    options.service.pointer_poll = Duration::from_millis(200);
    options.query.generation_refresh = Duration::from_millis(300);
    let side = ReadSide::start(&app.system, Arc::clone(&store), options).await?;
    let query = side.url();
    let profile_url = format!("{query}/customers/{customer}");
    let order_url = format!("{query}/orders/{order}");
    let profile = until(&app, &profile_url, &token, "profile in clear", |p| {
        p["default_address"]["line1"].is_string()
    })
    .await?;
    ensure!(
        profile["email"] == email && profile["display_name"] == name && profile["phone"] == phone,
        "{profile}"
    );
    ensure!(
        profile["default_address"]["postal_code"] == "CB2 1TN"
            && profile["default_address"]["country"] == "GB",
        "{profile}"
    );
    let shown = until(&app, &order_url, &token, "order", |o| {
        o["shipping_address"].is_object()
    })
    .await?;
    ensure!(
        shown["shipping_address"]["recipient"] == shipping["recipient"],
        "{shown}"
    );
    // The rows themselves hold sealed text only.
    let stored = row(&store, &CUSTOMER_PROFILES, 1, ("customer_id", &customer)).await?;
    ensure!(
        matches!(&stored["email"], Value::Text(t) if t.starts_with("pii:v1:")),
        "{stored:?}"
    );

    // Forget.
    let events_before = app.events(Context::Customers).await?.len();
    forget(&keys, keyspace.as_deref(), &customer, &app.system.settings).await?;
    ensure!(
        matches!(keys.get(&customer).await?, KeyState::Forgotten { .. })
            || keys.ttl() > Duration::ZERO
    );
    let profile = until(&app, &profile_url, &token, "profile erased", |p| {
        p["email"] == ERASED
    })
    .await?;
    ensure!(
        profile["display_name"] == ERASED && profile["phone"] == ERASED,
        "{profile}"
    );
    ensure!(
        profile["default_address"]["line1"] == ERASED
            && profile["default_address"]["recipient"] == ERASED,
        "{profile}"
    );
    ensure!(
        profile["default_address"]["country"] == "GB",
        "not personal, stays: {profile}"
    );
    let shown = until(&app, &order_url, &token, "order address erased", |o| {
        o["shipping_address"]["recipient"] == ERASED
    })
    .await?;
    ensure!(
        shown["shipping_address"]["line1"] == ERASED && shown["lines"][0]["sku"] == sku.as_str(),
        "{shown}"
    );
    let uncached = KeyStore::new(Arc::clone(&store), Duration::ZERO);
    ensure!(
        matches!(uncached.get(&customer).await?, KeyState::Forgotten { .. }),
        "the key store says forgotten"
    );

    // Exports and audits: reveal_json over the decoded events.
    let (_, _, envelope, registered) = app
        .events(Context::Customers)
        .await?
        .into_iter()
        .find(|(id, t, ..)| *id == customer && t == "CustomerRegistered")
        .context("CustomerRegistered")?;
    let schemas::AnyEvent::Customers(registered) = registered else {
        bail!("not a customers event")
    };
    let revealed = reveal_json(serde_json::to_value(&registered)?, &uncached).await?;
    let text = revealed.to_string();
    ensure!(
        text.contains(ERASED) && !text.contains("pii:v1:") && !text.contains(&email),
        "{revealed}"
    );
    ensure!(envelope.version == 1);

    // The log did not change: every hash verifies, no event was added.
    let checked = every_hash_verifies(&app).await?;
    ensure!(checked > 5, "checked {checked} events");
    ensure!(app.events(Context::Customers).await?.len() == events_before);

    // A rebuild of the customers and orders projections holds the same rows
    // (sealed text, which still reads as erased).
    project_with(&app, &store, Arc::new(CustomersProjection), 2).await?;
    project_with(&app, &store, Arc::new(OrdersProjection), 2).await?;
    ensure!(
        row(&store, &CUSTOMER_PROFILES, 1, ("customer_id", &customer)).await?
            == row(&store, &CUSTOMER_PROFILES, 2, ("customer_id", &customer)).await?
    );
    let rebuilt = row(&store, &ORDERS_BY_ID, 2, ("order_id", &order)).await?;
    ensure!(
        row(&store, &ORDERS_BY_ID, 1, ("order_id", &order)).await?["shipping_address_json"]
            == rebuilt["shipping_address_json"]
    );
    let Value::Text(address_json) = &rebuilt["shipping_address_json"] else {
        bail!("{rebuilt:?}")
    };
    let address: Json = serde_json::from_str(address_json)?;
    ensure!(reveal_json(address, &uncached).await?["recipient"] == ERASED);

    // New personal data for them is refused, and nothing is written. (The
    // command API's key cache may hold the key for its TTL after a forget
    // made by another process: the CLI.)
    tokio::time::sleep(keys.ttl() + Duration::from_millis(100)).await;
    let ends = app.event_ends().await?;
    let (status, refused) = app
        .send(
            Method::PUT,
            &format!("/customers/{customer}/profile"),
            Some(&token),
            None,
            Some(json!({"display_name": "Again"})),
        )
        .await?;
    ensure!(
        status == StatusCode::GONE && refused["code"] == "customer-erased",
        "{status} {refused}"
    );
    let (status, refused) = app.place_order(&token, &[(&sku, 1)], APPROVE).await?;
    ensure!(status == StatusCode::GONE, "{status} {refused}");
    ensure!(app.event_ends().await? == ends, "nothing appended");

    side.stop().await?;
    app.stop().await
}
