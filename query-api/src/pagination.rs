//! Query parameters and paging.
//!
//! [`Params`] is the query string, checked strictly: a parameter the
//! endpoint does not take, or one given twice, is a 400 naming it (a typo
//! like `?catgory=` would otherwise silently list everything). Paging is
//! `limit` (1..=`max_page`, default `default_page`) and `cursor`, which is
//! the read store's own page token, passed through: the next page starts
//! after the last row of this one. Pages of joined or filtered listings may
//! hold fewer than `limit` items; only a missing `next_cursor` means the
//! end.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::Uri;
use platform::readstore::PageToken;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::AppError;
use crate::state::QueryConfig;

/// Parameters every endpoint takes: the read-your-writes position (also
/// accepted as the `X-Position-Token` header).
const ALWAYS_ALLOWED: &[&str] = &["after"];

/// Longest cursor accepted: the store's tokens are well under this.
const MAX_CURSOR_LEN: usize = 4096;

/// The decoded `(name, value)` pairs of a URI's query.
pub fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, AppError> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(pairs)| pairs)
        .map_err(|_| {
            AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "malformed-query",
                "the query string could not be decoded",
            )
        })
}

/// The query string of a request.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        query_pairs(&parts.uri).map(Params)
    }
}

impl Params {
    /// 400 for a parameter not in `names` (nor always allowed) or a
    /// repeated one.
    pub fn allow(&self, names: &[&str]) -> Result<&Self, AppError> {
        for (i, (name, _)) in self.0.iter().enumerate() {
            if !names.contains(&name.as_str()) && !ALWAYS_ALLOWED.contains(&name.as_str()) {
                let mut known: Vec<&str> = names.to_vec();
                known.extend_from_slice(ALWAYS_ALLOWED);
                return Err(AppError::bad_request(
                    "unknown-parameter",
                    name,
                    format!(
                        "this endpoint takes no parameter `{name}` (it takes: {})",
                        known.join(", ")
                    ),
                ));
            }
            if self.0[..i].iter().any(|(n, _)| n == name) {
                return Err(AppError::bad_request(
                    "repeated-parameter",
                    name,
                    format!("`{name}` is given more than once"),
                ));
            }
        }
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` if given and not blank.
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The page asked for.
    pub fn page(&self, config: &QueryConfig) -> Result<PageRequest, AppError> {
        let limit = match self.get("limit") {
            None => config.default_page,
            Some(text) => parse_limit(text, config.max_page)?,
        };
        let cursor = match self.get("cursor") {
            None => None,
            Some(text) => Some(parse_cursor(text)?),
        };
        Ok(PageRequest { limit, cursor })
    }
}

/// A page: how many, after where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<PageToken>,
}

fn parse_limit(text: &str, max: usize) -> Result<usize, AppError> {
    let bad = || {
        AppError::bad_request(
            "invalid-limit",
            "limit",
            format!("limit must be a whole number from 1 to {max}"),
        )
    };
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

/// A cursor must look like a store page token (base64url); whether it
/// continues this listing is the store's call.
fn parse_cursor(text: &str) -> Result<PageToken, AppError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_CURSOR_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(PageToken(text.to_owned()))
    } else {
        Err(AppError::bad_request(
            "invalid-cursor",
            "cursor",
            "cursor must be the `next_cursor` of a previous page",
        ))
    }
}

/// A page of a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Paged<T> {
    pub fn new(items: Vec<T>, next: Option<PageToken>) -> Self {
        Self {
            items,
            next_cursor: next.map(|t| t.0),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params(query_pairs(&format!("/x?{q}").parse().unwrap()).unwrap())
    }

    #[test]
    fn limits_are_bounded_and_default() {
        let c = QueryConfig::default();
        assert_eq!(params("").page(&c).unwrap().limit, 20);
        assert_eq!(params("limit=100").page(&c).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "abc", "", "1.5", "99999999999999999999"] {
            let e = params(&format!("limit={bad}")).page(&c).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("limit"), "{bad}");
            assert_eq!(e.status, 400);
        }
    }

    #[test]
    fn cursors_must_look_like_page_tokens() {
        let c = QueryConfig::default();
        assert_eq!(
            params("cursor=AQID_-x").page(&c).unwrap().cursor,
            Some(PageToken("AQID_-x".into()))
        );
        let e = params("cursor=not%20a%20token").page(&c).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("cursor"));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let e = params("catgory=x").allow(&["category"]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("catgory"));
        let e = params("limit=1&limit=2").allow(&["limit"]).unwrap_err();
        assert_eq!(e.code, "repeated-parameter");
        assert!(params("after=p1.x&limit=2").allow(&["limit"]).is_ok());
    }
}
