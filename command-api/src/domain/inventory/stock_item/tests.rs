use super::*;
use crate::testkit::AggregateTest;

type Test = AggregateTest<StockItem>;

fn restocked(quantity: i32, on_hand_after: i32, available_after: i32) -> InventoryEvent {
    InventoryEvent::StockRestocked(StockRestocked {
        quantity,
        on_hand_after,
        reference: None,
        available_after: Some(available_after),
    })
}

fn threshold_set(threshold: i32, previous_threshold: Option<i32>) -> InventoryEvent {
    InventoryEvent::LowStockThresholdSet(LowStockThresholdSet {
        threshold,
        previous_threshold,
    })
}

fn reserved(
    order_id: &str,
    line_no: i32,
    quantity: i32,
    available_after: i32,
    on_hand_after: i32,
) -> InventoryEvent {
    InventoryEvent::StockReserved(StockReserved {
        order_id: order_id.into(),
        line_no,
        quantity,
        available_after,
        on_hand_after: Some(on_hand_after),
    })
}

fn released(
    order_id: &str,
    line_no: i32,
    quantity: i32,
    available_after: i32,
    on_hand_after: i32,
) -> InventoryEvent {
    InventoryEvent::StockReleased(StockReleased {
        order_id: order_id.into(),
        line_no,
        quantity,
        available_after,
        on_hand_after: Some(on_hand_after),
    })
}

fn committed(
    order_id: &str,
    line_no: i32,
    quantity: i32,
    on_hand_after: i32,
    available_after: i32,
) -> InventoryEvent {
    InventoryEvent::StockCommitted(StockCommitted {
        order_id: order_id.into(),
        line_no,
        quantity,
        on_hand_after,
        available_after: Some(available_after),
    })
}

fn low(available: i32, threshold: i32) -> InventoryEvent {
    InventoryEvent::LowStockDetected(LowStockDetected {
        available,
        threshold,
    })
}

fn adjusted(delta: i32, on_hand_after: i32, available_after: i32) -> InventoryEvent {
    InventoryEvent::StockAdjusted(StockAdjusted {
        delta,
        reason: "recount".into(),
        note: None,
        on_hand_after,
        available_after: Some(available_after),
    })
}

fn restock(quantity: i32) -> InventoryCommand {
    InventoryCommand::RestockItem(RestockItem {
        quantity,
        reference: None,
    })
}

fn adjust(delta: i32) -> InventoryCommand {
    InventoryCommand::AdjustStock(AdjustStock {
        delta,
        reason: "recount".into(),
        note: None,
    })
}

fn set_threshold(threshold: i32) -> InventoryCommand {
    InventoryCommand::SetLowStockThreshold(SetLowStockThreshold { threshold })
}

fn reserve(order_id: &str, line_no: i32, quantity: i32) -> InventoryCommand {
    InventoryCommand::ReserveStock(ReserveStock {
        order_id: order_id.into(),
        line_no,
        quantity,
    })
}

fn release(order_id: &str, line_no: i32) -> InventoryCommand {
    InventoryCommand::ReleaseStock(ReleaseStock {
        order_id: order_id.into(),
        line_no,
    })
}

fn commit(order_id: &str, line_no: i32) -> InventoryCommand {
    InventoryCommand::CommitStock(CommitStock {
        order_id: order_id.into(),
        line_no,
    })
}

/// 10 on hand, 6 of them reserved for `o-1#1`: 4 available.
fn ten_with_six_reserved() -> Vec<InventoryEvent> {
    vec![restocked(10, 10, 10), reserved("o-1", 1, 6, 4, 10)]
}

/// 10 on hand, threshold 5, 6 reserved: 4 available, flagged low.
fn low_at_four() -> Vec<InventoryEvent> {
    vec![
        restocked(10, 10, 10),
        threshold_set(5, None),
        reserved("o-1", 1, 6, 4, 10),
        low(4, 5),
    ]
}

// --- RestockItem ---------------------------------------------------------

#[test]
fn restock_creates_the_item() {
    let referenced = InventoryCommand::RestockItem(RestockItem {
        quantity: 10,
        reference: Some("PO-7".into()),
    });
    let state = Test::given_no_history()
        .when(referenced)
        .then_expect_events(vec![InventoryEvent::StockRestocked(StockRestocked {
            quantity: 10,
            on_hand_after: 10,
            reference: Some("PO-7".into()),
            available_after: Some(10),
        })]);
    assert!(state.exists);
    assert_eq!((state.on_hand, state.available()), (10, 10));
}

#[test]
fn restock_adds_to_what_is_on_hand() {
    let state = Test::given(ten_with_six_reserved())
        .when(restock(MAX_RESTOCK))
        .then_expect_events(vec![restocked(
            MAX_RESTOCK,
            MAX_RESTOCK + 10,
            MAX_RESTOCK + 4,
        )]);
    assert_eq!(state.available(), MAX_RESTOCK + 4);
}

#[test]
fn restock_refusals() {
    for quantity in [0, -1, MAX_RESTOCK + 1, i32::MIN, i32::MAX] {
        Test::given_no_history()
            .when(restock(quantity))
            .then_expect_error("invalid-field");
    }
    let blank_reference = InventoryCommand::RestockItem(RestockItem {
        quantity: 1,
        reference: Some(" ".into()),
    });
    Test::given_no_history()
        .when(blank_reference)
        .then_expect_error("invalid-field");
    // The on-hand count would overflow an i32: refused, not wrapped.
    Test::given(vec![restocked(i32::MAX, i32::MAX, i32::MAX)])
        .when(restock(1))
        .then_expect_error("invalid-field");
}

#[test]
fn restock_above_the_threshold_clears_the_low_flag() {
    // 4 available, threshold 5: +1 reaches 5, still at the threshold.
    let state = Test::given(low_at_four())
        .when(restock(1))
        .then_expect_events(vec![restocked(1, 11, 5)]);
    assert!(state.low);
    let state = Test::given(low_at_four())
        .when(restock(2))
        .then_expect_events(vec![restocked(2, 12, 6)]);
    assert!(!state.low, "6 available is above the threshold of 5");
}

// --- AdjustStock ---------------------------------------------------------

#[test]
fn adjust_corrects_on_hand_either_way() {
    let state = Test::given(vec![restocked(10, 10, 10)])
        .when(adjust(-3))
        .then_expect_events(vec![adjusted(-3, 7, 7)]);
    assert_eq!(state.on_hand, 7);
    let noted = InventoryCommand::AdjustStock(AdjustStock {
        delta: 2,
        reason: "found behind the shelf".into(),
        note: Some("aisle 4\nbin 2".into()),
    });
    Test::given(vec![restocked(10, 10, 10)])
        .when(noted)
        .then_expect_events(vec![InventoryEvent::StockAdjusted(StockAdjusted {
            delta: 2,
            reason: "found behind the shelf".into(),
            note: Some("aisle 4\nbin 2".into()),
            on_hand_after: 12,
            available_after: Some(12),
        })]);
}

#[test]
fn adjust_may_take_on_hand_down_to_the_reserved_units() {
    let state = Test::given(ten_with_six_reserved())
        .when(adjust(-4))
        .then_expect_events(vec![adjusted(-4, 6, 0)]);
    assert_eq!(state.available(), 0);
}

#[test]
fn adjust_below_the_threshold_detects_low_stock_once() {
    let given = vec![restocked(10, 10, 10), threshold_set(5, None)];
    let state = Test::given(given.clone())
        .when(adjust(-5))
        .then_expect_events(vec![adjusted(-5, 5, 5), low(5, 5)]);
    assert!(state.low);
    let mut already_low = given;
    already_low.extend([adjusted(-5, 5, 5), low(5, 5)]);
    Test::given(already_low)
        .when(adjust(-1))
        .then_expect_events(vec![adjusted(-1, 4, 4)]);
}

#[test]
fn adjust_refusals() {
    Test::given_no_history()
        .when(adjust(5))
        .then_expect_error("unknown-sku");
    Test::given(vec![restocked(10, 10, 10)])
        .when(adjust(0))
        .then_expect_error("invalid-field");
    for reason in ["", "a\u{7}b"] {
        let bad = InventoryCommand::AdjustStock(AdjustStock {
            delta: 1,
            reason: reason.into(),
            note: None,
        });
        Test::given(vec![restocked(10, 10, 10)])
            .when(bad)
            .then_expect_error("invalid-field");
    }
    let long_note = InventoryCommand::AdjustStock(AdjustStock {
        delta: 1,
        reason: "recount".into(),
        note: Some("x".repeat(10 * MAX_TEXT + 1)),
    });
    Test::given(vec![restocked(10, 10, 10)])
        .when(long_note)
        .then_expect_error("invalid-field");
    for delta in [-5, -11, i32::MIN] {
        Test::given(ten_with_six_reserved())
            .when(adjust(delta))
            .then_expect_error("below-reserved");
    }
    Test::given(vec![restocked(i32::MAX, i32::MAX, i32::MAX)])
        .when(adjust(1))
        .then_expect_error("invalid-field");
}

// --- SetLowStockThreshold -------------------------------------------------

#[test]
fn set_threshold_records_the_previous_one() {
    let state = Test::given(vec![restocked(10, 10, 10)])
        .when(set_threshold(3))
        .then_expect_events(vec![threshold_set(3, None)]);
    assert_eq!(state.threshold, 3);
    assert!(!state.low);
    Test::given(vec![restocked(10, 10, 10), threshold_set(3, None)])
        .when(set_threshold(4))
        .then_expect_events(vec![threshold_set(4, Some(3))]);
}

#[test]
fn set_threshold_to_the_current_value_records_nothing() {
    Test::given(vec![restocked(10, 10, 10), threshold_set(3, None)])
        .when(set_threshold(3))
        .then_expect_events(vec![]);
    Test::given(vec![restocked(10, 10, 10)])
        .when(set_threshold(0))
        .then_expect_events(vec![]);
}

#[test]
fn set_threshold_above_available_detects_low_stock() {
    let state = Test::given(ten_with_six_reserved())
        .when(set_threshold(4))
        .then_expect_events(vec![threshold_set(4, None), low(4, 4)]);
    assert!(state.low);
    // Already flagged: a higher threshold is recorded, the alarm is not
    // raised again.
    Test::given(low_at_four())
        .when(set_threshold(8))
        .then_expect_events(vec![threshold_set(8, Some(5))]);
}

#[test]
fn set_threshold_to_zero_switches_the_alarm_off() {
    let state = Test::given(low_at_four())
        .when(set_threshold(0))
        .then_expect_events(vec![threshold_set(0, Some(5))]);
    assert!(!state.low);
    // And lowering it under the available units clears the flag too.
    let state = Test::given(low_at_four())
        .when(set_threshold(3))
        .then_expect_events(vec![threshold_set(3, Some(5))]);
    assert!(!state.low);
}

#[test]
fn set_threshold_refusals() {
    Test::given_no_history()
        .when(set_threshold(3))
        .then_expect_error("unknown-sku");
    for threshold in [-1, i32::MIN] {
        Test::given(vec![restocked(10, 10, 10)])
            .when(set_threshold(threshold))
            .then_expect_error("invalid-field");
    }
}

// --- ReserveStock ---------------------------------------------------------

#[test]
fn reserve_holds_units_for_an_order_line() {
    let state = Test::given(vec![restocked(10, 10, 10)])
        .when(reserve("o-1", 1, 6))
        .then_expect_events(vec![reserved("o-1", 1, 6, 4, 10)]);
    assert_eq!(
        (state.on_hand, state.reserved(), state.available()),
        (10, 6, 4)
    );
    // Another line of the same order is another reservation.
    Test::given(ten_with_six_reserved())
        .when(reserve("o-1", 2, 4))
        .then_expect_events(vec![reserved("o-1", 2, 4, 0, 10)]);
}

#[test]
fn reserve_down_to_the_threshold_detects_low_stock_once() {
    let given = vec![restocked(10, 10, 10), threshold_set(5, None)];
    let state = Test::given(given)
        .when(reserve("o-1", 1, 6))
        .then_expect_events(vec![reserved("o-1", 1, 6, 4, 10), low(4, 5)]);
    assert!(state.low);
    Test::given(low_at_four())
        .when(reserve("o-2", 1, 1))
        .then_expect_events(vec![reserved("o-2", 1, 1, 3, 10)]);
}

#[test]
fn reserve_never_alarms_without_a_threshold() {
    let state = Test::given(vec![restocked(10, 10, 10)])
        .when(reserve("o-1", 1, 10))
        .then_expect_events(vec![reserved("o-1", 1, 10, 0, 10)]);
    assert!(!state.low);
}

#[test]
fn reserve_beyond_available_records_the_lost_demand() {
    let state = Test::given(ten_with_six_reserved())
        .when(reserve("o-2", 1, 5))
        .then_expect_events(vec![InventoryEvent::StockReservationRejected(
            StockReservationRejected {
                order_id: "o-2".into(),
                line_no: 1,
                requested: 5,
                available: 4,
            },
        )]);
    assert_eq!(state.available(), 4, "a rejection holds nothing");
    assert!(!state.reservations.contains_key(&line_key("o-2", 1)));
}

#[test]
fn reserve_is_idempotent_per_order_line() {
    // A retry with the same line (even another quantity) changes nothing.
    Test::given(ten_with_six_reserved())
        .when(reserve("o-1", 1, 6))
        .then_expect_events(vec![]);
    Test::given(ten_with_six_reserved())
        .when(reserve("o-1", 1, 9))
        .then_expect_events(vec![]);
    // A late retry after the line shipped must not reserve it again.
    let mut shipped = ten_with_six_reserved();
    shipped.push(committed("o-1", 1, 6, 4, 4));
    Test::given(shipped)
        .when(reserve("o-1", 1, 6))
        .then_expect_events(vec![]);
}

#[test]
fn reserve_refusals() {
    Test::given_no_history()
        .when(reserve("o-1", 1, 1))
        .then_expect_error("unknown-sku");
    for quantity in [0, -1, validate::MAX_QUANTITY + 1, i32::MIN, i32::MAX] {
        Test::given(vec![restocked(10, 10, 10)])
            .when(reserve("o-1", 1, quantity))
            .then_expect_error("invalid-field");
    }
    Test::given(vec![restocked(10, 10, 10)])
        .when(reserve(" ", 1, 1))
        .then_expect_error("invalid-field");
    for line_no in [0, -1] {
        Test::given(vec![restocked(10, 10, 10)])
            .when(reserve("o-1", line_no, 1))
            .then_expect_error("invalid-field");
    }
}

// --- ReleaseStock ---------------------------------------------------------

#[test]
fn release_returns_the_units() {
    let state = Test::given(ten_with_six_reserved())
        .when(release("o-1", 1))
        .then_expect_events(vec![released("o-1", 1, 6, 10, 10)]);
    assert_eq!((state.reserved(), state.available()), (0, 10));
}

#[test]
fn release_above_the_threshold_clears_the_low_flag() {
    let state = Test::given(low_at_four())
        .when(release("o-1", 1))
        .then_expect_events(vec![released("o-1", 1, 6, 10, 10)]);
    assert!(!state.low);
}

#[test]
fn release_of_nothing_succeeds_with_no_events() {
    // Never reserved, on an unknown SKU, on a known one, already released,
    // already committed: the compensation is satisfied in every case.
    Test::given_no_history()
        .when(release("o-1", 1))
        .then_expect_events(vec![]);
    Test::given(ten_with_six_reserved())
        .when(release("o-2", 1))
        .then_expect_events(vec![]);
    let mut history = ten_with_six_reserved();
    history.push(released("o-1", 1, 6, 10, 10));
    Test::given(history)
        .when(release("o-1", 1))
        .then_expect_events(vec![]);
    let mut history = ten_with_six_reserved();
    history.push(committed("o-1", 1, 6, 4, 4));
    Test::given(history)
        .when(release("o-1", 1))
        .then_expect_events(vec![]);
}

// --- CommitStock ----------------------------------------------------------

#[test]
fn commit_takes_the_reserved_units_out_of_stock() {
    let state = Test::given(ten_with_six_reserved())
        .when(commit("o-1", 1))
        .then_expect_events(vec![committed("o-1", 1, 6, 4, 4)]);
    assert_eq!(
        (state.on_hand, state.reserved(), state.available()),
        (4, 0, 4)
    );
    assert!(state.committed.contains(&line_key("o-1", 1)));
}

#[test]
fn commit_keeps_the_low_flag_since_available_is_unchanged() {
    let state = Test::given(low_at_four())
        .when(commit("o-1", 1))
        .then_expect_events(vec![committed("o-1", 1, 6, 4, 4)]);
    assert!(state.low);
}

#[test]
fn commit_again_records_nothing() {
    let mut history = ten_with_six_reserved();
    history.push(committed("o-1", 1, 6, 4, 4));
    Test::given(history)
        .when(commit("o-1", 1))
        .then_expect_events(vec![]);
}

#[test]
fn commit_refusals() {
    Test::given_no_history()
        .when(commit("o-1", 1))
        .then_expect_error("unknown-sku");
    Test::given(ten_with_six_reserved())
        .when(commit("o-2", 1))
        .then_expect_error("not-reserved");
    let mut history = ten_with_six_reserved();
    history.push(released("o-1", 1, 6, 10, 10));
    Test::given(history)
        .when(commit("o-1", 1))
        .then_expect_error("not-reserved");
}

// --- State ----------------------------------------------------------------

#[test]
fn line_keys_are_unique_even_with_hashes_in_order_ids() {
    assert_eq!(line_key("o-1", 2), "o-1#2");
    assert_ne!(line_key("a#1", 2), line_key("a", 12));
    assert_ne!(line_key("a#1", 2), line_key("a#12", 2));
}

#[test]
fn the_state_survives_a_json_snapshot() {
    let mut history = low_at_four();
    history.extend([reserved("o#2", 3, 1, 3, 10), committed("o-1", 1, 6, 4, 3)]);
    let state = Test::given(history)
        .when(restock(1))
        .then_expect_events(vec![restocked(1, 5, 4)]);
    let json = serde_json::to_string(&state).ok();
    let back = json.and_then(|j| serde_json::from_str::<StockItem>(&j).ok());
    assert_eq!(back, Some(state));
}

/// xorshift64: a deterministic stream of pseudo-random numbers, so the
/// sequence below is the same on every run (and a failure reproduces).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> i32 {
        i32::try_from(self.next() % n).unwrap_or_default()
    }

    /// Mostly `1..=small`, sometimes zero, negative or the edges of the
    /// i32 range.
    fn amount(&mut self, small: i32) -> i32 {
        match self.below(60) {
            0 => 0,
            1 => i32::MAX,
            2 => i32::MIN,
            3 => validate::MAX_QUANTITY + 1,
            4 | 5 => -self.below(20),
            _ => 1 + self.below(u64::try_from(small).unwrap_or(1)),
        }
    }
}

/// A command on one of a few order lines of recent orders: the window of
/// order ids moves on, so lines get reserved, retried, released and
/// committed, and new ones keep coming.
fn random_command(rng: &mut Rng, step: i64) -> InventoryCommand {
    let order = format!("o-{}", step / 25 + i64::from(rng.below(3)));
    let line_no = rng.below(4); // 0 is an invalid line number
    match rng.below(16) {
        0 => restock(match rng.below(30) {
            0 => i32::MAX,
            1 => MAX_RESTOCK + 1,
            2 => 0,
            _ => 1 + rng.below(10),
        }),
        // Corrections drift down a little, so stock runs out now and then;
        // a huge positive one would drown every later reservation.
        1..=3 => adjust(match rng.below(30) {
            0 => i32::MIN,
            1 => -MAX_RESTOCK,
            _ => rng.below(15) - 8,
        }),
        4 => set_threshold(rng.below(16) - 2),
        5..=10 => reserve(&order, line_no, rng.amount(6)),
        11 | 12 => release(&order, line_no),
        _ => commit(&order, line_no),
    }
}

#[test]
fn no_command_sequence_makes_available_negative() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut state = StockItem::default();
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for step in 0..20_000_i64 {
        let command = random_command(&mut rng, step);
        let context = DecisionContext {
            aggregate_id: "SKU-1".to_owned(),
            version: step,
            now_ms: step,
            actor: "tester".to_owned(),
            facts: (),
        };
        let Ok(events) = state.decide(&command, &context) else {
            *seen.entry("refused").or_default() += 1;
            continue;
        };
        for event in &events {
            state.evolve(event);
            // What the event says is what the state now is.
            let (name, consistent) = match event {
                InventoryEvent::StockRestocked(e) => (
                    "restocked",
                    e.on_hand_after == state.on_hand
                        && e.available_after == Some(state.available()),
                ),
                InventoryEvent::StockAdjusted(e) => (
                    "adjusted",
                    e.on_hand_after == state.on_hand
                        && e.available_after == Some(state.available()),
                ),
                InventoryEvent::StockCommitted(e) => (
                    "committed",
                    e.on_hand_after == state.on_hand
                        && e.available_after == Some(state.available()),
                ),
                InventoryEvent::StockReserved(e) => (
                    "reserved",
                    e.available_after == state.available()
                        && e.on_hand_after == Some(state.on_hand),
                ),
                InventoryEvent::StockReleased(e) => (
                    "released",
                    e.available_after == state.available()
                        && e.on_hand_after == Some(state.on_hand),
                ),
                InventoryEvent::LowStockDetected(e) => ("low", e.available == state.available()),
                InventoryEvent::StockReservationRejected(e) => {
                    ("rejected", e.available == state.available())
                }
                InventoryEvent::LowStockThresholdSet(e) => {
                    ("threshold", e.threshold == state.threshold)
                }
            };
            assert!(consistent, "step {step}: {event:?} vs {state:?}");
            *seen.entry(name).or_default() += 1;
        }
        let reserved = state.reserved();
        assert!(
            i64::from(state.on_hand) >= reserved && reserved >= 0,
            "step {step}: {command:?} left {state:?}"
        );
        assert!(state.reservations.values().all(|q| *q > 0), "step {step}");
        assert_eq!(
            state.low,
            is_low(state.available(), state.threshold),
            "step {step}: the low flag follows available and threshold"
        );
    }
    // The sequence exercised every path, not just refusals.
    for name in [
        "refused",
        "restocked",
        "adjusted",
        "committed",
        "reserved",
        "released",
        "low",
        "rejected",
        "threshold",
    ] {
        assert!(
            seen.get(name).copied().unwrap_or(0) > 20,
            "{name}: {seen:?}"
        );
    }
}
