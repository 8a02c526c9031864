//! For operators: where an order's fulfillment saga stands.

use axum::extract::{Path, State};
use axum::Json;
use platform::auth::Role;
use projectors::projections::saga_state;
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
    OpenApiRouter::new().routes(routes!(get_saga))
}

/// The fulfillment saga of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SagaView {
    pub order_id: String,
    /// `RESERVING_STOCK`, `AUTHORIZING_PAYMENT`, … `COMPLETED`, `REJECTED`, `CANCELLED`.
    pub stage: Option<String>,
    /// When it entered the stage.
    pub since: Option<String>,
    /// The saga's step (its version).
    pub step: Option<i64>,
    /// What moved it there.
    pub cause: Option<String>,
    /// The deadline it waits on, if any.
    pub deadline_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Whether it has finished.
    pub terminal: Option<bool>,
}

/// The order's fulfillment saga: stage, since when, why, and its deadline.
///
/// Roles: admin.
#[utoipa::path(get, path = "/ops/sagas/{order_id}", tag = "ops",
    params(("order_id" = String, Path, description = "The order id (= the saga id)")),
    responses((status = 200, body = SagaView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))))]
async fn get_saga(
    State(state): State<QueryState>,
    caller: Caller,
    Path(order_id): Path<String>,
    params: Params,
) -> Result<Json<SagaView>, AppError> {
    caller.require_any(&[Role::Admin])?;
    params.allow(&[])?;
    let order_id = path_id(&order_id, "order_id")?;
    let row = state
        .get(&saga_state::SAGA_STATE_BY_ORDER, &key("order_id", order_id))
        .await?
        .ok_or_else(|| AppError::not_found("no saga for this order"))?;
    Ok(Json(SagaView {
        order_id: order_id.to_owned(),
        stage: cells::text(&row, "stage"),
        since: cells::time(&row, "since"),
        step: cells::big(&row, "step"),
        cause: cells::text(&row, "cause"),
        deadline_at: cells::time(&row, "deadline_at"),
        note: cells::text(&row, "note"),
        terminal: cells::boolean(&row, "terminal"),
    }))
}
