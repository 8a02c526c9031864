//! Deliveries: admins schedule, assign and cancel shipments; couriers pick
//! them up and deliver them. A shipment's aggregate id is its order's id.
//!
//! Here only the caller's role is checked: whether a courier is the one
//! assigned is known to the Shipment aggregate alone, which refuses
//! `not-your-shipment` (403).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use platform::auth::Role;
use schemas::deliveries::{
    AssignCourier, CancelShipment, DeliverShipment, DeliveriesCommand, FailShipment,
    PickUpShipment, ScheduleShipment, ShipmentItem,
};
use schemas::{AnyCommand, Context};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::validate::{self, MAX_URL};
use crate::http::caller::Caller;
use crate::http::dto::{self, AddressDto};
use crate::http::json::ApiJson;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, CommandPending, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(schedule))
        .routes(routes!(assign_courier))
        .routes(routes!(pick_up))
        .routes(routes!(deliver))
        .routes(routes!(fail))
        .routes(routes!(cancel))
}

/// Items per shipment at most, as the aggregate has it.
const MAX_ITEMS: usize = 100;

/// One item in the parcel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentItemRequest {
    pub sku: String,
    /// 1 to 999.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub destination: AddressDto,
    /// 1 to 100 items.
    pub items: Vec<ShipmentItemRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourierRequest {
    /// The courier's user id.
    pub courier_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    /// Who accepted the parcel.
    #[serde(default)]
    pub received_by: Option<String>,
    /// Object-storage key of the proof of delivery (photo, signature).
    #[serde(default)]
    pub proof_key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReasonRequest {
    /// Why, e.g. `recipient_absent`.
    pub reason: String,
}

/// Sends a deliveries command for the shipment of `order_id`, acting in
/// `role`. Scheduling creates the shipment (201).
async fn shipment_command(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    order_id: &str,
    role: Role,
    command: DeliveriesCommand,
) -> Result<Response, AppError> {
    dto::path_id(order_id, "order_id")?;
    let creates = matches!(command, DeliveriesCommand::ScheduleShipment(_));
    let key = key.map(|Extension(k)| k);
    submit::submit(
        state,
        key.as_ref(),
        headers,
        Outgoing {
            context: Context::Deliveries,
            aggregate_type: "Shipment",
            aggregate_id: order_id.to_owned(),
            command: AnyCommand::Deliveries(command),
            actor: caller.actor(role),
            creates,
        },
    )
    .await
}

fn items(items: Vec<ShipmentItemRequest>) -> Result<Vec<ShipmentItem>, AppError> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(AppError::invalid(
            "items",
            format!("a shipment has 1 to {MAX_ITEMS} items"),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            dto::text(&item.sku, &format!("items[{i}].sku"))?;
            let quantity = dto::quantity(item.quantity, &format!("items[{i}].quantity"))?;
            Ok(ShipmentItem {
                sku: item.sku,
                quantity,
            })
        })
        .collect()
}

/// Schedule an order's shipment.
///
/// The saga does this once the payment is authorized.
#[utoipa::path(post, path = "/shipments/{order_id}/schedule", tag = "deliveries", request_body = ScheduleRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = CommandAccepted, description = "Scheduled"),
        (status = 200, body = CommandAccepted, description = "Already scheduled by this same command"),
        (status = 202, body = CommandPending), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn schedule(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<ScheduleRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    let destination = body.destination.into_address("destination")?;
    let items = items(body.items)?;
    let command = DeliveriesCommand::ScheduleShipment(ScheduleShipment {
        order_id: order_id.clone(),
        destination,
        items,
    });
    shipment_command(
        &state,
        &caller,
        key,
        &headers,
        &order_id,
        Role::Admin,
        command,
    )
    .await
}

/// Give a shipment to a courier (or to another one, before pickup).
#[utoipa::path(put, path = "/shipments/{order_id}/courier", tag = "deliveries", request_body = CourierRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn assign_courier(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<CourierRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::text(&body.courier_id, "courier_id")?;
    let command = DeliveriesCommand::AssignCourier(AssignCourier {
        courier_id: body.courier_id,
    });
    shipment_command(
        &state,
        &caller,
        key,
        &headers,
        &order_id,
        Role::Admin,
        command,
    )
    .await
}

/// Pick up a shipment assigned to you (couriers).
#[utoipa::path(post, path = "/shipments/{order_id}/pickup", tag = "deliveries",
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn pick_up(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<Response, AppError> {
    caller.require(Role::Courier)?;
    let command = DeliveriesCommand::PickUpShipment(PickUpShipment {
        courier_id: caller.id().to_owned(),
    });
    shipment_command(
        &state,
        &caller,
        key,
        &headers,
        &order_id,
        Role::Courier,
        command,
    )
    .await
}

/// Hand a picked-up shipment over to the recipient (couriers).
///
/// The body is optional.
#[utoipa::path(post, path = "/shipments/{order_id}/delivery", tag = "deliveries", request_body = Option<DeliveryRequest>,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn deliver(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Option<ApiJson<DeliveryRequest>>,
) -> Result<Response, AppError> {
    caller.require(Role::Courier)?;
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    dto::reason(body.received_by.as_ref(), "received_by")?;
    if let Some(proof_key) = &body.proof_key {
        validate::text(proof_key, MAX_URL)
            .map_err(|reason| AppError::invalid("proof_key", format!("proof_key {reason}")))?;
    }
    let command = DeliveriesCommand::DeliverShipment(DeliverShipment {
        received_by: body.received_by,
        proof_key: body.proof_key,
    });
    shipment_command(
        &state,
        &caller,
        key,
        &headers,
        &order_id,
        Role::Courier,
        command,
    )
    .await
}

/// Record that a shipment could not be delivered.
///
/// Its courier, or an admin.
#[utoipa::path(post, path = "/shipments/{order_id}/failure", tag = "deliveries",
    request_body = ShipmentReasonRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn fail(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<ShipmentReasonRequest>,
) -> Result<Response, AppError> {
    let role = caller.require_any(&[Role::Courier, Role::Admin])?;
    // An admin who is also a courier may fail any shipment.
    let role = if caller.has(Role::Admin) {
        Role::Admin
    } else {
        role
    };
    dto::text(&body.reason, "reason")?;
    let command = DeliveriesCommand::FailShipment(FailShipment {
        reason: body.reason,
    });
    shipment_command(&state, &caller, key, &headers, &order_id, role, command).await
}

/// Call a shipment off before pickup.
///
/// The saga does this when an order is cancelled.
#[utoipa::path(post, path = "/shipments/{order_id}/cancel", tag = "deliveries",
    request_body = ShipmentReasonRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn cancel(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<ShipmentReasonRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::text(&body.reason, "reason")?;
    let command = DeliveriesCommand::CancelShipment(CancelShipment {
        reason: body.reason,
    });
    shipment_command(
        &state,
        &caller,
        key,
        &headers,
        &order_id,
        Role::Admin,
        command,
    )
    .await
}
