//! Money: payments against orders, in integer minor units.
//!
//! Per payment (as its events happen): at most one `PaymentCaptured`
//! (`captured-twice`), never more than was authorized
//! (`capture-exceeds-authorization`), refunds never beyond the capture
//! (`refund-exceeds-capture`), and each `PaymentRefunded` states the
//! running refunded total (`refund-total-mismatch`).
//!
//! Per order, once it is terminal (the saga captures at pickup and
//! completes on delivery; a delivery failure refunds in full and cancels):
//! - COMPLETED: captured = the order's total (`completed-not-captured`);
//! - CANCELLED or REJECTED: refunded = captured, no money kept
//!   (`money-kept-for-cancelled-order`).
//!
//! Summed over the log this is the equation reported:
//! `captured − refunded = Σ totals of COMPLETED orders − refunds made
//! after completion + net of orders still open` (an open order is one in
//! transit: captured, not yet delivered).

use std::collections::HashMap;

use schemas::orders::OrdersEvent;
use schemas::payments::PaymentsEvent;

use super::report::{counts, n, Finding, Findings, InvariantReport, Position};

pub const NAME: &str = "money-conservation";

#[derive(Debug, Default)]
struct Payment {
    authorized: Option<i64>,
    captured: i64,
    captures: u32,
    refunded: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderEnd {
    Open,
    Completed,
    Cancelled,
}

#[derive(Debug)]
struct Order {
    total: i64,
    end: OrderEnd,
    at: Position,
}

/// The money ledger.
#[derive(Debug, Default)]
pub struct MoneyLedger {
    payments: HashMap<String, Payment>,
    orders: HashMap<String, Order>,
    findings: Findings,
}

impl MoneyLedger {
    pub fn payment(&mut self, event: &PaymentsEvent, at: &Position) {
        let (order_id, found) = match event {
            PaymentsEvent::PaymentAuthorized(e) => {
                self.payments
                    .entry(e.order_id.clone())
                    .or_default()
                    .authorized = Some(e.amount_minor);
                (e.order_id.as_str(), None)
            }
            PaymentsEvent::PaymentCaptured(e) => {
                let p = self.payments.entry(e.order_id.clone()).or_default();
                p.captures += 1;
                p.captured += e.amount_minor;
                let found = if p.captures > 1 {
                    Some((
                        "captured-twice",
                        format!(
                            "capture #{} of {} (captured {} in all)",
                            p.captures, e.amount_minor, p.captured
                        ),
                    ))
                } else if p.authorized.is_some_and(|a| p.captured > a) {
                    Some((
                        "capture-exceeds-authorization",
                        format!(
                            "captured {}, authorized {}",
                            p.captured,
                            p.authorized.unwrap_or_default()
                        ),
                    ))
                } else {
                    None
                };
                (e.order_id.as_str(), found)
            }
            PaymentsEvent::PaymentRefunded(e) => {
                let p = self.payments.entry(e.order_id.clone()).or_default();
                p.refunded += e.amount_minor;
                let found = if p.refunded > p.captured {
                    Some((
                        "refund-exceeds-capture",
                        format!("refunded {} of {} captured", p.refunded, p.captured),
                    ))
                } else if e.refunded_total_minor != p.refunded {
                    Some((
                        "refund-total-mismatch",
                        format!(
                            "states refunded total {}, the refunds sum to {}",
                            e.refunded_total_minor, p.refunded
                        ),
                    ))
                } else {
                    None
                };
                (e.order_id.as_str(), found)
            }
            _ => return,
        };
        if let Some((kind, detail)) = found {
            self.findings
                .push(Finding::new(kind, order_id, detail).at(at));
        }
    }

    pub fn order(&mut self, order_id: &str, event: &OrdersEvent, at: &Position) {
        match event {
            OrdersEvent::OrderPlaced(e) => {
                self.orders.insert(
                    order_id.to_owned(),
                    Order {
                        total: e.totals.total_minor,
                        end: OrderEnd::Open,
                        at: at.clone(),
                    },
                );
            }
            OrdersEvent::OrderCompleted(_) => self.end(order_id, OrderEnd::Completed, at),
            OrdersEvent::OrderCancelled(_) | OrdersEvent::OrderRejected(_) => {
                self.end(order_id, OrderEnd::Cancelled, at)
            }
            _ => {}
        }
    }

    fn end(&mut self, order_id: &str, end: OrderEnd, at: &Position) {
        if let Some(o) = self.orders.get_mut(order_id) {
            o.end = end;
            o.at = at.clone();
        }
    }

    pub fn report(mut self) -> InvariantReport {
        let none = Payment::default();
        let (
            mut completed,
            mut completed_total,
            mut cancelled,
            mut open,
            mut open_net,
            mut refunded_after,
        ) = (0usize, 0i64, 0usize, 0usize, 0i64, 0i64);
        for (id, o) in &self.orders {
            let p = self.payments.get(id).unwrap_or(&none);
            match o.end {
                OrderEnd::Completed => {
                    completed += 1;
                    completed_total += o.total;
                    refunded_after += p.refunded;
                    if p.captured != o.total {
                        self.findings.push(
                            Finding::new(
                                "completed-not-captured",
                                id,
                                format!(
                                    "completed with total {}, captured {}",
                                    o.total, p.captured
                                ),
                            )
                            .at(&o.at),
                        );
                    }
                }
                OrderEnd::Cancelled => {
                    cancelled += 1;
                    if p.captured != p.refunded {
                        self.findings.push(
                            Finding::new(
                                "money-kept-for-cancelled-order",
                                id,
                                format!(
                                    "cancelled or rejected, captured {} but refunded {}",
                                    p.captured, p.refunded
                                ),
                            )
                            .at(&o.at),
                        );
                    }
                }
                OrderEnd::Open => {
                    open += 1;
                    open_net += p.captured - p.refunded;
                }
            }
        }
        let captured: i64 = self.payments.values().map(|p| p.captured).sum();
        let refunded: i64 = self.payments.values().map(|p| p.refunded).sum();
        let orphan_net: i64 = self
            .payments
            .iter()
            .filter(|(id, _)| !self.orders.contains_key(*id))
            .map(|(_, p)| p.captured - p.refunded)
            .sum();
        if orphan_net != 0 {
            self.findings.push(Finding::new(
                "payment-without-order",
                "-",
                format!("payments of orders not in the log keep {orphan_net}"),
            ));
        }
        InvariantReport::new(
            NAME,
            counts([
                ("orders", n(self.orders.len())),
                ("payments", n(self.payments.len())),
                ("completed", n(completed)),
                ("cancelled_or_rejected", n(cancelled)),
                ("open", n(open)),
                ("captured_minor", captured),
                ("refunded_minor", refunded),
                ("completed_total_minor", completed_total),
                ("open_net_minor", open_net),
            ]),
            self.findings,
        )
        .note(format!(
            "captured − refunded = {} = Σ completed totals {completed_total} − refunds after completion {refunded_after} + open orders' net {open_net}",
            captured - refunded
        ))
    }
}
