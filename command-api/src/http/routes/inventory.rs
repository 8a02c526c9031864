//! Inventory: what admins do to stock (one stock item per SKU, the
//! aggregate id), and the reservation commands the order-fulfillment saga
//! normally sends, exposed for operations.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use platform::auth::Role;
use schemas::inventory::{
    AdjustStock, CommitStock, InventoryCommand, ReleaseStock, ReserveStock, RestockItem,
    SetLowStockThreshold,
};
use schemas::{AnyCommand, Context};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::validate::MAX_TEXT;
use crate::http::caller::Caller;
use crate::http::dto;
use crate::http::json::ApiJson;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, CommandPending, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(restock))
        .routes(routes!(adjust))
        .routes(routes!(set_threshold))
        .routes(routes!(reserve))
        .routes(routes!(release))
        .routes(routes!(commit))
}

/// Most units one restock or adjustment may move (the aggregate's bound:
/// a pallet, not a typo with extra zeros).
const MAX_UNITS: i64 = 1_000_000;

/// Longest adjustment note (it may span lines), as the aggregate has it.
const MAX_NOTE: usize = 10 * MAX_TEXT;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    /// Units that arrived: 1 to 1000000.
    pub quantity: i64,
    /// The delivery note or purchase order, for the audit trail.
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Units to add (positive) or remove (negative): not 0, at most 1000000 either way.
    pub delta: i64,
    /// Why, e.g. `recount` or `damaged`.
    pub reason: String,
    /// Free text, up to 2000 characters; may span lines.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRequest {
    /// Available units at or below which stock counts as low; 0 turns the alarm off.
    pub threshold: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationRequest {
    pub order_id: String,
    /// The order line, from 1.
    pub line_no: i64,
    /// 1 to 999.
    pub quantity: i64,
}

/// Sends an inventory command for stock item `sku` as an admin.
async fn stock_command(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    sku: &str,
    command: InventoryCommand,
) -> Result<Response, AppError> {
    let key = key.map(|Extension(k)| k);
    submit::submit(
        state,
        key.as_ref(),
        headers,
        Outgoing {
            context: Context::Inventory,
            aggregate_type: "StockItem",
            aggregate_id: sku.to_owned(),
            command: AnyCommand::Inventory(command),
            actor: caller.actor(Role::Admin),
            creates: false,
        },
    )
    .await
}

/// 1 to [`MAX_UNITS`] units.
fn units(value: i64, field: &str) -> Result<i32, AppError> {
    match i32::try_from(value) {
        Ok(q) if (1..=MAX_UNITS).contains(&value) => Ok(q),
        _ => Err(AppError::invalid(
            field,
            format!("{field} must be between 1 and {MAX_UNITS}"),
        )),
    }
}

/// A line number: 1 or more.
fn line_no(value: i64, field: &str) -> Result<i32, AppError> {
    match i32::try_from(value) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(AppError::invalid(
            field,
            format!("{field} must be a positive line number"),
        )),
    }
}

/// A line number from the path: 400 when it is not one.
fn path_line_no(value: &str) -> Result<i32, AppError> {
    match value.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(
            AppError::bad_request("invalid-path", "line_no must be a positive line number")
                .with_field("line_no"),
        ),
    }
}

/// Record goods arriving (creates the stock item on its first delivery).
#[utoipa::path(post, path = "/stock/{sku}/restock", tag = "inventory", request_body = RestockRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn restock(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<RestockRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    let quantity = units(body.quantity, "quantity")?;
    dto::reason(body.reference.as_ref(), "reference")?;
    let command = InventoryCommand::RestockItem(RestockItem {
        quantity,
        reference: body.reference,
    });
    stock_command(&state, &caller, key, &headers, &sku, command).await
}

/// Correct the units on hand (a recount, breakage).
///
/// Never below what is reserved.
#[utoipa::path(post, path = "/stock/{sku}/adjustments", tag = "inventory", request_body = AdjustmentRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn adjust(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<AdjustmentRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    let delta = match i32::try_from(body.delta) {
        Ok(d) if d != 0 && body.delta.abs() <= MAX_UNITS => d,
        _ => {
            return Err(AppError::invalid(
                "delta",
                format!("delta must be non-zero and at most {MAX_UNITS} either way"),
            ))
        }
    };
    dto::text(&body.reason, "reason")?;
    if body
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE)
    {
        return Err(AppError::invalid(
            "note",
            format!("note is longer than {MAX_NOTE} characters"),
        ));
    }
    let command = InventoryCommand::AdjustStock(AdjustStock {
        delta,
        reason: body.reason,
        note: body.note,
    });
    stock_command(&state, &caller, key, &headers, &sku, command).await
}

/// Set the low-stock threshold (0 turns the alarm off).
#[utoipa::path(put, path = "/stock/{sku}/threshold", tag = "inventory", request_body = ThresholdRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn set_threshold(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<ThresholdRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    let threshold = match i32::try_from(body.threshold) {
        Ok(t) if t >= 0 => t,
        _ => {
            return Err(AppError::invalid(
                "threshold",
                format!("threshold must be between 0 and {}", i32::MAX),
            ))
        }
    };
    let command = InventoryCommand::SetLowStockThreshold(SetLowStockThreshold { threshold });
    stock_command(&state, &caller, key, &headers, &sku, command).await
}

/// Reserve units for an order line (operations).
///
/// The saga does this. Not enough stock is recorded as a rejected
/// reservation, not refused.
#[utoipa::path(post, path = "/stock/{sku}/reservations", tag = "inventory (operations)",
    request_body = ReservationRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn reserve(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<ReservationRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    dto::text(&body.order_id, "order_id")?;
    let line_no = line_no(body.line_no, "line_no")?;
    let quantity = dto::quantity(body.quantity, "quantity")?;
    let command = InventoryCommand::ReserveStock(ReserveStock {
        order_id: body.order_id,
        line_no,
        quantity,
    });
    stock_command(&state, &caller, key, &headers, &sku, command).await
}

/// Release an order line's reservation (operations).
///
/// The saga does this. Releasing what is not reserved succeeds and changes
/// nothing.
#[utoipa::path(post, path = "/stock/{sku}/reservations/{order_id}/{line_no}/release",
    tag = "inventory (operations)",
    params(("sku" = String, Path), ("order_id" = String, Path),
        ("line_no" = i32, Path, description = "The order line, from 1")),
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn release(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path((sku, order_id, line_no)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    dto::path_id(&order_id, "order_id")?;
    let line_no = path_line_no(&line_no)?;
    let command = InventoryCommand::ReleaseStock(ReleaseStock { order_id, line_no });
    stock_command(&state, &caller, key, &headers, &sku, command).await
}

/// Commit an order line's reserved units: they leave the warehouse (operations).
///
/// The saga does this. Only reserved units can be committed.
#[utoipa::path(post, path = "/stock/{sku}/reservations/{order_id}/{line_no}/commit",
    tag = "inventory (operations)",
    params(("sku" = String, Path), ("order_id" = String, Path),
        ("line_no" = i32, Path, description = "The order line, from 1")),
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn commit(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path((sku, order_id, line_no)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    dto::path_id(&order_id, "order_id")?;
    let line_no = path_line_no(&line_no)?;
    let command = InventoryCommand::CommitStock(CommitStock { order_id, line_no });
    stock_command(&state, &caller, key, &headers, &sku, command).await
}
