//! The bad-input matrix (issue 6): every way a request can be malformed —
//! oversized and deeply nested bodies, invalid UTF-8 in the body, headers,
//! path and query string, numbers no field holds, bodies that are not JSON —
//! sent to both APIs on both twins. Each is a 4xx problem+json naming the
//! field where there is one, and nothing reaches the log: every events
//! topic holds as many events after as before.
//! (`cases::bad_input_is_refused_and_appends_nothing` covers the domain's
//! refusals: roles, ownership, tokens, card numbers.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use anyhow::{ensure, Context as _, Result};
use platform::testing::TestAdapter;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::{self, spawn_app, APPROVE};
use crate::read_models::read_side;

/// One answer as the client saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    problem: Value,
}

impl Answer {
    /// 4xx problem+json with `status`, naming `field` when given.
    fn refused(&self, case: &str, status: u16, field: Option<&str>) -> Result<()> {
        self.refused_any(case, &[status], field)
    }

    /// 4xx problem+json with one of `statuses`, naming `field` when given.
    fn refused_any(&self, case: &str, statuses: &[u16], field: Option<&str>) -> Result<()> {
        let status = self.status;
        ensure!(
            statuses.contains(&status),
            "{case}: expected one of {statuses:?}, got {self:?}"
        );
        ensure!(
            self.content_type == "application/problem+json",
            "{case}: not problem+json: {self:?}"
        );
        ensure!(
            self.problem["status"] == status && self.problem["code"].is_string(),
            "{case}: not a problem document: {self:?}"
        );
        if let Some(field) = field {
            ensure!(
                self.problem["field"] == field,
                "{case}: expected field {field}: {self:?}"
            );
        }
        Ok(())
    }
}

/// Sends raw bytes as one HTTP/1.1 request (reqwest refuses to send what
/// a hostile client can: bytes that are not UTF-8 in the path or headers).
async fn raw(base: &str, head: &[u8], body: &[u8]) -> Result<Answer> {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!(
            "\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    stream.write_all(&request).await?;
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut response),
    )
    .await
    .context("no answer within 30 s")??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        problem: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

/// `method path` with the bearer, extra header lines (raw bytes) and body.
async fn send(
    base: &str,
    method: &str,
    path: &[u8],
    token: &str,
    headers: &[&[u8]],
    body: &[u8],
) -> Result<Answer> {
    let mut head = format!("{method} ").into_bytes();
    head.extend_from_slice(path);
    head.extend_from_slice(b" HTTP/1.1");
    if !token.is_empty() {
        head.extend_from_slice(format!("\r\nauthorization: Bearer {token}").as_bytes());
    }
    for h in headers {
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(h);
    }
    raw(base, &head, body).await
}

const JSON: &[u8] = b"content-type: application/json";

pub async fn bad_input_matrix_is_refused_with_problems_and_appends_nothing(
    adapter: TestAdapter,
) -> Result<()> {
    let mut app = spawn_app(adapter).await?;
    // Unique per app: Kafka cases share one broker.
    let item = format!(
        "BAD-{}",
        &app.system.topics.prefix.trim_end_matches('.')[3..]
    );
    app.product(&item, 700, 10).await?;
    let admin = app.admin().await?;
    let (_, alice) = app.customer("alice").await?;
    let side = read_side(&app, adapter).await?;
    let query = side.url();
    let before = app.event_ends().await?;
    let api = app.url.clone();
    let order = |quantity: &str| {
        format!(
            r#"{{"lines":[{{"sku":"{item}","quantity":{quantity}}}],"payment":{{"card_number":"{APPROVE}"}},"shipping_address":{}}}"#,
            app::address()
        )
    };

    // Oversized: over the 64 KiB limit, with and without an
    // Idempotency-Key (the idempotency layer reads the body first).
    let big = format!(r#"{{"lines":[],"pad":"{}"}}"#, "x".repeat(200 * 1024));
    send(&api, "POST", b"/orders", &alice, &[JSON], big.as_bytes())
        .await?
        .refused("oversized", 413, None)?;
    send(
        &api,
        "POST",
        b"/orders",
        &alice,
        &[JSON, b"idempotency-key: big-1"],
        big.as_bytes(),
    )
    .await?
    .refused("oversized with a key", 413, None)?;

    // Deep nesting: 100,000 `[` is over the size limit (413); 60,000 of
    // them (and 10,000 objects) reach the parser: refused where the shape
    // first goes wrong (422) or at the parser's depth limit (400), at the
    // root and in a field — never a stack overflow.
    let deep = "[".repeat(100_000);
    send(&api, "POST", b"/orders", &alice, &[JSON], deep.as_bytes())
        .await?
        .refused("100k deep arrays", 413, None)?;
    let deep = "[".repeat(60_000);
    send(&api, "POST", b"/orders", &alice, &[JSON], deep.as_bytes())
        .await?
        .refused_any("60k deep arrays", &[400, 422], None)?;
    let deep_objects = "{\"a\":".repeat(10_000);
    send(
        &api,
        "POST",
        b"/orders",
        &alice,
        &[JSON],
        deep_objects.as_bytes(),
    )
    .await?
    .refused_any("deep objects", &[400, 422], None)?;
    let deep_field = format!(
        r#"{{"lines":[{{"sku":"{item}","quantity":{}"#,
        "[".repeat(60_000)
    );
    send(
        &api,
        "POST",
        b"/orders",
        &alice,
        &[JSON],
        deep_field.as_bytes(),
    )
    .await?
    .refused_any("deep in a field", &[400, 422], Some("lines[0].quantity"))?;

    // Invalid UTF-8: in a JSON string, in the path, in headers, in the query.
    let mut bad_utf8 = order("1").into_bytes();
    let at = bad_utf8.windows(4).position(|w| w == b"Ada ").unwrap();
    bad_utf8[at] = 0xff;
    send(&api, "POST", b"/orders", &alice, &[JSON], &bad_utf8)
        .await?
        .refused("invalid UTF-8 in the body", 400, None)?;
    send(
        &api,
        "PUT",
        b"/products/%FF%FE/price",
        &admin,
        &[JSON],
        br#"{"price_minor":1,"currency":"EUR"}"#,
    )
    .await?
    .refused("invalid UTF-8 in the path", 400, Some("sku"))?;
    send(
        &api,
        "PUT",
        b"/products/\xff\xfe/price",
        &admin,
        &[JSON],
        br#"{"price_minor":1,"currency":"EUR"}"#,
    )
    .await
    .map(|a| {
        // hyper refuses raw non-ASCII request targets before any handler.
        ensure!(
            (400..500).contains(&a.status),
            "raw bytes in the path: {a:?}"
        );
        Ok(())
    })??;
    send(
        &api,
        "POST",
        b"/orders",
        &alice,
        &[JSON, b"idempotency-key: \xff\xfe"],
        order("1").as_bytes(),
    )
    .await?
    .refused(
        "invalid UTF-8 in Idempotency-Key",
        400,
        Some("Idempotency-Key"),
    )?;
    send(
        &api,
        "PUT",
        format!("/products/{item}/price").as_bytes(),
        &admin,
        &[JSON, b"if-match: \"\xff\""],
        br#"{"price_minor":1,"currency":"EUR"}"#,
    )
    .await?
    .refused("invalid UTF-8 in If-Match", 400, Some("If-Match"))?;
    send(
        &api,
        "POST",
        b"/orders",
        "",
        &[JSON, b"authorization: Bearer \xff\xfe"],
        order("1").as_bytes(),
    )
    .await?
    .refused("invalid UTF-8 in Authorization", 401, None)?;
    // Numbers no field holds: quantities and prices beyond i64/u64, below
    // zero, fractional, 1e400.
    for (quantity, status) in [
        ("18446744073709551616", 422),
        ("9223372036854775808", 422),
        ("-9223372036854775809", 422),
        ("9223372036854775807", 422),
        ("-1", 422),
        ("0", 422),
        ("1.5", 422),
        ("1e400", 400),
        ("-1e400", 400),
    ] {
        send(
            &api,
            "POST",
            b"/orders",
            &alice,
            &[JSON],
            order(quantity).as_bytes(),
        )
        .await?
        .refused(
            &format!("quantity {quantity}"),
            status,
            Some("lines[0].quantity"),
        )?;
    }
    let price_path = format!("/products/{item}/price");
    for (price, status) in [
        ("18446744073709551616", 422),
        ("-9223372036854775809", 422),
        ("-1", 422),
        ("12.99", 422),
        ("1e400", 400),
        ("\"1299\"", 422),
    ] {
        send(
            &api,
            "PUT",
            price_path.as_bytes(),
            &admin,
            &[JSON],
            format!(r#"{{"price_minor":{price},"currency":"EUR"}}"#).as_bytes(),
        )
        .await?
        .refused(&format!("price {price}"), status, Some("price_minor"))?;
    }
    for (delta, status) in [("9223372036854775808", 422), ("1e400", 400)] {
        send(
            &api,
            "POST",
            format!("/stock/{item}/restock").as_bytes(),
            &admin,
            &[JSON],
            format!(r#"{{"quantity":{delta}}}"#).as_bytes(),
        )
        .await?
        .refused(&format!("restock {delta}"), status, Some("quantity"))?;
    }

    // Not JSON: no content type, text, a form, multipart, trailing bytes,
    // an empty body.
    for content_type in [
        &b"content-type: text/plain"[..],
        b"content-type: application/x-www-form-urlencoded",
        b"content-type: multipart/form-data; boundary=x",
        b"content-type: application/xml",
    ] {
        send(
            &api,
            "POST",
            b"/orders",
            &alice,
            &[content_type],
            order("1").as_bytes(),
        )
        .await?
        .refused(&String::from_utf8_lossy(content_type), 415, None)?;
    }
    send(&api, "POST", b"/orders", &alice, &[], order("1").as_bytes())
        .await?
        .refused("no content type", 415, None)?;
    send(&api, "POST", b"/orders", &alice, &[JSON], b"")
        .await?
        .refused("empty body", 400, None)?;
    let trailing = format!("{} []", order("1"));
    send(
        &api,
        "POST",
        b"/orders",
        &alice,
        &[JSON],
        trailing.as_bytes(),
    )
    .await?
    .refused("trailing bytes", 400, None)?;

    // The query API: the same hostile bytes in paths, queries and headers.
    for (path, field) in [
        (&b"/orders/%FF%FE"[..], Some("order_id")),
        (b"/products/%C0", Some("sku")),
        (b"/customers/%FF/orders", Some("customer_id")),
        (b"/audit/%FF/x/events", Some("aggregate_type")),
        (b"/products?limit=1e400", Some("limit")),
        (b"/products?limit=18446744073709551616", Some("limit")),
        (b"/products?limit=-1", Some("limit")),
        (b"/products?cursor=%FF%FE", Some("cursor")),
    ] {
        send(&query, "GET", path, &admin, &[], b"").await?.refused(
            &String::from_utf8_lossy(path),
            400,
            field,
        )?;
    }
    let long = format!("/products?q={}", "x".repeat(200 * 1024));
    let a = send(&query, "GET", long.as_bytes(), &admin, &[], b"").await?;
    ensure!(
        (400..500).contains(&a.status),
        "a 200 KiB query string: {a:?}"
    );
    send(
        &query,
        "GET",
        b"/products/MUG-1",
        &admin,
        &[b"x-position-token: p1.\xff\xfe"],
        b"",
    )
    .await?
    .refused(
        "invalid UTF-8 in X-Position-Token",
        400,
        Some("X-Position-Token"),
    )?;
    send(
        &query,
        "GET",
        b"/customers/me/orders",
        "",
        &[b"authorization: Bearer \xff"],
        b"",
    )
    .await?
    .refused("invalid UTF-8 in Authorization", 401, None)?;

    // Nothing of it reached the log.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = app.event_ends().await?;
    ensure!(
        after == before,
        "bad input appended events: {before:?} → {after:?}"
    );
    // And the API still works.
    let (status, body) = app.place_order(&alice, &[(&item, 1)], APPROVE).await?;
    ensure!(status.is_success(), "after the matrix: {status} {body}");
    side.stop().await?;
    app.stop().await
}
