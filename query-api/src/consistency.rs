//! Read-your-writes. A command's answer carries a position token
//! (`p1.` + base64url(`type:id:version`), see the command API's
//! `position_token`); a query that sends it back (header `X-Position-Token`,
//! or `?after=` where headers cannot be set) is served only once the read
//! model holds that version of that aggregate.
//!
//! Each aggregate type maps to the row and version column that show its
//! projection got there (an Order → `orders_by_id.order_version`…). Order
//! endpoints are served by the orders projection, which also follows
//! payments and shipments; for them a Payment or Shipment token waits on
//! the `payment_version`/`shipment_version` cells of `orders_by_id`, since
//! the payments and shipments projections are separate consumers that may
//! be ahead of it.
//!
//! The row is polled (5 ms, doubling to 50 ms) until it has the version,
//! up to `read_your_writes_timeout`; then the answer is 503
//! `not-yet-consistent` with `Retry-After` — the documented "not yet",
//! not a failure, so its detail names the position. A served request says
//! `X-Read-Position-Reached: true`.
//!
//! The wait runs as a route layer, before the handler: the handler's reads
//! (and its 404s) then see at least the awaited version. The caller is
//! authenticated before the wait (a bad token is 401 at once, not after
//! it); who may see what is still the handler's call, after the wait.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use platform::readstore::TableDef;
use projectors::projections::{catalog, customers, orders, payments, shipments, stock};

use crate::cells;
use crate::pagination::query_pairs;
use crate::problem::AppError;
use crate::reads::key;
use crate::state::QueryState;

/// The request header carrying a position token.
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("x-position-token");
/// The response header saying the position was reached.
pub const REACHED_HEADER: HeaderName = HeaderName::from_static("x-read-position-reached");
/// The query parameter alternative to [`POSITION_HEADER`].
pub const AFTER_PARAM: &str = "after";

/// Longest token accepted (ids are short; this bounds the decoding work).
const MAX_TOKEN_LEN: usize = 1024;

const FIRST_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_millis(50);

/// A position: this version of this aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} version {}",
            self.aggregate_type, self.aggregate_id, self.version
        )
    }
}

/// Parses a token strictly: `p1.`, unpadded base64url, UTF-8
/// `Type:id:version` with an alphanumeric type, a non-empty id without
/// control characters and a positive decimal version.
pub fn parse(token: &str) -> Option<Position> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let body = token.strip_prefix("p1.")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .ok()?;
    let raw = String::from_utf8(bytes).ok()?;
    let (aggregate_type, rest) = raw.split_once(':')?;
    let (aggregate_id, version) = rest.rsplit_once(':')?;
    let type_ok =
        !aggregate_type.is_empty() && aggregate_type.bytes().all(|b| b.is_ascii_alphanumeric());
    let id_ok = !aggregate_id.is_empty() && !aggregate_id.chars().any(char::is_control);
    let version_ok = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    if !(type_ok && id_ok && version_ok) {
        return None;
    }
    let version: i64 = version.parse().ok()?;
    (version >= 1).then(|| Position {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version,
    })
}

/// The field a position came in: the header or the query parameter.
pub const HEADER_FIELD: &str = "X-Position-Token";

/// The position a request asks for, if any, and where it came from
/// (header or `?after=`; both must then agree).
pub fn requested(request: &Request) -> Result<Option<(Position, &'static str)>, AppError> {
    let bad = |field: &str| {
        AppError::bad_request(
            "invalid-position-token",
            field,
            format!("{field} must be the `position` of a command's answer (p1.…)"),
        )
    };
    let from_header = match request.headers().get(&POSITION_HEADER) {
        None => None,
        Some(v) => {
            let text = v.to_str().map_err(|_| bad(HEADER_FIELD))?;
            Some(parse(text.trim()).ok_or_else(|| bad(HEADER_FIELD))?)
        }
    };
    let from_query = match query_pairs(request.uri())?
        .into_iter()
        .find(|(k, _)| k == AFTER_PARAM)
    {
        None => None,
        Some((_, v)) => Some(parse(v.trim()).ok_or_else(|| bad(AFTER_PARAM))?),
    };
    match (from_header, from_query) {
        (Some(h), Some(q)) if h != q => Err(AppError::bad_request(
            "invalid-position-token",
            AFTER_PARAM,
            "X-Position-Token and ?after= name different positions: send one",
        )),
        (Some(h), _) => Ok(Some((h, HEADER_FIELD))),
        (None, q) => Ok(q.map(|q| (q, AFTER_PARAM))),
    }
}

/// Which projection serves a request, where that changes the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The orders projection (order, timeline, customer's orders, streams).
    ByOrders,
    Other,
}

impl Served {
    /// From the matched route.
    pub fn of_route(path: Option<&str>) -> Self {
        match path {
            Some(p)
                if (p.starts_with("/orders/{order_id}") && p != "/orders/{order_id}/payment")
                    || p.starts_with("/customers/{customer_id}/orders") =>
            {
                Served::ByOrders
            }
            _ => Served::Other,
        }
    }
}

/// Where an aggregate's version shows in a read model.
#[derive(Debug, Clone, Copy)]
struct Target {
    table: TableDef,
    key: &'static str,
    version: &'static str,
}

fn target(aggregate_type: &str, served: Served) -> Option<Target> {
    let t = |table: TableDef, key: &'static str, version: &'static str| {
        Some(Target {
            table,
            key,
            version,
        })
    };
    match (aggregate_type, served) {
        ("Order", _) => t(orders::ORDERS_BY_ID, "order_id", "order_version"),
        ("Payment", Served::ByOrders) => t(orders::ORDERS_BY_ID, "order_id", "payment_version"),
        ("Shipment", Served::ByOrders) => t(orders::ORDERS_BY_ID, "order_id", "shipment_version"),
        ("Payment", Served::Other) => t(payments::PAYMENTS_BY_ORDER, "order_id", "payment_version"),
        ("Shipment", Served::Other) => t(
            shipments::SHIPMENTS_BY_ID,
            "shipment_id",
            "shipment_version",
        ),
        ("Product", _) => t(catalog::PRODUCTS_BY_ID, "sku", "product_version"),
        ("StockItem", _) => t(stock::STOCK_LEVELS, "sku", "stock_version"),
        ("Customer", _) => t(
            customers::CUSTOMER_PROFILES,
            "customer_id",
            "customer_version",
        ),
        _ => None,
    }
}

/// Whether the read model holds `position` yet.
async fn reached(
    state: &QueryState,
    target: &Target,
    position: &Position,
) -> Result<bool, AppError> {
    let row = state
        .get(&target.table, &key(target.key, &position.aggregate_id))
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    if cells::big(&row, target.version).is_some_and(|v| v >= position.version) {
        return Ok(true);
    }
    // An Order event that changes no status (a cancellation request) is
    // projected into the timeline only, so `order_version` stays behind
    // it: the timeline then shows whether the projection got there.
    if target.table.name == orders::ORDERS_BY_ID.name && target.version == "order_version" {
        let timeline = state
            .scan_all(
                &orders::ORDER_TIMELINE,
                &key("order_id", &position.aggregate_id),
                crate::stream::MAX_TIMELINE,
            )
            .await?;
        return Ok(timeline.iter().any(|entry| {
            cells::text(entry, "aggregate_type").as_deref() == Some("Order")
                && cells::big(entry, "version").is_some_and(|v| v >= position.version)
        }));
    }
    Ok(false)
}

/// Waits until the read model serving `served` holds `position` (sent as
/// `field`).
pub async fn wait(
    state: &QueryState,
    position: &Position,
    field: &str,
    served: Served,
) -> Result<(), AppError> {
    let Some(target) = target(&position.aggregate_type, served) else {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "position-not-followed",
            format!(
                "no read model follows {} aggregates, so this position cannot be waited for: send the position of an Order, Payment, Shipment, Product, StockItem or Customer",
                position.aggregate_type
            ),
        )
        .with_field(field));
    };
    let timeout = state.config.read_your_writes_timeout;
    let deadline = Instant::now() + timeout;
    let mut delay = FIRST_DELAY;
    loop {
        if reached(state, &target, position).await? {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(not_yet(position, timeout));
        }
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

fn not_yet(position: &Position, waited: Duration) -> AppError {
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-yet-consistent",
        format!(
            "the read model has not yet reached {position} (waited {} ms): retry shortly with the same token",
            waited.as_millis()
        ),
    )
    .with_title("Not yet consistent")
    .with_header(header::RETRY_AFTER, "1")
}

/// The route layer: waits for a requested position, then serves.
///
/// A route that needs a token is authenticated first, so a request that
/// would be refused 401 is refused at once rather than after the wait.
pub async fn read_your_writes(
    State(state): State<QueryState>,
    request: Request,
    next: Next,
) -> Response {
    let (position, field) = match requested(&request) {
        Ok(Some(p)) => p,
        Ok(None) => return next.run(request).await,
        Err(e) => return e.into_response(),
    };
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let (mut parts, body) = request.into_parts();
    if let Some(path) = &path {
        if let Err(e) = crate::auth::ahead(&state, &mut parts, path).await {
            return e.into_response();
        }
    }
    let served = Served::of_route(path.as_deref());
    if let Err(e) = wait(&state, &position, field, served).await {
        return e.into_response();
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    response
        .headers_mut()
        .insert(REACHED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn token(raw: &str) -> String {
        format!(
            "p1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )
    }

    #[test]
    fn tokens_parse_strictly() {
        assert_eq!(
            parse(&token("Order:o-1:3")),
            Some(Position {
                aggregate_type: "Order".into(),
                aggregate_id: "o-1".into(),
                version: 3
            })
        );
        assert_eq!(
            parse(&token("Product:SKU:with:colons:7"))
                .unwrap()
                .aggregate_id,
            "SKU:with:colons"
        );
        for bad in [
            "p1.".to_owned(),
            "p2.".to_owned() + &token("Order:o:1")[3..],
            token("Order:o:0"),
            token("Order:o:-1"),
            token("Order:o:+1"),
            token("Order::1"),
            token(":o:1"),
            token("Ord er:o:1"),
            token("Order:o:"),
            token("Order:o:99999999999999999999"),
            token("Order:o\n:1"),
            token("Order:o:1") + "=",
            "p1.!!!".to_owned(),
            "garbage".to_owned(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn order_routes_wait_on_the_orders_projection() {
        assert_eq!(
            Served::of_route(Some("/orders/{order_id}")),
            Served::ByOrders
        );
        assert_eq!(
            Served::of_route(Some("/customers/{customer_id}/orders/stream")),
            Served::ByOrders
        );
        assert_eq!(
            Served::of_route(Some("/orders/{order_id}/payment")),
            Served::Other
        );
        let t = target("Payment", Served::ByOrders).unwrap();
        assert_eq!(
            (t.table.name, t.version),
            ("orders_by_id", "payment_version")
        );
        let t = target("Payment", Served::Other).unwrap();
        assert_eq!(t.table.name, "payments_by_order");
        assert!(target("Cart", Served::Other).is_none());
    }

    #[test]
    fn every_target_names_columns_its_table_has() {
        for kind in [
            "Order",
            "Payment",
            "Shipment",
            "Product",
            "StockItem",
            "Customer",
        ] {
            for served in [Served::ByOrders, Served::Other] {
                let t = target(kind, served).unwrap();
                assert_eq!(t.table.partition_key.len(), 1, "{kind}");
                assert_eq!(t.table.partition_key[0].name, t.key, "{kind}");
                assert!(t.table.column(t.version).is_some(), "{kind} {}", t.version);
            }
        }
    }
}
