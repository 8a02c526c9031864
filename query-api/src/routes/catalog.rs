//! The public catalog: a product with whether it is in stock, and listings by
//! category and by a text query on names. No token needed.
//!
//! Text search uses the name token index (`product_name_tokens`): the
//! query's first word, truncated to 12 characters, names the candidate
//! partition; candidates are kept if their lowercased name holds every word
//! of the query. The words are `catalog::words`, the very function the
//! projection indexes names with, so a query and the index cannot split a
//! name differently.

use axum::extract::{Path, State};
use axum::Json;
use platform::readstore::Row;
use projectors::projections::{catalog, stock};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cells;
use crate::ids::path_id;
use crate::pagination::{Paged, Params};
use crate::problem::{AppError, Problem};
use crate::reads::key;
use crate::state::QueryState;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(get_product))
        .routes(routes!(list_products))
}

/// The routes that need no token.
pub const PUBLIC_ROUTES: &[&str] = &["/products", "/products/{sku}"];

/// Longest `q` accepted.
const MAX_QUERY_LEN: usize = 200;

/// An image of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Image {
    pub url: String,
    /// Object-storage key.
    pub image_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    pub attached_at: Option<String>,
}

/// Whether a product can be ordered now. The exact count is not public:
/// stock levels are for admins (`/stock/{sku}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Availability {
    /// Units can be ordered (some are available and the product is not
    /// discontinued); `null` when its stock is not tracked yet.
    pub in_stock: Option<bool>,
}

/// A product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductView {
    pub sku: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    /// Price of one unit, minor units of `currency`.
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub discontinued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discontinued_reason: Option<String>,
    pub images: Vec<Image>,
    pub availability: Availability,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub version: Option<i64>,
}

/// A product in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductSummary {
    pub sku: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub discontinued: bool,
}

fn summary(row: &Row) -> ProductSummary {
    ProductSummary {
        sku: cells::text(row, "sku").unwrap_or_default(),
        name: cells::text(row, "name"),
        category: cells::text(row, "category"),
        price_minor: cells::big(row, "price_minor"),
        currency: cells::text(row, "currency"),
        discontinued: cells::boolean(row, "discontinued").unwrap_or(false),
    }
}

/// Most images read for one product.
const MAX_IMAGES: usize = 100;

/// The images of a product in the order they were attached.
async fn images(state: &QueryState, sku: &str) -> Result<Vec<Image>, AppError> {
    let mut rows = state
        .scan_all(&catalog::PRODUCT_IMAGES, &key("sku", sku), MAX_IMAGES)
        .await?;
    // Clustered by key; the attaching version gives the order of attachment.
    rows.sort_by_key(|r| cells::big(r, "product_version"));
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(Image {
                url: cells::text(r, "url")?,
                image_key: cells::text(r, "image_key")?,
                alt_text: cells::text(r, "alt_text"),
                attached_at: cells::time(r, "attached_at"),
            })
        })
        .collect())
}

/// A product, its images and whether it is in stock (not how many: stock
/// levels are for admins, `/stock/{sku}`).
///
/// Roles: none (public).
#[utoipa::path(get, path = "/products/{sku}", tag = "catalog",
    params(("sku" = String, Path, description = "The product's SKU")),
    responses((status = 200, body = ProductView), (status = 400, body = Problem),
        (status = 404, body = Problem)),
    extensions(("x-roles" = json!(["public"]))))]
async fn get_product(
    State(state): State<QueryState>,
    Path(sku): Path<String>,
    params: Params,
) -> Result<Json<ProductView>, AppError> {
    params.allow(&[])?;
    let sku = path_id(&sku, "sku")?;
    let row = state
        .get(&catalog::PRODUCTS_BY_ID, &key("sku", sku))
        .await?
        .ok_or_else(|| AppError::not_found("no such product"))?;
    let stock = state.get(&stock::STOCK_LEVELS, &key("sku", sku)).await?;
    let available = stock.as_ref().and_then(|s| cells::int(s, "available"));
    let s = summary(&row);
    Ok(Json(ProductView {
        sku: sku.to_owned(),
        name: s.name,
        description: cells::text(&row, "description"),
        category: s.category,
        price_minor: s.price_minor,
        currency: s.currency,
        discontinued: s.discontinued,
        discontinued_reason: cells::text(&row, "discontinued_reason"),
        images: images(&state, sku).await?,
        availability: Availability {
            in_stock: available.map(|a| a > 0 && !s.discontinued),
        },
        created_at: cells::time(&row, "created_at"),
        updated_at: cells::time(&row, "updated_at"),
        version: cells::big(&row, "product_version"),
    }))
}

/// Products of a category (in name order), or whose name matches a text
/// query, or both.
///
/// `q` matches names holding every word of it (case-insensitive; a word is
/// a run of letters and digits, of which the first 12 count). Filtering happens after the index lookup, so a page may hold
/// fewer than `limit` products; keep following `next_cursor` until it is
/// absent. Discontinued products leave their category listing.
///
/// Roles: none (public).
#[utoipa::path(get, path = "/products", tag = "catalog",
    params(("category" = Option<String>, Query, description = "List this category (name order)"),
        ("q" = Option<String>, Query, description = "Words the name must contain"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Products per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = Paged<ProductSummary>), (status = 400, body = Problem)),
    extensions(("x-roles" = json!(["public"]))))]
async fn list_products(
    State(state): State<QueryState>,
    params: Params,
) -> Result<Json<Paged<ProductSummary>>, AppError> {
    let page = params
        .allow(&["category", "q", "limit", "cursor"])?
        .page(&state.config)?;
    let category = params
        .non_blank("category")
        .map(|c| path_id(c, "category"))
        .transpose()?;
    let q = params.non_blank("q");
    let (listed, candidates): (_, Vec<String>) = match (category, q) {
        (None, None) => {
            return Err(AppError::bad_request(
                "missing-filter",
                "category",
                "give a category, a text query `q`, or both",
            ))
        }
        (Some(category), None) => {
            let listed = state
                .scan(
                    &catalog::PRODUCTS_BY_CATEGORY,
                    &key("category", category),
                    page.cursor.as_ref(),
                    page.limit,
                )
                .await?;
            let skus = listed
                .rows
                .iter()
                .filter_map(|r| cells::text(r, "sku"))
                .collect();
            (listed.next, skus)
        }
        (category, Some(q)) => {
            if q.len() > MAX_QUERY_LEN {
                return Err(AppError::bad_request(
                    "invalid-query",
                    "q",
                    format!("q is at most {MAX_QUERY_LEN} bytes"),
                ));
            }
            let words = catalog::words(q);
            let token = words.first().cloned().ok_or_else(|| {
                AppError::bad_request(
                    "invalid-query",
                    "q",
                    "q needs at least one word of letters or digits",
                )
            })?;
            let listed = state
                .scan(
                    &catalog::PRODUCT_NAME_TOKENS,
                    &key("name_token", &token),
                    page.cursor.as_ref(),
                    page.limit,
                )
                .await?;
            let skus = listed
                .rows
                .iter()
                .filter(|r| {
                    let name = cells::text(r, "name").unwrap_or_default().to_lowercase();
                    words.iter().all(|w| name.contains(w.as_str()))
                        && category.is_none_or(|c| cells::text(r, "category").as_deref() == Some(c))
                })
                .filter_map(|r| cells::text(r, "sku"))
                .collect();
            (listed.next, skus)
        }
    };
    let keys = candidates.iter().map(|sku| key("sku", sku)).collect();
    let products = state.get_many(&catalog::PRODUCTS_BY_ID, keys).await?;
    // A listed product whose own row is not there yet (the projection is
    // mid-way) is left out rather than shown half-empty.
    let items = products.iter().flatten().map(summary).collect();
    Ok(Json(Paged::new(items, listed)))
}
