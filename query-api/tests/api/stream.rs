//! Live order status over Server-Sent Events.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::Request;
use futures::StreamExt;
use schemas::orders::{OrderConfirmed, OrdersEvent};
use schemas::payments::{PaymentAuthorized, PaymentsEvent};
use schemas::AnyEvent;
use tower::ServiceExt;

use platform::readstore::Value;
use projectors::projection::row;
use projectors::projections::orders::{ORDERS_BY_ID, ORDER_TIMELINE};

use crate::fixture::{envelope, t, Fixture};

/// Reads SSE events off a response body.
struct Events {
    body: BodyDataStream,
    buffer: String,
}

#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<String>,
    data: serde_json::Value,
}

impl Events {
    async fn open(f: &Fixture, uri: &str, token: Option<&str>) -> Self {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = f
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), within 5 s.
    async fn next(&mut self) -> Sse {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut event = None;
                    let mut id = None;
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            event = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    if let Some(event) = event {
                        return Sse {
                            event,
                            id,
                            data: serde_json::from_str(&data).unwrap(),
                        };
                    }
                    continue;
                }
                let chunk = self.body.next().await.expect("stream ended").unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("no event within 5 s")
    }

    /// Asserts nothing but comments arrives for `wait`.
    async fn quiet_for(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, self.body.next()).await {
            let text = String::from_utf8(chunk.unwrap().to_vec()).unwrap();
            assert!(
                text.lines().all(|l| l.is_empty() || l.starts_with(':')),
                "unexpected: {text}"
            );
        }
    }
}

async fn authorize_payment(f: &Fixture, order: &str, at: i64) {
    f.project(
        envelope("Payment", order, 1, at),
        AnyEvent::Payments(PaymentsEvent::PaymentAuthorized(PaymentAuthorized {
            order_id: order.into(),
            amount_minor: 3097,
            currency: "EUR".into(),
            authorization_code: "A1".into(),
            gateway_reference: "sim".into(),
        })),
    )
    .await;
}

async fn confirm(f: &Fixture, order: &str, at: i64) {
    f.project(
        envelope("Order", order, 2, at),
        AnyEvent::Orders(OrdersEvent::OrderConfirmed(OrderConfirmed {
            payment_id: None,
        })),
    )
    .await;
}

#[tokio::test]
async fn an_order_stream_sends_the_history_then_each_new_status_in_order() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let mut events = Events::open(&f, "/orders/o-1/stream", Some(&f.customer("c-1"))).await;
    let history = events.next().await;
    assert_eq!(history.event, "history");
    assert_eq!(history.data["order_id"], "o-1");
    assert_eq!(history.data["order"]["status"], "PLACED");
    assert_eq!(history.data["entries"][0]["event_type"], "OrderPlaced");
    assert_eq!(history.data["entries"].as_array().unwrap().len(), 1);

    authorize_payment(&f, "o-1", 2_000).await;
    confirm(&f, "o-1", 3_000).await;
    let first = events.next().await;
    assert_eq!(first.event, "status");
    assert_eq!(first.id.as_deref(), Some("e-o-1-Payment-1"));
    assert_eq!(first.data["order_id"], "o-1");
    assert_eq!(first.data["entry"]["event_type"], "PaymentAuthorized");
    let second = events.next().await;
    assert_eq!(second.data["entry"]["event_type"], "OrderConfirmed");
    assert_eq!(second.data["order"]["status"], "CONFIRMED");
    assert_eq!(second.data["order"]["payment_status"], "AUTHORIZED");
    assert_eq!(second.data["order"]["version"], 2);
    // Each entry is sent once.
    events.quiet_for(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn a_customer_stream_follows_new_orders_too() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    f.place("o-x", "c-2", 1_000).await;
    // As a browser's EventSource would: the token in the query.
    let uri = format!(
        "/customers/me/orders/stream?access_token={}",
        f.customer("c-1")
    );
    let mut events = Events::open(&f, &uri, None).await;
    let history = events.next().await;
    assert_eq!(history.event, "history");
    assert_eq!(history.data["customer_id"], "c-1");
    assert_eq!(history.data["orders"][0]["order_id"], "o-1");
    assert_eq!(history.data["orders"].as_array().unwrap().len(), 1);

    f.place("o-2", "c-1", 5_000).await;
    let placed = events.next().await;
    assert_eq!(placed.event, "status");
    assert_eq!(placed.data["order_id"], "o-2");
    assert_eq!(placed.data["entry"]["event_type"], "OrderPlaced");
    confirm(&f, "o-1", 6_000).await;
    let confirmed = events.next().await;
    assert_eq!(confirmed.data["order_id"], "o-1");
    assert_eq!(confirmed.data["order"]["status"], "CONFIRMED");
}

#[tokio::test]
async fn streams_keep_the_access_rules() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let other = f.customer("c-2");
    f.get("/orders/o-1/stream", Some(&other))
        .await
        .problem(404, "not-found", None);
    f.get("/customers/c-1/orders/stream", Some(&other))
        .await
        .problem(403, "forbidden", None);
    f.get("/orders/o-1/stream", None)
        .await
        .problem(401, "unauthorized", None);
    f.get("/orders/o-1/stream?access_token=nope", None)
        .await
        .problem(401, "unauthorized", None);
    // The query token is for streams only.
    f.get(
        &format!("/orders/o-1?access_token={}", f.customer("c-1")),
        None,
    )
    .await
    .problem(401, "unauthorized", None);
}

#[tokio::test]
async fn a_stream_stops_polling_when_the_client_goes_away() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let baseline = Arc::strong_count(&f.store);
    let mut events = Events::open(&f, "/orders/o-1/stream", Some(&f.customer("c-1"))).await;
    events.next().await;
    assert!(
        Arc::strong_count(&f.store) > baseline,
        "the stream holds the state"
    );
    drop(events);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(Arc::strong_count(&f.store), baseline);
}

impl Events {
    /// Asserts the body ends (after any comments) within 5 s.
    async fn ends(&mut self) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(chunk) = self.body.next().await {
                let text = String::from_utf8(chunk.unwrap().to_vec()).unwrap();
                self.buffer.push_str(&text);
                assert!(
                    self.buffer
                        .lines()
                        .all(|l| l.is_empty() || l.starts_with(':')),
                    "unexpected: {}",
                    self.buffer
                );
            }
        })
        .await
        .expect("the stream did not end within 5 s");
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let token = f.customer("c-1");
    for uri in ["/orders/o-1/stream", "/customers/me/orders/stream"] {
        let mut events = Events::open(&f, uri, Some(&token)).await;
        assert_eq!(events.next().await.event, "history");
        events.quiet_for(Duration::from_millis(60)).await;
        // Past the token's 15 minutes.
        f.advance_clock(16 * 60 * 1000);
        let end = events.next().await;
        assert_eq!(end.event, "end");
        assert_eq!(end.data, serde_json::json!({"reason": "token-expired"}));
        events.ends().await;
        f.advance_clock(-16 * 60 * 1000);
    }
    // The token itself is refused by then, too.
    f.advance_clock(16 * 60 * 1000);
    f.get("/orders/o-1/stream", Some(&token))
        .await
        .problem(401, "unauthorized", None);
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_streams() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let token = f.customer("c-1");
    let mut open = Vec::new();
    for i in 0..8 {
        let uri = if i % 2 == 0 {
            "/orders/o-1/stream"
        } else {
            "/customers/me/orders/stream"
        };
        open.push(Events::open(&f, uri, Some(&token)).await);
    }
    for uri in ["/orders/o-1/stream", "/customers/me/orders/stream"] {
        let refused = f.get(uri, Some(&token)).await;
        refused.problem(429, "too-many-streams", None);
        assert_eq!(refused.headers["retry-after"], "5");
    }
    // Another token of the same user counts as the same user.
    let again = f.customer("c-1");
    f.get("/orders/o-1/stream", Some(&again))
        .await
        .problem(429, "too-many-streams", None);
    // Other users are not held back.
    let mut admin = Events::open(&f, "/orders/o-1/stream", Some(&f.admin())).await;
    assert_eq!(admin.next().await.event, "history");
    // A refused stream took no slot; a closed one frees its slot.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut ninth = Events::open(&f, "/orders/o-1/stream", Some(&token)).await;
    assert_eq!(ninth.next().await.event, "history");
    f.get("/orders/o-1/stream", Some(&token))
        .await
        .problem(429, "too-many-streams", None);
    // An ended stream (its token expired) frees its slot too.
    drop(open);
    drop(ninth);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut all = Vec::new();
    for _ in 0..8 {
        all.push(Events::open(&f, "/orders/o-1/stream", Some(&token)).await);
    }
    f.advance_clock(16 * 60 * 1000);
    for events in &mut all {
        loop {
            if events.next().await.event == "end" {
                break;
            }
        }
        events.ends().await;
    }
    f.advance_clock(-16 * 60 * 1000);
    let mut fresh = Events::open(&f, "/orders/o-1/stream", Some(&token)).await;
    assert_eq!(fresh.next().await.event, "history");
}

#[tokio::test]
async fn a_timeline_is_read_again_only_when_the_order_row_moves() {
    let f = Fixture::new().await;
    f.place("o-1", "c-1", 1_000).await;
    let token = f.customer("c-1");
    let mut order = Events::open(&f, "/orders/o-1/stream", Some(&token)).await;
    let mut customer = Events::open(&f, "/customers/me/orders/stream", Some(&token)).await;
    assert_eq!(order.next().await.event, "history");
    assert_eq!(customer.next().await.event, "history");
    // A timeline entry whose version the row does not show: not read yet.
    let entry = |event_id: &str, kind: &str, version: i64| {
        row([
            ("order_id", t("o-1")),
            ("occurred_at", Value::Timestamp(2_000 + version)),
            ("event_id", t(event_id)),
            ("event_type", t("PaymentAuthorized")),
            ("aggregate_type", t(kind)),
            ("version", Value::BigInt(version)),
        ])
    };
    f.put(ORDER_TIMELINE, entry("e-quiet", "Payment", 1)).await;
    order.quiet_for(Duration::from_millis(120)).await;
    customer.quiet_for(Duration::from_millis(120)).await;
    // The row moves: the timeline is read, and what is new goes out.
    f.put(
        ORDERS_BY_ID,
        row([
            ("order_id", t("o-1")),
            ("payment_status", t("AUTHORIZED")),
            ("payment_version", Value::BigInt(1)),
        ]),
    )
    .await;
    for events in [&mut order, &mut customer] {
        let update = events.next().await;
        assert_eq!(update.id.as_deref(), Some("e-quiet"));
        assert_eq!(update.data["order"]["payment_status"], "AUTHORIZED");
    }
    // The row ahead of its timeline (the projection writes the row first):
    // the timeline is read again each tick until it shows that version.
    f.put(
        ORDERS_BY_ID,
        row([
            ("order_id", t("o-1")),
            ("payment_status", t("CAPTURED")),
            ("payment_version", Value::BigInt(2)),
        ]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.put(ORDER_TIMELINE, entry("e-late", "Payment", 2)).await;
    for events in [&mut order, &mut customer] {
        let update = events.next().await;
        assert_eq!(update.id.as_deref(), Some("e-late"));
        assert_eq!(update.data["order"]["payment_status"], "CAPTURED");
        events.quiet_for(Duration::from_millis(100)).await;
    }
}
