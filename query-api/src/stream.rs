//! Live order status over Server-Sent Events.
//!
//! A stream polls the read models every `stream_poll_interval` — the read
//! store has no change feed — and pushes what is new, by timeline
//! `event_id`:
//!
//! - first, one `history` event: the timeline so far, with the order's
//!   current summary (status, payment and shipment status, versions);
//! - then one `status` event per new timeline entry, in timeline order,
//!   each with the order's summary at that moment and the entry's
//!   `event_id` as the SSE `id`;
//! - when the access token expires, one `end` event
//!   (`{"reason":"token-expired"}`), and the stream closes: a stream does
//!   not outlive the token it was opened with (reconnect with a fresh one).
//!
//! The customer stream does the same for the customer's newest 50 orders
//! (re-listed each tick, so a new order joins), tagging each event with its
//! order id. Keep-alive comments keep proxies from closing an idle stream.
//!
//! A tick reads each followed order's `orders_by_id` row (one point read)
//! and reads its timeline only when the row's version cells
//! (`order_version`, `payment_version`, `shipment_version`) moved since
//! the last timeline read covered them: every event the orders projection
//! takes moves one of them, and it writes the row before the timeline
//! entry, so a timeline read that does not yet show the versions the row
//! has is repeated on the next tick. What a stream remembers is per order
//! (the event ids it sent), and an order that leaves the newest-50 window
//! is forgotten.
//!
//! A user (`sub`) may have at most `max_streams_per_subject` streams open
//! at once (429 beyond); the slot is held by the stream and freed when it
//! ends or its client goes away.
//!
//! Nothing is spawned: the stream is polled by the connection that sends
//! it, so when the client goes away the connection drops the stream and
//! the polling ends with it. A tick whose reads fail is skipped (logged);
//! the next tick retries, and nothing seen is lost because novelty is
//! decided by `event_id`, not by time.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use platform::readstore::Row;
use projectors::projections::orders;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, StreamCaller};
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

/// `Retry-After` of a 429 for too many streams, seconds.
const STREAMS_RETRY_AFTER_S: &str = "5";

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

/// The last event of a stream (`end`); the stream closes after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamEnd {
    /// `token-expired`: the access token the stream was opened with has
    /// expired; open a new stream with a fresh token.
    pub reason: String,
}

/// The live streams open per subject, to cap them.
#[derive(Debug, Default)]
pub struct StreamSlots(Mutex<HashMap<String, usize>>);

/// One open stream's slot: freed when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    sub: String,
}

impl StreamSlots {
    /// A slot for `sub`, unless it has `max` streams open already.
    pub fn acquire(self: &Arc<Self>, sub: &str, max: usize) -> Option<StreamSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(sub.to_owned()).or_insert(0);
        if *n >= max {
            if *n == 0 {
                open.remove(sub);
            }
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: Arc::clone(self),
            sub: sub.to_owned(),
        })
    }

    /// How many streams `sub` has open.
    pub fn open(&self, sub: &str) -> usize {
        let open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(sub).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.sub) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.sub);
            }
        }
    }
}

/// A slot for the caller's new stream, or 429.
fn slot(state: &QueryState, caller: &Caller) -> Result<StreamSlot, AppError> {
    let max = state.config.max_streams_per_subject;
    state
        .streams
        .acquire(&caller.customer_id, max)
        .ok_or_else(|| {
            AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-streams",
                format!("at most {max} live streams may be open at once per user: close one first"),
            )
            .with_header(header::RETRY_AFTER, STREAMS_RETRY_AFTER_S)
        })
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

async fn order_row(state: &QueryState, order_id: &str) -> Result<Option<Row>, AppError> {
    state
        .get(&orders::ORDERS_BY_ID, &key("order_id", order_id))
        .await
}

/// The order, payment and shipment versions an order is at (`None` below
/// any version, so they compare componentwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Versions {
    order: Option<i64>,
    payment: Option<i64>,
    shipment: Option<i64>,
}

impl Versions {
    /// The version cells of an `orders_by_id` row.
    fn of_row(row: Option<&Row>) -> Self {
        let cell = |c: &str| row.and_then(|r| cells::big(r, c));
        Self {
            order: cell("order_version"),
            payment: cell("payment_version"),
            shipment: cell("shipment_version"),
        }
    }

    /// The newest version of each aggregate a timeline shows.
    fn of_timeline(entries: &[TimelineEntry]) -> Self {
        let newest = |kind: &str| {
            entries
                .iter()
                .filter(|e| e.aggregate_type.as_deref() == Some(kind))
                .filter_map(|e| e.version)
                .max()
        };
        Self {
            order: newest("Order"),
            payment: newest("Payment"),
            shipment: newest("Shipment"),
        }
    }

    /// Every version at least `other`'s.
    fn covers(&self, other: &Self) -> bool {
        self.order >= other.order
            && self.payment >= other.payment
            && self.shipment >= other.shipment
    }
}

/// What a stream knows of one order.
#[derive(Debug, Default)]
struct Followed {
    /// The timeline entries sent.
    sent: HashSet<String>,
    /// The row's versions the last timeline read covered: the timeline is
    /// read again only when the row moves past them.
    covered: Option<Versions>,
}

impl Followed {
    /// Whether the timeline must be read, the row being at `now`.
    fn stale(&self, now: Versions) -> bool {
        self.covered != Some(now)
    }

    /// The entries of a timeline read (with the row at `now`) not sent
    /// yet, marking them sent.
    fn take(&mut self, now: Versions, entries: Vec<TimelineEntry>) -> Vec<TimelineEntry> {
        if Versions::of_timeline(&entries).covers(&now) {
            self.covered = Some(now);
        }
        entries
            .into_iter()
            .filter(|e| self.sent.insert(e.event_id.clone()))
            .collect()
    }
}

/// The row an order's entries are summarised with: `row`, or the row read
/// again if the timeline is ahead of it (projected in between).
async fn summary_row(
    state: &QueryState,
    order_id: &str,
    row: Option<Row>,
    entries: &[TimelineEntry],
) -> Result<Option<Row>, AppError> {
    if Versions::of_row(row.as_ref()).covers(&Versions::of_timeline(entries)) {
        return Ok(row);
    }
    order_row(state, order_id).await
}

/// A stream that runs `tick` now and then every poll interval, sending
/// the events each tick returns, until `exp` (seconds, the state's clock)
/// is reached: then it sends an `end` event and closes. `watch` (and the
/// stream's slot in it) is dropped with the stream.
fn polling<T, F, Fut>(
    state: &QueryState,
    exp: i64,
    watch: T,
    tick: F,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = (Vec<Event>, T)> + Send,
{
    let interval = state.config.stream_poll_interval;
    let state = state.clone();
    stream::unfold(Some((watch, true)), move |next| {
        let state = state.clone();
        async move {
            let (watch, first) = next?;
            if !first {
                tokio::time::sleep(interval).await;
            }
            if state.now_s() >= exp {
                drop(watch);
                let end = StreamEnd {
                    reason: "token-expired".into(),
                };
                let events: Vec<Event> = event("end", None, &end).into_iter().collect();
                return Some((stream::iter(events.into_iter().map(Ok)), None));
            }
            let (events, watch) = tick(watch).await;
            Some((
                stream::iter(events.into_iter().map(Ok)),
                Some((watch, false)),
            ))
        }
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
    followed: Followed,
    /// The `history` event went out.
    started: bool,
    _slot: StreamSlot,
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
    let row = order_row(&w.state, &w.order_id).await?;
    let now = Versions::of_row(row.as_ref());
    if w.started && !w.followed.stale(now) {
        return Ok(Vec::new());
    }
    let entries = timeline(&w.state, &w.order_id).await?;
    let row = summary_row(&w.state, &w.order_id, row, &entries).await?;
    let order = row.as_ref().map(OrderSummary::of);
    let fresh = w.followed.take(now, entries);
    if !w.started {
        w.started = true;
        let history = OrderHistory {
            order_id: w.order_id.clone(),
            order,
            entries: fresh,
        };
        let last = history.entries.last().map(|e| e.event_id.clone());
        return Ok(event("history", last.as_deref(), &history)
            .into_iter()
            .collect());
    }
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
/// new timeline entry (`text/event-stream`); when the access token
/// expires, an `end` event (`{"reason":"token-expired"}`) and the stream
/// closes.
///
/// Browsers' `EventSource` cannot send headers: it may pass the access
/// token as `?access_token=` and the position token as `?after=`. A user
/// may have only so many live streams open at once (8 unless configured; 429 beyond).
///
/// Roles: the customer who placed it, or admin (anyone else: 404).
#[utoipa::path(get, path = "/orders/{order_id}/stream", tag = "live",
    params(("order_id" = String, Path, description = "The order id"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for clients that cannot send headers")),
    responses((status = 200, content_type = "text/event-stream",
            description = "Events `history` (OrderHistory) then `status` (StatusUpdate), and `end` (StreamEnd) when the access token expires, JSON data; keep-alive comments",
            body = StatusUpdate),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 429, body = Problem, description = "`too-many-streams`: the user has the most live streams open already (retry after `Retry-After`)")),
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
        followed: Followed::default(),
        started: false,
        _slot: slot(&state, &caller)?,
    };
    Ok(sse(&state, polling(&state, caller.exp, watch, order_tick)))
}

/// One customer's stream state.
struct CustomerWatch {
    state: QueryState,
    customer_id: String,
    /// The orders in the newest-50 window, by id.
    orders: HashMap<String, Followed>,
    /// The `history` event went out.
    started: bool,
    _slot: StreamSlot,
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

/// One followed order as a tick read it.
struct OrderRead {
    order_id: String,
    row: Option<Row>,
    now: Versions,
    /// Its timeline, if its versions moved.
    timeline: Option<Vec<TimelineEntry>>,
}

async fn customer_events(w: &mut CustomerWatch) -> Result<Vec<Event>, AppError> {
    let state = &w.state;
    // Every read first, so a failed tick changes nothing.
    let order_ids = followed_orders(state, &w.customer_id).await?;
    let keys = order_ids.iter().map(|id| key("order_id", id)).collect();
    let rows = state.get_many(&orders::ORDERS_BY_ID, keys).await?;
    let mut reads: Vec<OrderRead> = order_ids
        .into_iter()
        .zip(rows)
        .map(|(order_id, row)| {
            let now = Versions::of_row(row.as_ref());
            OrderRead {
                order_id,
                row,
                now,
                timeline: None,
            }
        })
        .collect();
    let stale: Vec<usize> = reads
        .iter()
        .enumerate()
        .filter(|(_, r)| w.orders.get(&r.order_id).is_none_or(|f| f.stale(r.now)))
        .map(|(i, _)| i)
        .collect();
    // Owned ids and state per read: a stream of futures borrowing from
    // here would not be `Send` for every lifetime, as axum needs.
    let stale_ids: Vec<String> = stale.iter().map(|&i| reads[i].order_id.clone()).collect();
    let timelines: Vec<Result<Vec<TimelineEntry>, AppError>> = stream::iter(stale_ids)
        .map(|id| {
            let state = state.clone();
            async move { timeline(&state, &id).await }
        })
        .buffered(JOIN_PARALLELISM)
        .collect()
        .await;
    for (&i, entries) in stale.iter().zip(timelines) {
        let entries = entries?;
        let read = &mut reads[i];
        read.row = summary_row(state, &read.order_id, read.row.take(), &entries).await?;
        read.timeline = Some(entries);
    }
    // Orders that left the window are forgotten.
    w.orders
        .retain(|id, _| reads.iter().any(|r| &r.order_id == id));
    let mut per_order = Vec::with_capacity(reads.len());
    for read in reads {
        let followed = w.orders.entry(read.order_id.clone()).or_default();
        let fresh = match read.timeline {
            Some(entries) => followed.take(read.now, entries),
            None => Vec::new(),
        };
        let order = read.row.as_ref().map(OrderSummary::of);
        per_order.push((read.order_id, order, fresh));
    }
    if !w.started {
        w.started = true;
        let history = CustomerHistory {
            customer_id: w.customer_id.clone(),
            orders: per_order
                .into_iter()
                .map(|(order_id, order, entries)| OrderHistory {
                    order_id,
                    order,
                    entries,
                })
                .collect(),
        };
        return Ok(event("history", None, &history).into_iter().collect());
    }
    // Oldest followed order first, so a new order's events come last.
    Ok(per_order
        .into_iter()
        .rev()
        .flat_map(|(order_id, order, fresh)| updates(&order_id, fresh, order.as_ref()))
        .collect())
}

/// Live status of a customer's newest 50 orders: a `history` event, then a
/// `status` event (tagged with its order id) per new timeline entry of any
/// of them, including orders placed after the stream started; when the
/// access token expires, an `end` event (`{"reason":"token-expired"}`)
/// and the stream closes.
///
/// A user may have only so many live streams open at once (8 unless configured; 429 beyond).
///
/// Roles: the customer themself (`me`), or admin.
#[utoipa::path(get, path = "/customers/{customer_id}/orders/stream", tag = "live",
    params(("customer_id" = String, Path, description = "The customer id, or `me`"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for clients that cannot send headers")),
    responses((status = 200, content_type = "text/event-stream",
            description = "Events `history` (CustomerHistory) then `status` (StatusUpdate), and `end` (StreamEnd) when the access token expires, JSON data; keep-alive comments",
            body = StatusUpdate),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 429, body = Problem, description = "`too-many-streams`: the user has the most live streams open already (retry after `Retry-After`)")),
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
        orders: HashMap::new(),
        started: false,
        _slot: slot(&state, &caller)?,
    };
    Ok(sse(
        &state,
        polling(&state, caller.exp, watch, customer_tick),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use platform::readstore::{ReadStore, Value};
    use projectors::projection::{row, upsert};

    use super::*;

    fn entry(id: &str, kind: &str, version: i64) -> TimelineEntry {
        TimelineEntry {
            event_id: id.into(),
            event_type: None,
            aggregate_type: Some(kind.into()),
            version: Some(version),
            occurred_at: String::new(),
            actor: None,
            correlation_id: None,
            causation_id: None,
            detail: None,
        }
    }

    fn at(order: Option<i64>, payment: Option<i64>, shipment: Option<i64>) -> Versions {
        Versions {
            order,
            payment,
            shipment,
        }
    }

    #[test]
    fn a_timeline_is_read_until_it_covers_the_row_then_not_again() {
        let mut f = Followed::default();
        let row = at(Some(1), None, None);
        assert!(f.stale(row));
        let first = f.take(row, vec![entry("a", "Order", 1)]);
        assert_eq!(first.len(), 1);
        assert!(!f.stale(row), "covered: no read until the row moves");
        // The row moved to payment 1, the timeline does not show it yet.
        let row = at(Some(1), Some(1), None);
        assert!(f.stale(row));
        let none = f.take(row, vec![entry("a", "Order", 1)]);
        assert!(none.is_empty());
        assert!(f.stale(row), "not covered: read again next tick");
        let late = f.take(row, vec![entry("a", "Order", 1), entry("b", "Payment", 1)]);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].event_id, "b");
        assert!(!f.stale(row));
    }

    #[test]
    fn versions_compare_per_aggregate() {
        let timeline = Versions::of_timeline(&[
            entry("a", "Order", 2),
            entry("b", "Payment", 1),
            entry("c", "Order", 1),
        ]);
        assert_eq!(timeline, at(Some(2), Some(1), None));
        assert!(timeline.covers(&at(Some(2), Some(1), None)));
        assert!(timeline.covers(&at(Some(1), None, None)));
        assert!(!timeline.covers(&at(Some(2), Some(1), Some(1))));
        assert!(!timeline.covers(&at(Some(3), Some(1), None)));
    }

    #[test]
    fn a_slot_is_held_until_dropped() {
        let slots = Arc::new(StreamSlots::default());
        let held: Vec<StreamSlot> = (0..3).map(|_| slots.acquire("u", 3).unwrap()).collect();
        assert!(slots.acquire("u", 3).is_none());
        assert_eq!(slots.open("u"), 3);
        let other = slots.acquire("v", 3).unwrap();
        drop(held);
        assert_eq!(slots.open("u"), 0);
        assert!(slots.0.lock().unwrap().get("u").is_none(), "no entry left");
        assert!(slots.acquire("w", 0).is_none());
        assert!(slots.0.lock().unwrap().get("w").is_none());
        drop(other);
        assert!(slots.0.lock().unwrap().is_empty());
    }

    async fn place(store: &dyn ReadStore, customer: &str, order: &str, at: i64) {
        let mut mutations = vec![
            upsert(
                orders::ORDERS_BY_CUSTOMER,
                1,
                row([
                    ("customer_id", Value::Text(customer.into())),
                    ("placed_at", Value::Timestamp(at)),
                    ("order_id", Value::Text(order.into())),
                ]),
            ),
            upsert(
                orders::ORDERS_BY_ID,
                1,
                row([
                    ("order_id", Value::Text(order.into())),
                    ("customer_id", Value::Text(customer.into())),
                    ("order_version", Value::BigInt(1)),
                ]),
            ),
            upsert(
                orders::ORDER_TIMELINE,
                1,
                row([
                    ("order_id", Value::Text(order.into())),
                    ("occurred_at", Value::Timestamp(at)),
                    ("event_id", Value::Text(format!("e-{order}"))),
                    ("aggregate_type", Value::Text("Order".into())),
                    ("version", Value::BigInt(1)),
                ]),
            ),
        ];
        for m in &mut mutations {
            m.generation = 1;
        }
        store.write(&mutations).await.unwrap();
    }

    #[tokio::test]
    async fn the_customer_stream_remembers_only_the_orders_it_follows() {
        let (state, store) = crate::state::memory_state().await;
        for i in 0..CUSTOMER_ORDERS {
            place(
                store.as_ref(),
                "c-1",
                &format!("o-{i:03}"),
                1_000 + i as i64,
            )
            .await;
        }
        let mut w = CustomerWatch {
            state: state.clone(),
            customer_id: "c-1".into(),
            orders: HashMap::new(),
            started: false,
            _slot: state.streams.acquire("c-1", 1).unwrap(),
        };
        assert_eq!(customer_events(&mut w).await.unwrap().len(), 1);
        assert_eq!(w.orders.len(), CUSTOMER_ORDERS);
        assert!(w
            .orders
            .values()
            .all(|f| f.sent.len() == 1 && f.covered.is_some()));
        // A quiet tick sends nothing.
        assert!(customer_events(&mut w).await.unwrap().is_empty());
        // A newer order pushes the oldest out of the window, and out of
        // what the stream remembers.
        place(store.as_ref(), "c-1", "o-new", 9_000).await;
        let events = customer_events(&mut w).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(w.orders.len(), CUSTOMER_ORDERS);
        assert!(w.orders.contains_key("o-new"));
        assert!(!w.orders.contains_key("o-000"));
    }
}
