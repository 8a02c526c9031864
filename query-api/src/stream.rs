//! Live order status over Server-Sent Events.
//!
//! A stream polls the read models every `stream_poll_interval` — the read
//! store has no change feed, and a timeline partition is small — and pushes
//! what is new, by timeline `event_id`:
//!
//! - first, one `history` event: the timeline so far, with the order's
//!   current summary (status, payment and shipment status, versions);
//! - then one `status` event per new timeline entry, in timeline order,
//!   each with the order's summary at that moment and the entry's
//!   `event_id` as the SSE `id`.
//!
//! The customer stream does the same for the customer's newest 50 orders
//! (re-listed each tick, so a new order joins), tagging each event with its
//! order id. Keep-alive comments keep proxies from closing an idle stream.
//!
//! Nothing is spawned: the stream is polled by the connection that sends
//! it, so when the client goes away the connection drops the stream and
//! the polling ends with it. A tick whose reads fail is skipped (logged);
//! the next tick retries, and nothing seen is lost because novelty is
//! decided by `event_id`, not by time.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use platform::readstore::Row;
use projectors::projections::orders;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::StreamCaller;
use crate::cells;
use crate::pagination::Params;
use crate::problem::{AppError, Problem};
use crate::reads::{key, JOIN_PARALLELISM};
use crate::routes::customers::customer_of;
use crate::routes::orders::{visible_order, OrderSummary, TimelineEntry};
use crate::state::QueryState;

/// Most timeline entries read for one order (far more than an order has).
pub const MAX_TIMELINE: usize = 10_000;

/// How many of a customer's newest orders the customer stream follows.
pub const CUSTOMER_ORDERS: usize = 50;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(order_stream))
        .routes(routes!(customer_stream))
}

/// An order's timeline so far (the first event of a stream).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderHistory {
    pub order_id: String,
    pub order: Option<OrderSummary>,
    pub entries: Vec<TimelineEntry>,
}

/// The customer stream's first event: each followed order's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerHistory {
    pub customer_id: String,
    /// Newest order first.
    pub orders: Vec<OrderHistory>,
}

/// A new timeline entry of an order (a `status` event).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusUpdate {
    pub order_id: String,
    pub entry: TimelineEntry,
    /// The order's summary when the entry was seen.
    pub order: Option<OrderSummary>,
}

/// One SSE event; `None` if it cannot be encoded (it always can: a plain
/// struct to JSON).
fn event(name: &str, id: Option<&str>, payload: &impl Serialize) -> Option<Event> {
    let mut e = Event::default().event(name);
    // An SSE id may not hold line breaks or NUL (axum would panic on them);
    // ours are UUIDs, but a stored value is never trusted that far.
    if let Some(id) = id.filter(|id| !id.contains(['\n', '\r', '\0'])) {
        e = e.id(id);
    }
    e.json_data(payload).ok()
}

async fn timeline(state: &QueryState, order_id: &str) -> Result<Vec<TimelineEntry>, AppError> {
    let rows = state
        .scan_all(
            &orders::ORDER_TIMELINE,
            &key("order_id", order_id),
            MAX_TIMELINE,
        )
        .await?;
    Ok(rows.iter().map(TimelineEntry::of).collect())
}

async fn summary(state: &QueryState, order_id: &str) -> Result<Option<OrderSummary>, AppError> {
    Ok(state
        .get(&orders::ORDERS_BY_ID, &key("order_id", order_id))
        .await?
        .as_ref()
        .map(OrderSummary::of))
}

/// What a stream has sent.
struct Seen {
    ids: HashSet<String>,
    /// The `history` event went out.
    started: bool,
}

impl Seen {
    fn new() -> Self {
        Self {
            ids: HashSet::new(),
            started: false,
        }
    }

    /// The entries not sent yet, marking them sent.
    fn fresh(&mut self, entries: Vec<TimelineEntry>) -> Vec<TimelineEntry> {
        entries
            .into_iter()
            .filter(|e| self.ids.insert(e.event_id.clone()))
            .collect()
    }
}

/// A stream that runs `tick` now and then every poll interval, sending
/// the events each tick returns.
fn polling<T, F, Fut>(
    state: &QueryState,
    watch: T,
    tick: F,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = (Vec<Event>, T)> + Send,
{
    let interval = state.config.stream_poll_interval;
    stream::unfold((watch, true), move |(watch, first)| async move {
        if !first {
            tokio::time::sleep(interval).await;
        }
        let (events, watch) = tick(watch).await;
        Some((stream::iter(events.into_iter().map(Ok)), (watch, false)))
    })
    .flatten()
}

fn sse(
    state: &QueryState,
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(state.config.stream_keep_alive)
                .text("keep-alive"),
        )
        .into_response();
    // Reverse proxies (nginx) would otherwise buffer the events.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// One order's stream state.
struct OrderWatch {
    state: QueryState,
    order_id: String,
    seen: Seen,
}

async fn order_tick(mut w: OrderWatch) -> (Vec<Event>, OrderWatch) {
    let events = match order_events(&mut w).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(order_id = %w.order_id, error = %e, "order stream tick failed");
            Vec::new()
        }
    };
    (events, w)
}

async fn order_events(w: &mut OrderWatch) -> Result<Vec<Event>, AppError> {
    let entries = timeline(&w.state, &w.order_id).await?;
    if !w.seen.started {
        let order = summary(&w.state, &w.order_id).await?;
        let entries = w.seen.fresh(entries);
        w.seen.started = true;
        let history = OrderHistory {
            order_id: w.order_id.clone(),
            order,
            entries,
        };
        let last = history.entries.last().map(|e| e.event_id.clone());
        return Ok(event("history", last.as_deref(), &history)
            .into_iter()
            .collect());
    }
    let fresh = w.seen.fresh(entries);
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let order = summary(&w.state, &w.order_id).await?;
    Ok(updates(&w.order_id, fresh, order.as_ref()))
}

fn updates(order_id: &str, fresh: Vec<TimelineEntry>, order: Option<&OrderSummary>) -> Vec<Event> {
    fresh
        .into_iter()
        .filter_map(|entry| {
            let id = entry.event_id.clone();
            let update = StatusUpdate {
                order_id: order_id.to_owned(),
                entry,
                order: order.cloned(),
            };
            event("status", Some(&id), &update)
        })
        .collect()
}

/// Live status of an order: a `history` event, then a `status` event per
/// new timeline entry (`text/event-stream`).
///
/// Browsers' `EventSource` cannot send headers: it may pass the access
/// token as `?access_token=` and the position token as `?after=`.
///
/// Roles: the customer who placed it, or admin (anyone else: 404).
#[utoipa::path(get, path = "/orders/{order_id}/stream", tag = "live",
    params(("order_id" = String, Path, description = "The order id"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for clients that cannot send headers")),
    responses((status = 200, content_type = "text/event-stream",
            description = "Events `history` (OrderHistory) then `status` (StatusUpdate), JSON data; keep-alive comments",
            body = StatusUpdate),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (own orders)", "admin"]))))]
async fn order_stream(
    State(state): State<QueryState>,
    StreamCaller(caller): StreamCaller,
    Path(order_id): Path<String>,
    params: Params,
) -> Result<Response, AppError> {
    params.allow(&["access_token"])?;
    visible_order(&state, &caller, &order_id).await?;
    let watch = OrderWatch {
        state: state.clone(),
        order_id,
        seen: Seen::new(),
    };
    Ok(sse(&state, polling(&state, watch, order_tick)))
}

/// One customer's stream state.
struct CustomerWatch {
    state: QueryState,
    customer_id: String,
    seen: Seen,
}

async fn customer_tick(mut w: CustomerWatch) -> (Vec<Event>, CustomerWatch) {
    let events = match customer_events(&mut w).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(customer_id = %w.customer_id, error = %e, "customer stream tick failed");
            Vec::new()
        }
    };
    (events, w)
}

/// The customer's newest orders, newest first.
async fn followed_orders(state: &QueryState, customer_id: &str) -> Result<Vec<String>, AppError> {
    let page = state
        .scan(
            &orders::ORDERS_BY_CUSTOMER,
            &key("customer_id", customer_id),
            None,
            CUSTOMER_ORDERS,
        )
        .await?;
    Ok(page
        .rows
        .iter()
        .filter_map(|r: &Row| cells::text(r, "order_id"))
        .collect())
}

async fn customer_events(w: &mut CustomerWatch) -> Result<Vec<Event>, AppError> {
    let order_ids = followed_orders(&w.state, &w.customer_id).await?;
    let state = &w.state;
    // Owned ids and state per read: a stream of futures borrowing from
    // here would not be `Send` for every lifetime, as axum needs.
    let timelines: Vec<Result<Vec<TimelineEntry>, AppError>> = stream::iter(order_ids.clone())
        .map(|id| {
            let state = state.clone();
            async move { timeline(&state, &id).await }
        })
        .buffered(JOIN_PARALLELISM)
        .collect()
        .await;
    let mut per_order = Vec::with_capacity(order_ids.len());
    for (id, entries) in order_ids.iter().zip(timelines) {
        per_order.push((id, entries?));
    }
    if !w.seen.started {
        let mut orders = Vec::with_capacity(per_order.len());
        for (id, entries) in per_order {
            orders.push(OrderHistory {
                order_id: id.clone(),
                order: summary(state, id).await?,
                entries: w.seen.fresh(entries),
            });
        }
        w.seen.started = true;
        let history = CustomerHistory {
            customer_id: w.customer_id.clone(),
            orders,
        };
        return Ok(event("history", None, &history).into_iter().collect());
    }
    // Oldest followed order first, so a new order's events come last.
    let mut events = Vec::new();
    for (id, entries) in per_order.into_iter().rev() {
        let fresh = w.seen.fresh(entries);
        if fresh.is_empty() {
            continue;
        }
        let order = summary(state, id).await?;
        events.extend(updates(id, fresh, order.as_ref()));
    }
    Ok(events)
}

/// Live status of a customer's newest 50 orders: a `history` event, then a
/// `status` event (tagged with its order id) per new timeline entry of any
/// of them, including orders placed after the stream started.
///
/// Roles: the customer themself (`me`), or admin.
#[utoipa::path(get, path = "/customers/{customer_id}/orders/stream", tag = "live",
    params(("customer_id" = String, Path, description = "The customer id, or `me`"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for clients that cannot send headers")),
    responses((status = 200, content_type = "text/event-stream",
            description = "Events `history` (CustomerHistory) then `status` (StatusUpdate), JSON data; keep-alive comments",
            body = StatusUpdate),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (self)", "admin"]))))]
async fn customer_stream(
    State(state): State<QueryState>,
    StreamCaller(caller): StreamCaller,
    Path(customer_id): Path<String>,
    params: Params,
) -> Result<Response, AppError> {
    params.allow(&["access_token"])?;
    let customer_id = customer_of(&caller, &customer_id)?.to_owned();
    let watch = CustomerWatch {
        state: state.clone(),
        customer_id,
        seen: Seen::new(),
    };
    Ok(sse(&state, polling(&state, watch, customer_tick)))
}
