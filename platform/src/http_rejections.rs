//! axum's own extractor rejections (a path segment that is not UTF-8, a
//! path or query value of the wrong type) are plain text. Both APIs answer
//! them as problem+json like every other refusal, naming the parameter
//! when axum's message does (``Invalid URL: Invalid UTF-8 in `sku` ``);
//! this is the one reading of such a message, each API wraps it in its own
//! problem type.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A plain-text client-error rejection, read for a problem answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainRejection {
    pub status: StatusCode,
    /// `invalid-path`, `invalid-query` or `bad-request`.
    pub code: &'static str,
    /// axum's message.
    pub detail: String,
    /// The parameter the message names in backquotes, if any.
    pub field: Option<String>,
}

/// Response middleware (`axum::middleware::map_response`): a plain-text
/// rejection answered as the API's own problem type `P`, every other
/// response untouched.
pub async fn as_problem<P>(response: Response) -> Response
where
    P: From<PlainRejection> + IntoResponse,
{
    match plain_rejection(response).await {
        Ok(rejection) => P::from(rejection).into_response(),
        Err(response) => response,
    }
}

/// The rejection `response` carries, or the response untouched when it is
/// not a plain-text 4xx (every answer of our own is problem+json already).
pub async fn plain_rejection(response: Response) -> Result<PlainRejection, Response> {
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !plain || !response.status().is_client_error() {
        return Err(response);
    }
    let status = response.status();
    // Rejection messages are a line; more is not a rejection's.
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).into_owned();
    let code = if detail.starts_with("Invalid URL") {
        "invalid-path"
    } else if detail.contains("query string") {
        "invalid-query"
    } else {
        "bad-request"
    };
    let field = detail
        .split('`')
        .nth(1)
        .filter(|f| !f.is_empty())
        .map(str::to_owned);
    Ok(PlainRejection {
        status,
        code,
        detail,
        field,
    })
}
