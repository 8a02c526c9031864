//! Stock levels, for admins.

use axum::extract::{Path, State};
use axum::Json;
use platform::auth::Role;
use projectors::projections::stock;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::cells;
use crate::ids::path_id;
use crate::pagination::Params;
use crate::problem::{AppError, Problem};
use crate::reads::key;
use crate::state::QueryState;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(get_stock))
}

/// The stock of a SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StockView {
    pub sku: String,
    /// Units in the warehouse.
    pub on_hand: Option<i32>,
    /// Units that can still be reserved.
    pub available: Option<i32>,
    /// Units reserved for orders not yet shipped.
    pub reserved: Option<i32>,
    /// At or below this many available units the SKU is low on stock.
    pub threshold: Option<i32>,
    /// `available <= threshold`; absent unless both are known.
    pub low_stock: Option<bool>,
    pub low_stock_detected_at: Option<String>,
    pub updated_at: Option<String>,
    pub version: Option<i64>,
}

/// The stock levels of a SKU and whether it is low.
///
/// Roles: admin.
#[utoipa::path(get, path = "/stock/{sku}", tag = "inventory",
    params(("sku" = String, Path, description = "The SKU")),
    responses((status = 200, body = StockView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))))]
async fn get_stock(
    State(state): State<QueryState>,
    caller: Caller,
    Path(sku): Path<String>,
    params: Params,
) -> Result<Json<StockView>, AppError> {
    caller.require_any(&[Role::Admin])?;
    params.allow(&[])?;
    let sku = path_id(&sku, "sku")?;
    let row = state
        .get(&stock::STOCK_LEVELS, &key("sku", sku))
        .await?
        .ok_or_else(|| AppError::not_found("no stock is recorded for this SKU"))?;
    let available = cells::int(&row, "available");
    let threshold = cells::int(&row, "low_stock_threshold");
    Ok(Json(StockView {
        sku: sku.to_owned(),
        on_hand: cells::int(&row, "on_hand"),
        available,
        reserved: cells::int(&row, "reserved"),
        threshold,
        low_stock: available.zip(threshold).map(|(a, t)| a <= t),
        low_stock_detected_at: cells::time(&row, "low_stock_detected_at"),
        updated_at: cells::time(&row, "updated_at"),
        version: cells::big(&row, "stock_version"),
    }))
}
