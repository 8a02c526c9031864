//! Sales, for admins, summed when read: the tables hold one row per order
//! line of a completed order (no counters, so projecting stays idempotent),
//! and these endpoints add them up. Amounts are summed per currency —
//! never across currencies — with saturating arithmetic (an i64 of minor
//! units does not overflow in practice; if it did, the sum would stick at
//! the maximum rather than wrap or panic).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use axum::extract::{Path, State};
use axum::http::StatusCode;
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

/// Most sales lines one answer adds up: a day's lines, or a product's
/// lines from the newest down to `from` (the days after `to` are read and
/// skipped). They are summed a store page at a time, holding only the
/// sums; beyond this many the answer would take too long to be useful,
/// and is refused (422 `too-many-lines`) rather than cut silently.
pub const MAX_SALES_LINES: usize = 5_000_000;

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

fn too_many_lines(what: &str, max_lines: usize) -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "too-many-lines",
        format!("{what} more than {max_lines} sales lines: more than one answer adds up"),
    )
}

/// Hands the rows of a partition before the first where `stop` holds to
/// `add`, a page at a time; more than `max_lines` is refused (422,
/// `what` saying what has too many).
async fn fold(
    state: &QueryState,
    table: &TableDef,
    partition: &Row,
    max_lines: usize,
    stop: impl Fn(&Row) -> bool,
    what: &str,
    mut add: impl FnMut(&Row),
) -> Result<(), AppError> {
    let mut lines = 0usize;
    state
        .visit(table, partition, |row| {
            if stop(&row) {
                return Ok(ControlFlow::Break(()));
            }
            lines += 1;
            if lines > max_lines {
                return Err(too_many_lines(what, max_lines));
            }
            add(&row);
            Ok(ControlFlow::Continue(()))
        })
        .await
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
/// The day's lines are added up when read, so a day is bounded: one with
/// more than 5,000,000 sales lines is refused (422 `too-many-lines`).
///
/// Roles: admin.
#[utoipa::path(get, path = "/sales/days/{day}", tag = "sales",
    params(("day" = String, Path, description = "The day, `YYYY-MM-DD` (UTC)")),
    responses((status = 200, body = DaySales), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem, description = "`too-many-lines`: the day has more than 5,000,000 sales lines")),
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
    let mut totals = Sums::default();
    let mut by_sku = Sums::default();
    let mut lines: i64 = 0;
    fold(
        &state,
        &sales::SALES_BY_DAY,
        &key("day", &day),
        MAX_SALES_LINES,
        |_| false,
        "this day has",
        |row| {
            let l = line(row);
            let sku = cells::text(row, "sku").unwrap_or_default();
            by_sku.add((sku, l.currency.clone()), &l);
            totals.add(l.currency.clone(), &l);
            lines = lines.saturating_add(1);
        },
    )
    .await?;
    Ok(Json(DaySales {
        day,
        lines,
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
/// The lines are added up when read, newest first, down to `from` (the
/// days after `to` are read and skipped), so an answer is bounded: more
/// than 5,000,000 sales lines to read is refused (422 `too-many-lines`);
/// give a later `from`.
///
/// Roles: admin.
#[utoipa::path(get, path = "/sales/products/{sku}", tag = "sales",
    params(("sku" = String, Path, description = "The SKU"),
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD` (inclusive)"),
        ("to" = Option<String>, Query, description = "Last day, `YYYY-MM-DD` (inclusive)")),
    responses((status = 200, body = ProductSales), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem, description = "`too-many-lines`: more than 5,000,000 sales lines to read from the newest down to `from`")),
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
    let mut per_day: BTreeMap<String, Sums<String>> = BTreeMap::new();
    let mut totals = Sums::default();
    fold(
        &state,
        &sales::SALES_BY_PRODUCT,
        &key("sku", sku),
        MAX_SALES_LINES,
        before_from,
        "this range (with the days after `to`) has",
        |row| {
            let Some(day) = cells::text(row, "day") else {
                return;
            };
            if to.as_ref().is_some_and(|t| &day > t) {
                return;
            }
            let l = line(row);
            totals.add(l.currency.clone(), &l);
            per_day.entry(day).or_default().add(l.currency.clone(), &l);
        },
    )
    .await?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use platform::readstore::{ReadStore, Value};
    use projectors::projection::{row, upsert};

    use super::*;

    /// `n` lines of one day, 1 unit at 100 each, alternating currencies.
    async fn day_of(store: &dyn ReadStore, day: &str, n: i32) {
        let mutations: Vec<_> = (0..n)
            .map(|i| {
                let mut m = upsert(
                    sales::SALES_BY_DAY,
                    1,
                    row([
                        ("day", Value::Text(day.into())),
                        ("order_id", Value::Text(format!("o-{i:05}"))),
                        ("line_no", Value::Int(1)),
                        ("sku", Value::Text(format!("SKU-{}", i % 3))),
                        ("quantity", Value::Int(1)),
                        ("amount_minor", Value::BigInt(100)),
                        (
                            "currency",
                            Value::Text(if i % 2 == 0 { "EUR" } else { "USD" }.into()),
                        ),
                    ]),
                );
                m.generation = 1;
                m
            })
            .collect();
        store.write(&mutations).await.unwrap();
    }

    #[tokio::test]
    async fn a_day_is_summed_page_by_page_up_to_the_bound() {
        let (state, store) = crate::state::memory_state().await;
        // More than two store pages.
        day_of(store.as_ref(), "2026-01-01", 1_201).await;
        let partition = key("day", "2026-01-01");
        let mut totals = Sums::default();
        let mut lines = 0;
        fold(
            &state,
            &sales::SALES_BY_DAY,
            &partition,
            1_201,
            |_| false,
            "this day has",
            |row| {
                let l = line(row);
                totals.add(l.currency.clone(), &l);
                lines += 1;
            },
        )
        .await
        .unwrap();
        assert_eq!(lines, 1_201);
        let totals = currency_totals(totals);
        assert_eq!(totals[0].currency, "EUR");
        assert_eq!((totals[0].lines, totals[0].amount_minor), (601, 60_100));
        assert_eq!((totals[1].lines, totals[1].units), (600, 600));

        // One line more than the bound: refused as the caller's 422, not
        // a 500, and before anything past the bound is added.
        let mut added = 0;
        let refused = fold(
            &state,
            &sales::SALES_BY_DAY,
            &partition,
            1_200,
            |_| false,
            "this day has",
            |_| added += 1,
        )
        .await
        .unwrap_err();
        assert_eq!(added, 1_200);
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.code, "too-many-lines");
        assert!(refused.detail.contains("1200"), "{}", refused.detail);
    }

    #[test]
    fn the_documented_bound_is_the_bound() {
        let api = crate::openapi();
        for path in ["/sales/days/{day}", "/sales/products/{sku}"] {
            let op = api.paths.paths[path].get.as_ref().unwrap();
            let text = format!(
                "{} {}",
                op.description.as_deref().unwrap_or_default(),
                serde_json::to_string(&op.responses).unwrap()
            );
            assert_eq!(MAX_SALES_LINES, 5_000_000);
            assert!(text.contains("5,000,000"), "{path}: {text}");
            assert!(text.contains("too-many-lines"), "{path}");
        }
    }
}
