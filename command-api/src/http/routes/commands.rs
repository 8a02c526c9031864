//! The status of a command that was answered with 202, and the payment
//! gateway's webhook.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemas::payments::PaymentsCommand;
use schemas::{AnyCommand, Context};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gateway::webhook::{self, WebhookEvent};
use crate::http::caller::Caller;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, Outgoing};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(command_status))
        .routes(routes!(payment_webhook))
}

/// The outcome of a command (after a 202): 200 with it, or 202 while it
/// is still being decided.
#[utoipa::path(get, path = "/commands/{command_id}", tag = "commands",
    responses((status = 200, body = CommandAccepted), (status = 202, body = submit::CommandPending),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn command_status(
    State(state): State<SharedState>,
    _caller: Caller,
    Path(command_id): Path<String>,
) -> Result<Response, AppError> {
    if uuid::Uuid::parse_str(&command_id).is_err() {
        return Err(AppError::not_found("no such command"));
    }
    match state.bus.outcome(&command_id) {
        Some(outcome) => match submit::outcome_result(&outcome) {
            Ok(accepted) => Ok(Json(accepted).into_response()),
            Err(e) => Err(e),
        },
        // Not seen (yet): the command may still be queued.
        None => Ok(submit::pending(&command_id)),
    }
}

/// The payment gateway's webhook (Stripe-style: `Gateway-Signature: t=…,v1=…`,
/// HMAC-SHA256 over `t.body`). Verified, replay-checked, then recorded as a
/// command on the payment.
#[utoipa::path(post, path = "/webhooks/payments", tag = "payments",
    request_body(content = String, content_type = "application/json", description = "The gateway's event"),
    responses((status = 200, body = CommandAccepted), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn payment_webhook(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let signature = headers
        .get("gateway-signature")
        .or_else(|| headers.get("stripe-signature"))
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AppError::new(
                StatusCode::UNAUTHORIZED,
                "missing-signature",
                "send the Gateway-Signature header",
            )
        })?;
    let now_s = state.now_s();
    webhook::verify(
        signature,
        &body,
        &state.webhook_secret,
        now_s,
        state.config.webhook_tolerance_s,
    )
    .map_err(|e| {
        AppError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
            .with_field("Gateway-Signature")
    })?;
    let event =
        WebhookEvent::parse(&body).map_err(|e| AppError::bad_request(e.code(), e.to_string()))?;
    let (order_id, answer) = event
        .to_command()
        .map_err(|e| AppError::bad_request(e.code(), e.to_string()))?;
    state
        .webhook_replays
        .check(&event.id, now_s)
        .map_err(|e| AppError::new(StatusCode::CONFLICT, e.code(), e.to_string()))?;
    let outgoing = Outgoing {
        context: Context::Payments,
        aggregate_type: "Payment",
        aggregate_id: order_id,
        command: AnyCommand::Payments(PaymentsCommand::RecordGatewayAnswer(answer)),
        actor: "system:payment-gateway".into(),
        creates: false,
    };
    // The webhook event id is the idempotency key: a gateway retry after a
    // lost answer is the same command.
    let key = submit::RequestKey {
        scope: "payment-gateway".into(),
        key: event.id.clone(),
    };
    match submit::send(&state, Some(&key), None, &outgoing).await {
        Ok(submitted) => Ok(submit::answer(submitted, false)),
        Err(e) => {
            // Let the gateway retry this delivery.
            state.webhook_replays.forget(&event.id);
            Err(e)
        }
    }
}
