//! # query-api — HTTP reads
//!
//! Serves the read models the projectors build (`projectors::projections`)
//! over HTTP+JSON (axum), with JWT auth, read-your-writes, live order
//! status over Server-Sent Events and an OpenAPI document generated from
//! the handlers. Reads go through the read-store port, at the table
//! generation each projection currently serves, so a rebuild's switch is
//! followed without a restart.
//!
//! Layout:
//! - [`state`] — [`QueryState`] (store, generation cache, verifier, clock)
//!   and [`QueryConfig`]; [`generations`] — the cached serving generation
//!   per projection; [`reads`] — get/scan at that generation, store errors
//!   as answers.
//! - [`auth`] — the bearer token → [`auth::Caller`] and the access rules;
//!   [`jwks`] — where the verification keys come from (fixed, or the
//!   command API's JWKS, refetched on an unknown `kid`).
//! - [`consistency`] — read-your-writes: position tokens, which routes
//!   follow which positions (and who may wait), and the bounded wait, as a
//!   route layer.
//! - [`pagination`] — strict query parameters, `limit`/`cursor`;
//!   [`ids`] — path id checks; [`cells`] — typed cell reads;
//!   [`time`] — RFC 3339 times and `YYYY-MM-DD` days; [`views`] — shared
//!   answer shapes.
//! - [`routes`] — the endpoints, one module per group of read models;
//!   [`stream`] — the SSE endpoints (ended when their token expires,
//!   capped per user).
//! - [`audit_log`] — the optional event-log capability behind the audit
//!   routes that read the log itself (state as of a moment, chain check).
//! - [`problem`] — [`problem::AppError`], RFC 9457 problem+json.
//! - [`openapi`] — the document and what every endpoint shares in it.
//!
//! The published contract is `docs/openapi/query-api.json`; a test keeps
//! it equal to [`openapi()`] (`QS_OPENAPI_BLESS=1` rewrites it).

pub mod audit_log;
pub mod auth;
pub mod cells;
pub mod consistency;
pub mod generations;
pub mod ids;
pub mod jwks;
pub mod openapi;
pub mod pagination;
pub mod pii;
pub mod problem;
pub mod reads;
pub mod routes;
pub mod state;
pub mod stream;
pub mod time;
pub mod views;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub use jwks::{JwksConfig, VerifierSource};
pub use openapi::openapi;
pub use state::{QueryConfig, QueryState};

use problem::AppError;

/// Largest request body accepted (the API only reads; see
/// `platform::telemetry::request_limits` for the URI and header bounds).
pub const MAX_BODY_BYTES: usize = 1024;

/// The query API: every endpoint, `/openapi.json`, `/docs`, the probes.
pub fn router(state: QueryState) -> Router {
    let (data, probes, api) = openapi::parts();
    let api = Arc::new(api);
    data.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        consistency::read_your_writes,
    ))
    .merge(probes)
    .route_layer(axum::middleware::map_response(
        platform::http_rejections::as_problem::<problem::AppError>,
    ))
    .route(
        "/openapi.json",
        get(move || {
            let api = api.clone();
            async move { Json(api.as_ref().clone()) }
        }),
    )
    .route("/docs", get(docs))
    .route(
        "/metrics",
        get(|| async { platform::telemetry::health::metrics_response() }),
    )
    .fallback(|| async { AppError::not_found("no such endpoint") })
    .method_not_allowed_fallback(|| async {
        AppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "the query API only reads: use GET",
        )
    })
    // The query API reads: no body is ever needed, a small one is
    // tolerated (clients that send `{}`), a big one is refused unread.
    .layer(axum::middleware::from_fn_with_state(
        platform::telemetry::request_limits::RequestLimits::with_body(MAX_BODY_BYTES),
        platform::telemetry::request_limits::enforce,
    ))
    // Every request traced (continuing a `traceparent`) and timed.
    .layer(axum::middleware::from_fn_with_state(
        "query-api",
        platform::telemetry::http::observe,
    ))
    .with_state(state)
}

/// A docs page rendering `/openapi.json` (Redoc, loaded from its CDN).
async fn docs() -> Response {
    Html(
        r#"<!doctype html><html><head><title>QuickStore query API</title><meta charset="utf-8"/></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"></script></body></html>"#,
    )
    .into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains
/// (open live streams end when their connection does).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    /// `docs/openapi/query-api.json` is the published contract: it must be
    /// what the code serves (`QS_OPENAPI_BLESS=1` rewrites it).
    #[test]
    #[allow(clippy::unwrap_used, clippy::panic, reason = "test")]
    fn the_published_openapi_document_is_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi/query-api.json");
        let current = serde_json::to_string_pretty(&super::openapi()).unwrap() + "\n";
        if std::env::var("QS_OPENAPI_BLESS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &current).unwrap();
        }
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        if published != current {
            panic!(
                "{} is out of date: run `QS_OPENAPI_BLESS=1 cargo test -p query-api --lib openapi` and commit it",
                path.display()
            );
        }
    }
}
