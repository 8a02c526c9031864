//! Payments, for operations: the order-fulfillment saga authorizes,
//! captures, voids and refunds on its own; these let an admin do it by hand.
//! A payment's aggregate id is its order's id.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use platform::auth::Role;
use schemas::payments::{
    AuthorizePayment, CapturePayment, PaymentsCommand, RefundPayment, VoidPayment,
};
use schemas::{AnyCommand, Context};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::caller::Caller;
use crate::http::dto::{self, PaymentMethodDto};
use crate::http::json::ApiJson;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, CommandPending, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(capture))
        .routes(routes!(void))
        .routes(routes!(refund))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The amount to hold, in minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    /// Tokenized here; the card number goes no further.
    pub payment: PaymentMethodDto,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// At most the authorized amount, in minor units of `currency`.
    pub amount_minor: i64,
    /// The payment's currency.
    pub currency: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// All or part of what is still refundable, in minor units of `currency`.
    pub amount_minor: i64,
    /// The payment's currency.
    pub currency: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Sends a payments command for the payment of `order_id` as an admin.
async fn payment_command(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    order_id: &str,
    command: PaymentsCommand,
    creates: bool,
) -> Result<Response, AppError> {
    let key = key.map(|Extension(k)| k);
    submit::submit(
        state,
        key.as_ref(),
        headers,
        Outgoing {
            context: Context::Payments,
            aggregate_type: "Payment",
            aggregate_id: order_id.to_owned(),
            command: AnyCommand::Payments(command),
            actor: caller.actor(Role::Admin),
            creates,
        },
    )
    .await
}

/// Authorize an order's payment through the gateway (operations).
///
/// The saga does this. One authorization per order: asking again changes
/// nothing.
#[utoipa::path(post, path = "/payments/{order_id}/authorize", tag = "payments (operations)",
    request_body = AuthorizeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = CommandAccepted, description = "Authorized, declined or pending at the gateway"),
        (status = 200, body = CommandAccepted, description = "Already asked: nothing changed"),
        (status = 202, body = CommandPending), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn authorize(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<AuthorizeRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&order_id, "order_id")?;
    let amount_minor = dto::amount(body.amount_minor, "amount_minor")?;
    dto::currency(&body.currency, "currency")?;
    let card_token = body.payment.tokenize(&state, "payment").await?;
    let command = PaymentsCommand::AuthorizePayment(AuthorizePayment {
        order_id: order_id.clone(),
        amount_minor,
        currency: body.currency,
        card_token,
    });
    let mut response =
        payment_command(&state, &caller, key, &headers, &order_id, command, true).await?;
    if response.status() == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&format!("/payments/{order_id}")) {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(response)
}

/// Capture an authorized payment (operations).
///
/// The saga does this when the parcel is picked up.
#[utoipa::path(post, path = "/payments/{order_id}/capture", tag = "payments (operations)",
    request_body = CaptureRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn capture(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<CaptureRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&order_id, "order_id")?;
    let amount_minor = dto::amount(body.amount_minor, "amount_minor")?;
    dto::currency(&body.currency, "currency")?;
    let command = PaymentsCommand::CapturePayment(CapturePayment {
        amount_minor,
        currency: body.currency,
    });
    payment_command(&state, &caller, key, &headers, &order_id, command, false).await
}

/// Void an authorization that was not captured (operations).
///
/// The body is optional.
#[utoipa::path(post, path = "/payments/{order_id}/void", tag = "payments (operations)",
    request_body = Option<VoidRequest>,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn void(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Option<ApiJson<VoidRequest>>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&order_id, "order_id")?;
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    dto::reason(body.reason.as_ref(), "reason")?;
    let command = PaymentsCommand::VoidPayment(VoidPayment {
        reason: body.reason,
    });
    payment_command(&state, &caller, key, &headers, &order_id, command, false).await
}

/// Refund all or part of a captured payment (operations).
///
/// Refunds add up to at most the capture.
#[utoipa::path(post, path = "/payments/{order_id}/refunds", tag = "payments (operations)",
    request_body = RefundRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn refund(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<RefundRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&order_id, "order_id")?;
    let amount_minor = dto::amount(body.amount_minor, "amount_minor")?;
    dto::currency(&body.currency, "currency")?;
    dto::reason(body.reason.as_ref(), "reason")?;
    let command = PaymentsCommand::RefundPayment(RefundPayment {
        amount_minor,
        currency: body.currency,
        reason: body.reason,
    });
    payment_command(&state, &caller, key, &headers, &order_id, command, false).await
}
