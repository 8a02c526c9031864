//! A customer's orders and profile. `me` stands for the caller. Customers
//! read only their own (another's: 403 — whether a customer id exists is
//! not what these reveal, unlike an order id); admins read anyone's.

use axum::extract::{Path, State};
use axum::Json;
use platform::auth::Role;
use platform::readstore::Row;
use projectors::projections::{customers, orders};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::cells;
use crate::ids::path_id;
use crate::pagination::{Paged, Params};
use crate::pii::{reveal, reveal_address};
use crate::problem::{AppError, Problem};
use crate::reads::key;
use crate::routes::orders::ORDER_STATUSES;
use crate::state::QueryState;
use crate::views::Address;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders))
        .routes(routes!(get_profile))
}

/// One of a customer's orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CustomerOrder {
    pub order_id: String,
    pub placed_at: Option<String>,
    pub total_minor: Option<i64>,
    pub currency: Option<String>,
    pub line_count: Option<i32>,
    /// The order's current status (from the order itself).
    pub status: Option<String>,
    pub status_at: Option<String>,
    pub payment_status: Option<String>,
    pub shipment_status: Option<String>,
}

/// The customer a path names, after `me` and the access rule.
pub fn customer_of<'a>(caller: &'a Caller, id: &'a str) -> Result<&'a str, AppError> {
    let id = path_id(caller.resolve(id), "customer_id")?;
    caller.may_read_customer(id)?;
    Ok(id)
}

/// The `status` filter, checked against the statuses there are.
fn status_filter(params: &Params) -> Result<Option<String>, AppError> {
    let Some(status) = params.non_blank("status") else {
        return Ok(None);
    };
    let status = status.to_ascii_uppercase();
    if ORDER_STATUSES.contains(&status.as_str()) {
        Ok(Some(status))
    } else {
        Err(AppError::bad_request(
            "invalid-status",
            "status",
            format!("status must be one of {}", ORDER_STATUSES.join(", ")),
        ))
    }
}

/// A customer's orders, newest first, each with its current status.
///
/// The status filter applies after the join with each order, so a page may
/// hold fewer than `limit` orders; keep following `next_cursor` until it is
/// absent.
///
/// Roles: the customer themself (`me`), or admin.
#[utoipa::path(get, path = "/customers/{customer_id}/orders", tag = "customers",
    params(("customer_id" = String, Path, description = "The customer id, or `me`"),
        ("status" = Option<String>, Query, description = "Only orders with this status (PLACED, CONFIRMED, SHIPPED, COMPLETED, CANCELLED, REJECTED)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Orders per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Paged<CustomerOrder>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (self)", "admin"]))))]
async fn list_orders(
    State(state): State<QueryState>,
    caller: Caller,
    Path(customer_id): Path<String>,
    params: Params,
) -> Result<Json<Paged<CustomerOrder>>, AppError> {
    let page = params
        .allow(&["status", "limit", "cursor"])?
        .page(&state.config)?;
    let status = status_filter(&params)?;
    let customer_id = customer_of(&caller, &customer_id)?;
    let listed = state
        .scan(
            &orders::ORDERS_BY_CUSTOMER,
            &key("customer_id", customer_id),
            page.cursor.as_ref(),
            page.limit,
        )
        .await?;
    let keys = listed
        .rows
        .iter()
        .filter_map(|r| cells::text(r, "order_id"))
        .map(|id| key("order_id", &id))
        .collect();
    let joined = state.get_many(&orders::ORDERS_BY_ID, keys).await?;
    let items = listed
        .rows
        .iter()
        .filter(|r| cells::text(r, "order_id").is_some())
        .zip(joined)
        .map(|(listing, order)| joined_order(listing, order.as_ref()))
        .filter(|o| status.is_none() || o.status == status)
        .collect();
    Ok(Json(Paged::new(items, listed.next)))
}

fn joined_order(listing: &Row, order: Option<&Row>) -> CustomerOrder {
    let from_order = |column: &str| order.and_then(|o| cells::text(o, column));
    CustomerOrder {
        order_id: cells::text(listing, "order_id").unwrap_or_default(),
        placed_at: cells::time(listing, "placed_at"),
        total_minor: cells::big(listing, "total_minor"),
        currency: cells::text(listing, "currency"),
        line_count: cells::int(listing, "line_count"),
        status: from_order("status"),
        status_at: order.and_then(|o| cells::time(o, "status_at")),
        payment_status: from_order("payment_status"),
        shipment_status: from_order("shipment_status"),
    }
}

/// A customer's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Profile {
    pub customer_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub phone: Option<String>,
    pub default_address: Option<Address>,
    /// `customer`, `admin`, `courier`, `auditor`.
    pub roles: Vec<String>,
    pub registered_at: Option<String>,
    pub updated_at: Option<String>,
    pub version: Option<i64>,
}

/// A customer's profile, with their roles.
///
/// Roles: the customer themself (`me`), or admin.
#[utoipa::path(get, path = "/customers/{customer_id}", tag = "customers",
    params(("customer_id" = String, Path, description = "The customer id, or `me`")),
    responses((status = 200, body = Profile), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["customer (self)", "admin"]))))]
async fn get_profile(
    State(state): State<QueryState>,
    caller: Caller,
    Path(customer_id): Path<String>,
    params: Params,
) -> Result<Json<Profile>, AppError> {
    params.allow(&[])?;
    let customer_id = customer_of(&caller, &customer_id)?;
    let row = state
        .get(
            &customers::CUSTOMER_PROFILES,
            &key("customer_id", customer_id),
        )
        .await?
        .ok_or_else(|| AppError::not_found("no such customer"))?;
    let roles = Role::ALL
        .iter()
        .filter(|r| cells::boolean(&row, &format!("role_{}", r.as_str())) == Some(true))
        .map(|r| r.as_str().to_owned())
        .collect();
    let default_address = cells::json(
        &row,
        customers::CUSTOMER_PROFILES.name,
        "default_address_json",
    )?;
    Ok(Json(Profile {
        customer_id: customer_id.to_owned(),
        email: reveal(&state, cells::text(&row, "email"), "email").await?,
        display_name: reveal(&state, cells::text(&row, "display_name"), "display_name").await?,
        phone: reveal(&state, cells::text(&row, "phone"), "phone").await?,
        default_address: reveal_address(&state, default_address).await?,
        roles,
        registered_at: cells::time(&row, "registered_at"),
        updated_at: cells::time(&row, "updated_at"),
        version: cells::big(&row, "customer_version"),
    }))
}
