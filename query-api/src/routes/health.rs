//! Probes: `/healthz` (the process answers) and `/readyz` (the read store
//! answers a cheap read: the serving generation of the orders projection,
//! read past the cache).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::{AppError, Problem};
use crate::state::QueryState;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// A probe's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the read store answers, and so does whatever else this
/// process depends on (the event log and the schema registry when it runs
/// the projectors); a 503 names what is not ready.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
async fn readyz(State(state): State<QueryState>) -> Result<Json<Health>, AppError> {
    projectors::generations::serving(state.store.as_ref(), "orders")
        .await
        .map_err(|e| AppError::unavailable(&e))?;
    let report = state.readiness.evaluate().await;
    if !report.is_ready() {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            format!("not ready: {}", report.not_ready.join(", ")),
        ));
    }
    Ok(Json(Health {
        status: "ready".into(),
    }))
}
