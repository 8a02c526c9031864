//! The command API over HTTP (axum): every command of the domain as an
//! endpoint, JSON in and out, problem+json errors, JWT auth, idempotent
//! retries, and an OpenAPI document generated from the handlers.
//!
//! - [`state`] — what handlers share; [`caller`] — the verified bearer.
//! - [`submit`] — request → command → outcome → answer (201/200/202/4xx).
//! - [`idempotency`] — `Idempotency-Key` on every state-changing request.
//! - [`problem`] — `AppError` and the refusal-code → status mapping.
//! - [`json`] — the body extractor that names the field at fault.
//! - [`limits`] — rate limits (logins, commands per subject); the size
//!   limits are `platform::telemetry::request_limits`.
//! - [`openapi`] — the answers every endpoint shares, added to the document.
//! - [`pii`] — personal fields sealed with the customer's key before a command is produced.
//! - [`routes`] — the endpoints, one file per area.

pub mod caller;
pub mod dto;
pub mod idempotency;
pub mod json;
pub mod limits;
pub mod openapi;
pub mod pii;
pub mod problem;
pub mod routes;
pub mod state;
pub mod submit;

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use idempotency::{capture, fingerprint, key_of, Begin};
use problem::AppError;
use state::SharedState;
use submit::RequestKey;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "QuickStore command API",
        description = "Every change to QuickStore is a command: send it here, get the outcome (201/200 with the new version and a position token), a problem+json refusal, or 202 with a status URL. Retry safely with `Idempotency-Key`; guard against lost updates with `If-Match: \"<version>\"`."
    ),
    modifiers(&BearerAuth),
    components(schemas(problem::Problem, submit::CommandAccepted, submit::CommandPending))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (ES256)")
                    .build(),
            ),
        );
    }
}

fn documented_routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::orders::router())
        .merge(routes::catalog::router())
        .merge(routes::inventory::router())
        .merge(routes::payments::router())
        .merge(routes::deliveries::router())
        .merge(routes::customers::router())
        .merge(routes::commands::router())
}

/// The OpenAPI document of the command API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The documented routes and their finished document.
fn parts() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = documented_routes().split_for_parts();
    openapi::finish(&mut api);
    (router, api)
}

/// The router and its OpenAPI document (`/readyz` always ready: see
/// [`router_with`]).
pub fn router(state: SharedState) -> Router {
    router_with(state, platform::telemetry::Readiness::default())
}

/// The router with `/healthz`, `/readyz` (running `readiness`) and
/// `/metrics`, every request traced and timed (docs/observability.md).
pub fn router_with(state: SharedState, readiness: platform::telemetry::Readiness) -> Router {
    let (router, openapi) = parts();
    let max_body = state.config.max_body_bytes;
    router
        .route("/openapi.json", get(move || async move { Json(openapi) }))
        .route("/docs", get(docs))
        .merge(platform::telemetry::ops_router(readiness))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency_middleware,
        ))
        .layer(axum::middleware::map_response(
            platform::http_rejections::as_problem::<AppError>,
        ))
        // Outside the idempotency layer: a 429 must not be stored as the
        // key's outcome (a retry after Retry-After has to run).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::enforce,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            platform::telemetry::request_limits::RequestLimits::with_body(max_body),
            platform::telemetry::request_limits::enforce,
        ))
        // Outermost: the request span is current in every handler (the
        // command bus injects it into the command's headers).
        .layer(axum::middleware::from_fn_with_state(
            "command-api",
            platform::telemetry::http::observe,
        ))
        .fallback(|| async { AppError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this endpoint does not take that method",
            )
        })
        .with_state(state)
}

/// A docs page rendering `/openapi.json` (Redoc, loaded from its CDN).
async fn docs() -> Html<&'static str> {
    Html(
        r#"<!doctype html><html><head><title>QuickStore command API</title><meta charset="utf-8"/></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"></script></body></html>"#,
    )
}

/// Applies `Idempotency-Key` to every state-changing request.
async fn idempotency_middleware(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(request).await;
    }
    let key = match key_of(request.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(request).await,
        Err(e) => return e.into_response(),
    };
    let scope = match request.headers().get(header::AUTHORIZATION) {
        Some(value) => match caller::verify_bearer(&state, Some(value.to_str().unwrap_or(""))) {
            Ok(caller) => {
                let scope = format!("sub:{}", caller.id());
                request.extensions_mut().insert(caller);
                scope
            }
            Err(e) => return e.into_response(),
        },
        None => "anonymous".to_owned(),
    };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!(
                    "the request body is larger than {} bytes",
                    state.config.max_body_bytes
                ),
            )
            .into_response()
        }
    };
    let print = fingerprint(parts.method.as_str(), parts.uri.path(), &bytes);
    let now = state.now_ms();
    match state.idempotency.begin(&scope, &key, print, now) {
        Err(e) => e.into_response(),
        Ok(Begin::Replay(stored)) => stored.into_response(),
        Ok(Begin::Run) => {
            let mut request = Request::from_parts(parts, axum::body::Body::from(bytes));
            request.extensions_mut().insert(RequestKey {
                scope: scope.clone(),
                key: key.clone(),
            });
            let response = next.run(request).await;
            let (response, stored) = capture(response).await;
            state
                .idempotency
                .finish(&scope, &key, print, stored, state.now_ms());
            response
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    /// `docs/openapi/command-api.json` is the published contract: it must
    /// be what the code serves (`QS_OPENAPI_BLESS=1` rewrites it).
    #[test]
    #[allow(clippy::unwrap_used, clippy::panic, reason = "test")]
    fn the_published_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/openapi/command-api.json");
        let current = serde_json::to_string_pretty(&super::openapi()).unwrap() + "\n";
        if std::env::var("QS_OPENAPI_BLESS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &current).unwrap();
        }
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        if published != current {
            panic!(
                "{} is out of date: run `QS_OPENAPI_BLESS=1 cargo test -p command-api --lib openapi` and commit it",
                path.display()
            );
        }
    }
}
