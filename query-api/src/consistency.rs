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
//! be ahead of it. Every Order event the orders projection takes moves
//! `order_version` (a cancellation request too), so that one cell answers
//! for an Order token.
//!
//! A wait costs reads, and how long it takes tells whether a row has got
//! somewhere, so a token is admitted only where it fits ([`follows`]):
//!
//! - the route must follow the token's aggregate — an order route its
//!   order, payment and shipment, a customer's order list its orders, a
//!   profile its customer, the catalog its products and their stock…;
//!   where the path names the aggregate, the token must name that one;
//!   other routes (sales, audit, sagas) follow no positions. A token that
//!   does not fit is 422 `position-not-followed` naming the field, with no
//!   wait;
//! - the caller is authenticated first (a bad token is 401 at once, not
//!   after the wait), also on the public catalog routes unless the token's
//!   aggregate is public data there (a Product, or a StockItem for a
//!   product); where the path alone says the caller may not read the
//!   answer (another customer's list or profile, an admin's route), that
//!   is refused before the wait too. Who may see an order is still the
//!   handler's call, after the wait (a 404 needs the row).
//!
//! The row is polled (5 ms, doubling to 50 ms) until it has the version,
//! up to `read_your_writes_timeout`; then the answer is 503
//! `not-yet-consistent` with `Retry-After` — the documented "not yet",
//! not a failure, so its detail names the position. A served request says
//! `X-Read-Position-Reached: true`.
//!
//! The wait runs as a route layer, before the handler: the handler's reads
//! (and its 404s) then see at least the awaited version.

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use platform::auth::Role;
use platform::readstore::TableDef;
use projectors::projections::{catalog, customers, orders, payments, shipments, stock};

use crate::auth::Caller;
use crate::cells;
use crate::pagination::query_pairs;
use crate::problem::AppError;
use crate::reads::key;
use crate::routes::catalog::PUBLIC_ROUTES;
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
    Ok(cells::big(&row, target.version).is_some_and(|v| v >= position.version))
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

/// Who may wait on a route: checked before the wait, so that a caller the
/// answer is refused to cannot use the wait to probe the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: what the route follows is public data.
    Public,
    /// Any authenticated caller (the handler decides after the wait: whose
    /// order it is needs the order's row).
    Authenticated,
    /// The customer the path's `customer_id` names (`me`), or an admin.
    Customer,
    /// The courier the path's `courier_id` names (`me`), or an admin.
    Courier,
    /// Admins and couriers.
    AdminOrCourier,
    Admin,
}

/// The positions a route follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follows {
    /// The aggregate types.
    pub types: &'static [&'static str],
    /// The path parameter the token's aggregate id must equal (`me` is the
    /// caller), or `None` for any aggregate of those types (a listing).
    pub same_id: Option<&'static str>,
    pub access: Access,
}

/// What the route `route` (as matched, `/orders/{order_id}`) follows:
/// `None` for the routes that follow no positions.
pub fn follows(route: &str) -> Option<Follows> {
    let f = |types, same_id, access| {
        Some(Follows {
            types,
            same_id,
            access,
        })
    };
    const ORDER: &[&str] = &["Order", "Payment", "Shipment"];
    match route {
        "/orders/{order_id}"
        | "/orders/{order_id}/timeline"
        | "/orders/{order_id}/payment"
        | "/orders/{order_id}/stream" => f(ORDER, Some("order_id"), Access::Authenticated),
        "/customers/{customer_id}/orders" | "/customers/{customer_id}/orders/stream" => {
            f(&["Order"], None, Access::Customer)
        }
        "/customers/{customer_id}" => f(&["Customer"], Some("customer_id"), Access::Customer),
        "/shipments/{shipment_id}" => f(&["Shipment"], Some("shipment_id"), Access::AdminOrCourier),
        "/couriers/{courier_id}/shipments" => f(&["Shipment"], None, Access::Courier),
        "/stock/{sku}" => f(&["StockItem"], Some("sku"), Access::Admin),
        "/products/{sku}" => f(&["Product", "StockItem"], Some("sku"), Access::Public),
        "/products" => f(&["Product"], None, Access::Public),
        _ => None,
    }
}

/// What `route` follows, in words (for its OpenAPI document).
pub fn follows_text(route: &str) -> String {
    let Some(rule) = follows(route) else {
        return "This endpoint follows no positions: sending one is 422.".to_owned();
    };
    let types = match rule.types {
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => String::new(),
    };
    let which = match rule.same_id {
        Some(param) if SELF_PARAMS.contains(&param) => {
            format!("the {types} whose id is the path's `{param}` (`me`: the caller)")
        }
        Some(param) => format!("the {types} whose id is the path's `{param}`"),
        None => format!("any {types}"),
    };
    let who = match rule.access {
        Access::Public => {
            " No bearer token is needed for them (another position needs one, and is then 422)."
        }
        Access::Authenticated => " The bearer token is checked before the wait.",
        _ => " The bearer token, and that the caller may read this, are checked before the wait.",
    };
    format!("This endpoint follows the positions of {which}; any other is 422, with no wait.{who}")
}

fn not_followed(detail: String, field: &str) -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "position-not-followed",
        detail,
    )
    .with_field(field)
}

/// The path parameters `me` may stand in for the caller in.
const SELF_PARAMS: &[&str] = &["customer_id", "courier_id"];

/// Admits a position token on `route`, authenticating the caller where it
/// needs one (and caching it for the handler): the route must follow the
/// token's aggregate, and the caller may read the answer as far as the
/// path tells. Returns which projection to wait on.
async fn admit(
    state: &QueryState,
    parts: &mut Parts,
    route: &str,
    position: &Position,
    field: &str,
) -> Result<Served, AppError> {
    let rule = follows(route);
    let kind = position.aggregate_type.as_str();
    let fits = rule.filter(|r| r.types.contains(&kind));
    let caller = match fits {
        Some(r) if r.access == Access::Public && PUBLIC_ROUTES.contains(&route) => None,
        _ => Some(crate::auth::ahead(state, parts, route).await?),
    };
    let Some(rule) = fits else {
        let follows = match rule {
            Some(r) => format!("it follows {} positions", r.types.join(", ")),
            None => "send no position token here".to_owned(),
        };
        return Err(not_followed(
            format!("this endpoint does not follow {kind} positions: {follows}"),
            field,
        ));
    };
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(parts, state)
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| -> String {
        let value = params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        match &caller {
            Some(c) if SELF_PARAMS.contains(&name) => c.resolve(value).to_owned(),
            _ => value.to_owned(),
        }
    };
    if let Some(name) = rule.same_id {
        let expected = param(name);
        if position.aggregate_id != expected {
            return Err(not_followed(
                format!(
                    "this endpoint follows the positions of its {name} only ({expected}): the token names {kind} {}",
                    position.aggregate_id
                ),
                field,
            ));
        }
    }
    if let Some(caller) = &caller {
        may_wait(caller, rule.access, &param)?;
        // Whose order it is, before the wait: an order the caller may not
        // see answers 404 at once, whatever the token's version, so the
        // wait cannot be used to learn how far someone else's order got.
        if rule.access == Access::Authenticated && rule.same_id == Some("order_id") {
            crate::routes::orders::not_someone_elses(state, caller, &param("order_id")).await?;
        }
    }
    Ok(Served::of_route(Some(route)))
}

/// The access rule of a route, as far as its path tells.
fn may_wait(
    caller: &Caller,
    access: Access,
    param: &dyn Fn(&str) -> String,
) -> Result<(), AppError> {
    match access {
        Access::Public | Access::Authenticated => Ok(()),
        Access::Customer => caller.may_read_customer(&param("customer_id")),
        Access::Courier => caller.may_read_courier(&param("courier_id")),
        Access::AdminOrCourier => caller.require_any(&[Role::Admin, Role::Courier]),
        Access::Admin => caller.require_any(&[Role::Admin]),
    }
}

/// The route layer: admits a requested position, waits for it, then
/// serves.
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
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    let served = match admit(&state, &mut parts, &route, &position, field).await {
        Ok(served) => served,
        Err(e) => return e.into_response(),
    };
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

    #[test]
    fn every_route_says_what_it_follows_and_can_wait_for_it() {
        let follow_none = [
            "/sales/days/{day}",
            "/sales/products/{sku}",
            "/audit/{aggregate_type}/{aggregate_id}/events",
            "/audit/{aggregate_type}/{aggregate_id}/state",
            "/audit/{aggregate_type}/{aggregate_id}/verify",
            "/ops/sagas/{order_id}",
        ];
        let (_, _, api) = crate::openapi::parts();
        for route in api.paths.paths.keys() {
            if route == "/healthz" || route == "/readyz" {
                continue;
            }
            match follows(route) {
                None => assert!(follow_none.contains(&route.as_str()), "{route}"),
                Some(rule) => {
                    assert!(!follow_none.contains(&route.as_str()), "{route}");
                    for kind in rule.types {
                        assert!(
                            target(kind, Served::of_route(Some(route))).is_some(),
                            "{route} {kind}"
                        );
                    }
                    if let Some(param) = rule.same_id {
                        assert!(route.contains(&format!("{{{param}}}")), "{route}");
                    }
                    // Only catalog data is waited for without a caller.
                    assert_eq!(
                        rule.access == Access::Public,
                        PUBLIC_ROUTES.contains(&route.as_str()),
                        "{route}"
                    );
                    if rule.access == Access::Public {
                        assert!(rule
                            .types
                            .iter()
                            .all(|t| ["Product", "StockItem"].contains(t)));
                    }
                }
            }
        }
    }
}
