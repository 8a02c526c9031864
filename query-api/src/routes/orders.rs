//! An order, its timeline and its payment — what a customer tracks.
//!
//! A customer sees only their own orders; another customer's order is 404,
//! not 403, so order ids do not leak. Admins see every order. An
//! `orders_by_id` row without placement facts (a payment event projected
//! before its `OrderPlaced`) is not an order yet: 404 for everyone.

use axum::extract::{Path, State};
use axum::Json;
use platform::readstore::Row;
use projectors::projections::{orders, payments};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::cells;
use crate::ids::path_id;
use crate::pagination::{Paged, Params};
use crate::problem::{AppError, Problem};
use crate::reads::key;
use crate::state::QueryState;
use crate::views::Address;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(get_order))
        .routes(routes!(get_timeline))
        .routes(routes!(get_payment))
}

/// The statuses an order can have (`orders_by_id.status`).
pub const ORDER_STATUSES: &[&str] = &[
    "PLACED",
    "CONFIRMED",
    "SHIPPED",
    "COMPLETED",
    "CANCELLED",
    "REJECTED",
];

/// The order's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Totals {
    /// Minor units of `currency`.
    pub total_minor: i64,
    pub currency: String,
}

/// One line as stored in `lines_json` (the `OrderLine` record).
#[derive(Debug, Clone, Deserialize)]
struct StoredLine {
    line_no: i32,
    sku: String,
    quantity: i32,
    unit_price_minor: i64,
    currency: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderLine {
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    /// Price of one unit when the order was placed, minor units.
    pub unit_price_minor: i64,
    /// `quantity × unit_price_minor`.
    pub line_total_minor: i64,
    pub currency: String,
}

/// The payment's state as the order knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PaymentState {
    /// `PENDING`, `AUTHORIZED`, `DECLINED`, `TIMED_OUT`, `CAPTURED`, `VOIDED`, `REFUNDED`.
    pub status: String,
    pub version: Option<i64>,
}

/// The shipment's state as the order knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ShipmentState {
    /// `SCHEDULED`, `ASSIGNED`, `PICKED_UP`, `DELIVERED`, `FAILED`, `CANCELLED`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<String>,
    pub version: Option<i64>,
}

/// The versions of the three aggregates an order row follows (send the
/// order's as `If-Match` to the command API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Versions {
    pub order: Option<i64>,
    pub payment: Option<i64>,
    pub shipment: Option<i64>,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub customer_id: String,
    /// One of `PLACED`, `CONFIRMED`, `SHIPPED`, `COMPLETED`, `CANCELLED`, `REJECTED`.
    pub status: Option<String>,
    pub status_at: Option<String>,
    /// Why it was cancelled or rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub placed_at: Option<String>,
    pub totals: Option<Totals>,
    pub lines: Vec<OrderLine>,
    pub shipping_address: Option<Address>,
    pub payment: Option<PaymentState>,
    pub shipment: Option<ShipmentState>,
    pub versions: Versions,
}

/// What a live stream says about an order with each entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderSummary {
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub shipment_status: Option<String>,
    /// The order's version.
    pub version: Option<i64>,
    pub payment_version: Option<i64>,
    pub shipment_version: Option<i64>,
}

impl OrderSummary {
    pub fn of(row: &Row) -> Self {
        Self {
            status: cells::text(row, "status"),
            payment_status: cells::text(row, "payment_status"),
            shipment_status: cells::text(row, "shipment_status"),
            version: cells::big(row, "order_version"),
            payment_version: cells::big(row, "payment_version"),
            shipment_version: cells::big(row, "shipment_version"),
        }
    }
}

/// A status change of the order, its payment or its shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub event_id: String,
    /// `OrderPlaced`, `PaymentAuthorized`, `ShipmentPickedUp`…
    pub event_type: Option<String>,
    /// `Order`, `Payment` or `Shipment`.
    pub aggregate_type: Option<String>,
    /// The version of that aggregate the event made.
    pub version: Option<i64>,
    pub occurred_at: String,
    /// Who caused it: `customer:<id>`, `admin:<id>`, `saga:…`.
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// A reason, amount or decline code, when the event has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TimelineEntry {
    pub fn of(row: &Row) -> Self {
        Self {
            event_id: cells::text(row, "event_id").unwrap_or_default(),
            event_type: cells::text(row, "event_type"),
            aggregate_type: cells::text(row, "aggregate_type"),
            version: cells::big(row, "version"),
            occurred_at: cells::time(row, "occurred_at").unwrap_or_default(),
            actor: cells::text(row, "actor"),
            correlation_id: cells::text(row, "correlation_id"),
            causation_id: cells::text(row, "causation_id"),
            detail: cells::text(row, "detail"),
        }
    }
}

/// The order row if the caller may see it; 404 otherwise.
pub async fn visible_order(
    state: &QueryState,
    caller: &Caller,
    order_id: &str,
) -> Result<Row, AppError> {
    let order_id = path_id(order_id, "order_id")?;
    let row = state
        .get(&orders::ORDERS_BY_ID, &key("order_id", order_id))
        .await?;
    match row {
        Some(row)
            if cells::text(&row, "customer_id")
                .is_some_and(|owner| caller.may_see_order_of(&owner)) =>
        {
            Ok(row)
        }
        _ => Err(AppError::not_found("no such order")),
    }
}

/// 404 if the order exists and the caller may not see it; `Ok` if they
/// may, or if it is not projected yet (read-your-writes then waits for it,
/// and [`visible_order`] decides after the wait).
pub async fn not_someone_elses(
    state: &QueryState,
    caller: &Caller,
    order_id: &str,
) -> Result<(), AppError> {
    let order_id = path_id(order_id, "order_id")?;
    let row = state
        .get(&orders::ORDERS_BY_ID, &key("order_id", order_id))
        .await?;
    match row.and_then(|r| cells::text(&r, "customer_id")) {
        Some(owner) if !caller.may_see_order_of(&owner) => {
            Err(AppError::not_found("no such order"))
        }
        _ => Ok(()),
    }
}

fn order_view(row: &Row) -> Result<OrderView, AppError> {
    let table = orders::ORDERS_BY_ID.name;
    let lines: Vec<StoredLine> = cells::json(row, table, "lines_json")?.unwrap_or_default();
    let totals = match (cells::big(row, "total_minor"), cells::text(row, "currency")) {
        (Some(total_minor), Some(currency)) => Some(Totals {
            total_minor,
            currency,
        }),
        _ => None,
    };
    Ok(OrderView {
        order_id: cells::text(row, "order_id").unwrap_or_default(),
        customer_id: cells::text(row, "customer_id").unwrap_or_default(),
        status: cells::text(row, "status"),
        status_at: cells::time(row, "status_at"),
        status_reason: cells::text(row, "status_reason"),
        placed_at: cells::time(row, "placed_at"),
        totals,
        lines: lines
            .into_iter()
            .map(|l| OrderLine {
                line_total_minor: i64::from(l.quantity).saturating_mul(l.unit_price_minor),
                line_no: l.line_no,
                sku: l.sku,
                quantity: l.quantity,
                unit_price_minor: l.unit_price_minor,
                currency: l.currency,
            })
            .collect(),
        shipping_address: cells::json(row, table, "shipping_address_json")?,
        payment: cells::text(row, "payment_status").map(|status| PaymentState {
            status,
            version: cells::big(row, "payment_version"),
        }),
        shipment: cells::text(row, "shipment_status").map(|status| ShipmentState {
            status,
            courier_id: cells::text(row, "courier_id"),
            version: cells::big(row, "shipment_version"),
        }),
        versions: Versions {
            order: cells::big(row, "order_version"),
            payment: cells::big(row, "payment_version"),
            shipment: cells::big(row, "shipment_version"),
        },
    })
}

/// An order: status, totals, lines, address, payment and shipment state.
///
/// Roles: the customer who placed it, or admin (anyone else: 404).
#[utoipa::path(get, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path, description = "The order id")),
    responses((status = 200, body = OrderView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (own orders)", "admin"]))))]
async fn get_order(
    State(state): State<QueryState>,
    caller: Caller,
    Path(order_id): Path<String>,
    params: Params,
) -> Result<Json<OrderView>, AppError> {
    params.allow(&[])?;
    let row = visible_order(&state, &caller, &order_id).await?;
    let mut view = order_view(&row)?;
    view.shipping_address =
        crate::pii::reveal_address(&state, view.shipping_address.take()).await?;
    Ok(Json(view))
}

/// Every status change of the order, its payment and its shipment, oldest
/// first, with who caused it and why.
///
/// Roles: the customer who placed it, or admin (anyone else: 404).
#[utoipa::path(get, path = "/orders/{order_id}/timeline", tag = "orders",
    params(("order_id" = String, Path, description = "The order id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Entries per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Paged<TimelineEntry>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (own orders)", "admin"]))))]
async fn get_timeline(
    State(state): State<QueryState>,
    caller: Caller,
    Path(order_id): Path<String>,
    params: Params,
) -> Result<Json<Paged<TimelineEntry>>, AppError> {
    let page = params.allow(&["limit", "cursor"])?.page(&state.config)?;
    visible_order(&state, &caller, &order_id).await?;
    let rows = state
        .scan(
            &orders::ORDER_TIMELINE,
            &key("order_id", &order_id),
            page.cursor.as_ref(),
            page.limit,
        )
        .await?;
    Ok(Json(Paged::new(
        rows.rows.iter().map(TimelineEntry::of).collect(),
        rows.next,
    )))
}

/// The payment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PaymentView {
    pub order_id: String,
    pub payment_id: Option<String>,
    /// `PENDING`, `AUTHORIZED`, `DECLINED`, `TIMED_OUT`, `CAPTURED`, `VOIDED`, `REFUNDED`.
    pub status: Option<String>,
    pub currency: Option<String>,
    /// What is to be paid, minor units.
    pub amount_minor: Option<i64>,
    pub authorized_minor: Option<i64>,
    pub captured_minor: Option<i64>,
    /// Refunded so far in total.
    pub refunded_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub status_at: Option<String>,
    pub version: Option<i64>,
}

fn payment_view(order_id: &str, row: &Row) -> PaymentView {
    PaymentView {
        order_id: order_id.to_owned(),
        payment_id: cells::text(row, "payment_id"),
        status: cells::text(row, "status"),
        currency: cells::text(row, "currency"),
        amount_minor: cells::big(row, "amount_minor"),
        authorized_minor: cells::big(row, "authorized_minor"),
        captured_minor: cells::big(row, "captured_minor"),
        refunded_minor: cells::big(row, "refunded_minor"),
        authorization_code: cells::text(row, "authorization_code"),
        gateway_reference: cells::text(row, "gateway_reference"),
        decline_code: cells::text(row, "decline_code"),
        decline_message: cells::text(row, "decline_message"),
        status_reason: cells::text(row, "status_reason"),
        status_at: cells::time(row, "status_at"),
        version: cells::big(row, "payment_version"),
    }
}

/// The order's payment: status and the amounts authorized, captured and
/// refunded.
///
/// Roles: the customer who placed the order, or admin (anyone else: 404).
#[utoipa::path(get, path = "/orders/{order_id}/payment", tag = "orders",
    params(("order_id" = String, Path, description = "The order id (= the payment id)")),
    responses((status = 200, body = PaymentView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (own orders)", "admin"]))))]
async fn get_payment(
    State(state): State<QueryState>,
    caller: Caller,
    Path(order_id): Path<String>,
    params: Params,
) -> Result<Json<PaymentView>, AppError> {
    params.allow(&[])?;
    visible_order(&state, &caller, &order_id).await?;
    let row = state
        .get(&payments::PAYMENTS_BY_ORDER, &key("order_id", &order_id))
        .await?
        .ok_or_else(|| AppError::not_found("this order has no payment yet"))?;
    Ok(Json(payment_view(&order_id, &row)))
}
