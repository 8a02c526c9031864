//! `AppError`: every failure of the command API as RFC 9457
//! `application/problem+json`. 4xx bodies say what is wrong and, where one
//! field is at fault, which; 5xx bodies are opaque (the cause is logged with
//! a correlation id, never sent).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable code (`invalid-field`, `version-conflict`…).
    pub code: String,
    /// The request field at fault (`lines[0].quantity`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On a version conflict: the aggregate's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct AppError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub field: Option<String>,
    pub current_version: Option<i64>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl AppError {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            field: None,
            current_version: None,
            headers: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// A field that parsed but is not acceptable.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", detail).with_field(field)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        e.headers.push((
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="quickstore""#.to_owned(),
        ));
        e
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// An infrastructure failure: logged here with an id, opaque to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let incident = uuid::Uuid::new_v4();
        tracing::error!(%incident, error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("something went wrong on our side (incident {incident})"),
        )
    }

    /// The log or the processors are unreachable: retry later.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        let incident = uuid::Uuid::new_v4();
        tracing::warn!(%incident, error = %cause, "dependency unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("temporarily unavailable, retry later (incident {incident})"),
        );
        e.headers.push((header::RETRY_AFTER, "1".to_owned()));
        e
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://quickstore.dev/problems/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            field: self.field.clone(),
            current_version: self.current_version,
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
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

/// The HTTP status of a refusal code from a command outcome.
pub fn status_of_refusal(code: &str) -> StatusCode {
    match code {
        "invalid-field"
        | "totals-mismatch"
        | "mixed-currencies"
        | "too-many-lines"
        | "cart-empty"
        | "refund-exceeds-capture"
        | "amount-exceeds-authorization"
        | "below-reserved"
        | "no-such-line"
        | "too-many-images"
        | "weak-password" => StatusCode::UNPROCESSABLE_ENTITY,
        "not-found" | "unknown-sku" | "not-your-order" | "not-your-cart" | "unknown-reference" => {
            StatusCode::NOT_FOUND
        }
        "forbidden" | "not-your-shipment" => StatusCode::FORBIDDEN,
        // Our own bugs, never the client's input.
        "malformed-command" | "misrouted-command" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::CONFLICT,
    }
}

/// Splits "`field` reason" (how aggregates word an invalid field) into the field.
pub fn field_of(message: &str) -> Option<String> {
    let rest = message.strip_prefix('`')?;
    let (field, _) = rest.split_once('`')?;
    Some(field.to_owned())
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
            "Invalid URL: Invalid UTF-8 in `sku`",
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
        assert_eq!(problem["field"], "sku");
        // Our own answers pass untouched.
        let ours = AppError::not_found("no such order").into_response();
        let answer = platform::http_rejections::as_problem::<AppError>(ours).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    }
}
