//! Rate limits of the command API: logins per account and per client
//! address, state-changing requests per token subject. A refusal is 429
//! problem+json with `Retry-After` (whole seconds until a token is back).
//!
//! Why these keys: per account stops guessing one person's password from
//! many places; per address stops one place trying many accounts
//! (credential stuffing); per subject bounds what one token — a buggy app
//! or a stolen one — can push into the event log. Register and refresh
//! count against the address limit too (each costs a password hash or a
//! store lookup); the gateway's webhook is signed and has no subject.
//!
//! The limiters take the API's clock (`AppState::now_ms`), so tests move
//! time instead of sleeping.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::ratelimit::{RateLimiter, RetryAfter};

use super::caller::{self, Caller};
use super::problem::AppError;
use super::state::SharedState;

/// The limits, as `QS_RATE_LIMIT_*` set them (0 = off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub login_per_min: u32,
    pub login_ip_per_min: u32,
    pub commands_per_sec: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_min: platform::config::DEFAULT_LOGIN_PER_MIN,
            login_ip_per_min: platform::config::DEFAULT_LOGIN_IP_PER_MIN,
            commands_per_sec: platform::config::DEFAULT_COMMANDS_PER_SEC,
        }
    }
}

impl RateLimits {
    pub fn from_settings(s: &platform::config::Settings) -> Self {
        Self {
            login_per_min: s.rate_limit_login_per_min,
            login_ip_per_min: s.rate_limit_login_ip_per_min,
            commands_per_sec: s.rate_limit_commands_per_sec,
        }
    }
}

/// The limiters themselves (one bucket map each).
#[derive(Debug)]
pub struct Limiters {
    pub login_account: RateLimiter,
    pub login_address: RateLimiter,
    pub commands: RateLimiter,
}

impl Limiters {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            login_account: RateLimiter::per_minute(limits.login_per_min),
            login_address: RateLimiter::per_minute(limits.login_ip_per_min),
            commands: RateLimiter::per_second(limits.commands_per_sec),
        }
    }
}

/// 429 with `Retry-After`.
pub fn too_many(retry: RetryAfter, what: &str) -> AppError {
    let seconds = retry.seconds();
    let mut e = AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("too many {what}: retry after {seconds} s"),
    );
    e.headers.push((header::RETRY_AFTER, seconds.to_string()));
    e
}

/// The per-account login limit (the login handler calls it with the
/// normalised e-mail, before any password work).
pub fn check_login_account(state: &SharedState, email: &str) -> Result<(), AppError> {
    state
        .limiters
        .login_account
        .check(email, state.now_ms())
        .map_err(|r| too_many(r, "login attempts for this account"))
}

/// The sign-in family an address limit guards: password work (argon2) or
/// token-store lookups on every call.
const ADDRESS_LIMITED: &[&str] = &[
    "/auth/login",
    "/auth/register",
    "/auth/refresh",
    "/auth/logout",
];

/// Routes the per-subject command limit leaves alone: the login family
/// has its own limits, and the gateway's webhook is signed and not a
/// subject's.
fn is_command(method: &Method, path: &str) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !path.starts_with("/auth/")
        && !path.starts_with("/webhooks/")
}

/// The middleware: address limit on the login family, subject limit on
/// every other state-changing request with a valid token (an invalid one
/// is refused by the handler anyway, and must not cost a real subject its
/// budget).
pub async fn enforce(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let now = state.now_ms();
    if request.method() == Method::POST && ADDRESS_LIMITED.contains(&path.as_str()) {
        let address = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip().to_string());
        if let Some(address) = address {
            if let Err(retry) = state.limiters.login_address.check(&address, now) {
                return too_many(retry, "sign-in requests from this address").into_response();
            }
        }
        return next.run(request).await;
    }
    if !is_command(request.method(), &path) || state.limiters.commands.is_off() {
        return next.run(request).await;
    }
    let caller = match request.extensions().get::<Caller>() {
        Some(c) => Some(c.clone()),
        None => {
            let header = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or(""));
            header.and_then(|h| caller::verify_bearer(&state, Some(h)).ok())
        }
    };
    if let Some(caller) = caller {
        if let Err(retry) = state.limiters.commands.check(caller.id(), now) {
            return too_many(retry, "commands from this account").into_response();
        }
        // Verified once: the handler's extractor reuses it.
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}
