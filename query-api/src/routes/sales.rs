//! Sales, for admins, summed when read: the tables hold one row per order
//! line of a completed order (no counters, so projecting stays idempotent),
//! and these endpoints add them up. Amounts are summed per currency —
//! never across currencies — with saturating arithmetic (an i64 of minor
//! units does not overflow in practice; if it did, the sum would stick at
//! the maximum rather than wrap or panic).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use platform::auth::Role;
use platform::readstore::{Row, TableDef};
use projectors::projections::sales;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::cells;
use crate::ids::path_id;
use crate::pagination::Params;
use crate::problem::{AppError, Problem};
use crate::reads::key;
use crate::state::QueryState;
use crate::time::parse_day;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(sales_of_day))
        .routes(routes!(sales_of_product))
}

/// Most rows one sales answer reads; beyond it the answer would take too
/// long to be useful, and is refused rather than cut silently.
const MAX_SALES_ROWS: usize = 1_000_000;

/// Sales in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CurrencyTotal {
    pub currency: String,
    /// Sum of the lines' amounts, minor units.
    pub amount_minor: i64,
    pub units: i64,
    pub lines: i64,
}

/// Sales of one SKU in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SkuTotal {
    pub sku: String,
    pub currency: String,
    pub amount_minor: i64,
    pub units: i64,
    pub lines: i64,
}

/// A day's sales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DaySales {
    /// `YYYY-MM-DD` (UTC date of completion).
    pub day: String,
    /// Order lines sold.
    pub lines: i64,
    /// Per currency.
    pub totals: Vec<CurrencyTotal>,
    /// Per SKU and currency, by SKU.
    pub by_sku: Vec<SkuTotal>,
}

/// One line's figures.
struct Line {
    currency: String,
    amount_minor: i64,
    units: i64,
}

fn line(row: &Row) -> Line {
    Line {
        currency: cells::text(row, "currency").unwrap_or_default(),
        amount_minor: cells::big(row, "amount_minor").unwrap_or(0),
        units: cells::int(row, "quantity").map_or(0, i64::from),
    }
}

/// Running sums by a key.
#[derive(Default)]
struct Sums<K: Ord>(BTreeMap<K, (i64, i64, i64)>);

impl<K: Ord> Sums<K> {
    fn add(&mut self, k: K, l: &Line) {
        let e = self.0.entry(k).or_default();
        e.0 = e.0.saturating_add(l.amount_minor);
        e.1 = e.1.saturating_add(l.units);
        e.2 = e.2.saturating_add(1);
    }
}

fn currency_totals(sums: Sums<String>) -> Vec<CurrencyTotal> {
    sums.0
        .into_iter()
        .map(|(currency, (amount_minor, units, lines))| CurrencyTotal {
            currency,
            amount_minor,
            units,
            lines,
        })
        .collect()
}

/// The rows of a partition before the first where `stop` holds; more
/// than [`MAX_SALES_ROWS`] is refused.
async fn read_until(
    state: &QueryState,
    table: &TableDef,
    partition: &Row,
    stop: impl Fn(&Row) -> bool,
) -> Result<Vec<Row>, AppError> {
    let rows = state
        .scan_until(table, partition, MAX_SALES_ROWS + 1, stop)
        .await?;
    if rows.len() > MAX_SALES_ROWS {
        return Err(AppError::internal(&format!(
            "{} partition {partition:?} has more than {MAX_SALES_ROWS} rows",
            table.name
        )));
    }
    Ok(rows)
}

fn day_param(value: &str, field: &str) -> Result<String, AppError> {
    parse_day(value).ok_or_else(|| {
        AppError::bad_request(
            "invalid-day",
            field,
            format!("{field} must be a date as YYYY-MM-DD"),
        )
    })
}

/// A day's sales: totals per currency and per SKU.
///
/// Roles: admin.
#[utoipa::path(get, path = "/sales/days/{day}", tag = "sales",
    params(("day" = String, Path, description = "The day, `YYYY-MM-DD` (UTC)")),
    responses((status = 200, body = DaySales), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))))]
async fn sales_of_day(
    State(state): State<QueryState>,
    caller: Caller,
    Path(day): Path<String>,
    params: Params,
) -> Result<Json<DaySales>, AppError> {
    caller.require_any(&[Role::Admin])?;
    params.allow(&[])?;
    let day = day_param(&day, "day")?;
    let rows = read_until(&state, &sales::SALES_BY_DAY, &key("day", &day), |_| false).await?;
    let mut totals = Sums::default();
    let mut by_sku = Sums::default();
    for row in &rows {
        let l = line(row);
        let sku = cells::text(row, "sku").unwrap_or_default();
        totals.add(l.currency.clone(), &l);
        by_sku.add((sku, l.currency.clone()), &l);
    }
    Ok(Json(DaySales {
        day,
        lines: i64::try_from(rows.len()).unwrap_or(i64::MAX),
        totals: currency_totals(totals),
        by_sku: by_sku
            .0
            .into_iter()
            .map(|((sku, currency), (amount_minor, units, lines))| SkuTotal {
                sku,
                currency,
                amount_minor,
                units,
                lines,
            })
            .collect(),
    }))
}

/// One day of a product's sales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductDay {
    pub day: String,
    pub totals: Vec<CurrencyTotal>,
}

/// A product's sales per day over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductSales {
    pub sku: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Days with sales, oldest first.
    pub days: Vec<ProductDay>,
    /// The whole range, per currency.
    pub totals: Vec<CurrencyTotal>,
}

/// A product's sales per day, within `from..=to` (both optional, inclusive).
///
/// Roles: admin.
#[utoipa::path(get, path = "/sales/products/{sku}", tag = "sales",
    params(("sku" = String, Path, description = "The SKU"),
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD` (inclusive)"),
        ("to" = Option<String>, Query, description = "Last day, `YYYY-MM-DD` (inclusive)")),
    responses((status = 200, body = ProductSales), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])),
    extensions(("x-roles" = json!(["admin"]))))]
async fn sales_of_product(
    State(state): State<QueryState>,
    caller: Caller,
    Path(sku): Path<String>,
    params: Params,
) -> Result<Json<ProductSales>, AppError> {
    caller.require_any(&[Role::Admin])?;
    params.allow(&["from", "to"])?;
    let sku = path_id(&sku, "sku")?;
    let from = params
        .get("from")
        .map(|d| day_param(d, "from"))
        .transpose()?;
    let to = params.get("to").map(|d| day_param(d, "to")).transpose()?;
    if let (Some(f), Some(t)) = (&from, &to) {
        if f > t {
            return Err(AppError::bad_request(
                "invalid-range",
                "from",
                "from must not be after to",
            ));
        }
    }
    // The partition is newest day first and the port has no range read:
    // days after `to` are read and skipped, and reading stops at the
    // first day before `from`.
    let before_from =
        |row: &Row| cells::text(row, "day").is_some_and(|d| from.as_ref().is_some_and(|f| &d < f));
    let rows = read_until(
        &state,
        &sales::SALES_BY_PRODUCT,
        &key("sku", sku),
        before_from,
    )
    .await?;
    let mut per_day: BTreeMap<String, Sums<String>> = BTreeMap::new();
    let mut totals = Sums::default();
    for row in &rows {
        let Some(day) = cells::text(row, "day") else {
            continue;
        };
        if to.as_ref().is_some_and(|t| &day > t) {
            continue;
        }
        let l = line(row);
        totals.add(l.currency.clone(), &l);
        per_day.entry(day).or_default().add(l.currency.clone(), &l);
    }
    Ok(Json(ProductSales {
        sku: sku.to_owned(),
        from,
        to,
        days: per_day
            .into_iter()
            .map(|(day, sums)| ProductDay {
                day,
                totals: currency_totals(sums),
            })
            .collect(),
        totals: currency_totals(totals),
    }))
}
