//! Probes and the ops router.
//!
//! - `/healthz`: the process answers (200, always: a liveness probe must
//!   not fail because a dependency is down, or the orchestrator restarts
//!   healthy processes during a broker outage).
//! - `/readyz`: 200 only when every named check passes — the event log's
//!   broker, the schema registry, the CQL read store for read-side roles,
//!   the command processors' partitions restored — else 503 with a JSON
//!   body naming what is not ready. Checks run concurrently, each bounded
//!   by [`CHECK_TIMEOUT`], so a black-holed dependency answers 503 in time
//!   for the probe. Why a check failed is logged, not answered.
//! - `/metrics`: the Prometheus text exposition of [`super::metrics`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::eventlog::EventLog;

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The named checks `/readyz` runs. Empty = always ready.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, CheckFn)>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(n, _)| n))
            .finish()
    }
}

/// What `/readyz` answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadinessReport {
    /// `ready` or `not-ready`.
    pub status: String,
    /// The names of the checks that failed.
    pub not_ready: Vec<String>,
    /// Every check: `ok` or `unavailable` (the reason is logged).
    pub checks: BTreeMap<String, String>,
}

impl ReadinessReport {
    pub fn is_ready(&self) -> bool {
        self.not_ready.is_empty()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check named `name` (`event-log`, `schema-registry`, …).
    pub fn with_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name.into(), Arc::new(move || Box::pin(check()))));
        self
    }

    /// Adds every check of `other`.
    pub fn merged(mut self, other: &Readiness) -> Self {
        self.checks.extend(other.checks.iter().cloned());
        self
    }

    /// `event-log`: the broker answers a metadata request (the embedded
    /// log: its store answers).
    pub fn with_event_log(self, log: Arc<dyn EventLog>) -> Self {
        self.with_check("event-log", move || {
            let log = Arc::clone(&log);
            async move {
                log.list_topics()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    }

    /// Runs every check (concurrently, each bounded).
    pub async fn evaluate(&self) -> ReadinessReport {
        let results = futures::future::join_all(self.checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let result = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
                };
                (name.clone(), result)
            }
        }))
        .await;
        let mut report = ReadinessReport {
            status: "ready".into(),
            not_ready: Vec::new(),
            checks: BTreeMap::new(),
        };
        for (name, result) in results {
            match result {
                Ok(()) => {
                    report.checks.insert(name, "ok".into());
                }
                Err(why) => {
                    // The reason goes to the log, not the answer: probes
                    // may be reachable from outside, and broker or node
                    // addresses are nobody's business there.
                    tracing::warn!(check = %name, reason = %why, "not ready");
                    report.not_ready.push(name.clone());
                    report.checks.insert(name, "unavailable".into());
                }
            }
        }
        if !report.not_ready.is_empty() {
            report.status = "not-ready".into();
        }
        report
    }
}

/// `/readyz` as a response: 200 or 503, the report as JSON either way.
pub async fn readyz_response(readiness: &Readiness) -> Response {
    let report = readiness.evaluate().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// `/metrics` as a response.
pub fn metrics_response() -> Response {
    (
        [(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)],
        super::metrics::metrics().render(),
    )
        .into_response()
}

/// `/healthz` as a response.
pub fn healthz_response() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `/healthz`, `/readyz` and `/metrics`, ready to merge into any router
/// (its state is applied here).
pub fn ops_router<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { healthz_response() }))
        .route(
            "/readyz",
            get(|State(r): State<Readiness>| async move { readyz_response(&r).await }),
        )
        .route("/metrics", get(|| async { metrics_response() }))
        .with_state(readiness)
}

/// The ops listener of a process without an HTTP API (`QS_OPS_LISTEN`):
/// the ops router with the request metrics, served until `shutdown`.
pub async fn serve_ops(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router: Router = ops_router(readiness).layer(axum::middleware::from_fn_with_state(
        "ops",
        super::http::observe,
    ));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_check_is_named_and_the_others_still_run() {
        let r = Readiness::new()
            .with_check("a", || async { Ok(()) })
            .with_check("b", || async { Err("down".to_owned()) });
        let report = r.evaluate().await;
        assert!(!report.is_ready());
        assert_eq!(report.not_ready, vec!["b".to_owned()]);
        assert_eq!(report.checks["a"], "ok");
        assert_eq!(report.checks["b"], "unavailable");
        assert!(Readiness::new().evaluate().await.is_ready());
    }
}
