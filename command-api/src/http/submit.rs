//! From a validated request to an HTTP answer: build the envelope, send the
//! command, wait for its outcome, and say what happened.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use schemas::{AnyCommand, CommandEnvelope, CommandOutcome, CommandStatus, Context};
use serde::Serialize;
use utoipa::ToSchema;

use crate::bus::Submitted;

use super::problem::{field_of, status_of_refusal, AppError};
use super::state::SharedState;

/// The Idempotency-Key of the request and its scope (set by the
/// idempotency middleware).
#[derive(Debug, Clone)]
pub struct RequestKey {
    pub scope: String,
    pub key: String,
}

/// A command ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub context: Context,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub command: AnyCommand,
    /// `<role>:<id>` of the caller.
    pub actor: String,
    /// 201 (a new aggregate) rather than 200.
    pub creates: bool,
}

/// A decided command.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandAccepted {
    pub command_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The aggregate's version after the command (send it back as `If-Match`).
    pub version: i64,
    /// Pass to the query API to read your own write.
    pub position: String,
    /// The events the command appended (none for a repeated command).
    pub events: Vec<String>,
}

/// A command that is durable but was not decided in time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandPending {
    pub command_id: String,
    /// Always `pending`.
    pub status: String,
    /// GET this for the outcome.
    pub status_url: String,
}

/// `p1.` + base64url(`type:id:version`): opaque to clients, enough for the
/// query API to wait until a projection holds that version of that aggregate.
pub fn position_token(aggregate_type: &str, aggregate_id: &str, version: i64) -> String {
    let raw = format!("{aggregate_type}:{aggregate_id}:{version}");
    format!(
        "p1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// `If-Match: "3"` (or `3`, or `W/"3"`) → 3.
pub fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, AppError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    match text.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(Some(v)),
        _ => Err(AppError::bad_request(
            "invalid-if-match",
            "If-Match must be the aggregate version, e.g. \"3\"",
        )
        .with_field("If-Match")),
    }
}

fn command_id(key: Option<&RequestKey>) -> String {
    match key {
        // The same key from the same caller is the same command, even
        // after this instance forgot the key: the processor answers a
        // duplicate with its first outcome.
        Some(k) => uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("quickstore:idempotency:{}:{}", k.scope, k.key).as_bytes(),
        )
        .to_string(),
        None => uuid::Uuid::now_v7().to_string(),
    }
}

/// Sends `outgoing` and answers with its outcome.
pub async fn submit(
    state: &SharedState,
    key: Option<&RequestKey>,
    headers: &HeaderMap,
    outgoing: Outgoing,
) -> Result<Response, AppError> {
    let expected = expected_version(headers)?;
    let decided = send(state, key, expected, &outgoing).await?;
    Ok(answer(decided, outgoing.creates))
}

/// Sends and waits; the outcome or 202.
pub async fn send(
    state: &SharedState,
    key: Option<&RequestKey>,
    expected_version: Option<i64>,
    outgoing: &Outgoing,
) -> Result<Submitted, AppError> {
    let command_id = command_id(key);
    let envelope = CommandEnvelope {
        command_id: command_id.clone(),
        aggregate_type: outgoing.aggregate_type.to_owned(),
        aggregate_id: outgoing.aggregate_id.clone(),
        expected_version,
        issued_at: state.now_ms(),
        correlation_id: command_id.clone(),
        causation_id: command_id,
        actor: outgoing.actor.clone(),
        reply_to: None,
    };
    state
        .bus
        .submit(
            outgoing.context,
            envelope,
            &outgoing.command,
            state.config.outcome_wait,
        )
        .await
        .map_err(|e| AppError::unavailable(&e))
}

/// The HTTP answer for a submission.
pub fn answer(submitted: Submitted, creates: bool) -> Response {
    match submitted {
        Submitted::Pending { command_id } => pending(&command_id),
        Submitted::Decided(outcome) => match outcome_result(&outcome) {
            Ok(accepted) => accepted_response(accepted, creates),
            Err(e) => e.into_response(),
        },
    }
}

pub fn pending(command_id: &str) -> Response {
    let url = format!("/commands/{command_id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(CommandPending {
            command_id: command_id.to_owned(),
            status: "pending".into(),
            status_url: url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// An outcome as success or the problem it is.
pub fn outcome_result(outcome: &CommandOutcome) -> Result<CommandAccepted, AppError> {
    match outcome.status {
        CommandStatus::Accepted => Ok(CommandAccepted {
            command_id: outcome.command_id.clone(),
            aggregate_type: outcome.aggregate_type.clone(),
            aggregate_id: outcome.aggregate_id.clone(),
            version: outcome.version,
            position: position_token(
                &outcome.aggregate_type,
                &outcome.aggregate_id,
                outcome.version,
            ),
            events: outcome
                .event_types
                .iter()
                .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
                .collect(),
        }),
        CommandStatus::Conflict => {
            let mut e = AppError::new(
                StatusCode::CONFLICT,
                "version-conflict",
                format!(
                    "the {} changed: it is at version {} (send that as If-Match after re-reading it)",
                    outcome.aggregate_type, outcome.version
                ),
            )
            .with_field("If-Match");
            e.current_version = Some(outcome.version);
            Err(e)
        }
        CommandStatus::Rejected => {
            let code = outcome
                .error_code
                .clone()
                .unwrap_or_else(|| "rejected".into());
            let message = outcome.error_message.clone().unwrap_or_default();
            let status = status_of_refusal(&code);
            if status.is_server_error() {
                return Err(AppError::internal(&format!("{code}: {message}")));
            }
            let detail = match code.as_str() {
                // Do not tell a customer whose order or cart that is.
                "not-your-order" => "no such order".to_owned(),
                "not-your-cart" => "no such cart".to_owned(),
                _ => message.clone(),
            };
            let mut e = AppError::new(status, code, detail);
            e.field = field_of(&message);
            Err(e)
        }
    }
}

fn accepted_response(accepted: CommandAccepted, creates: bool) -> Response {
    let status = if creates && !accepted.events.is_empty() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let etag = format!("\"{}\"", accepted.version);
    let mut response = (status, Json(accepted)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}
