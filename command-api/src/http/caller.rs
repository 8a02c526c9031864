//! `Caller`: the verified bearer token of a request, and the role checks
//! handlers make with it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use platform::auth::{AuthError, Claims, Role};

use super::problem::AppError;
use super::state::SharedState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
}

impl Caller {
    pub fn id(&self) -> &str {
        &self.claims.sub
    }

    pub fn has(&self, role: Role) -> bool {
        self.claims.has_role(role)
    }

    /// 403 unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.has(role) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!("this needs the {role} role")))
        }
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<Role, AppError> {
        roles.iter().copied().find(|r| self.has(*r)).ok_or_else(|| {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            AppError::forbidden(format!("this needs one of the roles {}", names.join(", ")))
        })
    }

    /// The envelope's actor when acting in `role`.
    pub fn actor(&self, role: Role) -> String {
        format!("{role}:{}", self.claims.sub)
    }

    /// A customer may act for themselves; an admin for anyone.
    pub fn may_act_for(&self, customer_id: &str) -> Result<Role, AppError> {
        if self.has(Role::Admin) {
            return Ok(Role::Admin);
        }
        if self.has(Role::Customer) && self.claims.sub == customer_id {
            return Ok(Role::Customer);
        }
        // Not 403: whether that customer exists is none of the caller's business.
        Err(AppError::not_found("no such customer"))
    }
}

/// Verifies a bearer token (signature, issuer, audience, time, revocation).
pub fn verify_bearer(state: &SharedState, header: Option<&str>) -> Result<Caller, AppError> {
    let Some(header) = header else {
        return Err(AppError::unauthorized(
            "send `Authorization: Bearer <access token>`",
        ));
    };
    let Some(token) = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
    else {
        return Err(AppError::unauthorized(
            "the Authorization scheme must be Bearer",
        ));
    };
    let store = state.issuer.store();
    let revocations: &dyn platform::auth::RevocationList = store.as_ref();
    match state
        .verifier
        .verify(token.trim(), state.now_s(), Some(revocations))
    {
        // This replica's own store knows its revocations at once; the
        // others' arrive through the log. Too stale to say: 503, not a
        // guess (ADR 0022).
        Ok(claims) => match state.revocation_view.check(&claims) {
            Ok(false) => Ok(Caller { claims }),
            Ok(true) => Err(AppError::unauthorized(AuthError::TokenRevoked.to_string())),
            Err(stale) => Err(AppError::unavailable(&stale)),
        },
        Err(AuthError::Store(e)) => Err(AppError::unavailable(&e)),
        Err(e) => Err(AppError::unauthorized(e.to_string())),
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        verify_bearer(state, header)
    }
}
