//! The catalog: what admins do to products. A product's aggregate id is its
//! SKU.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use platform::auth::Role;
use schemas::catalog::{
    AttachProductImage, CatalogCommand, ChangeProductCategory, CreateProduct, DiscontinueProduct,
    RepriceProduct, UpdateProductDetails,
};
use schemas::{AnyCommand, Context};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::validate::{self, MAX_TEXT, MAX_URL};
use crate::http::caller::Caller;
use crate::http::dto;
use crate::http::json::ApiJson;
use crate::http::problem::{AppError, Problem};
use crate::http::state::SharedState;
use crate::http::submit::{self, CommandAccepted, CommandPending, Outgoing, RequestKey};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(create_product))
        .routes(routes!(update_details))
        .routes(routes!(reprice))
        .routes(routes!(change_category))
        .routes(routes!(attach_image))
        .routes(routes!(discontinue))
}

/// Longest product description (it may span lines), as the aggregate has it.
const MAX_DESCRIPTION: usize = 10 * MAX_TEXT;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// The stock-keeping unit: the product's id from now on.
    pub sku: String,
    pub name: String,
    /// Free text, up to 2000 characters; may span lines.
    #[serde(default)]
    pub description: Option<String>,
    pub category: String,
    /// The unit price in minor units of `currency`; 0 is free.
    pub price_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductDetailsRequest {
    pub name: String,
    /// Free text, up to 2000 characters; leaving it out clears it.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequest {
    /// The unit price in minor units of `currency`; 0 is free.
    pub price_minor: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    pub category: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    /// The image's object-storage key; unique per product.
    pub image_key: String,
    /// Where the image is served from (no spaces).
    pub url: String,
    #[serde(default)]
    pub alt_text: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscontinueRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

fn description(value: Option<&String>) -> Result<(), AppError> {
    match value {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(AppError::invalid(
            "description",
            format!("description is longer than {MAX_DESCRIPTION} characters"),
        )),
        _ => Ok(()),
    }
}

fn price(value: i64) -> Result<(), AppError> {
    validate::price(value)
        .map_err(|reason| AppError::invalid("price_minor", format!("price_minor {reason}")))
}

/// A URL or object key: single-line, up to 2048 characters.
fn long_text(value: &str, field: &str) -> Result<(), AppError> {
    validate::text(value, MAX_URL)
        .map_err(|reason| AppError::invalid(field, format!("{field} {reason}")))
}

/// Sends a catalog command for product `sku` as an admin.
async fn product_command(
    state: &SharedState,
    caller: &Caller,
    key: Option<Extension<RequestKey>>,
    headers: &HeaderMap,
    sku: &str,
    command: CatalogCommand,
    creates: bool,
) -> Result<Response, AppError> {
    let key = key.map(|Extension(k)| k);
    submit::submit(
        state,
        key.as_ref(),
        headers,
        Outgoing {
            context: Context::Catalog,
            aggregate_type: "Product",
            aggregate_id: sku.to_owned(),
            command: AnyCommand::Catalog(command),
            actor: caller.actor(Role::Admin),
            creates,
        },
    )
    .await
}

/// Create a product (its SKU becomes its id).
#[utoipa::path(post, path = "/products", tag = "catalog", request_body = CreateProductRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = CommandAccepted, description = "Created"),
        (status = 200, body = CommandAccepted, description = "Already created by this same command"),
        (status = 202, body = CommandPending), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn create_product(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateProductRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::text(&body.sku, "sku")?;
    // It becomes the id in every `/products/{sku}` path.
    dto::path_id(&body.sku, "sku")
        .map_err(|_| AppError::invalid("sku", "sku is too long to be an id"))?;
    dto::text(&body.name, "name")?;
    description(body.description.as_ref())?;
    dto::text(&body.category, "category")?;
    price(body.price_minor)?;
    dto::currency(&body.currency, "currency")?;
    let sku = body.sku.clone();
    let command = CatalogCommand::CreateProduct(CreateProduct {
        sku: body.sku,
        name: body.name,
        description: body.description,
        category: body.category,
        price_minor: body.price_minor,
        currency: body.currency,
    });
    let mut response = product_command(&state, &caller, key, &headers, &sku, command, true).await?;
    if response.status() == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&format!("/products/{sku}")) {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(response)
}

/// Rename a product or change its description.
#[utoipa::path(put, path = "/products/{sku}/details", tag = "catalog", request_body = ProductDetailsRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn update_details(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<ProductDetailsRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    dto::text(&body.name, "name")?;
    description(body.description.as_ref())?;
    let command = CatalogCommand::UpdateProductDetails(UpdateProductDetails {
        name: body.name,
        description: body.description,
    });
    product_command(&state, &caller, key, &headers, &sku, command, false).await
}

/// Change a product's price (orders already placed keep theirs).
#[utoipa::path(put, path = "/products/{sku}/price", tag = "catalog", request_body = PriceRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn reprice(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<PriceRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    price(body.price_minor)?;
    dto::currency(&body.currency, "currency")?;
    let command = CatalogCommand::RepriceProduct(RepriceProduct {
        price_minor: body.price_minor,
        currency: body.currency,
    });
    product_command(&state, &caller, key, &headers, &sku, command, false).await
}

/// Move a product to another category.
#[utoipa::path(put, path = "/products/{sku}/category", tag = "catalog", request_body = CategoryRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn change_category(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<CategoryRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    dto::text(&body.category, "category")?;
    let command = CatalogCommand::ChangeProductCategory(ChangeProductCategory {
        category: body.category,
    });
    product_command(&state, &caller, key, &headers, &sku, command, false).await
}

/// Attach an image to a product.
///
/// At most 20 images, each `image_key` once.
#[utoipa::path(post, path = "/products/{sku}/images", tag = "catalog", request_body = ImageRequest,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn attach_image(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<ImageRequest>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    long_text(&body.image_key, "image_key")?;
    long_text(&body.url, "url")?;
    if body.url.chars().any(char::is_whitespace) {
        return Err(AppError::invalid("url", "url must not contain spaces"));
    }
    dto::reason(body.alt_text.as_ref(), "alt_text")?;
    let command = CatalogCommand::AttachProductImage(AttachProductImage {
        image_key: body.image_key,
        url: body.url,
        alt_text: body.alt_text,
    });
    product_command(&state, &caller, key, &headers, &sku, command, false).await
}

/// Take a product off sale for good.
///
/// It stays in history (orders refer to it). The body is optional.
#[utoipa::path(post, path = "/products/{sku}/discontinue", tag = "catalog", request_body = Option<DiscontinueRequest>,
    responses((status = 200, body = CommandAccepted), (status = 202, body = CommandPending),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn discontinue(
    State(state): State<SharedState>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    body: Option<ApiJson<DiscontinueRequest>>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    dto::path_id(&sku, "sku")?;
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    dto::reason(body.reason.as_ref(), "reason")?;
    let command = CatalogCommand::DiscontinueProduct(DiscontinueProduct {
        reason: body.reason,
    });
    product_command(&state, &caller, key, &headers, &sku, command, false).await
}
