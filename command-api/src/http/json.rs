//! `ApiJson<T>`: the JSON body extractor. axum's own rejection is plain
//! text; this one answers problem+json that names the field at fault
//! (`lines[0].quantity`), using `serde_path_to_error`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::problem::AppError;

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let v = v.split(';').next().unwrap_or("").trim();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(AppError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    e.status(),
                    "body-too-large",
                    "the request body is too large",
                )
            } else {
                AppError::bad_request("unreadable-body", "the request body could not be read")
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    /// An optional body: none when the request has no body at all.
    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        let empty_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        if !has_type || empty_length {
            let bytes = Bytes::from_request(req, state).await.unwrap_or_default();
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            if !has_type {
                return Err(AppError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "send the body as JSON with `Content-Type: application/json`",
                ));
            }
            return parse(&bytes).map(|v| Some(ApiJson(v)));
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// Parses `bytes` as `T`: 400 for bytes that are not JSON, 422 naming the
/// field for JSON of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(AppError::bad_request(
                "malformed-json",
                format!("the body is not valid JSON: {e}"),
            )),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    let mut err = AppError::bad_request(
                        "malformed-json",
                        format!("the body is not valid JSON: {inner}"),
                    );
                    // Where the bytes stopped being JSON, when that is
                    // inside a field: a number too large for any type
                    // (`1e400`) is a syntax error here, yet has a field.
                    err.field = (path != ".").then_some(path);
                    Err(err)
                }
                Category::Data => {
                    let field = if path == "." { None } else { Some(path) };
                    let mut err = AppError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-field",
                        format!("{inner}"),
                    );
                    err.field = field;
                    Err(err)
                }
            }
        }
    }
}
