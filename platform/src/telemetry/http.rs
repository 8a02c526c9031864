//! The layer every HTTP API mounts (`Router::layer`, so the matched route
//! is known): one span per request — the child of the caller's
//! `traceparent` when it sent one, else a new trace — and the latency
//! histogram by route template (never the raw path: ids would make a
//! series per order) and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::metrics::metrics;
use super::propagation::{extract_http, in_request_trace, set_parent, tracer_installed};

/// The label of requests no route matched (404s, probes of scanners).
pub const UNMATCHED: &str = "unmatched";

/// `axum::middleware::from_fn_with_state(service, observe)`; `service`
/// names the API in the metric (`command-api`, `query-api`, `ops`).
pub async fn observe(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        service = service,
    );
    let caller = extract_http(request.headers());
    let started = Instant::now();
    let response = if tracer_installed() {
        set_parent(&span, caller);
        next.run(request).instrument(span.clone()).await
    } else {
        // No span to carry the trace: the request's own (ADR 0029).
        in_request_trace(caller, next.run(request).instrument(span.clone())).await
    };
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics()
        .http_request_duration
        .with_label_values(&[
            service,
            method.as_str(),
            route.as_str(),
            &status.to_string(),
        ])
        .observe(started.elapsed().as_secs_f64());
    response
}
