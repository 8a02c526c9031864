//! `AppError`: every failure of the query API as RFC 9457
//! `application/problem+json`. 4xx bodies say what is wrong and, where one
//! request field is at fault, which; 5xx bodies are opaque (the cause is
//! logged with an incident id, and only that id is sent). The one 503 that
//! is not opaque is "not yet consistent": it is a documented answer about
//! the caller's own position token, not a failure of ours.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::readstore::ReadStoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Where problem types live (`<base><code>`), as in the command API.
pub const PROBLEM_BASE: &str = "https://quickstore.dev/problems/";

/// The problem document (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable code (`invalid-limit`, `not-yet-consistent`…).
    pub code: String,
    /// The request field at fault (`limit`, `X-Position-Token`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On a 5xx: the id under which the cause was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// An error answered to the client. Boxed: it travels in every `Result`
/// of the crate, and most of those are `Ok`.
#[derive(Debug, Clone)]
pub struct AppError(Box<ErrorParts>);

/// What an [`AppError`] holds (reachable through `Deref`).
#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub code: String,
    /// Overrides the status's reason phrase as the title.
    pub title: Option<String>,
    pub detail: String,
    pub field: Option<String>,
    pub incident: Option<String>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl std::ops::Deref for AppError {
    type Target = ErrorParts;

    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for AppError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

impl AppError {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts {
            status,
            code: code.into(),
            title: None,
            detail: detail.into(),
            field: None,
            incident: None,
            headers: Vec::new(),
        }))
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A request value that is malformed or out of range, naming it.
    pub fn bad_request(code: &str, field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail).with_field(field)
    }

    /// No or a bad bearer token. `invalid_token` adds RFC 6750's error code
    /// (a token was sent but is not acceptable) to the challenge.
    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Self {
        let challenge = if invalid_token {
            r#"Bearer realm="quickstore", error="invalid_token""#
        } else {
            r#"Bearer realm="quickstore""#
        };
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// Our failure: the cause is logged under an incident id; the client
    /// gets only that id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let incident = uuid::Uuid::new_v4().to_string();
        tracing::error!(%incident, error = %cause, "query failed");
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
        e.incident = Some(incident);
        e
    }

    /// A dependency (read store, key server) did not answer: retry later.
    /// Opaque like [`AppError::internal`].
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        let incident = uuid::Uuid::new_v4().to_string();
        tracing::warn!(%incident, error = %cause, "dependency unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "temporarily unavailable, retry later",
        )
        .with_header(header::RETRY_AFTER, "1");
        e.incident = Some(incident);
        e
    }

    /// A read-store failure: retriable ones are 503, the rest are our bugs.
    /// (A bad page token is the caller's, and is mapped where a cursor is
    /// taken: see `pagination`.)
    pub fn store(e: &ReadStoreError) -> Self {
        if e.is_retriable() {
            Self::unavailable(e)
        } else {
            Self::internal(e)
        }
    }

    pub fn problem(&self) -> Problem {
        let title = self
            .title
            .clone()
            .unwrap_or_else(|| self.status.canonical_reason().unwrap_or("Error").to_owned());
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            field: self.field.clone(),
            incident: self.incident.clone(),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.0.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

/// axum's plain-text extractor rejections (`platform::http_rejections`)
/// as our problem, naming the parameter.
impl From<platform::http_rejections::PlainRejection> for AppError {
    fn from(rejection: platform::http_rejections::PlainRejection) -> Self {
        let mut e = AppError::new(rejection.status, rejection.code, rejection.detail);
        e.field = rejection.field;
        e
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_text_rejections_become_problems_naming_the_parameter() {
        let plain = (
            StatusCode::BAD_REQUEST,
            "Invalid URL: Invalid UTF-8 in `order_id`",
        )
            .into_response();
        let answer = platform::http_rejections::as_problem::<AppError>(plain).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "invalid-path");
        assert_eq!(problem["field"], "order_id");
    }

    #[test]
    fn internal_errors_say_nothing_but_an_incident_id() {
        let e = AppError::internal(&"table orders_by_id_g7 does not exist");
        let p = e.problem();
        assert_eq!(p.status, 500);
        assert_eq!(p.detail, "internal error");
        assert!(!serde_json::to_string(&p).unwrap().contains("orders_by_id"));
        assert!(p.incident.is_some());
    }

    #[test]
    fn a_title_can_be_set() {
        let p = AppError::new(StatusCode::SERVICE_UNAVAILABLE, "x", "y")
            .with_title("Not yet consistent")
            .problem();
        assert_eq!(p.title, "Not yet consistent");
        assert_eq!(p.kind, "https://quickstore.dev/problems/x");
    }
}
