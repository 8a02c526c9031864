//! Sales by day and by product. A sale is an order line of a completed
//! order (`OrderCompleted` carries the lines and totals): one row per line,
//! summed when read — no counters, so a redelivery or a replay rewrites the
//! same rows. The day is the UTC date of the completion (`YYYY-MM-DD`).
//!
//! Every row is written with the Order's version. An order completes once
//! and nothing follows, so rows are never retracted. Completions recorded
//! before the lines were on the event have none, and count no sales.

use platform::readstore::{column, ColumnType as T, Mutation, Order, TableDef, Value};
use schemas::orders::OrdersEvent;
use schemas::{AnyEvent, Context};

use crate::projection::{row, text, upsert, Input, Projected, Projection, ProjectionError};

pub const SALES_BY_DAY: TableDef = TableDef {
    name: "sales_by_day",
    partition_key: &[column("day", T::Text)],
    clustering: &[
        (column("order_id", T::Text), Order::Asc),
        (column("line_no", T::Int), Order::Asc),
    ],
    columns: &[
        column("sku", T::Text),
        column("quantity", T::Int),
        column("unit_price_minor", T::BigInt),
        column("amount_minor", T::BigInt),
        column("currency", T::Text),
        column("completed_at", T::Timestamp),
    ],
};

pub const SALES_BY_PRODUCT: TableDef = TableDef {
    name: "sales_by_product",
    partition_key: &[column("sku", T::Text)],
    clustering: &[
        (column("day", T::Text), Order::Desc),
        (column("order_id", T::Text), Order::Asc),
        (column("line_no", T::Int), Order::Asc),
    ],
    columns: &[
        column("quantity", T::Int),
        column("unit_price_minor", T::BigInt),
        column("amount_minor", T::BigInt),
        column("currency", T::Text),
        column("completed_at", T::Timestamp),
    ],
};

const TABLES: &[TableDef] = &[SALES_BY_DAY, SALES_BY_PRODUCT];

const MS_PER_DAY: i64 = 86_400_000;

/// The UTC date of `ms` (since the Unix epoch) as `YYYY-MM-DD`, without a
/// clock or a date library: Howard Hinnant's `civil_from_days`
/// (proleptic Gregorian calendar, eras of 400 years starting on March 1st).
pub fn utc_day(ms: i64) -> String {
    let z = ms.div_euclid(MS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SalesProjection;

impl Projection for SalesProjection {
    fn name(&self) -> &'static str {
        "sales"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Orders)]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        let completed = match event {
            AnyEvent::Orders(e) => match e {
                OrdersEvent::OrderCompleted(c) => c,
                // Nothing is sold until the order completes.
                OrdersEvent::OrderPlaced(_)
                | OrdersEvent::OrderConfirmed(_)
                | OrdersEvent::OrderShipped(_)
                | OrdersEvent::OrderCancellationRequested(_)
                | OrdersEvent::OrderCancelled(_)
                | OrdersEvent::OrderRejected(_)
                | OrdersEvent::CartLineAdded(_)
                | OrdersEvent::CartLineQuantityChanged(_)
                | OrdersEvent::CartLineRemoved(_)
                | OrdersEvent::CartCheckedOut(_) => return Ok(Vec::new()),
            },
            // Not on the orders topic.
            AnyEvent::Catalog(_)
            | AnyEvent::Inventory(_)
            | AnyEvent::Payments(_)
            | AnyEvent::Deliveries(_)
            | AnyEvent::Customers(_) => return Ok(Vec::new()),
        };
        let order_id = &envelope.aggregate_id;
        let v = envelope.version;
        let at = envelope.occurred_at;
        let day = utc_day(at);
        let mut out = Vec::with_capacity(completed.lines.len() * 2);
        for line in &completed.lines {
            let amount = i64::from(line.quantity)
                .checked_mul(line.unit_price_minor)
                .ok_or_else(|| {
                    ProjectionError(format!(
                        "order {order_id} line {}: {} × {} overflows the amount",
                        line.line_no, line.quantity, line.unit_price_minor
                    ))
                })?;
            // The same cells in both tables; only the keys differ.
            let sale = row([
                ("day", text(&day)),
                ("order_id", text(order_id)),
                ("line_no", Value::Int(line.line_no)),
                ("sku", text(&line.sku)),
                ("quantity", Value::Int(line.quantity)),
                ("unit_price_minor", Value::BigInt(line.unit_price_minor)),
                ("amount_minor", Value::BigInt(amount)),
                ("currency", text(&line.currency)),
                ("completed_at", Value::Timestamp(at)),
            ]);
            out.push(upsert(SALES_BY_DAY, v, sale.clone()));
            out.push(upsert(SALES_BY_PRODUCT, v, sale));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
mod tests {
    use schemas::orders::{OrderCompleted, OrderConfirmed, OrderLine, OrderTotals};

    use super::*;
    use crate::testkit::{assert_replay_safe, envelope, projected, ProjectionTest, Stream};

    /// 2024-03-01T00:00:00Z.
    const MARCH_1: i64 = 1_709_251_200_000;

    fn line(line_no: i32, sku: &str, quantity: i32, unit_price_minor: i64) -> OrderLine {
        OrderLine {
            line_no,
            sku: sku.into(),
            quantity,
            unit_price_minor,
            currency: "EUR".into(),
        }
    }

    fn completed(lines: Vec<OrderLine>) -> OrdersEvent {
        let subtotal = lines
            .iter()
            .map(|l| i64::from(l.quantity) * l.unit_price_minor)
            .sum();
        OrdersEvent::OrderCompleted(OrderCompleted {
            shipment_id: Some("s".into()),
            lines,
            totals: Some(OrderTotals {
                subtotal_minor: subtotal,
                shipping_minor: 499,
                tax_minor: 0,
                total_minor: subtotal + 499,
                currency: "EUR".into(),
            }),
        })
    }

    fn confirmed() -> OrdersEvent {
        OrdersEvent::OrderConfirmed(OrderConfirmed { payment_id: None })
    }

    fn day(d: &str) -> platform::readstore::Row {
        row([("day", text(d))])
    }

    fn sku(s: &str) -> platform::readstore::Row {
        row([("sku", text(s))])
    }

    fn amounts(rows: &[platform::readstore::Row]) -> Vec<i64> {
        rows.iter()
            .map(|r| match r["amount_minor"] {
                Value::BigInt(a) => a,
                ref other => panic!("amount_minor: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(-1), "1969-12-31");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(MARCH_1 - 1), "2024-02-29");
        assert_eq!(utc_day(MARCH_1), "2024-03-01");
        assert_eq!(utc_day(1_735_689_599_999), "2024-12-31");
        assert_eq!(utc_day(4_102_444_800_000), "2100-01-01");
    }

    #[tokio::test]
    async fn a_completed_order_writes_one_sale_per_line() {
        let mut order = Stream::new("Order", "o-1");
        let test = ProjectionTest::given(
            SalesProjection,
            [
                order.next_at(MARCH_1 - 5_000, confirmed()),
                order.next_at(
                    MARCH_1 + 3_600_000,
                    completed(vec![line(1, "MUG-1", 2, 1299), line(2, "CUP-1", 1, 500)]),
                ),
            ],
        )
        .await;
        let rows = test.rows(SALES_BY_DAY, day("2024-03-01")).await;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["order_id"], text("o-1"));
        assert_eq!(rows[0]["line_no"], Value::Int(1));
        assert_eq!(rows[0]["sku"], text("MUG-1"));
        assert_eq!(rows[0]["quantity"], Value::Int(2));
        assert_eq!(rows[0]["unit_price_minor"], Value::BigInt(1299));
        assert_eq!(rows[0]["currency"], text("EUR"));
        assert_eq!(
            rows[0]["completed_at"],
            Value::Timestamp(MARCH_1 + 3_600_000)
        );
        assert_eq!(amounts(&rows), [2598, 500]);
        assert_eq!(amounts(&rows).iter().sum::<i64>(), 3098, "the subtotal");
        assert!(test.rows(SALES_BY_DAY, day("2024-02-29")).await.is_empty());
        let mugs = test.rows(SALES_BY_PRODUCT, sku("MUG-1")).await;
        assert_eq!(mugs.len(), 1);
        assert_eq!(mugs[0]["day"], text("2024-03-01"));
        assert_eq!(mugs[0]["amount_minor"], Value::BigInt(2598));
    }

    #[tokio::test]
    async fn sales_sum_per_day_and_per_product_newest_day_first() {
        let mut one = Stream::new("Order", "o-1");
        let mut two = Stream::new("Order", "o-2");
        let mut three = Stream::new("Order", "o-3");
        let inputs = [
            one.next_at(MARCH_1 - 1, completed(vec![line(1, "MUG-1", 1, 1299)])),
            two.next_at(
                MARCH_1,
                completed(vec![line(1, "MUG-1", 3, 1299), line(2, "CUP-1", 4, 500)]),
            ),
            three.next_at(MARCH_1 + 1, completed(vec![line(1, "CUP-1", 1, 450)])),
        ];
        assert_replay_safe(SalesProjection, &inputs).await;
        let test = ProjectionTest::given(SalesProjection, inputs).await;
        let march = test.rows(SALES_BY_DAY, day("2024-03-01")).await;
        assert_eq!(
            amounts(&march).iter().sum::<i64>(),
            3 * 1299 + 4 * 500 + 450
        );
        let february = test.rows(SALES_BY_DAY, day("2024-02-29")).await;
        assert_eq!(amounts(&february), [1299]);
        let mugs = test.rows(SALES_BY_PRODUCT, sku("MUG-1")).await;
        let days: Vec<Value> = mugs.iter().map(|r| r["day"].clone()).collect();
        assert_eq!(days, [text("2024-03-01"), text("2024-02-29")]);
        assert_eq!(amounts(&mugs).iter().sum::<i64>(), 4 * 1299);
        let cups = test.rows(SALES_BY_PRODUCT, sku("CUP-1")).await;
        assert_eq!(amounts(&cups), [2000, 450]);
    }

    #[tokio::test]
    async fn a_completion_without_lines_sells_nothing() {
        let mut order = Stream::new("Order", "o-1");
        let event = OrdersEvent::OrderCompleted(OrderCompleted {
            shipment_id: None,
            lines: Vec::new(),
            totals: None,
        });
        let input = order.next(event);
        assert!(SalesProjection.project(&input).unwrap().is_empty());
    }

    #[test]
    fn an_amount_that_overflows_is_refused() {
        let event = OrdersEvent::OrderCompleted(OrderCompleted {
            shipment_id: None,
            lines: vec![line(1, "GOLD", i32::MAX, i64::MAX / 2)],
            totals: None,
        });
        let input = projected(
            envelope("Order", "o-1", 4, MARCH_1),
            AnyEvent::Orders(event),
        );
        let err = SalesProjection.project(&input).unwrap_err();
        assert!(err.0.contains("overflows"), "{err}");
    }
}
