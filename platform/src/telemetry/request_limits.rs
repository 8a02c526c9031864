//! Request size limits both HTTP APIs apply before any handler runs: the
//! URI, the headers and the declared body length. Refused as RFC 9457
//! problem+json (414, 431, 413) naming what was too large, so a client sees
//! the same shape of answer as for any other refusal.
//!
//! Why here and not only in the server: hyper's own limits (header count,
//! read buffer) close the connection or answer with an empty body, and
//! they are far above what QuickStore ever needs; these are tight, stated
//! and tested. A body without a `Content-Length` (chunked) is still bounded
//! by each API's body extractor.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What one API accepts at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Path and query, bytes.
    pub max_uri_bytes: usize,
    /// Every header name and value together, bytes.
    pub max_header_bytes: usize,
    /// A declared `Content-Length`, bytes.
    pub max_body_bytes: usize,
}

impl RequestLimits {
    /// 8 KiB of URI, 16 KiB of headers (a JWT is under 1 KiB), and
    /// `max_body_bytes` of body.
    pub fn with_body(max_body_bytes: usize) -> Self {
        Self {
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_body_bytes,
        }
    }
}

fn problem(status: StatusCode, code: &str, detail: String, field: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("https://quickstore.dev/problems/{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
        "field": field,
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// The check itself: `None` when the request is within `limits`.
pub fn refusal(limits: &RequestLimits, request: &Request) -> Option<Response> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > limits.max_uri_bytes {
        return Some(problem(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!(
                "the request URI is {uri} bytes; at most {} are accepted",
                limits.max_uri_bytes
            ),
            "uri",
        ));
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > limits.max_header_bytes {
        return Some(problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!(
                "the request headers are {headers} bytes; at most {} are accepted",
                limits.max_header_bytes
            ),
            "headers",
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared {
        if length > u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX) {
            return Some(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!(
                    "the request body is {length} bytes; at most {} are accepted",
                    limits.max_body_bytes
                ),
                "body",
            ));
        }
    }
    None
}

/// The middleware (`axum::middleware::from_fn_with_state(limits, enforce)`).
pub async fn enforce(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&limits, &request) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;
    use axum::body::Body;

    fn limits() -> RequestLimits {
        RequestLimits {
            max_uri_bytes: 32,
            max_header_bytes: 64,
            max_body_bytes: 10,
        }
    }

    #[test]
    fn within_limits_passes() {
        let request = Request::builder()
            .uri("/orders/1")
            .body(Body::empty())
            .unwrap();
        assert!(refusal(&limits(), &request).is_none());
    }

    #[test]
    fn each_limit_has_its_status() {
        let long = Request::builder()
            .uri(format!("/orders/{}", "x".repeat(40)))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            refusal(&limits(), &long).map(|r| r.status()),
            Some(StatusCode::URI_TOO_LONG)
        );
        let fat = Request::builder()
            .uri("/")
            .header("x-filler", "y".repeat(100))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            refusal(&limits(), &fat).map(|r| r.status()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let big = Request::builder()
            .uri("/")
            .header("content-length", "11")
            .body(Body::empty())
            .unwrap();
        let refused = refusal(&limits(), &big).unwrap();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            refused.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
