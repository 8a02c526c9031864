//! The OpenAPI document, generated from the handlers (utoipa), plus what
//! every read endpoint shares and is written once here: the
//! read-your-writes parameters (`X-Position-Token`, `?after=`) with their
//! answers (400, 422 position-not-followed, 503 not-yet-consistent, and the
//! `X-Read-Position-Reached` header), the opaque 500, and problem bodies
//! typed `application/problem+json` as they are served.

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::problem::Problem;
use crate::routes;
use crate::state::QueryState;
use crate::stream::{CustomerHistory, OrderHistory, StreamEnd};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "QuickStore query API",
        description = "Read models of QuickStore: orders and their timelines, the catalog, stock, shipments, sales, customers, the audit trail and saga state, plus live order status over Server-Sent Events. Send the `position` of a command's answer as `X-Position-Token` (or `?after=`) to read your own write: the answer waits (bounded) until the read model holds it, or says 503 not-yet-consistent. Lists page with `limit` and the opaque `cursor` (`next_cursor` of the previous page). Errors are RFC 9457 problem documents. Each operation's `x-roles` lists who may call it."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, OrderHistory, CustomerHistory, StreamEnd)),
    tags(
        (name = "orders", description = "An order, its timeline and payment"),
        (name = "customers", description = "A customer's orders and profile"),
        (name = "catalog", description = "Products (public)"),
        (name = "inventory", description = "Stock levels"),
        (name = "deliveries", description = "Shipments and couriers"),
        (name = "sales", description = "Sales, summed per day and product"),
        (name = "audit", description = "Every event of an aggregate"),
        (name = "live", description = "Order status as Server-Sent Events"),
        (name = "ops", description = "Saga state and probes"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (ES256) from the command API")
                    .build(),
            ),
        );
    }
}

/// The read endpoints (behind the read-your-writes layer).
pub fn data_routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::orders::router())
        .merge(routes::customers::router())
        .merge(routes::catalog::router())
        .merge(routes::stock::router())
        .merge(routes::shipments::router())
        .merge(routes::sales::router())
        .merge(routes::audit::router())
        .merge(routes::ops::router())
        .merge(crate::stream::router())
}

/// The probes (no read-your-writes).
pub fn probe_routes() -> OpenApiRouter<QueryState> {
    routes::health::router()
}

/// The routers and the whole document.
pub fn parts() -> (
    axum::Router<QueryState>,
    axum::Router<QueryState>,
    utoipa::openapi::OpenApi,
) {
    let (data, mut api) = data_routes().split_for_parts();
    for (path, item) in api.paths.paths.iter_mut() {
        if let Some(op) = item.get.as_mut() {
            add_read_your_writes(op, &crate::consistency::follows_text(path));
        }
    }
    let (probes, probe_api) = probe_routes().split_for_parts();
    api.merge(probe_api);
    for item in api.paths.paths.values_mut() {
        if let Some(op) = item.get.as_mut() {
            add_internal_error(op);
            platform::openapi::problem_media_type(op);
            describe_responses(op);
        }
    }
    (data, probes, api)
}

/// The OpenAPI document of the query API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().2
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

fn add_read_your_writes(op: &mut Operation, follows: &str) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    let text = || ObjectBuilder::new().schema_type(Type::String).build();
    params.push(
        ParameterBuilder::new()
            .name("X-Position-Token")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(format!(
                "Read your own write: the `position` of a command's answer (`p1.…`). The answer waits until the read model holds it. {follows}"
            )))
            .schema(Some(text()))
            .build(),
    );
    params.push(
        ParameterBuilder::new()
            .name("after")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "The same as `X-Position-Token`, for clients that cannot set headers.",
            ))
            .schema(Some(text()))
            .build(),
    );
    let responses = &mut op.responses.responses;
    responses.entry("400".into()).or_insert_with(|| {
        problem("A malformed parameter or position token (the problem's `field` names it)")
    });
    const NOT_FOLLOWED: &str = "`position-not-followed`: the position token does not fit this endpoint (see `X-Position-Token`)";
    match responses.get_mut("422") {
        Some(RefOr::T(own)) => {
            own.description = format!("{}; or {NOT_FOLLOWED}", own.description);
        }
        _ => {
            responses.insert("422".into(), problem(NOT_FOLLOWED));
        }
    }
    responses.insert(
        "503".into(),
        problem("`not-yet-consistent`: the read model has not reached the position token within the wait (retry after `Retry-After`); or `unavailable`: the read store did not answer"),
    );
    if let Some(RefOr::T(ok)) = responses.get_mut("200") {
        ok.headers.insert(
            "X-Read-Position-Reached".into(),
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String).build())
                .description(Some("`true` when a position token was given and reached"))
                .build(),
        );
    }
}

fn add_internal_error(op: &mut Operation) {
    op.responses
        .responses
        .entry("500".into())
        .or_insert_with(|| problem("Our failure: the body holds only an incident id"));
}

/// What each status means, where the handler's doc did not say, and the
/// 401's challenge header.
fn describe_responses(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status == "401" {
            response.headers.insert(
                "WWW-Authenticate".into(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String).build())
                    .description(Some("`Bearer realm=\"quickstore\"` (with `error=\"invalid_token\"` when a token was sent)"))
                    .build(),
            );
        }
        if !response.description.is_empty() {
            continue;
        }
        response.description = match status.as_str() {
            "200" => "OK",
            "400" => "A malformed parameter or position token (the problem's `field` names it)",
            "401" => "No bearer token, or one that is expired, malformed or not for this API",
            "403" => "The caller's roles do not allow this",
            "404" => "Not found, or not the caller's to see",
            "503" => "A dependency did not answer: retry after `Retry-After`",
            _ => "",
        }
        .to_owned();
    }
}
