//! Shipments: one by id (admins, and the courier it is assigned to), and a
//! courier's list (the courier themself via `me` or their id, and admins).
//! A courier asking for a shipment not assigned to them gets 404, like a
//! customer asking for another's order.

use axum::extract::{Path, State};
use axum::Json;
use platform::auth::Role;
use platform::readstore::Row;
use projectors::projections::shipments;
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
        .routes(routes!(get_shipment))
        .routes(routes!(list_courier_shipments))
}

/// One SKU in the parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShipmentItem {
    pub sku: String,
    pub quantity: i32,
}

/// A shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ShipmentView {
    pub shipment_id: String,
    pub order_id: Option<String>,
    /// `SCHEDULED`, `ASSIGNED`, `PICKED_UP`, `DELIVERED`, `FAILED`, `CANCELLED`.
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub courier_id: Option<String>,
    pub destination: Option<Address>,
    pub items: Vec<ShipmentItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_by: Option<String>,
    pub scheduled_at: Option<String>,
    pub status_at: Option<String>,
    pub version: Option<i64>,
}

fn shipment_view(shipment_id: &str, row: &Row) -> Result<ShipmentView, AppError> {
    let table = shipments::SHIPMENTS_BY_ID.name;
    Ok(ShipmentView {
        shipment_id: shipment_id.to_owned(),
        order_id: cells::text(row, "order_id"),
        status: cells::text(row, "status"),
        status_reason: cells::text(row, "status_reason"),
        courier_id: cells::text(row, "courier_id"),
        destination: cells::json(row, table, "destination_json")?,
        items: cells::json(row, table, "items_json")?.unwrap_or_default(),
        received_by: cells::text(row, "received_by"),
        scheduled_at: cells::time(row, "scheduled_at"),
        status_at: cells::time(row, "status_at"),
        version: cells::big(row, "shipment_version"),
    })
}

/// A shipment: status, courier, destination and items.
///
/// Roles: admin, or the courier it is assigned to (other couriers: 404).
#[utoipa::path(get, path = "/shipments/{shipment_id}", tag = "deliveries",
    params(("shipment_id" = String, Path, description = "The shipment id (= its order's id)")),
    responses((status = 200, body = ShipmentView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin", "courier (assigned)"]))))]
async fn get_shipment(
    State(state): State<QueryState>,
    caller: Caller,
    Path(shipment_id): Path<String>,
    params: Params,
) -> Result<Json<ShipmentView>, AppError> {
    caller.require_any(&[Role::Admin, Role::Courier])?;
    params.allow(&[])?;
    let shipment_id = path_id(&shipment_id, "shipment_id")?;
    let row = state
        .get(
            &shipments::SHIPMENTS_BY_ID,
            &key("shipment_id", shipment_id),
        )
        .await?;
    let visible = |row: &Row| {
        caller.is_admin() || cells::text(row, "courier_id").is_some_and(|c| c == caller.customer_id)
    };
    match row {
        Some(row) if visible(&row) => shipment_view(shipment_id, &row).map(Json),
        _ => Err(AppError::not_found("no such shipment")),
    }
}

/// A shipment on a courier's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CourierShipment {
    pub shipment_id: String,
    pub order_id: Option<String>,
    pub assigned_at: Option<String>,
    /// The shipment's current status (from the shipment itself).
    pub status: Option<String>,
    pub status_at: Option<String>,
}

/// The shipments assigned to a courier, by shipment id, each with its
/// current status.
///
/// Roles: the courier themself (`me`), or admin.
#[utoipa::path(get, path = "/couriers/{courier_id}/shipments", tag = "deliveries",
    params(("courier_id" = String, Path, description = "The courier's user id, or `me`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Shipments per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Paged<CourierShipment>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["courier (self)", "admin"]))))]
async fn list_courier_shipments(
    State(state): State<QueryState>,
    caller: Caller,
    Path(courier_id): Path<String>,
    params: Params,
) -> Result<Json<Paged<CourierShipment>>, AppError> {
    let page = params.allow(&["limit", "cursor"])?.page(&state.config)?;
    let courier_id = path_id(caller.resolve(&courier_id), "courier_id")?;
    caller.may_read_courier(courier_id)?;
    let listed = state
        .scan(
            &shipments::SHIPMENTS_BY_COURIER,
            &key("courier_id", courier_id),
            page.cursor.as_ref(),
            page.limit,
        )
        .await?;
    let rows: Vec<&Row> = listed
        .rows
        .iter()
        .filter(|r| cells::text(r, "shipment_id").is_some())
        .collect();
    let keys = rows
        .iter()
        .filter_map(|r| cells::text(r, "shipment_id"))
        .map(|id| key("shipment_id", &id))
        .collect();
    let joined = state.get_many(&shipments::SHIPMENTS_BY_ID, keys).await?;
    let items = rows
        .into_iter()
        .zip(joined)
        .map(|(listing, shipment)| CourierShipment {
            shipment_id: cells::text(listing, "shipment_id").unwrap_or_default(),
            order_id: cells::text(listing, "order_id"),
            assigned_at: cells::time(listing, "assigned_at"),
            status: shipment.as_ref().and_then(|s| cells::text(s, "status")),
            status_at: shipment.as_ref().and_then(|s| cells::time(s, "status_at")),
        })
        .collect();
    Ok(Json(Paged::new(items, listed.next)))
}
