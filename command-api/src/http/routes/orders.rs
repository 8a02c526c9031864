//! Carts and orders: what customers do.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use platform::auth::Role;
use schemas::orders::{
    AddCartLine, CancelOrder, ChangeCartLineQuantity, CheckoutCart, CompleteOrder, ConfirmOrder,
    MarkOrderShipped, OrderLine, OrdersCommand, PlaceOrder, RejectOrder, RemoveCartLine,
    RequestOrderCancellation,
};
use schemas::{AnyCommand, Context};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::orders::{totals, PricingError};
use crate::http::caller::Caller;
use crate::http::dto::{self, AddressDto, PaymentMethodDto};
use crate::http::json::ApiJson;
use crate::http::pii;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(place_order))
        .routes(routes!(request_cancellation))
        .routes(routes!(confirm_order))
        .routes(routes!(mark_shipped))
        .routes(routes!(complete_order))
        .routes(routes!(cancel_order))
        .routes(routes!(reject_order))
        .routes(routes!(add_cart_line))
        .routes(routes!(change_cart_line, remove_cart_line))
        .routes(routes!(checkout))
}

/// One line of an order: what and how many. The price is the catalog's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub sku: String,
    /// 1 to 999.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// Admins may place for a customer; customers place for themselves.
    #[serde(default)]
    pub customer_id: Option<String>,
    pub lines: Vec<LineRequest>,
    pub shipping_address: AddressDto,
    pub payment: PaymentMethodDto,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderAccepted {
    pub order_id: String,
    #[serde(flatten)]
    pub command: CommandAccepted,
}

fn order_id(key: Option<&RequestKey>) -> String {
    match key {
        // A retried request names the same order.
        Some(k) => uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("quickstore:order:{}:{}", k.scope, k.key).as_bytes(),
        )
        .to_string(),
        None => uuid::Uuid::now_v7().to_string(),
    }
}

fn pricing_error(e: PricingError, field: &str) -> AppError {
    AppError::invalid(field, e.to_string())
}

async fn priced(
    state: &SharedState,
    sku: &str,
    field: &str,
) -> Result<crate::pricebook::Price, AppError> {
    dto::text(sku, field)?;
    match state.prices.price(sku, state.config.catalog_wait).await {
        Some(p) if !p.discontinued => Ok(p),
        Some(_) => Err(AppError::invalid(field, format!("{sku} is discontinued"))),
        None => Err(AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-sku",
            format!("there is no product {sku}"),
        )
        .with_field(field)),
    }
}

/// Place an order (prices are the catalog's, captured now).
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = OrderAccepted), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 410, body = Problem, description = "customer-erased: the customer was forgotten"),
        (status = 422, body = Problem), (status = 202, body = submit::CommandPending)),
    security(("bearer" = [])))]
async fn place_order(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrderRequest>,
) -> Result<Response, AppError> {
    let customer_id = body
        .customer_id
        .clone()
        .unwrap_or_else(|| caller.id().to_owned());
    dto::path_id(&customer_id, "customer_id")?;
    let role = caller.may_act_for(&customer_id)?;
    if body.lines.is_empty() || body.lines.len() > crate::domain::orders::MAX_LINES {
        return Err(AppError::invalid("lines", "an order has 1 to 100 lines"));
    }
    let mut lines = Vec::with_capacity(body.lines.len());
    for (i, line) in body.lines.iter().enumerate() {
        let quantity = dto::quantity(line.quantity, &format!("lines[{i}].quantity"))?;
        let price = priced(&state, &line.sku, &format!("lines[{i}].sku")).await?;
        lines.push(OrderLine {
            line_no: i32::try_from(i + 1).unwrap_or(i32::MAX),
            sku: line.sku.clone(),
            quantity,
            unit_price_minor: price.unit_price_minor,
            currency: price.currency,
        });
    }
    let totals = totals(&lines).map_err(|e| pricing_error(e, "lines"))?;
    let shipping_address = body.shipping_address.into_address("shipping_address")?;
    let data_key = pii::key_for(&state, &customer_id).await?;
    let shipping_address = pii::seal_address(&data_key, &customer_id, shipping_address)?;
    let token = body.payment.tokenize(&state, "payment").await?;
    let key = key.map(|Extension(k)| k);
    let order_id = order_id(key.as_ref());
    let outgoing = Outgoing {
        context: Context::Orders,
        aggregate_type: "Order",
        aggregate_id: order_id.clone(),
        command: AnyCommand::Orders(OrdersCommand::PlaceOrder(PlaceOrder {
            customer_id,
            lines,
            shipping_address,
            totals,
            payment_token: Some(token),
        })),
        actor: caller.actor(role),
        creates: true,
    };
    let submitted = submit::send(
        &state,
        key.as_ref(),
        submit::expected_version(&headers)?,
        &outgoing,
    )
    .await?;
    Ok(with_order_id(submitted, &order_id))
}

fn with_order_id(submitted: crate::bus::Submitted, order_id: &str) -> Response {
    match submitted {
        crate::bus::Submitted::Decided(outcome) => match submit::outcome_result(&outcome) {
            Ok(command) => {
                let status = if command.events.is_empty() {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::CREATED
                };
                let location = format!("/orders/{order_id}");
                let mut r = (
                    status,
                    Json(OrderAccepted {
                        order_id: order_id.to_owned(),
                        command,
                    }),
                )
                    .into_response();
                if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
                    r.headers_mut().insert(axum::http::header::LOCATION, v);
                }
                r
            }
            Err(e) => e.into_response(),
        },
        pending => submit::answer(pending, true),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

async fn order_command(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    order_id: &str,
    role: Role,
    command: OrdersCommand,
) -> Result<Response, AppError> {
    dto::path_id(order_id, "order_id")?;
    let key = key.map(|Extension(k)| k);
    submit::submit(
        state,
        key.as_ref(),
        headers,
        Outgoing {
            context: Context::Orders,
            aggregate_type: "Order",
            aggregate_id: order_id.to_owned(),
            command: AnyCommand::Orders(command),
            actor: caller.actor(role),
            creates: false,
        },
    )
    .await
}

/// Ask to cancel an order; honoured until the parcel is picked up.
#[utoipa::path(post, path = "/orders/{order_id}/cancellation", tag = "orders",
    request_body = ReasonRequest,
    responses((status = 200, body = CommandAccepted), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn request_cancellation(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Option<ApiJson<ReasonRequest>>,
) -> Result<Response, AppError> {
    let role = caller.require_any(&[Role::Customer, Role::Admin])?;
    let role = if caller.has(Role::Admin) {
        Role::Admin
    } else {
        role
    };
    let reason = body.map(|ApiJson(b)| b.reason).unwrap_or_default();
    dto::reason(reason.as_ref(), "reason")?;
    order_command(
        &state,
        &caller,
        key,
        &headers,
        &order_id,
        role,
        OrdersCommand::RequestOrderCancellation(RequestOrderCancellation { reason }),
    )
    .await
}

macro_rules! admin_order_endpoint {
    ($name:ident, $path:literal, $doc:literal, $body:ty, |$b:ident, $id:ident| $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "orders (operations)", request_body = $body,
            responses((status = 200, body = CommandAccepted), (status = 403, body = Problem),
                (status = 404, body = Problem), (status = 409, body = Problem)),
            security(("bearer" = [])))]
        async fn $name(
            State(state): State<SharedState>,
            caller: Caller,
            key: Option<Extension<RequestKey>>,
            headers: HeaderMap,
            Path($id): Path<String>,
            body: Option<ApiJson<$body>>,
        ) -> Result<Response, AppError> {
            caller.require(Role::Admin)?;
            let $b: $body = body.map(|ApiJson(b)| b).unwrap_or_default();
            let command = $command?;
            order_command(&state, &caller, key, &headers, &$id, Role::Admin, command).await
        }
    };
}

fn required_reason(reason: Option<String>) -> Result<String, AppError> {
    let reason = reason.ok_or_else(|| AppError::invalid("reason", "reason is required"))?;
    dto::text(&reason, "reason")?;
    Ok(reason)
}

admin_order_endpoint!(
    confirm_order,
    "/orders/{order_id}/confirm",
    "Confirm an order (operations; the saga does this).",
    ReasonRequest,
    |_b, order_id| Ok::<_, AppError>(OrdersCommand::ConfirmOrder(ConfirmOrder {
        payment_id: Some(order_id.clone())
    }))
);
admin_order_endpoint!(
    mark_shipped,
    "/orders/{order_id}/shipped",
    "Record that the parcel left (operations; the saga does this).",
    ReasonRequest,
    |_b, order_id| Ok::<_, AppError>(OrdersCommand::MarkOrderShipped(MarkOrderShipped {
        shipment_id: order_id.clone()
    }))
);
admin_order_endpoint!(
    complete_order,
    "/orders/{order_id}/complete",
    "Complete a delivered order (operations; the saga does this).",
    ReasonRequest,
    |_b, order_id| Ok::<_, AppError>(OrdersCommand::CompleteOrder(CompleteOrder {
        shipment_id: Some(order_id.clone())
    }))
);
admin_order_endpoint!(
    cancel_order,
    "/orders/{order_id}/cancel",
    "Cancel an order outright (operations).",
    ReasonRequest,
    |b, _order_id| required_reason(b.reason)
        .map(|reason| OrdersCommand::CancelOrder(CancelOrder { reason }))
);
admin_order_endpoint!(
    reject_order,
    "/orders/{order_id}/reject",
    "Reject an order (operations).",
    ReasonRequest,
    |b, _order_id| required_reason(b.reason)
        .map(|reason| OrdersCommand::RejectOrder(RejectOrder { reason }))
);

// ---- carts ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartLineRequest {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityRequest {
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub shipping_address: AddressDto,
    pub payment: PaymentMethodDto,
}

async fn cart_command(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    customer_id: &str,
    command: OrdersCommand,
) -> Result<crate::bus::Submitted, AppError> {
    dto::path_id(customer_id, "customer_id")?;
    let role = caller.may_act_for(customer_id)?;
    let key = key.map(|Extension(k)| k);
    submit::send(
        state,
        key.as_ref(),
        submit::expected_version(headers)?,
        &Outgoing {
            context: Context::Orders,
            aggregate_type: "Cart",
            aggregate_id: customer_id.to_owned(),
            command: AnyCommand::Orders(command),
            actor: caller.actor(role),
            creates: false,
        },
    )
    .await
}

/// Put a product in the cart (adds to the quantity if it is there already).
#[utoipa::path(post, path = "/carts/{customer_id}/lines", tag = "carts", request_body = CartLineRequest,
    responses((status = 200, body = CommandAccepted), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn add_cart_line(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
    ApiJson(body): ApiJson<CartLineRequest>,
) -> Result<Response, AppError> {
    caller.may_act_for(&customer_id)?;
    let quantity = dto::quantity(body.quantity, "quantity")?;
    let price = priced(&state, &body.sku, "sku").await?;
    let command = OrdersCommand::AddCartLine(AddCartLine {
        sku: body.sku,
        quantity,
        unit_price_minor: price.unit_price_minor,
        currency: price.currency,
    });
    let submitted = cart_command(&state, &caller, key, &headers, &customer_id, command).await?;
    Ok(submit::answer(submitted, false))
}

/// Change how many of a product are in the cart.
#[utoipa::path(put, path = "/carts/{customer_id}/lines/{sku}", tag = "carts", request_body = QuantityRequest,
    responses((status = 200, body = CommandAccepted), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn change_cart_line(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path((customer_id, sku)): Path<(String, String)>,
    ApiJson(body): ApiJson<QuantityRequest>,
) -> Result<Response, AppError> {
    let quantity = dto::quantity(body.quantity, "quantity")?;
    let command = OrdersCommand::ChangeCartLineQuantity(ChangeCartLineQuantity { sku, quantity });
    let submitted = cart_command(&state, &caller, key, &headers, &customer_id, command).await?;
    Ok(submit::answer(submitted, false))
}

/// Take a product out of the cart.
#[utoipa::path(delete, path = "/carts/{customer_id}/lines/{sku}", tag = "carts",
    responses((status = 200, body = CommandAccepted), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn remove_cart_line(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path((customer_id, sku)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let command = OrdersCommand::RemoveCartLine(RemoveCartLine { sku });
    let submitted = cart_command(&state, &caller, key, &headers, &customer_id, command).await?;
    Ok(submit::answer(submitted, false))
}

/// Check out: the cart's lines become an order (placed a moment later by
/// the checkout policy; follow `/orders/{order_id}`).
#[utoipa::path(post, path = "/carts/{customer_id}/checkout", tag = "carts", request_body = CheckoutRequest,
    responses((status = 200, body = OrderAccepted), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 410, body = Problem, description = "customer-erased: the customer was forgotten"),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn checkout(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> Result<Response, AppError> {
    dto::path_id(&customer_id, "customer_id")?;
    caller.may_act_for(&customer_id)?;
    let shipping_address = body.shipping_address.into_address("shipping_address")?;
    let data_key = pii::key_for(&state, &customer_id).await?;
    let shipping_address = pii::seal_address(&data_key, &customer_id, shipping_address)?;
    let token = body.payment.tokenize(&state, "payment").await?;
    let order_id = order_id(key.as_ref().map(|Extension(k)| k));
    let command = OrdersCommand::CheckoutCart(CheckoutCart {
        order_id: order_id.clone(),
        shipping_address,
        payment_token: Some(token),
    });
    let submitted = cart_command(&state, &caller, key, &headers, &customer_id, command).await?;
    let mut response = with_order_id(submitted, &order_id);
    if response.status() == axum::http::StatusCode::CREATED {
        *response.status_mut() = axum::http::StatusCode::OK;
    }
    Ok(response)
}
