//! Orders: the order, its timeline, its payment; a customer's orders.

use platform::readstore::Value;
use projectors::projection::row;
use projectors::projections::payments::PAYMENTS_BY_ORDER;
use schemas::deliveries::{CourierAssigned, DeliveriesEvent, ShipmentItem, ShipmentScheduled};
use schemas::orders::{OrderCancelled, OrderConfirmed, OrdersEvent};
use schemas::payments::{PaymentAuthorized, PaymentsEvent};
use schemas::{AnyEvent, PostalAddress};

use crate::fixture::{envelope, t, Fixture};

/// o-1 of c-1: placed, payment authorized, confirmed, shipment scheduled
/// and assigned to courier k-1.
pub async fn fulfilled_order(f: &Fixture) {
    f.place("o-1", "c-1", 1_000_000).await;
    f.project(
        envelope("Payment", "o-1", 1, 1_500_000),
        AnyEvent::Payments(PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
            order_id: "o-1".into(),
            amount_minor: 3097,
            currency: "EUR".into(),
            authorization_code: "A1".into(),
            gateway_reference: "sim_1".into(),
        })),
    )
    .await;
    f.project(
        envelope("Order", "o-1", 2, 2_000_000),
        AnyEvent::Orders(OrdersEvent::OrderConfirmed(OrderConfirmed {
            payment_id: Some("o-1".into()),
        })),
    )
    .await;
    f.project(
        envelope("Shipment", "o-1", 1, 2_500_000),
        AnyEvent::Deliveries(DeliveriesEvent::ShipmentScheduled(ShipmentScheduled {
            order_id: "o-1".into(),
            destination: PostalAddress {
                recipient: "Ada".into(),
                line1: "1 Main St".into(),
                line2: None,
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
    f.project(
        envelope("Shipment", "o-1", 2, 3_000_000),
        AnyEvent::Deliveries(DeliveriesEvent::CourierAssigned(CourierAssigned {
            courier_id: "k-1".into(),
            previous_courier_id: None,
        })),
    )
    .await;
}

#[tokio::test]
async fn the_owner_reads_the_order_with_everything_it_holds() {
    let f = Fixture::new().await;
    fulfilled_order(&f).await;
    let answer = f.get("/orders/o-1", Some(&f.customer("c-1"))).await;
    let o = answer.ok();
    assert_eq!(o["order_id"], "o-1");
    assert_eq!(o["customer_id"], "c-1");
    assert_eq!(o["status"], "CONFIRMED");
    assert_eq!(o["status_at"], "1970-01-01T00:33:20.000Z");
    assert_eq!(o["placed_at"], "1970-01-01T00:16:40.000Z");
    assert_eq!(o["totals"]["total_minor"], 3097);
    assert_eq!(o["totals"]["currency"], "EUR");
    assert_eq!(o["lines"][0]["sku"], "MUG-1");
    assert_eq!(o["lines"][0]["quantity"], 2);
    assert_eq!(o["lines"][0]["unit_price_minor"], 1299);
    assert_eq!(o["lines"][0]["line_total_minor"], 2598);
    assert_eq!(o["shipping_address"]["city"], "Berlin");
    assert_eq!(o["shipping_address"]["country"], "DE");
    assert_eq!(o["payment"]["status"], "AUTHORIZED");
    assert_eq!(o["payment"]["version"], 1);
    assert_eq!(o["shipment"]["status"], "ASSIGNED");
    assert_eq!(o["shipment"]["courier_id"], "k-1");
    assert_eq!(o["shipment"]["version"], 2);
    assert_eq!(o["versions"]["order"], 2);
    assert_eq!(o["versions"]["payment"], 1);
    assert_eq!(o["versions"]["shipment"], 2);
    assert!(o.get("status_reason").is_none());
}

#[tokio::test]
async fn another_customers_order_is_not_found_but_an_admin_sees_it() {
    let f = Fixture::new().await;
    fulfilled_order(&f).await;
    let b = f.customer("c-2");
    for uri in ["/orders/o-1", "/orders/o-1/timeline", "/orders/o-1/payment"] {
        f.get(uri, Some(&b)).await.problem(404, "not-found", None);
    }
    // Indistinguishable from an order that does not exist.
    f.get("/orders/o-404", Some(&b))
        .await
        .problem(404, "not-found", None);
    assert_eq!(
        f.get("/orders/o-1", Some(&f.admin())).await.ok()["customer_id"],
        "c-1"
    );
    // A courier is not a customer of the order.
    let courier = f.token("c-1", &[platform::auth::Role::Courier]);
    f.get("/orders/o-1", Some(&courier))
        .await
        .problem(404, "not-found", None);
}

#[tokio::test]
async fn a_cancelled_order_says_why() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    f.project(
        envelope("Order", "o-1", 2, 2_000),
        AnyEvent::Orders(OrdersEvent::OrderCancelled(OrderCancelled {
            reason: "payment declined".into(),
        })),
    )
    .await;
    let answer = f.get("/orders/o-1", Some(&f.customer("c-1"))).await;
    let o = answer.ok();
    assert_eq!(o["status"], "CANCELLED");
    assert_eq!(o["status_reason"], "payment declined");
    assert!(o["payment"].is_null());
}

#[tokio::test]
async fn the_timeline_pages_through_every_status_change_in_order() {
    let f = Fixture::new().await;
    fulfilled_order(&f).await;
    let token = f.customer("c-1");
    let first = f.get("/orders/o-1/timeline?limit=2", Some(&token)).await;
    let page = first.ok();
    let types: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderPlaced", "PaymentAuthorized"]);
    let e = &page["items"][0];
    assert_eq!(e["aggregate_type"], "Order");
    assert_eq!(e["version"], 1);
    assert_eq!(e["occurred_at"], "1970-01-01T00:16:40.000Z");
    assert_eq!(e["actor"], "customer:c-1");
    assert_eq!(e["causation_id"], "cause-1");
    assert_eq!(e["detail"], "1 lines, total 3097 EUR");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = f
        .get(
            &format!("/orders/o-1/timeline?limit=10&cursor={cursor}"),
            Some(&token),
        )
        .await;
    let types: Vec<&str> = rest.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["OrderConfirmed", "ShipmentScheduled", "CourierAssigned"]
    );
    assert!(rest.body.get("next_cursor").is_none());
}

#[tokio::test]
async fn the_payment_is_read_through_the_orders_owner() {
    let f = Fixture::new().await;
    fulfilled_order(&f).await;
    let owner = f.customer("c-1");
    f.get("/orders/o-1/payment", Some(&owner))
        .await
        .problem(404, "not-found", None);
    f.put(
        PAYMENTS_BY_ORDER,
        row([
            ("order_id", t("o-1")),
            ("payment_id", t("o-1")),
            ("status", t("CAPTURED")),
            ("currency", t("EUR")),
            ("amount_minor", Value::BigInt(3097)),
            ("authorized_minor", Value::BigInt(3097)),
            ("captured_minor", Value::BigInt(3097)),
            ("refunded_minor", Value::BigInt(0)),
            ("authorization_code", t("A1")),
            ("status_at", Value::Timestamp(0)),
            ("payment_version", Value::BigInt(3)),
        ]),
    )
    .await;
    let answer = f.get("/orders/o-1/payment", Some(&owner)).await;
    let p = answer.ok();
    assert_eq!(p["status"], "CAPTURED");
    assert_eq!(p["captured_minor"], 3097);
    assert_eq!(p["refunded_minor"], 0);
    assert_eq!(p["authorization_code"], "A1");
    assert_eq!(p["status_at"], "1970-01-01T00:00:00.000Z");
    assert_eq!(p["version"], 3);
    assert!(p.get("decline_code").is_none());
}

#[tokio::test]
async fn a_customers_orders_come_newest_first_with_their_status() {
    let f = Fixture::new().await;
    f.place("o-a", "c-1", 1_000).await;
    f.place("o-b", "c-1", 2_000).await;
    f.place("o-c", "c-1", 3_000).await;
    f.place("o-x", "c-2", 4_000).await;
    f.project(
        envelope("Order", "o-b", 2, 5_000),
        AnyEvent::Orders(OrdersEvent::OrderConfirmed(OrderConfirmed {
            payment_id: None,
        })),
    )
    .await;
    let token = f.customer("c-1");
    let all = f.get("/customers/me/orders", Some(&token)).await;
    let items = all.ok()["items"].as_array().unwrap().clone();
    let ids: Vec<&str> = items
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["o-c", "o-b", "o-a"]);
    assert_eq!(items[1]["status"], "CONFIRMED");
    assert_eq!(items[0]["status"], "PLACED");
    assert_eq!(items[0]["total_minor"], 3097);
    assert_eq!(items[0]["currency"], "EUR");
    assert_eq!(items[0]["line_count"], 1);
    assert_eq!(items[0]["placed_at"], "1970-01-01T00:00:03.000Z");

    let confirmed = f
        .get("/customers/c-1/orders?status=confirmed", Some(&token))
        .await;
    let ids: Vec<&str> = confirmed.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["o-b"]);

    // Pages: the status filter may leave a page short; the cursor goes on.
    let first = f
        .get("/customers/me/orders?limit=2&status=PLACED", Some(&token))
        .await;
    let first = first.ok();
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = f
        .get(
            &format!("/customers/me/orders?limit=2&status=PLACED&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(second.ok()["items"][0]["order_id"], "o-a");

    let admin = f.get("/customers/c-2/orders", Some(&f.admin())).await;
    assert_eq!(admin.ok()["items"][0]["order_id"], "o-x");
}

#[tokio::test]
async fn another_customers_order_list_is_forbidden() {
    let f = Fixture::new().await;
    f.place("o-x", "c-2", 4_000).await;
    f.get("/customers/c-2/orders", Some(&f.customer("c-1")))
        .await
        .problem(403, "forbidden", None);
}

#[tokio::test]
async fn listing_parameters_are_checked_and_named() {
    let f = Fixture::new().await;
    f.place("o-a", "c-1", 1_000).await;
    let token = f.customer("c-1");
    f.get("/customers/me/orders?limit=0", Some(&token))
        .await
        .problem(400, "invalid-limit", Some("limit"));
    f.get("/customers/me/orders?limit=101", Some(&token))
        .await
        .problem(400, "invalid-limit", Some("limit"));
    f.get("/customers/me/orders?limit=ten", Some(&token))
        .await
        .problem(400, "invalid-limit", Some("limit"));
    f.get("/customers/me/orders?cursor=%25%25", Some(&token))
        .await
        .problem(400, "invalid-cursor", Some("cursor"));
    // Well-formed, but not a token of this listing.
    f.get("/customers/me/orders?cursor=AQIDBAUGBwgJCg", Some(&token))
        .await
        .problem(400, "invalid-cursor", Some("cursor"));
    f.get("/customers/me/orders?status=LOST", Some(&token))
        .await
        .problem(400, "invalid-status", Some("status"));
    f.get("/customers/me/orders?sort=asc", Some(&token))
        .await
        .problem(400, "unknown-parameter", Some("sort"));
    f.get("/orders/o-a/timeline?limit=-1", Some(&token))
        .await
        .problem(400, "invalid-limit", Some("limit"));
}

#[tokio::test]
async fn a_cursor_of_another_listing_is_refused() {
    let f = Fixture::new().await;
    for (i, id) in ["o-a", "o-b", "o-c"].iter().enumerate() {
        f.place(id, "c-1", 1_000 + i64::try_from(i).unwrap()).await;
        f.place(&format!("{id}-2"), "c-2", 1_000).await;
    }
    let answer = f
        .get("/customers/c-1/orders?limit=1", Some(&f.admin()))
        .await;
    let cursor = answer.ok()["next_cursor"].as_str().unwrap().to_owned();
    f.get(
        &format!("/customers/c-2/orders?limit=1&cursor={cursor}"),
        Some(&f.admin()),
    )
    .await
    .problem(400, "invalid-cursor", Some("cursor"));
}
