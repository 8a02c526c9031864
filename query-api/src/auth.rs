//! `Caller`: the verified bearer token of a request, and the access rules
//! handlers apply with it. A missing, malformed, expired or otherwise
//! unacceptable token is 401 with `WWW-Authenticate: Bearer`; a valid
//! token without the right is 403 — or 404 where saying "forbidden" would
//! tell that the thing exists (another customer's order).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use platform::auth::{AuthError, Role};

use crate::jwks::VerifyError;
use crate::problem::AppError;
use crate::state::QueryState;

/// The path segment that names the caller (`/customers/me/orders`).
pub const ME: &str = "me";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: the customer (or courier, admin…) id.
    pub customer_id: String,
    pub roles: Vec<Role>,
    /// When the token expires, seconds since the epoch: a live stream ends
    /// then, as a request with the token would be refused.
    pub exp: i64,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(AppError::forbidden(format!(
            "this needs the role {}",
            names.join(" or ")
        )))
    }

    /// `me` → the caller's own id; any other id as given.
    pub fn resolve<'a>(&'a self, id: &'a str) -> &'a str {
        if id == ME {
            &self.customer_id
        } else {
            id
        }
    }

    /// A customer may read their own things, an admin anyone's; others
    /// get 403 (for listings and profiles, whose existence is no secret).
    pub fn may_read_customer(&self, customer_id: &str) -> Result<(), AppError> {
        if self.is_admin() || (self.has(Role::Customer) && self.customer_id == customer_id) {
            return Ok(());
        }
        Err(AppError::forbidden(
            "customers may read only their own data (`me`)",
        ))
    }

    /// A courier may read their own shipments list, an admin anyone's;
    /// others get 403.
    pub fn may_read_courier(&self, courier_id: &str) -> Result<(), AppError> {
        if self.is_admin() || (self.has(Role::Courier) && self.customer_id == courier_id) {
            return Ok(());
        }
        Err(AppError::forbidden(
            "couriers may list only their own shipments (`me`)",
        ))
    }

    /// Whether the caller may see an order placed by `owner`: its customer
    /// or an admin. Callers answer 404 otherwise, so order ids do not leak.
    pub fn may_see_order_of(&self, owner: &str) -> bool {
        self.is_admin() || (self.has(Role::Customer) && self.customer_id == owner)
    }
}

fn rejected(e: VerifyError) -> AppError {
    match e {
        VerifyError::KeysUnavailable(cause) => AppError::unavailable(&cause),
        VerifyError::Rejected(AuthError::TokenExpired) => {
            AppError::unauthorized("the access token has expired: refresh it", true)
        }
        VerifyError::Rejected(e) => AppError::unauthorized(e.to_string(), true),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(value: &HeaderValue) -> Result<&str, AppError> {
    let text = value.to_str().map_err(|_| {
        AppError::unauthorized("the Authorization header is not readable text", true)
    })?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(|| {
        AppError::unauthorized("send `Authorization: Bearer <access token>`", false)
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::unauthorized(
            "the Authorization scheme must be Bearer",
            false,
        ));
    }
    Ok(token.trim())
}

/// Verifies `token` into a caller.
pub async fn verify(state: &QueryState, token: &str) -> Result<Caller, AppError> {
    let claims = state
        .verifier
        .verify(token, state.now_s())
        .await
        .map_err(rejected)?;
    if let Some(view) = &state.revocations {
        match view.check(&claims) {
            Ok(false) => {}
            Ok(true) => {
                return Err(AppError::unauthorized(
                    AuthError::TokenRevoked.to_string(),
                    true,
                ))
            }
            // Fail closed: a list we cannot keep current might be missing
            // this very token (see ADR 0022).
            Err(stale) => return Err(AppError::unavailable(&stale)),
        }
    }
    Ok(Caller {
        customer_id: claims.sub,
        roles: claims.roles,
        exp: claims.exp,
    })
}

/// The caller of a request with an `Authorization` header.
pub async fn from_header(state: &QueryState, parts: &Parts) -> Result<Caller, AppError> {
    match parts.headers.get(header::AUTHORIZATION) {
        Some(value) => verify(state, bearer(value)?).await,
        None => Err(AppError::unauthorized(
            "send `Authorization: Bearer <access token>`",
            false,
        )),
    }
}

impl FromRequestParts<QueryState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &QueryState,
    ) -> Result<Self, Self::Rejection> {
        // Already verified by the read-your-writes layer.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        from_header(state, parts).await
    }
}

/// The caller of a live stream: the `Authorization` header, or the
/// `access_token` query parameter (RFC 6750 §2.3) because a browser's
/// `EventSource` cannot send headers. Only the stream endpoints take it.
#[derive(Debug, Clone)]
pub struct StreamCaller(pub Caller);

impl FromRequestParts<QueryState> for StreamCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &QueryState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(StreamCaller(caller.clone()));
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return from_header(state, parts).await.map(StreamCaller);
        }
        let token = crate::pagination::query_pairs(&parts.uri)?
            .into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v);
        match token {
            Some(token) => verify(state, &token).await.map(StreamCaller),
            None => Err(AppError::unauthorized(
                "send `Authorization: Bearer <access token>` (or `?access_token=` from a browser EventSource)",
                false,
            )),
        }
    }
}

/// Authenticates a request to the route `path` ahead of its handler, and
/// caches the caller for it; public routes too (a position token that is
/// not public data needs a caller there). A stream route also takes
/// `?access_token=`.
pub async fn ahead(state: &QueryState, parts: &mut Parts, path: &str) -> Result<Caller, AppError> {
    let caller = if path.ends_with("/stream") {
        StreamCaller::from_request_parts(parts, state).await?.0
    } else {
        from_header(state, parts).await?
    };
    parts.extensions.insert(caller.clone());
    Ok(caller)
}
