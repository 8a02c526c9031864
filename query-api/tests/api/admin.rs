//! Shipments and couriers, sales, profiles, the audit trail, saga state.

use platform::auth::Role;
use platform::readstore::Value;
use projectors::projection::{row, upsert};
use projectors::projections::audit::EVENTS_BY_AGGREGATE;
use projectors::projections::customers::CUSTOMER_PROFILES;
use projectors::projections::saga_state::SAGA_STATE_BY_ORDER;
use projectors::projections::sales::{SALES_BY_DAY, SALES_BY_PRODUCT};
use projectors::projections::shipments::ShipmentsProjection;
use schemas::deliveries::{CourierAssigned, DeliveriesEvent, ShipmentItem, ShipmentScheduled};
use schemas::{AnyEvent, PostalAddress};

use crate::fixture::{envelope, t, Fixture};

async fn shipment(f: &Fixture, id: &str, courier: &str) {
    f.project_with(
        &ShipmentsProjection,
        envelope("Shipment", id, 1, 1_000),
        AnyEvent::Deliveries(DeliveriesEvent::ShipmentScheduled(ShipmentScheduled {
            order_id: id.into(),
            destination: PostalAddress {
                recipient: "Ada".into(),
                line1: "1 Main St".into(),
                line2: Some("Flat 2".into()),
                city: "Berlin".into(),
                region: None,
                postal_code: "10115".into(),
                country: "DE".into(),
            },
            items: vec![ShipmentItem {
                sku: "MUG-1".into(),
                quantity: 2,
            }],
        })),
    )
    .await;
    f.project_with(
        &ShipmentsProjection,
        envelope("Shipment", id, 2, 2_000),
        AnyEvent::Deliveries(DeliveriesEvent::CourierAssigned(CourierAssigned {
            courier_id: courier.into(),
            previous_courier_id: None,
        })),
    )
    .await;
}

#[tokio::test]
async fn a_shipment_is_seen_by_admins_and_its_courier_only() {
    let f = Fixture::new().await;
    shipment(&f, "o-1", "k-1").await;
    let courier = f.token("k-1", &[Role::Courier]);
    let answer = f.get("/shipments/o-1", Some(&courier)).await;
    let s = answer.ok();
    assert_eq!(s["shipment_id"], "o-1");
    assert_eq!(s["order_id"], "o-1");
    assert_eq!(s["status"], "ASSIGNED");
    assert_eq!(s["courier_id"], "k-1");
    assert_eq!(s["destination"]["line2"], "Flat 2");
    assert_eq!(s["items"][0]["sku"], "MUG-1");
    assert_eq!(s["items"][0]["quantity"], 2);
    assert_eq!(s["version"], 2);
    f.get("/shipments/o-1", Some(&f.admin())).await.ok();
    f.get("/shipments/o-1", Some(&f.token("k-2", &[Role::Courier])))
        .await
        .problem(404, "not-found", None);
    f.get("/shipments/o-1", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
}

#[tokio::test]
async fn a_courier_lists_their_own_shipments_with_status() {
    let f = Fixture::new().await;
    shipment(&f, "o-1", "k-1").await;
    shipment(&f, "o-2", "k-1").await;
    shipment(&f, "o-3", "k-2").await;
    let courier = f.token("k-1", &[Role::Courier]);
    let answer = f.get("/couriers/me/shipments", Some(&courier)).await;
    let items = answer.ok()["items"].as_array().unwrap().clone();
    let ids: Vec<&str> = items
        .iter()
        .map(|s| s["shipment_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["o-1", "o-2"]);
    assert_eq!(items[0]["status"], "ASSIGNED");
    assert_eq!(items[0]["order_id"], "o-1");
    assert_eq!(items[0]["assigned_at"], "1970-01-01T00:00:02.000Z");
    let page = f
        .get("/couriers/k-1/shipments?limit=1", Some(&courier))
        .await;
    assert_eq!(page.ok()["items"].as_array().unwrap().len(), 1);
    assert!(page.body["next_cursor"].is_string());
    f.get("/couriers/k-2/shipments", Some(&courier))
        .await
        .problem(403, "forbidden", None);
    let admin = f.get("/couriers/k-2/shipments", Some(&f.admin())).await;
    assert_eq!(admin.ok()["items"][0]["shipment_id"], "o-3");
}

/// One sold line: (day, order, line_no), (sku, quantity, unit price, currency).
async fn sale(f: &Fixture, at: (&str, &str, i32), what: (&str, i32, i64, &str)) {
    let ((day, order, line), (sku, qty, price, currency)) = (at, what);
    let amount = price * i64::from(qty);
    f.write_in(
        1,
        vec![
            upsert(
                SALES_BY_DAY,
                1,
                row([
                    ("day", t(day)),
                    ("order_id", t(order)),
                    ("line_no", Value::Int(line)),
                    ("sku", t(sku)),
                    ("quantity", Value::Int(qty)),
                    ("unit_price_minor", Value::BigInt(price)),
                    ("amount_minor", Value::BigInt(amount)),
                    ("currency", t(currency)),
                    ("completed_at", Value::Timestamp(0)),
                ]),
            ),
            upsert(
                SALES_BY_PRODUCT,
                1,
                row([
                    ("sku", t(sku)),
                    ("day", t(day)),
                    ("order_id", t(order)),
                    ("line_no", Value::Int(line)),
                    ("quantity", Value::Int(qty)),
                    ("unit_price_minor", Value::BigInt(price)),
                    ("amount_minor", Value::BigInt(amount)),
                    ("currency", t(currency)),
                    ("completed_at", Value::Timestamp(0)),
                ]),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_days_sales_are_summed_per_currency_and_sku() {
    let f = Fixture::new().await;
    sale(&f, ("2026-11-21", "o-1", 1), ("MUG-1", 2, 1299, "EUR")).await;
    sale(&f, ("2026-11-21", "o-1", 2), ("PAN-1", 1, 3999, "EUR")).await;
    sale(&f, ("2026-11-21", "o-2", 1), ("MUG-1", 3, 1299, "EUR")).await;
    sale(&f, ("2026-11-21", "o-3", 1), ("MUG-1", 1, 1500, "USD")).await;
    sale(&f, ("2026-11-22", "o-4", 1), ("MUG-1", 9, 1299, "EUR")).await;
    let admin = f.admin();
    let answer = f.get("/sales/days/2026-11-21", Some(&admin)).await;
    let d = answer.ok();
    assert_eq!(d["day"], "2026-11-21");
    assert_eq!(d["lines"], 4);
    assert_eq!(
        d["totals"],
        serde_json::json!([
            {"currency": "EUR", "amount_minor": 2598 + 3999 + 3897, "units": 6, "lines": 3},
            {"currency": "USD", "amount_minor": 1500, "units": 1, "lines": 1},
        ])
    );
    assert_eq!(
        d["by_sku"],
        serde_json::json!([
            {"sku": "MUG-1", "currency": "EUR", "amount_minor": 6495, "units": 5, "lines": 2},
            {"sku": "MUG-1", "currency": "USD", "amount_minor": 1500, "units": 1, "lines": 1},
            {"sku": "PAN-1", "currency": "EUR", "amount_minor": 3999, "units": 1, "lines": 1},
        ])
    );
    let empty = f.get("/sales/days/2026-01-01", Some(&admin)).await;
    assert_eq!(empty.ok()["lines"], 0);
    for bad in ["2026-02-30", "yesterday", "2026-1-01"] {
        f.get(&format!("/sales/days/{bad}"), Some(&admin))
            .await
            .problem(400, "invalid-day", Some("day"));
    }
    f.get("/sales/days/2026-11-21", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
}

#[tokio::test]
async fn a_products_sales_are_summed_per_day_within_the_range() {
    let f = Fixture::new().await;
    sale(&f, ("2026-11-20", "o-0", 1), ("MUG-1", 1, 1299, "EUR")).await;
    sale(&f, ("2026-11-21", "o-1", 1), ("MUG-1", 2, 1299, "EUR")).await;
    sale(&f, ("2026-11-21", "o-2", 1), ("MUG-1", 3, 1299, "EUR")).await;
    sale(&f, ("2026-11-22", "o-4", 1), ("MUG-1", 9, 1299, "EUR")).await;
    sale(&f, ("2026-11-23", "o-5", 1), ("MUG-1", 1, 1299, "EUR")).await;
    let admin = f.admin();
    let answer = f
        .get(
            "/sales/products/MUG-1?from=2026-11-21&to=2026-11-22",
            Some(&admin),
        )
        .await;
    let s = answer.ok();
    assert_eq!(
        s["days"],
        serde_json::json!([
            {"day": "2026-11-21", "totals": [{"currency": "EUR", "amount_minor": 6495, "units": 5, "lines": 2}]},
            {"day": "2026-11-22", "totals": [{"currency": "EUR", "amount_minor": 11691, "units": 9, "lines": 1}]},
        ])
    );
    assert_eq!(s["totals"][0]["amount_minor"], 6495 + 11691);
    let all = f.get("/sales/products/MUG-1", Some(&admin)).await;
    assert_eq!(all.ok()["days"].as_array().unwrap().len(), 4);
    f.get("/sales/products/MUG-1?from=2026-13-01", Some(&admin))
        .await
        .problem(400, "invalid-day", Some("from"));
    f.get(
        "/sales/products/MUG-1?from=2026-11-23&to=2026-11-21",
        Some(&admin),
    )
    .await
    .problem(400, "invalid-range", Some("from"));
}

#[tokio::test]
async fn a_profile_lists_its_roles_for_self_and_admins() {
    let f = Fixture::new().await;
    f.put(
        CUSTOMER_PROFILES,
        row([
            ("customer_id", t("c-1")),
            ("email", t("ada@example.com")),
            ("display_name", t("Ada")),
            ("role_customer", Value::Boolean(true)),
            ("role_courier", Value::Boolean(true)),
            ("role_admin", Value::Boolean(false)),
            ("registered_at", Value::Timestamp(86_400_000)),
            ("customer_version", Value::BigInt(3)),
        ]),
    )
    .await;
    let answer = f.get("/customers/me", Some(&f.customer("c-1"))).await;
    let p = answer.ok();
    assert_eq!(p["customer_id"], "c-1");
    assert_eq!(p["email"], "ada@example.com");
    assert_eq!(p["display_name"], "Ada");
    assert_eq!(p["roles"], serde_json::json!(["customer", "courier"]));
    assert_eq!(p["registered_at"], "1970-01-02T00:00:00.000Z");
    assert_eq!(p["version"], 3);
    assert!(p["default_address"].is_null());
    f.get("/customers/c-1", Some(&f.admin())).await.ok();
    f.get("/customers/c-1", Some(&f.customer("c-2")))
        .await
        .problem(403, "forbidden", None);
    f.get("/customers/c-9", Some(&f.admin()))
        .await
        .problem(404, "not-found", None);
}

#[tokio::test]
async fn auditors_read_every_event_of_an_aggregate_with_its_hashes() {
    let f = Fixture::new().await;
    for v in 1..=3 {
        f.put(
            EVENTS_BY_AGGREGATE,
            row([
                ("aggregate_type", t("Order")),
                ("aggregate_id", t("o-1")),
                ("version", Value::BigInt(v)),
                ("event_id", t(&format!("e-{v}"))),
                ("event_type", t("OrderPlaced")),
                ("occurred_at", Value::Timestamp(v * 1000)),
                ("actor", t("customer:c-1")),
                ("command_id", t("cmd")),
                ("correlation_id", t("corr")),
                ("causation_id", t("cause")),
                ("topic", t("orders.events")),
                ("partition", Value::Int(3)),
                ("offset", Value::BigInt(40 + v)),
                (
                    "prev_hash",
                    Value::Blob(vec![0xab, u8::try_from(v).unwrap() - 1]),
                ),
                ("hash", Value::Blob(vec![0xab, u8::try_from(v).unwrap()])),
            ]),
        )
        .await;
    }
    let auditor = f.token("au-1", &[Role::Auditor]);
    let answer = f
        .get("/audit/Order/o-1/events?limit=2", Some(&auditor))
        .await;
    let page = answer.ok();
    let e = &page["items"][1];
    assert_eq!(e["version"], 2);
    assert_eq!(e["event_id"], "e-2");
    assert_eq!(e["type"], "OrderPlaced");
    assert_eq!(e["occurred_at"], "1970-01-01T00:00:02.000Z");
    assert_eq!(e["actor"], "customer:c-1");
    assert_eq!(e["command_id"], "cmd");
    assert_eq!(e["topic"], "orders.events");
    assert_eq!(e["partition"], 3);
    assert_eq!(e["offset"], 42);
    assert_eq!(e["prev_hash"], "ab01");
    assert_eq!(e["hash"], "ab02");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = f
        .get(
            &format!("/audit/Order/o-1/events?cursor={cursor}"),
            Some(&auditor),
        )
        .await;
    assert_eq!(rest.ok()["items"][0]["version"], 3);
    f.get("/audit/Order/o-1/events", Some(&f.admin()))
        .await
        .ok();
    f.get("/audit/Order/o-9/events", Some(&auditor))
        .await
        .problem(404, "not-found", None);
    f.get("/audit/Order/o-1/events", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
}

#[tokio::test]
async fn admins_see_where_a_saga_stands() {
    let f = Fixture::new().await;
    f.put(
        SAGA_STATE_BY_ORDER,
        row([
            ("order_id", t("o-1")),
            ("stage", t("AUTHORIZING_PAYMENT")),
            ("since", Value::Timestamp(1_000)),
            ("step", Value::BigInt(3)),
            ("cause", t("StockReserved")),
            ("deadline_at", Value::Timestamp(31_000)),
            ("terminal", Value::Boolean(false)),
        ]),
    )
    .await;
    let answer = f.get("/ops/sagas/o-1", Some(&f.admin())).await;
    let s = answer.ok();
    assert_eq!(s["stage"], "AUTHORIZING_PAYMENT");
    assert_eq!(s["step"], 3);
    assert_eq!(s["cause"], "StockReserved");
    assert_eq!(s["deadline_at"], "1970-01-01T00:00:31.000Z");
    assert_eq!(s["terminal"], false);
    f.get("/ops/sagas/o-2", Some(&f.admin()))
        .await
        .problem(404, "not-found", None);
    f.get("/ops/sagas/o-1", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
}

#[tokio::test]
async fn audit_reads_from_the_log_need_the_event_log() {
    // This fixture's query API has a read store only: the routes that read
    // the log itself say so (503), after checking who asks and what.
    let f = Fixture::new().await;
    let auditor = f.token("au-1", &[Role::Auditor]);
    f.get("/audit/Product/p-1/verify", Some(&auditor))
        .await
        .problem(503, "audit-log-unavailable", None);
    f.get("/audit/Product/p-1/state?as_of=0", Some(&f.admin()))
        .await
        .problem(503, "audit-log-unavailable", None);
    f.get("/audit/Product/p-1/state?as_of=tomorrow", Some(&auditor))
        .await
        .problem(400, "invalid-as-of", Some("as_of"));
    f.get("/audit/Product/p-1/state?asof=0", Some(&auditor))
        .await
        .problem(400, "unknown-parameter", Some("asof"));
    f.get("/audit/Product/p-1/verify", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
}
