//! Customers: a customer edits their own profile (an admin anyone's);
//! admins grant and revoke roles. A customer's aggregate id is their id.
//!
//! Roles live twice: in the Customer aggregate (the record of who granted
//! what) and in the login's credential (what the next access token
//! carries). A role change is sent first and the login updated only once
//! the aggregate accepted it, so the login never holds a role the record
//! does not. Tokens already issued keep their roles until they expire.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use platform::auth::{AuthError, Role};
use schemas::customers::{
    CustomersCommand, GrantRole, RevokeRole, Role as ContractRole, UpdateCustomerProfile,
};
use schemas::{AnyCommand, CommandStatus, Context};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::bus::Submitted;
use crate::domain::validate;
use crate::http::caller::Caller;
use crate::http::dto::{self, AddressDto};
use crate::http::json::ApiJson;
use crate::http::pii;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, CommandPending, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(update_profile))
        .routes(routes!(grant_role))
        .routes(routes!(revoke_role))
}

/// A role, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Customer,
    Admin,
    Courier,
    Auditor,
}

impl From<RoleName> for Role {
    fn from(name: RoleName) -> Self {
        match name {
            RoleName::Customer => Role::Customer,
            RoleName::Admin => Role::Admin,
            RoleName::Courier => Role::Courier,
            RoleName::Auditor => Role::Auditor,
        }
    }
}

/// The contract's symbol for a login role.
fn contract_role(role: Role) -> ContractRole {
    match role {
        Role::Customer => ContractRole::Customer,
        Role::Admin => ContractRole::Admin,
        Role::Courier => ContractRole::Courier,
        Role::Auditor => ContractRole::Auditor,
    }
}

/// A role named in the path: 400 when it is none.
fn path_role(name: &str) -> Result<Role, AppError> {
    name.parse::<Role>()
        .map_err(|e| AppError::bad_request("invalid-path", e.to_string()).with_field("role"))
}

/// `roles` with `role` granted (appended unless held) or revoked.
fn with_role(mut roles: Vec<Role>, role: Role, grant: bool) -> Vec<Role> {
    if grant {
        if !roles.contains(&role) {
            roles.push(role);
        }
    } else {
        roles.retain(|r| *r != role);
    }
    roles
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    pub display_name: String,
    /// E.g. `+49 30 1234567`; leaving it out clears it.
    #[serde(default)]
    pub phone: Option<String>,
    /// Leaving it out clears it.
    #[serde(default)]
    pub default_address: Option<AddressDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: RoleName,
}

/// Change a customer's profile (your own, or anyone's as an admin).
#[utoipa::path(put, path = "/customers/{customer_id}/profile", tag = "customers", request_body = ProfileRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 410, body = Problem, description = "customer-erased: the customer was forgotten"),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn update_profile(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
    ApiJson(body): ApiJson<ProfileRequest>,
) -> Result<Response, AppError> {
    dto::path_id(&customer_id, "customer_id")?;
    let role = caller.may_act_for(&customer_id)?;
    dto::text(&body.display_name, "display_name")?;
    if let Some(phone) = &body.phone {
        validate::phone(phone)
            .map_err(|reason| AppError::invalid("phone", format!("phone {reason}")))?;
    }
    let default_address = body
        .default_address
        .map(|a| a.into_address("default_address"))
        .transpose()?;
    // Checked in clear above; sealed before the command is produced.
    let data_key = pii::key_for(&state, &customer_id).await?;
    let command = CustomersCommand::UpdateCustomerProfile(UpdateCustomerProfile {
        display_name: pii::seal(
            &data_key,
            &customer_id,
            pii::field::DISPLAY_NAME,
            &body.display_name,
        )?,
        phone: pii::seal_opt(&data_key, &customer_id, pii::field::PHONE, body.phone)?,
        default_address: default_address
            .map(|a| pii::seal_address(&data_key, &customer_id, a))
            .transpose()?,
    });
    let key = key.map(|Extension(k)| k);
    submit::submit(
        &state,
        key.as_ref(),
        &headers,
        Outgoing {
            context: Context::Customers,
            aggregate_type: "Customer",
            aggregate_id: customer_id,
            command: AnyCommand::Customers(command),
            actor: caller.actor(role),
            creates: false,
        },
    )
    .await
}

/// Grant a customer a role (admins).
///
/// The customer's next token carries it.
#[utoipa::path(post, path = "/customers/{customer_id}/roles", tag = "customers", request_body = RoleRequest,
    responses((status = 200, body = CommandAccepted),
        (status = 202, body = CommandPending, description = "Not decided yet: the login is updated once it is"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem, description = "Granted, but the login could not be updated yet: retry")),
    security(("bearer" = [])))]
async fn grant_role(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
    ApiJson(body): ApiJson<RoleRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    change_role(
        &state,
        &caller,
        key,
        &headers,
        &customer_id,
        body.role.into(),
        true,
    )
    .await
}

/// Revoke a role from a customer (admins).
///
/// Tokens already issued keep it until they expire.
#[utoipa::path(delete, path = "/customers/{customer_id}/roles/{role}", tag = "customers",
    params(("role" = RoleName, Path, description = "customer, admin, courier or auditor")),
    responses((status = 200, body = CommandAccepted),
        (status = 202, body = CommandPending, description = "Not decided yet: the login is updated once it is"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 503, body = Problem, description = "Revoked, but the login could not be updated yet: retry")),
    security(("bearer" = [])))]
async fn revoke_role(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path((customer_id, role)): Path<(String, String)>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    let role = path_role(&role)?;
    change_role(&state, &caller, key, &headers, &customer_id, role, false).await
}

/// Sends the grant or revocation and, once the aggregate accepted it,
/// brings the login's roles in line. Repeating an accepted change records
/// nothing but still updates the login, so a retry repairs a login update
/// that failed.
async fn change_role(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    customer_id: &str,
    role: Role,
    grant: bool,
) -> Result<Response, AppError> {
    dto::path_id(customer_id, "customer_id")?;
    let command = if grant {
        CustomersCommand::GrantRole(GrantRole {
            role: contract_role(role),
        })
    } else {
        CustomersCommand::RevokeRole(RevokeRole {
            role: contract_role(role),
        })
    };
    let key = key.map(|Extension(k)| k);
    let outgoing = Outgoing {
        context: Context::Customers,
        aggregate_type: "Customer",
        aggregate_id: customer_id.to_owned(),
        command: AnyCommand::Customers(command),
        actor: caller.actor(Role::Admin),
        creates: false,
    };
    let submitted = submit::send(
        state,
        key.as_ref(),
        submit::expected_version(headers)?,
        &outgoing,
    )
    .await?;
    match &submitted {
        Submitted::Decided(outcome) => {
            // A refusal is answered as it is; the login stays as it was.
            submit::outcome_result(outcome)?;
            sync_login(state, customer_id, role, grant).await?;
        }
        Submitted::Pending { command_id } => {
            follow_up(
                state,
                command_id.clone(),
                customer_id.to_owned(),
                role,
                grant,
            );
        }
    }
    Ok(submit::answer(submitted, false))
}

/// Serialises read-modify-write of login roles within this instance, so
/// two changes to one login don't lose each other.
static LOGIN_ROLES: Mutex<()> = Mutex::new(());

/// Grants or revokes `role` on the customer's login.
async fn sync_login(
    state: &SharedState,
    customer_id: &str,
    role: Role,
    grant: bool,
) -> Result<(), AppError> {
    let store = Arc::clone(state.issuer.store());
    let id = customer_id.to_owned();
    let updated = tokio::task::spawn_blocking(move || -> Result<bool, AuthError> {
        let _one_at_a_time = LOGIN_ROLES.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(credential) = store.by_customer(&id)? else {
            return Ok(false);
        };
        let roles = with_role(credential.roles, role, grant);
        store.set_roles(&id, &roles)
    })
    .await
    .map_err(|e| AppError::internal(&e))?;
    match updated {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(%customer_id, %role, grant, "role changed for a customer without a login");
            Ok(())
        }
        Err(e @ AuthError::Store(_)) => Err(AppError::unavailable(&e)),
        Err(e) => Err(AppError::internal(&e)),
    }
}

/// How long a role change answered 202 is followed before giving up (a
/// retry of the request then updates the login).
const FOLLOW_UP_FOR: Duration = Duration::from_secs(120);

/// A role change not decided in time: update the login once its outcome
/// arrives, if it is an acceptance.
fn follow_up(
    state: &SharedState,
    command_id: String,
    customer_id: String,
    role: Role,
    grant: bool,
) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let Some(outcome) = state.bus.await_outcome(&command_id, FOLLOW_UP_FOR).await else {
            tracing::warn!(%command_id, %customer_id, "role change undecided: login roles not updated");
            return;
        };
        if matches!(outcome.status, CommandStatus::Accepted) {
            if let Err(e) = sync_login(&state, &customer_id, role, grant).await {
                tracing::warn!(%command_id, %customer_id, error = %e, "login roles not updated");
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn every_api_role_name_is_the_login_role_of_that_name() {
        for role in Role::ALL {
            let json = format!(r#"{{"role":"{}"}}"#, role.as_str());
            let request: RoleRequest = serde_json::from_str(&json).expect("a known role");
            assert_eq!(Role::from(request.role), role);
            assert_eq!(path_role(role.as_str()).expect("a known role"), role);
        }
    }

    #[test]
    fn every_login_role_maps_to_the_contract_symbol_of_that_name() {
        for role in Role::ALL {
            assert_eq!(contract_role(role).as_str(), role.as_str().to_uppercase());
        }
        let mapped: Vec<ContractRole> = Role::ALL.into_iter().map(contract_role).collect();
        assert_eq!(mapped, ContractRole::ALL.to_vec());
    }

    #[test]
    fn unknown_or_miscased_role_names_are_refused() {
        for name in ["root", "Admin", "ADMIN", "", "admin "] {
            let json = format!(r#"{{"role":"{name}"}}"#);
            assert!(
                serde_json::from_str::<RoleRequest>(&json).is_err(),
                "{name:?}"
            );
            let e = path_role(name).expect_err(name);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(e.field.as_deref(), Some("role"));
        }
    }

    #[test]
    fn granting_adds_once_and_revoking_removes() {
        let roles = vec![Role::Customer];
        let granted = with_role(roles.clone(), Role::Courier, true);
        assert_eq!(granted, vec![Role::Customer, Role::Courier]);
        assert_eq!(with_role(granted.clone(), Role::Courier, true), granted);
        assert_eq!(with_role(granted, Role::Courier, false), roles);
        assert_eq!(with_role(roles.clone(), Role::Admin, false), roles);
    }
}
