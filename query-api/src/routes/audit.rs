//! The audit trail of one aggregate: every event in version order, with
//! who caused it, where the record sits in the log and its hash chain
//! (hex), so an auditor can fetch the record itself and check the chain
//! (`/events`, from the audit index read model); and, from the event log
//! itself when the query API has it ([`crate::audit_log`]), the
//! aggregate's state as of a moment (`/state?as_of=`) and its chain
//! checked record by record (`/verify`).

use axum::extract::{Path, State};
use axum::Json;
use platform::auth::Role;
use platform::readstore::{Row, Value};
use projectors::projections::audit;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit_log::{self as log, AuditLog, AuditLogError, ChainReport, StateAt};
use crate::auth::Caller;
use crate::cells;
use crate::ids::path_id;
use crate::pagination::{Paged, Params};
use crate::problem::{AppError, Problem};
use crate::state::QueryState;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(state_at))
        .routes(routes!(verify_chain))
}

/// The event-log capability, or 503 `audit-log-unavailable`.
fn audit_log(state: &QueryState) -> Result<&dyn AuditLog, AppError> {
    state.audit_log.as_deref().ok_or_else(|| {
        AppError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "audit-log-unavailable",
            "this query API has no access to the event log: serve it with `quickstore query-api` \
             (or `quickstore dev`), which gives it the log, or use `quickstore audit` on the log",
        )
    })
}

fn log_error(e: AuditLogError) -> AppError {
    match e {
        AuditLogError::UnknownType(_) => {
            AppError::bad_request("unknown-aggregate-type", "aggregate_type", e.to_string())
        }
        AuditLogError::NotFound(..) => AppError::not_found(e.to_string()),
        AuditLogError::Unavailable(_) => AppError::unavailable(&e),
    }
}

/// The aggregate's state as of a moment, folded from its events in the
/// log (every event with `occurred_at <= as_of`) through the command
/// side's own `evolve`; with the version that state is at.
///
/// Roles: auditor or admin.
#[utoipa::path(get, path = "/audit/{aggregate_type}/{aggregate_id}/state", tag = "audit",
    params(("aggregate_type" = String, Path, description = "`Order`, `Payment`, `Shipment`, `Product`, `StockItem`, `Customer`, `Cart` or `OrderFulfillment`"),
        ("aggregate_id" = String, Path, description = "The aggregate id"),
        ("as_of" = Option<String>, Query, description = "RFC 3339 time or milliseconds since the epoch (default: now)")),
    responses((status = 200, body = StateAt), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "`audit-log-unavailable`: this query API cannot read the event log")),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["auditor", "admin"]))))]
async fn state_at(
    State(state): State<QueryState>,
    caller: Caller,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<StateAt>, AppError> {
    caller.require_any(&[Role::Auditor, Role::Admin])?;
    params.allow(&["as_of"])?;
    let aggregate_type = path_id(&aggregate_type, "aggregate_type")?;
    let aggregate_id = path_id(&aggregate_id, "aggregate_id")?;
    let as_of = match params.get("as_of") {
        None => state.now_ms(),
        Some(text) => log::parse_as_of(text).ok_or_else(|| {
            AppError::bad_request(
                "invalid-as-of",
                "as_of",
                format!("as_of must be {}", log::AS_OF_FORMATS),
            )
        })?,
    };
    let source = audit_log(&state)?;
    let at = source
        .state_at(aggregate_type, aggregate_id, as_of)
        .await
        .map_err(log_error)?;
    Ok(Json(at))
}

/// The aggregate's hash chain checked from the log: versions 1..n without
/// gap or repeat, each `prev_hash` the previous `hash`, each `hash`
/// recomputed, event ids unique, keys and partitions right. `intact` is
/// false when anything was found; each finding says where.
///
/// Roles: auditor or admin.
#[utoipa::path(get, path = "/audit/{aggregate_type}/{aggregate_id}/verify", tag = "audit",
    params(("aggregate_type" = String, Path, description = "`Order`, `Payment`, `Shipment`, `Product`, `StockItem`, `Customer`, `Cart` or `OrderFulfillment`"),
        ("aggregate_id" = String, Path, description = "The aggregate id")),
    responses((status = 200, body = ChainReport), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "`audit-log-unavailable`: this query API cannot read the event log")),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["auditor", "admin"]))))]
async fn verify_chain(
    State(state): State<QueryState>,
    caller: Caller,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<ChainReport>, AppError> {
    caller.require_any(&[Role::Auditor, Role::Admin])?;
    params.allow(&[])?;
    let aggregate_type = path_id(&aggregate_type, "aggregate_type")?;
    let aggregate_id = path_id(&aggregate_id, "aggregate_id")?;
    let source = audit_log(&state)?;
    let report = source
        .verify(aggregate_type, aggregate_id)
        .await
        .map_err(log_error)?;
    Ok(Json(report))
}

/// One event of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEvent {
    pub version: i64,
    pub event_id: Option<String>,
    /// The record's short name (`OrderPlaced`).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub occurred_at: Option<String>,
    /// `<role>:<id>` of who caused it.
    pub actor: Option<String>,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// Where the record is: topic, partition, offset.
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// Hash of the previous event of the aggregate (hex; empty for the first).
    pub prev_hash: Option<String>,
    /// This event's hash (hex).
    pub hash: Option<String>,
}

fn audit_event(row: &Row) -> AuditEvent {
    AuditEvent {
        version: cells::big(row, "version").unwrap_or_default(),
        event_id: cells::text(row, "event_id"),
        event_type: cells::text(row, "event_type"),
        occurred_at: cells::time(row, "occurred_at"),
        actor: cells::text(row, "actor"),
        command_id: cells::text(row, "command_id"),
        correlation_id: cells::text(row, "correlation_id"),
        causation_id: cells::text(row, "causation_id"),
        topic: cells::text(row, "topic"),
        partition: cells::int(row, "partition"),
        offset: cells::big(row, "offset"),
        prev_hash: cells::hex(row, "prev_hash"),
        hash: cells::hex(row, "hash"),
    }
}

/// Every event of one aggregate, in version order.
///
/// Roles: auditor or admin.
#[utoipa::path(get, path = "/audit/{aggregate_type}/{aggregate_id}/events", tag = "audit",
    params(("aggregate_type" = String, Path, description = "`Order`, `Payment`, `Shipment`, `Product`, `StockItem`, `Customer`, `Cart`, or a saga's type"),
        ("aggregate_id" = String, Path, description = "The aggregate id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Events per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Paged<AuditEvent>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["auditor", "admin"]))))]
async fn list_events(
    State(state): State<QueryState>,
    caller: Caller,
    Path((aggregate_type, aggregate_id)): Path<(String, String)>,
    params: Params,
) -> Result<Json<Paged<AuditEvent>>, AppError> {
    caller.require_any(&[Role::Auditor, Role::Admin])?;
    let page = params.allow(&["limit", "cursor"])?.page(&state.config)?;
    let aggregate_type = path_id(&aggregate_type, "aggregate_type")?;
    let aggregate_id = path_id(&aggregate_id, "aggregate_id")?;
    let partition = Row::from([
        (
            "aggregate_type".to_owned(),
            Value::Text(aggregate_type.to_owned()),
        ),
        (
            "aggregate_id".to_owned(),
            Value::Text(aggregate_id.to_owned()),
        ),
    ]);
    let listed = state
        .scan(
            &audit::EVENTS_BY_AGGREGATE,
            &partition,
            page.cursor.as_ref(),
            page.limit,
        )
        .await?;
    // An aggregate with no events does not exist; say so on the first
    // page (later pages may be empty when the store cannot tell the end).
    if listed.rows.is_empty() && page.cursor.is_none() {
        return Err(AppError::not_found("no events for this aggregate"));
    }
    Ok(Json(Paged::new(
        listed.rows.iter().map(audit_event).collect(),
        listed.next,
    )))
}
