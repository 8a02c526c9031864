//! Stock conservation per SKU (the inventory `StockItem` aggregate).
//!
//! Each SKU's levels are summed from the movements alone:
//! `on_hand = Σ StockRestocked.quantity + Σ StockAdjusted.delta
//!  − Σ StockCommitted.quantity` and
//! `reserved = Σ open StockReserved.quantity` (a reservation closes by
//! `StockReleased` — back to available — or `StockCommitted` — out of the
//! warehouse), so `available = on_hand − reserved`. Every event that
//! states levels (`on_hand_after`, `available_after`) must state these
//! sums (`level-mismatch`); `available` never goes below 0 (`oversold`);
//! a release or commit closes an open reservation of the same line and
//! quantity (`unreserved-release`, `unreserved-commit`,
//! `quantity-mismatch`); a line is reserved once (`double-reservation`).
//! A returned parcel comes back as a `StockRestocked`, so it is counted.

use std::collections::{HashMap, HashSet};

use schemas::inventory::InventoryEvent;

use super::report::{counts, n, Finding, Findings, InvariantReport, Position};

pub const NAME: &str = "stock-conservation";

#[derive(Debug, Default)]
struct Sku {
    on_hand: i64,
    reservations: HashMap<String, i64>,
    committed_lines: HashSet<String>,
}

impl Sku {
    fn reserved(&self) -> i64 {
        self.reservations.values().sum()
    }
    fn available(&self) -> i64 {
        self.on_hand - self.reserved()
    }
}

/// The stock ledger.
#[derive(Debug, Default)]
pub struct StockLedger {
    skus: HashMap<String, Sku>,
    findings: Findings,
    restocked: i64,
    adjusted: i64,
    committed: i64,
    events: u64,
}

fn line(order_id: &str, line_no: i32) -> String {
    format!("{order_id}#{line_no}")
}

impl StockLedger {
    pub fn apply(&mut self, sku_id: &str, version: i64, event: &InventoryEvent, at: &Position) {
        self.events += 1;
        let sku = self.skus.entry(sku_id.to_owned()).or_default();
        let mut found: Vec<(&str, String)> = Vec::new();
        let (on_hand_after, available_after) = match event {
            InventoryEvent::StockRestocked(e) => {
                sku.on_hand += i64::from(e.quantity);
                self.restocked += i64::from(e.quantity);
                (Some(e.on_hand_after), e.available_after)
            }
            InventoryEvent::StockAdjusted(e) => {
                sku.on_hand += i64::from(e.delta);
                self.adjusted += i64::from(e.delta);
                (Some(e.on_hand_after), e.available_after)
            }
            InventoryEvent::StockReserved(e) => {
                let key = line(&e.order_id, e.line_no);
                if sku.reservations.contains_key(&key) || sku.committed_lines.contains(&key) {
                    found.push(("double-reservation", format!("line {key} reserved again")));
                }
                sku.reservations.insert(key, i64::from(e.quantity));
                (e.on_hand_after, Some(e.available_after))
            }
            InventoryEvent::StockReleased(e) => {
                let key = line(&e.order_id, e.line_no);
                match sku.reservations.remove(&key) {
                    None => found.push((
                        "unreserved-release",
                        format!("line {key} released but not reserved"),
                    )),
                    Some(q) if q != i64::from(e.quantity) => found.push((
                        "quantity-mismatch",
                        format!("line {key}: {q} reserved, {} released", e.quantity),
                    )),
                    Some(_) => {}
                }
                (e.on_hand_after, Some(e.available_after))
            }
            InventoryEvent::StockCommitted(e) => {
                let key = line(&e.order_id, e.line_no);
                match sku.reservations.remove(&key) {
                    None => found.push((
                        "unreserved-commit",
                        format!("line {key} committed but not reserved"),
                    )),
                    Some(q) if q != i64::from(e.quantity) => found.push((
                        "quantity-mismatch",
                        format!("line {key}: {q} reserved, {} committed", e.quantity),
                    )),
                    Some(_) => {}
                }
                sku.committed_lines.insert(key);
                sku.on_hand -= i64::from(e.quantity);
                self.committed += i64::from(e.quantity);
                (Some(e.on_hand_after), e.available_after)
            }
            InventoryEvent::StockReservationRejected(_)
            | InventoryEvent::LowStockDetected(_)
            | InventoryEvent::LowStockThresholdSet(_) => (None, None),
        };
        if let Some(stated) = on_hand_after {
            if i64::from(stated) != sku.on_hand {
                found.push((
                    "level-mismatch",
                    format!(
                        "version {version} states on_hand {stated}, the movements sum to {}",
                        sku.on_hand
                    ),
                ));
            }
        }
        if let Some(stated) = available_after {
            if i64::from(stated) != sku.available() {
                found.push((
                    "level-mismatch",
                    format!(
                        "version {version} states available {stated}, the movements give {}",
                        sku.available()
                    ),
                ));
            }
        }
        if sku.available() < 0 {
            found.push((
                "oversold",
                format!(
                    "version {version}: available {} (on hand {}, reserved {})",
                    sku.available(),
                    sku.on_hand,
                    sku.reserved()
                ),
            ));
        }
        for (kind, detail) in found {
            self.findings
                .push(Finding::new(kind, sku_id, detail).at(at));
        }
    }

    pub fn report(self) -> InvariantReport {
        let reserved: i64 = self.skus.values().map(Sku::reserved).sum();
        let available: i64 = self.skus.values().map(Sku::available).sum();
        let on_hand: i64 = self.skus.values().map(|s| s.on_hand).sum();
        InvariantReport::new(
            NAME,
            counts([
                ("skus", n(self.skus.len())),
                ("events", i64::try_from(self.events).unwrap_or(i64::MAX)),
                ("restocked", self.restocked),
                ("adjusted", self.adjusted),
                ("committed", self.committed),
                ("reserved", reserved),
                ("on_hand", on_hand),
                ("available", available),
            ]),
            self.findings,
        )
        .note("per SKU: restocked + adjusted − committed − reserved = available, as every event states it")
    }
}
