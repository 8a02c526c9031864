//! Register, log in, refresh, log out, and the public keys.
//!
//! Passwords are hashed with argon2id on a blocking thread and stored only
//! in the credential store: no event, command or log line ever holds a
//! password or its hash (RegisterCustomer carries the e-mail and name only).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use platform::auth::revocations::Revocation;
use platform::auth::{AuthError, Role, TokenPair};
use platform::config::Secret;
use schemas::customers::{CustomersCommand, RegisterCustomer};
use schemas::{AnyCommand, Context};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::validate;
use crate::http::caller::Caller;
use crate::http::dto;
use crate::http::json::ApiJson;
use crate::http::pii;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(jwks))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    /// 10 to 128 characters.
    pub password: String,
    pub display_name: String,
    #[serde(default)]
    pub phone: Option<String>,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { *** }")
    }
}

/// A session's tokens.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub customer_id: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub roles: Vec<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("customer_id", &self.customer_id)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

fn tokens(customer_id: &str, roles: &[Role], pair: TokenPair) -> TokenResponse {
    TokenResponse {
        customer_id: customer_id.to_owned(),
        access_token: pair.access_token.expose().to_owned(),
        refresh_token: pair.refresh_token.expose().to_owned(),
        token_type: "Bearer".into(),
        expires_in: pair.expires_in,
        roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
    }
}

fn auth_error(e: AuthError) -> AppError {
    match e {
        AuthError::EmailTaken => {
            AppError::new(StatusCode::CONFLICT, "email-taken", e.to_string()).with_field("email")
        }
        AuthError::WeakPassword(_) => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak-password",
            e.to_string(),
        )
        .with_field("password"),
        AuthError::Store(_) | AuthError::Key(_) => AppError::internal(&e),
        AuthError::InvalidCredentials => AppError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            e.to_string(),
        ),
        other => AppError::new(StatusCode::UNAUTHORIZED, "invalid-token", other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::internal(&e))?
        .map_err(auth_error)
}

/// Create an account (role customer) and log in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn register(
    State(state): State<SharedState>,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, AppError> {
    validate::email(&body.email)
        .map_err(|reason| AppError::invalid("email", format!("email {reason}")))?;
    dto::text(&body.display_name, "display_name")?;
    if let Some(phone) = &body.phone {
        validate::phone(phone)
            .map_err(|reason| AppError::invalid("phone", format!("phone {reason}")))?;
    }
    let password = Secret::new(body.password);
    platform::auth::password::check_rules(&password).map_err(auth_error)?;
    let customer_id = uuid::Uuid::now_v7().to_string();
    let email = platform::auth::normalize_email(&body.email);
    // The login first: it claims the e-mail atomically, so two concurrent
    // registrations of one address cannot both create a customer.
    {
        let state = state.clone();
        let (email, customer_id) = (email.clone(), customer_id.clone());
        blocking(move || {
            let phc = state.hasher.hash(&password)?;
            state
                .issuer
                .store()
                .register(&email, &customer_id, &phc, &[Role::Customer])
        })
        .await?;
    }
    // The customer's data key before the command: the command topic holds
    // the e-mail, name and phone sealed, never in clear (ADR 0014). The id
    // was minted above, so no other request can be creating this key.
    let data_key = pii::key_for(&state, &customer_id).await?;
    let key = key.map(|Extension(k)| k);
    let outgoing = Outgoing {
        context: Context::Customers,
        aggregate_type: "Customer",
        aggregate_id: customer_id.clone(),
        command: AnyCommand::Customers(CustomersCommand::RegisterCustomer(RegisterCustomer {
            email: pii::seal(&data_key, &customer_id, pii::field::EMAIL, &email)?,
            display_name: pii::seal(
                &data_key,
                &customer_id,
                pii::field::DISPLAY_NAME,
                &body.display_name,
            )?,
            phone: pii::seal_opt(&data_key, &customer_id, pii::field::PHONE, body.phone)?,
        })),
        actor: format!("customer:{customer_id}"),
        creates: true,
    };
    let submitted = submit::send(
        &state,
        key.as_ref(),
        submit::expected_version(&headers)?,
        &outgoing,
    )
    .await?;
    if let crate::bus::Submitted::Decided(outcome) = &submitted {
        submit::outcome_result(outcome)?;
    }
    let now = state.now_s();
    let pair = {
        let state = state.clone();
        let id = customer_id.clone();
        blocking(move || state.issuer.issue(&id, &[Role::Customer], now)).await?
    };
    Ok((
        StatusCode::CREATED,
        Json(tokens(&customer_id, &[Role::Customer], pair)),
    )
        .into_response())
}

/// Exchange an e-mail and password for tokens.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
async fn login(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    // Before the password hash: a guessing run must not buy argon2 work.
    crate::http::limits::check_login_account(
        &state,
        &platform::auth::normalize_email(&body.email),
    )?;
    let now = state.now_s();
    let password = Secret::new(body.password);
    let (credential, pair) = {
        let state = state.clone();
        blocking(move || {
            let credential = platform::auth::store::authenticate(
                state.issuer.store().as_ref(),
                &state.hasher,
                &body.email,
                &password,
            )?;
            let pair = state
                .issuer
                .issue(&credential.customer_id, &credential.roles, now)?;
            Ok((credential, pair))
        })
        .await?
    };
    Ok(Json(tokens(
        &credential.customer_id,
        &credential.roles,
        pair,
    )))
}

/// Rotate a refresh token: the old one stops working; presenting it again
/// ends the whole session (a stolen token is detected on reuse).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem)))]
async fn refresh(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    let now = state.now_s();
    let token = Secret::new(body.refresh_token);
    let hash = platform::auth::refresh::digest(token.expose());
    // A used token coming back is a reuse: its session is revoked on the
    // log *before* here (a failed append is 503 and changes nothing, so a
    // retry revokes it again), so every verifier drops the session's access
    // tokens, the thief's included.
    if let Some(record) = session_of(&state, hash).await? {
        if record.used {
            publish(&state, &[session_revocation(&state, &record.family, now)]).await?;
        }
    }
    let verifier_state = state.clone();
    let refreshed = tokio::task::spawn_blocking(move || verifier_state.issuer.refresh(&token, now))
        .await
        .map_err(|e| AppError::internal(&e))?;
    let pair = match refreshed {
        Err(AuthError::RefreshReused) => {
            // Two presentations racing past the check above: the loser is
            // the reuse. Best effort; the family is revoked here already.
            if let Ok(Some(record)) = session_of(&state, hash).await {
                let revocation = session_revocation(&state, &record.family, now);
                if publish(&state, &[revocation]).await.is_err() {
                    tracing::error!(family = %record.family,
                        "a reused session could not be put on the revocation topic");
                }
            }
            return Err(auth_error(AuthError::RefreshReused));
        }
        other => other.map_err(auth_error)?,
    };
    let claims = state
        .verifier
        .verify(pair.access_token.expose(), now, None)
        .map_err(|e| AppError::internal(&e))?;
    Ok(Json(tokens(&claims.sub, &claims.roles, pair)))
}

/// End the session: the refresh token's family and this access token are revoked.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = [])))]
async fn logout(
    State(state): State<SharedState>,
    caller: Caller,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, AppError> {
    let now = state.now_s();
    let token = Secret::new(body.refresh_token);
    let (jti, exp) = (caller.claims.jti.clone(), caller.claims.exp);
    // On the log first: if the append fails the answer is 503 and nothing
    // was revoked here, so the client's retry (same tokens) still works
    // and revokes everywhere. Revoked here first, a retry would be refused
    // 401 and the query API would never hear of it.
    let mut revocations = vec![Revocation::access(jti.clone(), exp)];
    let family = match session_of(&state, platform::auth::refresh::digest(token.expose())).await? {
        Some(record) => Some(record.family),
        None => caller.claims.sid.clone(),
    };
    if let Some(family) = family {
        revocations.push(session_revocation(&state, &family, now));
    }
    publish(&state, &revocations).await?;
    let s = state.clone();
    blocking(move || s.issuer.logout(&token, &jti, exp, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The refresh token's record, if the store knows it.
async fn session_of(
    state: &SharedState,
    hash: [u8; 32],
) -> Result<Option<platform::auth::RefreshRecord>, AppError> {
    let s = state.clone();
    blocking(move || s.issuer.store().refresh_record(&hash)).await
}

/// A session revocation that outlives every access token of the session:
/// none is issued after it, and the last one lives one access TTL (plus a
/// minute for a rotation in flight).
fn session_revocation(state: &SharedState, family: &str, now_s: i64) -> Revocation {
    Revocation::session(
        family,
        now_s
            .saturating_add(state.issuer.access_ttl_s())
            .saturating_add(60),
    )
}

/// Appends to the revocation topic; 503 when the log does not take it.
async fn publish(state: &SharedState, revocations: &[Revocation]) -> Result<(), AppError> {
    state
        .revocations
        .publish(revocations)
        .await
        .map_err(|e| AppError::unavailable(&e))
}

/// The public keys access tokens are signed with (JWKS): verify tokens
/// locally, no call back to this service.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK set")))]
async fn jwks(State(state): State<SharedState>) -> Response {
    let mut response = Json(state.issuer.keys().jwks()).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("public, max-age=300"),
    );
    response
}
