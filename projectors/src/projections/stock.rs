//! Stock levels per SKU: on hand, available, reserved, the low-stock
//! threshold. Every inventory event that changes a level carries both
//! resulting levels (`on_hand_after`, `available_after`), so each cell is
//! set from the event alone, stamped with the StockItem's version, and
//! `reserved` (on hand − available) is written with them. The low-stock
//! flag is `available <= threshold`, computed when read (the two come from
//! different events).
//!
//! Events written before both levels were recorded state one of them (the
//! other is null): they set that cell only, and leave `reserved` as it was.

use platform::readstore::{column, ColumnType as T, Mutation, Row, TableDef, Value};
use schemas::inventory::InventoryEvent;
use schemas::{AnyEvent, Context};

use crate::projection::{row, text, upsert, Input, Projected, Projection, ProjectionError};

pub const STOCK_LEVELS: TableDef = TableDef {
    name: "stock_levels",
    partition_key: &[column("sku", T::Text)],
    clustering: &[],
    columns: &[
        column("on_hand", T::Int),
        column("available", T::Int),
        column("reserved", T::Int),
        column("low_stock_threshold", T::Int),
        column("low_stock_detected_at", T::Timestamp),
        column("updated_at", T::Timestamp),
        column("stock_version", T::BigInt),
    ],
};

const TABLES: &[TableDef] = &[STOCK_LEVELS];

#[derive(Debug, Default, Clone, Copy)]
pub struct StockProjection;

/// The level cells for what an event states: `on_hand` and `available`
/// when known, and `reserved` when both are.
fn levels(on_hand: Option<i32>, available: Option<i32>) -> Result<Row, ProjectionError> {
    let mut cells = Row::new();
    if let Some(on_hand) = on_hand {
        cells.insert("on_hand".into(), Value::Int(on_hand));
    }
    if let Some(available) = available {
        cells.insert("available".into(), Value::Int(available));
    }
    if let (Some(on_hand), Some(available)) = (on_hand, available) {
        let reserved = on_hand.checked_sub(available).ok_or_else(|| {
            ProjectionError(format!(
                "reserved units overflow: on hand {on_hand}, available {available}"
            ))
        })?;
        cells.insert("reserved".into(), Value::Int(reserved));
    }
    Ok(cells)
}

impl Projection for StockProjection {
    fn name(&self) -> &'static str {
        "stock"
    }

    fn tables(&self) -> &'static [TableDef] {
        TABLES
    }

    fn topics(&self, topics: &schemas::TopicNames) -> Vec<String> {
        vec![topics.events(Context::Inventory)]
    }

    fn project(&self, input: &Projected) -> Result<Vec<Mutation>, ProjectionError> {
        let Input::Event { envelope, event } = &input.input else {
            return Ok(Vec::new());
        };
        // Only inventory events are on its topic.
        let AnyEvent::Inventory(event) = event else {
            return Ok(Vec::new());
        };
        let mut cells = match event {
            InventoryEvent::StockRestocked(e) => levels(Some(e.on_hand_after), e.available_after)?,
            InventoryEvent::StockAdjusted(e) => levels(Some(e.on_hand_after), e.available_after)?,
            InventoryEvent::StockCommitted(e) => levels(Some(e.on_hand_after), e.available_after)?,
            InventoryEvent::StockReserved(e) => levels(e.on_hand_after, Some(e.available_after))?,
            InventoryEvent::StockReleased(e) => levels(e.on_hand_after, Some(e.available_after))?,
            // Nothing moved, but the event states what was available.
            InventoryEvent::StockReservationRejected(e) => levels(None, Some(e.available))?,
            InventoryEvent::LowStockThresholdSet(e) => {
                row([("low_stock_threshold", Value::Int(e.threshold))])
            }
            InventoryEvent::LowStockDetected(e) => row([
                (
                    "low_stock_detected_at",
                    Value::Timestamp(envelope.occurred_at),
                ),
                ("available", Value::Int(e.available)),
                ("low_stock_threshold", Value::Int(e.threshold)),
            ]),
        };
        cells.insert("sku".into(), text(&envelope.aggregate_id));
        cells.insert("updated_at".into(), Value::Timestamp(envelope.occurred_at));
        cells.insert("stock_version".into(), Value::BigInt(envelope.version));
        Ok(vec![upsert(STOCK_LEVELS, envelope.version, cells)])
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
    use schemas::inventory::{
        LowStockDetected, LowStockThresholdSet, StockAdjusted, StockCommitted, StockReleased,
        StockReservationRejected, StockReserved, StockRestocked,
    };

    use super::*;
    use crate::testkit::{assert_replay_safe, ProjectionTest, Stream, START_MS};

    fn restocked(quantity: i32, on_hand: i32, available: i32) -> InventoryEvent {
        InventoryEvent::StockRestocked(StockRestocked {
            quantity,
            on_hand_after: on_hand,
            reference: None,
            available_after: Some(available),
        })
    }

    fn reserved(line_no: i32, quantity: i32, on_hand: i32, available: i32) -> InventoryEvent {
        InventoryEvent::StockReserved(StockReserved {
            order_id: "o-1".into(),
            line_no,
            quantity,
            available_after: available,
            on_hand_after: Some(on_hand),
        })
    }

    fn released(line_no: i32, quantity: i32, on_hand: i32, available: i32) -> InventoryEvent {
        InventoryEvent::StockReleased(StockReleased {
            order_id: "o-1".into(),
            line_no,
            quantity,
            available_after: available,
            on_hand_after: Some(on_hand),
        })
    }

    fn committed(line_no: i32, quantity: i32, on_hand: i32, available: i32) -> InventoryEvent {
        InventoryEvent::StockCommitted(StockCommitted {
            order_id: "o-1".into(),
            line_no,
            quantity,
            on_hand_after: on_hand,
            available_after: Some(available),
        })
    }

    fn adjusted(delta: i32, on_hand: i32, available: i32) -> InventoryEvent {
        InventoryEvent::StockAdjusted(StockAdjusted {
            delta,
            reason: "recount".into(),
            note: None,
            on_hand_after: on_hand,
            available_after: Some(available),
        })
    }

    fn sku(sku: &str) -> Row {
        row([("sku", text(sku))])
    }

    /// `(on_hand, available, reserved)` of a row.
    fn levels_of(row: &Row) -> (Value, Value, Value) {
        (
            row["on_hand"].clone(),
            row["available"].clone(),
            row["reserved"].clone(),
        )
    }

    fn ints(on_hand: i32, available: i32, reserved: i32) -> (Value, Value, Value) {
        (
            Value::Int(on_hand),
            Value::Int(available),
            Value::Int(reserved),
        )
    }

    #[tokio::test]
    async fn levels_follow_restock_reserve_commit_release_and_adjust() {
        let mut item = Stream::new("StockItem", "MUG-1");
        let mut test = ProjectionTest::new(StockProjection).await;
        let steps = [
            (restocked(10, 10, 10), ints(10, 10, 0)),
            (reserved(1, 6, 10, 4), ints(10, 4, 6)),
            (reserved(2, 3, 10, 1), ints(10, 1, 9)),
            (committed(1, 6, 4, 1), ints(4, 1, 3)),
            (released(2, 3, 4, 4), ints(4, 4, 0)),
            (restocked(5, 9, 9), ints(9, 9, 0)),
            (adjusted(-2, 7, 7), ints(7, 7, 0)),
        ];
        for (event, expected) in steps {
            let input = item.next(event);
            test.when([input.clone()]).await;
            let row = test.expect_row(STOCK_LEVELS, sku("MUG-1")).await;
            assert_eq!(levels_of(&row), expected, "after {:?}", input.input);
            assert_eq!(row["stock_version"], Value::BigInt(item.version()));
        }
        let row = test.expect_row(STOCK_LEVELS, sku("MUG-1")).await;
        assert_eq!(row["updated_at"], Value::Timestamp(START_MS + 7_000));
        assert_eq!(row["low_stock_threshold"], Value::Null);
    }

    #[tokio::test]
    async fn threshold_and_low_stock_alarm() {
        let mut item = Stream::new("StockItem", "MUG-1");
        let test = ProjectionTest::given(
            StockProjection,
            [
                item.next(restocked(10, 10, 10)),
                item.next(InventoryEvent::LowStockThresholdSet(LowStockThresholdSet {
                    threshold: 5,
                    previous_threshold: None,
                })),
                item.next(reserved(1, 6, 10, 4)),
                item.next_at(
                    START_MS + 60_000,
                    InventoryEvent::LowStockDetected(LowStockDetected {
                        available: 4,
                        threshold: 5,
                    }),
                ),
                item.next(InventoryEvent::StockReservationRejected(
                    StockReservationRejected {
                        order_id: "o-2".into(),
                        line_no: 1,
                        requested: 9,
                        available: 4,
                    },
                )),
            ],
        )
        .await;
        let row = test.expect_row(STOCK_LEVELS, sku("MUG-1")).await;
        assert_eq!(row["low_stock_threshold"], Value::Int(5));
        assert_eq!(
            row["low_stock_detected_at"],
            Value::Timestamp(START_MS + 60_000)
        );
        assert_eq!(levels_of(&row), ints(10, 4, 6));
        assert_eq!(row["stock_version"], Value::BigInt(5));
    }

    #[tokio::test]
    async fn events_stating_one_level_set_only_that_one() {
        let mut item = Stream::new("StockItem", "MUG-1");
        let test = ProjectionTest::given(
            StockProjection,
            [
                item.next(restocked(10, 10, 10)),
                item.next(InventoryEvent::StockReserved(StockReserved {
                    order_id: "o-1".into(),
                    line_no: 1,
                    quantity: 6,
                    available_after: 4,
                    on_hand_after: None,
                })),
            ],
        )
        .await;
        let row = test.expect_row(STOCK_LEVELS, sku("MUG-1")).await;
        // `reserved` is as the restock left it: this event cannot say.
        assert_eq!(levels_of(&row), ints(10, 4, 0));
    }

    #[test]
    fn levels_that_overflow_are_refused() {
        let err = levels(Some(i32::MIN), Some(1)).unwrap_err();
        assert!(err.0.contains("overflow"), "{err}");
    }

    #[tokio::test]
    async fn redelivery_and_interleaving_change_nothing() {
        let mut mug = Stream::new("StockItem", "MUG-1");
        let mut cup = Stream::new("StockItem", "CUP-1");
        let inputs = [
            mug.next(restocked(10, 10, 10)),
            cup.next(restocked(3, 3, 3)),
            mug.next(reserved(1, 6, 10, 4)),
            cup.next(reserved(1, 3, 3, 0)),
            mug.next(committed(1, 6, 4, 4)),
            cup.next(released(1, 3, 3, 3)),
            mug.next(adjusted(1, 5, 5)),
        ];
        assert_replay_safe(StockProjection, &inputs).await;
        let test = ProjectionTest::given(StockProjection, inputs).await;
        let mug = test.expect_row(STOCK_LEVELS, sku("MUG-1")).await;
        assert_eq!(levels_of(&mug), ints(5, 5, 0));
        let cup = test.expect_row(STOCK_LEVELS, sku("CUP-1")).await;
        assert_eq!(levels_of(&cup), ints(3, 3, 0));
    }
}
