//! Every read model through the query API, on both twins (embedded log +
//! embedded store; real Kafka + a real CQL node): after the saga's
//! scenarios each answer holds exactly what the events in the log say;
//! rebuilding every projection from offset 0 and redelivering everything
//! give byte-identical answers; read-your-writes never answers 404; one
//! customer cannot read another's order; an expired token is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use platform::testing::TestAdapter;
use projectors::rebuild::{rebuild, RebuildOptions};
use projectors::runtime::{Projector, ProjectorConfig, ProjectorStats};
use quickstore::read_side::{ReadSide, ReadSideOptions};
use reqwest::{Method, StatusCode};
use schemas::orders::OrdersEvent;
use schemas::payments::PaymentsEvent;
use schemas::{AnyEvent, Context};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::app::{spawn_app_with, TestApp, APPROVE, DECLINE};
use crate::read_side::store;

/// Starts the projectors and the query API beside the app's write side.
pub(crate) async fn read_side(app: &TestApp, adapter: TestAdapter) -> Result<ReadSide> {
    let store = store(adapter).await?;
    let mut options =
        ReadSideOptions::new("127.0.0.1:0", format!("{}/.well-known/jwks.json", app.url));
    options.keys = app.keys();
    options.service.pointer_poll = Duration::from_millis(200);
    options.service.status_interval = Duration::from_millis(250);
    options.query.generation_refresh = Duration::from_millis(300);
    options.query.read_your_writes_timeout = Duration::from_secs(10);
    ReadSide::start(&app.system, store, options).await
}

/// Waits until every projection has projected everything (lag exactly 0).
pub(crate) async fn caught_up(side: &ReadSide) -> Result<()> {
    let mut watch = side.watch().context("projectors run")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    // Settle: the lag is measured every 250 ms; ask twice in a row.
    let mut zero_twice = 0;
    loop {
        let status = watch.borrow_and_update().clone();
        let done = !status.projections.is_empty()
            && status
                .projections
                .values()
                .all(|p| p.running && p.lag == Some(0) && p.dead_letters == 0);
        zero_twice = if done { zero_twice + 1 } else { 0 };
        if zero_twice >= 2 {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "projectors did not catch up: {status:#?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(300), watch.changed()).await;
    }
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    position: Option<&str>,
) -> Result<(StatusCode, Value)> {
    let mut request = http.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(p) = position {
        request = request.header("X-Position-Token", p);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn ok(
    side: &ReadSide,
    http: &reqwest::Client,
    path: &str,
    token: Option<&str>,
) -> Result<Value> {
    let (status, body) = get(http, &format!("{}{path}", side.url()), token, None).await?;
    ensure!(status == StatusCode::OK, "GET {path}: {status} {body}");
    Ok(body)
}

fn sku(app: &TestApp, name: &str) -> String {
    format!(
        "{name}-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    )
}

/// The UTC day of `ms`, as the sales read model names it.
fn day_of(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

pub async fn every_read_model_holds_what_the_events_say(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app_with(adapter, |_| {}).await?;
    let side = read_side(&app, adapter).await?;
    let http = reqwest::Client::new();
    let admin = app.admin().await?;
    let lamp = sku(&app, "LAMP");
    let desk = sku(&app, "DESK");
    app.product(&lamp, 1500, 10).await?;
    app.product(&desk, 2500, 1).await?;
    // The catalog's life: renamed, moved, repriced, pictured, a threshold.
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/products/{lamp}/details"),
            json!({"name": "Walnut Desk Lamp", "description": "Warm light"}),
        ),
        (
            Method::PUT,
            format!("/products/{lamp}/category"),
            json!({"category": "lighting"}),
        ),
        (
            Method::PUT,
            format!("/products/{lamp}/price"),
            json!({"price_minor": 1800, "currency": "EUR"}),
        ),
        (
            Method::POST,
            format!("/products/{lamp}/images"),
            json!({"image_key": "front", "url": "https://img.example/front.jpg", "alt_text": "front"}),
        ),
        (
            Method::PUT,
            format!("/stock/{lamp}/threshold"),
            json!({"threshold": 8}),
        ),
    ] {
        app.ok(method, &path, &admin, body).await?;
    }
    let (pia, pia_token) = app.customer("pia").await?;
    app.ok(
        Method::PUT,
        &format!("/customers/{pia}/profile"),
        &pia_token,
        json!({"display_name": "Pia P.", "phone": "+4915112345678"}),
    )
    .await?;
    let courier = app.courier("kim").await?;
    // Wait until the price book has the new price (orders are priced by it).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let place = |lines: Vec<(String, i64)>, card: &'static str| {
        let app = &app;
        let token = pia_token.clone();
        async move {
            let lines: Vec<(&str, i64)> = lines.iter().map(|(s, q)| (s.as_str(), *q)).collect();
            let (status, body) = app.place_order(&token, &lines, card).await?;
            ensure!(status.is_success(), "{status} {body}");
            anyhow::Ok(body["order_id"].as_str().unwrap().to_owned())
        }
    };
    let completed = place(vec![(lamp.clone(), 2)], APPROVE).await?;
    let declined = place(vec![(lamp.clone(), 1)], DECLINE).await?;
    let rejected = place(vec![(desk.clone(), 2)], APPROVE).await?;
    let failed = place(vec![(lamp.clone(), 1)], APPROVE).await?;
    for order in [&completed, &failed] {
        app.wait_for(Context::Deliveries, order, "ShipmentScheduled")
            .await?;
        app.ok(
            Method::PUT,
            &format!("/shipments/{order}/courier"),
            &admin,
            json!({"courier_id": courier.0}),
        )
        .await?;
        app.ok(
            Method::POST,
            &format!("/shipments/{order}/pickup"),
            &courier.1,
            json!({}),
        )
        .await?;
        app.wait_for(Context::Orders, order, "OrderShipped").await?;
    }
    app.ok(
        Method::POST,
        &format!("/shipments/{completed}/delivery"),
        &courier.1,
        json!({}),
    )
    .await?;
    app.ok(
        Method::POST,
        &format!("/shipments/{failed}/failure"),
        &courier.1,
        json!({"reason": "address not found"}),
    )
    .await?;
    app.wait_for(Context::Orders, &completed, "OrderCompleted")
        .await?;
    app.wait_for(Context::Orders, &declined, "OrderCancelled")
        .await?;
    app.wait_for(Context::Orders, &rejected, "OrderRejected")
        .await?;
    app.wait_for(Context::Orders, &failed, "OrderCancelled")
        .await?;
    app.wait_for(Context::Payments, &failed, "PaymentRefunded")
        .await?;
    app.wait_stock(&lamp, |s| s.on_hand == 8 && s.available() == 8)
        .await?;
    // An auditor: a role granted through the API.
    let (otto, _) = app.customer("otto").await?;
    app.ok(
        Method::POST,
        &format!("/customers/{otto}/roles"),
        &admin,
        json!({"role": "auditor"}),
    )
    .await?;
    let (_, auditor) = app
        .user(
            "audrey",
            &[
                platform::auth::Role::Customer,
                platform::auth::Role::Auditor,
            ],
        )
        .await?;
    caught_up(&side).await?;

    // What the log says.
    let orders_log = app.events(Context::Orders).await?;
    let placed: BTreeMap<String, schemas::orders::OrderPlaced> = orders_log
        .iter()
        .filter_map(|(id, _, _, e)| match e {
            AnyEvent::Orders(OrdersEvent::OrderPlaced(p)) => Some((id.clone(), p.clone())),
            _ => None,
        })
        .collect();
    let last_version = |id: &str| {
        orders_log
            .iter()
            .filter(|(i, ..)| i == id)
            .map(|(_, _, env, _)| env.version)
            .max()
            .unwrap()
    };

    // Order by id, with payment and shipment.
    let order = ok(
        &side,
        &http,
        &format!("/orders/{completed}"),
        Some(&pia_token),
    )
    .await?;
    let p = &placed[&completed];
    ensure!(order["status"] == "COMPLETED", "{order}");
    ensure!(order["customer_id"] == pia.as_str(), "{order}");
    ensure!(
        order["totals"]["total_minor"] == p.totals.total_minor
            && order["totals"]["currency"] == "EUR",
        "{order}"
    );
    ensure!(
        p.lines[0].unit_price_minor == 1800,
        "the order was priced after the reprice"
    );
    ensure!(
        order["lines"][0]["sku"] == lamp.as_str() && order["lines"][0]["quantity"] == 2,
        "{order}"
    );
    ensure!(
        order["payment"]["status"] == "CAPTURED" && order["shipment"]["status"] == "DELIVERED",
        "{order}"
    );
    ensure!(
        order["shipment"]["courier_id"] == courier.0.as_str(),
        "{order}"
    );
    ensure!(
        order["versions"]["order"] == last_version(&completed),
        "{order}"
    );
    for (id, status, payment) in [
        (&declined, "CANCELLED", json!("DECLINED")),
        (&rejected, "REJECTED", Value::Null),
        (&failed, "CANCELLED", json!("REFUNDED")),
    ] {
        let o = ok(&side, &http, &format!("/orders/{id}"), Some(&admin)).await?;
        ensure!(
            o["status"] == status && o["payment"]["status"] == payment,
            "{id}: {o}"
        );
    }
    // The timeline: every status change of the order, payment, shipment.
    let timeline = ok(
        &side,
        &http,
        &format!("/orders/{completed}/timeline?limit=100"),
        Some(&pia_token),
    )
    .await?;
    let mut kinds: Vec<String> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
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
    expected.sort_unstable();
    ensure!(kinds == expected, "timeline {kinds:?}");

    // Payments by order: the amounts the payment events state.
    let payments_log = app.events(Context::Payments).await?;
    let captured: i64 = payments_log
        .iter()
        .filter(|(id, ..)| *id == failed)
        .find_map(|(_, _, _, e)| match e {
            AnyEvent::Payments(PaymentsEvent::PaymentCaptured(c)) => Some(c.amount_minor),
            _ => None,
        })
        .unwrap();
    let payment = ok(
        &side,
        &http,
        &format!("/orders/{failed}/payment"),
        Some(&pia_token),
    )
    .await?;
    ensure!(
        payment["status"] == "REFUNDED"
            && payment["captured_minor"] == captured
            && payment["refunded_minor"] == captured,
        "{payment}"
    );

    // Orders by customer, newest first, with their current status.
    let mine = ok(
        &side,
        &http,
        "/customers/me/orders?limit=10",
        Some(&pia_token),
    )
    .await?;
    let listed: Vec<(String, String)> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["order_id"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    ensure!(listed.len() == 4, "{mine}");
    let mut by_time: Vec<(&String, i64)> = placed
        .keys()
        .map(|id| {
            (
                id,
                orders_log
                    .iter()
                    .find(|(i, t, ..)| i == id && t == "OrderPlaced")
                    .unwrap()
                    .2
                    .occurred_at,
            )
        })
        .collect();
    by_time.sort_by_key(|(id, at)| (std::cmp::Reverse(*at), (*id).clone()));
    ensure!(
        listed.iter().map(|(id, _)| id).collect::<Vec<_>>()
            == by_time.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "newest first: {listed:?}"
    );
    ensure!(
        listed
            .iter()
            .any(|(id, s)| *id == completed && s == "COMPLETED"),
        "{listed:?}"
    );

    // The catalog.
    let product = ok(&side, &http, &format!("/products/{lamp}"), None).await?;
    ensure!(
        product["name"] == "Walnut Desk Lamp"
            && product["category"] == "lighting"
            && product["price_minor"] == 1800,
        "{product}"
    );
    ensure!(
        product["images"][0]["url"] == "https://img.example/front.jpg",
        "{product}"
    );
    let listing = ok(&side, &http, "/products?category=lighting", None).await?;
    ensure!(
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["sku"] == lamp.as_str()),
        "{listing}"
    );
    let old_category = ok(&side, &http, "/products?category=test", None).await?;
    ensure!(
        old_category["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["sku"] != lamp.as_str()),
        "moved away: {old_category}"
    );
    let found = ok(&side, &http, "/products?q=walnut%20lamp", None).await?;
    ensure!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap())
            .collect::<Vec<_>>()
            == [lamp.as_str()],
        "{found}"
    );
    let old_name = lamp.rsplit('-').next().unwrap().to_lowercase();
    let stale = ok(&side, &http, &format!("/products?q={old_name}"), None).await?;
    ensure!(
        stale["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["sku"] != lamp.as_str()),
        "the old name is gone: {stale}"
    );

    // Stock levels equal the StockItem the events fold to.
    let item = app.stock(&lamp).await?;
    let stock = ok(&side, &http, &format!("/stock/{lamp}"), Some(&admin)).await?;
    ensure!(
        stock["on_hand"] == item.on_hand
            && stock["available"] == item.available()
            && stock["reserved"] == item.on_hand - item.available(),
        "{stock} vs {item:?}"
    );
    ensure!(
        stock["threshold"] == 8 && stock["low_stock"] == (item.available() <= 8),
        "{stock}"
    );

    // Shipments by courier, and one shipment.
    let (status, _) = get(
        &http,
        &format!("{}/couriers/{}/shipments", side.url(), courier.0),
        Some(&pia_token),
        None,
    )
    .await?;
    ensure!(
        status == StatusCode::FORBIDDEN,
        "another's shipments: {status}"
    );
    let runs = ok(&side, &http, "/couriers/me/shipments", Some(&courier.1)).await?;
    let mut runs: Vec<(String, String)> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["shipment_id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    runs.sort();
    let mut want = vec![
        (completed.clone(), "DELIVERED".to_owned()),
        (failed.clone(), "FAILED".to_owned()),
    ];
    want.sort();
    ensure!(runs == want, "{runs:?}");

    // Sales: the completed order's line, on the day it completed.
    let completed_at = orders_log
        .iter()
        .find(|(id, t, ..)| *id == completed && t == "OrderCompleted")
        .unwrap()
        .2
        .occurred_at;
    let day = day_of(completed_at);
    let sales = ok(&side, &http, &format!("/sales/days/{day}"), Some(&admin)).await?;
    let sales_text = sales.to_string();
    ensure!(
        sales_text.contains(&lamp) && sales_text.contains("3600"),
        "{sales}"
    );
    let by_product = ok(
        &side,
        &http,
        &format!("/sales/products/{lamp}?from={day}&to={day}"),
        Some(&admin),
    )
    .await?;
    ensure!(by_product.to_string().contains("3600"), "{by_product}");

    // Customer profile.
    let profile = ok(&side, &http, &format!("/customers/{pia}"), Some(&pia_token)).await?;
    ensure!(
        profile["display_name"] == "Pia P."
            && profile["phone"] == "+4915112345678"
            && profile["roles"] == json!(["customer"]),
        "{profile}"
    );

    // The audit index: every event of the order, with its hash.
    let otto_profile = ok(&side, &http, &format!("/customers/{otto}"), Some(&admin)).await?;
    ensure!(
        otto_profile["roles"] == json!(["customer", "auditor"]),
        "{otto_profile}"
    );
    let audit = ok(
        &side,
        &http,
        &format!("/audit/Order/{completed}/events?limit=100"),
        Some(&auditor),
    )
    .await?;
    let logged: Vec<(i64, String)> = orders_log
        .iter()
        .filter(|(id, ..)| *id == completed)
        .map(|(_, _, env, _)| (env.version, hex::encode(&env.hash)))
        .collect();
    let indexed: Vec<(i64, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_i64().unwrap(),
                e["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ensure!(indexed == logged, "audit {indexed:?} vs log {logged:?}");
    let (status, _) = get(
        &http,
        &format!("{}/audit/Order/{completed}/events", side.url()),
        Some(&pia_token),
        None,
    )
    .await?;
    ensure!(
        status == StatusCode::FORBIDDEN,
        "a customer reads the audit index: {status}"
    );

    // Saga state, for ops.
    let saga = ok(
        &side,
        &http,
        &format!("/ops/sagas/{completed}"),
        Some(&admin),
    )
    .await?;
    ensure!(saga["terminal"] == true, "{saga}");

    // Replay-identical: every answer, rebuilt from offset 0, then redelivered.
    let paths: Vec<(String, String)> = [
        format!("/orders/{completed}"),
        format!("/orders/{failed}"),
        format!("/orders/{rejected}"),
        format!("/orders/{completed}/timeline?limit=100"),
        format!("/orders/{failed}/payment"),
        format!("/customers/{pia}/orders?limit=10"),
        format!("/customers/{pia}"),
        format!("/products/{lamp}"),
        "/products?category=lighting".into(),
        "/products?q=walnut".into(),
        format!("/stock/{lamp}"),
        format!("/stock/{desk}"),
        format!("/couriers/{}/shipments", courier.0),
        format!("/shipments/{completed}"),
        format!("/sales/days/{day}"),
        format!("/audit/Order/{completed}/events?limit=100"),
        format!("/ops/sagas/{failed}"),
    ]
    .into_iter()
    .map(|p| (p, admin.clone()))
    .collect();
    let answers = |side: &ReadSide| {
        let http = http.clone();
        let base = side.url();
        let paths = paths.clone();
        async move {
            let mut out = Vec::new();
            for (path, token) in &paths {
                let response = http
                    .get(format!("{base}{path}"))
                    .bearer_auth(token)
                    .send()
                    .await?;
                ensure!(
                    response.status() == StatusCode::OK,
                    "{path}: {}",
                    response.status()
                );
                out.push((path.clone(), response.bytes().await?));
            }
            anyhow::Ok(out)
        }
    };
    let before = answers(&side).await?;
    for projection in projectors::projections::all() {
        let (tx, _rx) = watch::channel(Default::default());
        let options = RebuildOptions {
            drop_after: Duration::from_millis(800),
            ..RebuildOptions::default()
        };
        rebuild(
            Arc::clone(&app.system.log),
            Arc::clone(&app.system.codec),
            Arc::clone(&side.store),
            projection,
            app.system.topics.clone(),
            options,
            tx,
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let rebuilt = answers(&side).await?;
    for ((path, a), (_, b)) in before.iter().zip(&rebuilt) {
        ensure!(
            a == b,
            "{path} differs after a rebuild:\n{}\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
    // Redelivery: the orders projection applies every event again, into
    // the generation that serves.
    let orders = projectors::projections::by_name("orders").unwrap();
    let generation = projectors::generations::serving(side.store.as_ref(), "orders").await?;
    let mut config = ProjectorConfig::new(&app.system.topics, orders.as_ref(), generation);
    config.group_id = format!("{}.redelivery", config.group_id);
    let (progress, mut seen) = watch::channel(ProjectorStats::default());
    let (stop, stopped) = watch::channel(false);
    let redelivery = tokio::spawn(
        Projector::new(
            Arc::clone(&app.system.log),
            Arc::clone(&app.system.codec),
            Arc::clone(&side.store),
            orders,
            app.system.topics.clone(),
            config,
        )
        .with_progress(progress)
        .run(stopped),
    );
    let total = orders_log.len() as u64;
    tokio::time::timeout(
        Duration::from_secs(60),
        seen.wait_for(|s| s.events >= total),
    )
    .await??;
    let _ = stop.send(true);
    redelivery.await??;
    let redelivered = answers(&side).await?;
    for ((path, a), (_, b)) in before.iter().zip(&redelivered) {
        ensure!(a == b, "{path} differs after a redelivery");
    }
    side.stop().await?;
    app.stop().await
}

pub async fn read_your_writes_and_who_may_read(adapter: TestAdapter) -> Result<()> {
    let mut app = spawn_app_with(adapter, |o| {
        o.simulated_couriers = vec!["courier-sim".into()]
    })
    .await?;
    let side = read_side(&app, adapter).await?;
    let http = reqwest::Client::new();
    let item = sku(&app, "RYW");
    app.product(&item, 900, 100).await?;
    let (_, ana) = app.customer("ana").await?;
    let (_, ben) = app.customer("ben").await?;
    // Read-your-writes: the position token makes the very next read see
    // the order — never a 404, never "not yet" within the bound.
    let mut orders = Vec::new();
    for _ in 0..20 {
        let (status, body) = app.place_order(&ana, &[(&item, 1)], APPROVE).await?;
        ensure!(status.is_success(), "{status} {body}");
        let id = body["order_id"].as_str().unwrap().to_owned();
        let position = body["position"]
            .as_str()
            .context("position token")?
            .to_owned();
        let (status, order) = get(
            &http,
            &format!("{}/orders/{id}", side.url()),
            Some(&ana),
            Some(&position),
        )
        .await?;
        ensure!(
            status == StatusCode::OK && order["order_id"] == id.as_str(),
            "read-your-writes: {status} {order}"
        );
        orders.push(id);
    }
    // Live status: a stream opened right after placing pushes every status
    // change of the order, once each, through to completion.
    let (status, body) = app.place_order(&ana, &[(&item, 1)], APPROVE).await?;
    ensure!(status.is_success(), "{status} {body}");
    let live = body["order_id"].as_str().unwrap().to_owned();
    let mut stream = http
        .get(format!("{}/orders/{live}/stream", side.url()))
        .bearer_auth(&ana)
        .header("X-Position-Token", body["position"].as_str().unwrap())
        .send()
        .await?;
    ensure!(
        stream.status() == StatusCode::OK,
        "stream: {}",
        stream.status()
    );
    let mut text = String::new();
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|t| t == "OrderCompleted") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .context("the stream did not push the completion within 60 s")??
            .context("the stream ended")?;
        text.push_str(&String::from_utf8_lossy(&chunk));
        // Complete SSE events end with a blank line.
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let data: Value = serde_json::from_str(data.trim())?;
            if let Some(entries) = data["entries"].as_array() {
                seen.extend(
                    entries
                        .iter()
                        .map(|e| e["event_type"].as_str().unwrap_or("").to_owned()),
                );
            } else if let Some(t) = data["entry"]["event_type"].as_str() {
                seen.push(t.to_owned());
            }
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
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
    expected.sort_unstable();
    ensure!(sorted == expected, "the stream pushed {seen:?}");
    drop(stream);

    // A position nobody reaches: a clear "not yet", not a 404.
    let ahead = format!("p1.{}", base64_url(&format!("Order:{}:999", orders[0])));
    let started = std::time::Instant::now();
    let response = http
        .get(format!("{}/orders/{}", side.url(), orders[0]))
        .bearer_auth(&ana)
        .header("X-Position-Token", &ahead)
        .send()
        .await?;
    ensure!(
        response.status() == StatusCode::SERVICE_UNAVAILABLE
            && response.headers().contains_key("retry-after"),
        "{}",
        response.status()
    );
    ensure!(
        started.elapsed() >= Duration::from_secs(9),
        "waited the bound"
    );
    let problem: Value = response.json().await?;
    ensure!(
        problem["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("not-yet-consistent"),
        "{problem}"
    );

    // Another customer's order: not found (ids don't leak); their list: forbidden.
    let (status, _) = get(
        &http,
        &format!("{}/orders/{}", side.url(), orders[0]),
        Some(&ben),
        None,
    )
    .await?;
    ensure!(
        status == StatusCode::NOT_FOUND,
        "ben reads ana's order: {status}"
    );
    let ana_customer = ok(&side, &http, &format!("/orders/{}", orders[0]), Some(&ana)).await?
        ["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = get(
        &http,
        &format!("{}/customers/{ana_customer}/orders", side.url()),
        Some(&ben),
        None,
    )
    .await?;
    ensure!(
        status == StatusCode::FORBIDDEN,
        "ben lists ana's orders: {status}"
    );
    // No token, a forged token, an expired token.
    let (status, _) = get(
        &http,
        &format!("{}/orders/{}", side.url(), orders[0]),
        None,
        None,
    )
    .await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "no token: {status}");
    let (status, _) = get(
        &http,
        &format!("{}/orders/{}", side.url(), orders[0]),
        Some("eyJhbGciOiJub25lIn0.e30."),
        None,
    )
    .await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "alg none: {status}");
    // Issue a token an hour in the past: it expired 45 minutes ago.
    app.clock_offset.store(-3_600_000, Ordering::SeqCst);
    let (_, old) = app.customer("old").await?;
    app.clock_offset.store(0, Ordering::SeqCst);
    let (status, body) = get(
        &http,
        &format!("{}/customers/me/orders", side.url()),
        Some(&old),
        None,
    )
    .await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "expired token: {status} {body}"
    );
    side.stop().await?;
    app.stop().await
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
