//! `StockItem`: the stock of one SKU (the aggregate id) — units on hand,
//! the part of them reserved for order lines, and a low-stock alarm.
//!
//! `available = on_hand − Σ reservations` is what can still be promised to a
//! customer; every decision keeps `on_hand ≥ reserved ≥ 0`, so it is never
//! negative. Reservations come from the order-fulfillment saga, which
//! retries and compensates: reserving, releasing and committing a line are
//! therefore idempotent per `(order_id, line_no)`.
//!
//! Every event that moves a level states both levels after it
//! (`on_hand_after`, `available_after`): read models take them from the
//! event alone, never summing history.

use std::collections::{BTreeMap, BTreeSet};

use schemas::inventory::{
    AdjustStock, CommitStock, InventoryCommand, InventoryEvent, LowStockDetected,
    LowStockThresholdSet, ReleaseStock, ReserveStock, RestockItem, SetLowStockThreshold,
    StockAdjusted, StockCommitted, StockReleased, StockReservationRejected, StockReserved,
    StockRestocked,
};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::validate::{self, MAX_TEXT};

/// Most units one delivery may add: larger than an order line
/// ([`validate::MAX_QUANTITY`]) because a pallet is not a basket, bounded so
/// a typo (an extra zero or six) is refused rather than believed.
pub const MAX_RESTOCK: i32 = 1_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockItem {
    /// False until the first `StockRestocked`: an item exists once goods
    /// arrived, so the catalog and the warehouse need no coordination.
    pub exists: bool,
    /// Units physically in the warehouse (reserved ones included).
    pub on_hand: i32,
    /// Units held for order lines, keyed by `line_key`. A string key
    /// (not a tuple) so the snapshot serialises as a JSON object.
    pub reservations: BTreeMap<String, i32>,
    /// Lines whose reservation left the warehouse, so a repeated commit (or
    /// a late reserve retry) is recognised instead of counted twice.
    pub committed: BTreeSet<String>,
    /// Available units at or below which stock counts as low; 0 = no alarm.
    pub threshold: i32,
    /// Set by `LowStockDetected`, cleared once available rises above the
    /// threshold: the alarm fires once per dip, not once per reservation.
    pub low: bool,
}

/// Why an inventory command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("no stock item for this SKU")]
    UnknownSku,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("on-hand stock cannot fall below the {reserved} reserved units")]
    BelowReserved { reserved: i64 },
    #[error("nothing is reserved for this order line")]
    NotReserved,
}

impl DomainError for StockError {
    fn code(&self) -> &'static str {
        match self {
            StockError::UnknownSku => "unknown-sku",
            StockError::InvalidField { .. } => "invalid-field",
            StockError::BelowReserved { .. } => "below-reserved",
            StockError::NotReserved => "not-reserved",
        }
    }
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), StockError> {
    result.map_err(|reason| StockError::InvalidField { field, reason })
}

fn restock_quantity(quantity: i32) -> Result<(), &'static str> {
    if quantity <= 0 {
        Err("must be positive")
    } else if quantity > MAX_RESTOCK {
        Err("is larger than 1000000")
    } else {
        Ok(())
    }
}

/// Free text for the audit trail: may span lines, but not a novel.
fn check_note(note: Option<&String>) -> Result<(), StockError> {
    match note {
        Some(n) if n.chars().count() > 10 * MAX_TEXT => Err(StockError::InvalidField {
            field: "note",
            reason: "is too long",
        }),
        _ => Ok(()),
    }
}

fn check_line(order_id: &str, line_no: i32) -> Result<(), StockError> {
    check("order_id", validate::text(order_id, MAX_TEXT))?;
    if line_no < 1 {
        return Err(StockError::InvalidField {
            field: "line_no",
            reason: "must be positive",
        });
    }
    Ok(())
}

/// The key of an order line's reservation: `"{order_id}#{line_no}"`. Unique
/// even if an order id contains `#`, because the line number (after the
/// last `#`) never does.
pub fn line_key(order_id: &str, line_no: i32) -> String {
    format!("{order_id}#{line_no}")
}

/// Whether `available` units are low stock under `threshold`. The contract
/// (`LowStockDetected`: "fell to or below the threshold") makes it *at or
/// below*; a threshold of 0 means none is set.
fn is_low(available: i32, threshold: i32) -> bool {
    threshold > 0 && available <= threshold
}

impl StockItem {
    /// Units held for order lines. Summed as i64: evolve is total, and no
    /// history of events may make the sum overflow.
    pub fn reserved(&self) -> i64 {
        self.reservations
            .values()
            .fold(0_i64, |sum, q| sum.saturating_add(i64::from(*q)))
    }

    /// Units that can still be promised. Never negative while decisions
    /// keep `on_hand ≥ reserved`; clamped so an odd history can't panic.
    pub fn available(&self) -> i32 {
        self.available_with(self.on_hand)
    }

    /// What would be available with `on_hand` units and the current
    /// reservations (clamped like [`Self::available`]).
    fn available_with(&self, on_hand: i32) -> i32 {
        let available = i64::from(on_hand).saturating_sub(self.reserved());
        i32::try_from(available.clamp(i64::from(i32::MIN), i64::from(i32::MAX))).unwrap_or_default()
    }

    fn existing(&self) -> Result<(), StockError> {
        if self.exists {
            Ok(())
        } else {
            Err(StockError::UnknownSku)
        }
    }

    /// The alarm to raise once `available_after` is reached under
    /// `threshold`, unless it is already raised.
    fn low_alert(&self, available_after: i32, threshold: i32) -> Option<InventoryEvent> {
        (!self.low && is_low(available_after, threshold)).then_some(
            InventoryEvent::LowStockDetected(LowStockDetected {
                available: available_after,
                threshold,
            }),
        )
    }

    fn restock(&self, c: &RestockItem) -> Result<Vec<InventoryEvent>, StockError> {
        check("quantity", restock_quantity(c.quantity))?;
        if let Some(reference) = &c.reference {
            check("reference", validate::text(reference, MAX_TEXT))?;
        }
        let on_hand_after =
            self.on_hand
                .checked_add(c.quantity)
                .ok_or(StockError::InvalidField {
                    field: "quantity",
                    reason: "would overflow the on-hand count",
                })?;
        // Restocking only raises availability: it can clear the alarm
        // (evolve does) but never raise it.
        Ok(vec![InventoryEvent::StockRestocked(StockRestocked {
            quantity: c.quantity,
            on_hand_after,
            reference: c.reference.clone(),
            available_after: Some(self.available_with(on_hand_after)),
        })])
    }

    fn adjust(&self, c: &AdjustStock) -> Result<Vec<InventoryEvent>, StockError> {
        self.existing()?;
        if c.delta == 0 {
            return Err(StockError::InvalidField {
                field: "delta",
                reason: "must not be zero",
            });
        }
        check("reason", validate::text(&c.reason, MAX_TEXT))?;
        check_note(c.note.as_ref())?;
        let on_hand_after = self
            .on_hand
            .checked_add(c.delta)
            .ok_or(StockError::InvalidField {
                field: "delta",
                reason: "would overflow the on-hand count",
            })?;
        // A recount can't un-promise what customers were promised: the
        // reservations must be released (order cancelled) first.
        let reserved = self.reserved();
        if i64::from(on_hand_after) < reserved {
            return Err(StockError::BelowReserved { reserved });
        }
        let available_after = self.available_with(on_hand_after);
        let mut events = vec![InventoryEvent::StockAdjusted(StockAdjusted {
            delta: c.delta,
            reason: c.reason.clone(),
            note: c.note.clone(),
            on_hand_after,
            available_after: Some(available_after),
        })];
        events.extend(self.low_alert(available_after, self.threshold));
        Ok(events)
    }

    /// `previous_threshold` is `None` when no threshold was set (0): the
    /// contract's "null if none was set", and 0 is how "none" is stored.
    /// Setting the threshold it already has records nothing.
    fn set_threshold(&self, c: &SetLowStockThreshold) -> Result<Vec<InventoryEvent>, StockError> {
        self.existing()?;
        if c.threshold < 0 {
            return Err(StockError::InvalidField {
                field: "threshold",
                reason: "must not be negative",
            });
        }
        if c.threshold == self.threshold {
            return Ok(Vec::new());
        }
        let mut events = vec![InventoryEvent::LowStockThresholdSet(LowStockThresholdSet {
            threshold: c.threshold,
            previous_threshold: (self.threshold > 0).then_some(self.threshold),
        })];
        events.extend(self.low_alert(self.available(), c.threshold));
        Ok(events)
    }

    /// Not enough stock is recorded as `StockReservationRejected`, not
    /// refused: lost demand is a fact (analysts count it, the saga reacts
    /// to it), while a refusal would leave no trace in the log.
    fn reserve(&self, c: &ReserveStock) -> Result<Vec<InventoryEvent>, StockError> {
        self.existing()?;
        check_line(&c.order_id, c.line_no)?;
        check("quantity", validate::quantity(c.quantity))?;
        let key = line_key(&c.order_id, c.line_no);
        if self.reservations.contains_key(&key) || self.committed.contains(&key) {
            return Ok(Vec::new()); // a saga retry: the line is already served
        }
        let available = self.available();
        let Some(available_after) = available
            .checked_sub(c.quantity)
            .filter(|after| *after >= 0)
        else {
            return Ok(vec![InventoryEvent::StockReservationRejected(
                StockReservationRejected {
                    order_id: c.order_id.clone(),
                    line_no: c.line_no,
                    requested: c.quantity,
                    available,
                },
            )]);
        };
        let mut events = vec![InventoryEvent::StockReserved(StockReserved {
            order_id: c.order_id.clone(),
            line_no: c.line_no,
            quantity: c.quantity,
            available_after,
            on_hand_after: Some(self.on_hand),
        })];
        events.extend(self.low_alert(available_after, self.threshold));
        Ok(events)
    }

    /// Releasing what is not reserved (never was, already released or
    /// committed, or an unknown SKU) succeeds with no events: it is a
    /// compensation, and a compensation that can fail leaves a saga stuck.
    fn release(&self, c: &ReleaseStock) -> Result<Vec<InventoryEvent>, StockError> {
        let Some(quantity) = self.reservations.get(&line_key(&c.order_id, c.line_no)) else {
            return Ok(Vec::new());
        };
        Ok(vec![InventoryEvent::StockReleased(StockReleased {
            order_id: c.order_id.clone(),
            line_no: c.line_no,
            quantity: *quantity,
            available_after: self.available().saturating_add(*quantity),
            on_hand_after: Some(self.on_hand),
        })])
    }

    /// The reserved units leave the warehouse: on hand and reserved both
    /// drop, available stays. Unlike release, committing what was never
    /// reserved is refused — shipping unreserved goods would oversell.
    fn commit(&self, c: &CommitStock) -> Result<Vec<InventoryEvent>, StockError> {
        self.existing()?;
        let key = line_key(&c.order_id, c.line_no);
        if self.committed.contains(&key) {
            return Ok(Vec::new());
        }
        let Some(quantity) = self.reservations.get(&key) else {
            return Err(StockError::NotReserved);
        };
        Ok(vec![InventoryEvent::StockCommitted(StockCommitted {
            order_id: c.order_id.clone(),
            line_no: c.line_no,
            quantity: *quantity,
            on_hand_after: self.on_hand.saturating_sub(*quantity),
            // The units leave on hand and reserved alike.
            available_after: Some(self.available()),
        })])
    }
}

impl Aggregate for StockItem {
    const TYPE: &'static str = "StockItem";
    type Facts = ();
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = StockError;

    fn decide(
        &self,
        command: &InventoryCommand,
        _: &DecisionContext,
    ) -> Result<Vec<InventoryEvent>, StockError> {
        match command {
            InventoryCommand::RestockItem(c) => self.restock(c),
            InventoryCommand::AdjustStock(c) => self.adjust(c),
            InventoryCommand::SetLowStockThreshold(c) => self.set_threshold(c),
            InventoryCommand::ReserveStock(c) => self.reserve(c),
            InventoryCommand::ReleaseStock(c) => self.release(c),
            InventoryCommand::CommitStock(c) => self.commit(c),
        }
    }

    fn evolve(&mut self, event: &InventoryEvent) {
        match event {
            InventoryEvent::StockRestocked(e) => {
                self.exists = true;
                self.on_hand = e.on_hand_after;
            }
            InventoryEvent::StockAdjusted(e) => self.on_hand = e.on_hand_after,
            InventoryEvent::LowStockThresholdSet(e) => self.threshold = e.threshold,
            InventoryEvent::StockReserved(e) => {
                self.reservations
                    .insert(line_key(&e.order_id, e.line_no), e.quantity);
            }
            InventoryEvent::StockReservationRejected(_) => {}
            InventoryEvent::StockReleased(e) => {
                self.reservations.remove(&line_key(&e.order_id, e.line_no));
            }
            InventoryEvent::StockCommitted(e) => {
                let key = line_key(&e.order_id, e.line_no);
                self.reservations.remove(&key);
                self.committed.insert(key);
                self.on_hand = e.on_hand_after;
            }
            InventoryEvent::LowStockDetected(_) => self.low = true,
        }
        if !is_low(self.available(), self.threshold) {
            self.low = false;
        }
    }
}

#[cfg(test)]
mod tests;
