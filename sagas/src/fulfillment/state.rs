//! The order-fulfillment saga as a pure state machine: `handle(state,
//! input, now) -> transition`. No I/O and no clock: the worker hands in the
//! time, sends the commands the transition lists and records the step, all
//! in one transaction.

use schemas::orders::{OrderLine, OrderTotals};
use schemas::{FulfillmentStage, PostalAddress};
use serde::{Deserialize, Serialize};

use super::outgoing::Outgoing;

/// How long the saga waits at its waiting stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FulfillmentTimeouts {
    /// From AuthorizePayment until the gateway must have answered.
    pub payment_authorization_ms: i64,
    /// From ScheduleShipment until a courier must be assigned.
    pub courier_assignment_ms: i64,
}

impl Default for FulfillmentTimeouts {
    fn default() -> Self {
        Self {
            payment_authorization_ms: 30_000,
            courier_assignment_ms: 15 * 60_000,
        }
    }
}

/// What a line's stock is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineStock {
    /// ReserveStock sent, no answer yet.
    Requested,
    Reserved,
    /// Out of stock (or no such SKU): the order cannot be served.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentLine {
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    /// The ReserveStock command, to match its reply.
    pub reserve_command_id: String,
    pub stock: LineStock,
}

/// One saga instance (one order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentState {
    pub order_id: String,
    pub customer_id: String,
    pub stage: Stage,
    pub lines: Vec<FulfillmentLine>,
    pub total_minor: i64,
    pub currency: String,
    pub payment_token: Option<String>,
    pub shipping_address: PostalAddress,
    pub cancellation_requested: bool,
    pub courier_id: Option<String>,
    /// When the saga stops waiting at this stage.
    pub deadline_at: Option<i64>,
    /// Why a failed line failed (for the rejection reason).
    pub unavailable: Vec<String>,
}

/// [`FulfillmentStage`] with serde (the Avro enum is the wire form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    ReservingStock,
    AuthorizingPayment,
    SchedulingShipment,
    AwaitingPickup,
    InTransit,
    Completed,
    Rejected,
    Cancelled,
}

impl Stage {
    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Completed | Stage::Rejected | Stage::Cancelled)
    }

    pub fn wire(self) -> FulfillmentStage {
        match self {
            Stage::ReservingStock => FulfillmentStage::ReservingStock,
            Stage::AuthorizingPayment => FulfillmentStage::AuthorizingPayment,
            Stage::SchedulingShipment => FulfillmentStage::SchedulingShipment,
            Stage::AwaitingPickup => FulfillmentStage::AwaitingPickup,
            Stage::InTransit => FulfillmentStage::InTransit,
            Stage::Completed => FulfillmentStage::Completed,
            Stage::Rejected => FulfillmentStage::Rejected,
            Stage::Cancelled => FulfillmentStage::Cancelled,
        }
    }
}

/// What reaches a saga instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one input at a time, never stored in bulk: boxing buys nothing"
)]
pub enum Input {
    OrderPlaced {
        order_id: String,
        customer_id: String,
        lines: Vec<OrderLine>,
        totals: OrderTotals,
        shipping_address: PostalAddress,
        payment_token: Option<String>,
    },
    CancellationRequested,
    /// The reply to one of our commands.
    Reply {
        command_id: String,
        command_type: ReplyOf,
        accepted: bool,
        /// Record names of the events the command appended.
        event_types: Vec<String>,
        error_code: Option<String>,
    },
    PaymentAuthorized,
    PaymentDeclined {
        code: String,
    },
    PaymentTimedOut,
    CourierAssigned {
        courier_id: String,
    },
    ShipmentPickedUp,
    ShipmentDelivered,
    ShipmentFailed {
        reason: String,
    },
    /// The stage's deadline passed.
    DeadlinePassed,
}

/// Which of our commands a reply answers (from the outcome's aggregate type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOf {
    Stock,
    Payment,
    Other,
}

impl Input {
    /// The cause as recorded in the step.
    pub fn cause(&self) -> String {
        match self {
            Input::OrderPlaced { .. } => "OrderPlaced".into(),
            Input::CancellationRequested => "OrderCancellationRequested".into(),
            Input::Reply {
                command_type,
                accepted,
                ..
            } => format!(
                "reply:{command_type:?}:{}",
                if *accepted { "ACCEPTED" } else { "REJECTED" }
            ),
            Input::PaymentAuthorized => "PaymentAuthorized".into(),
            Input::PaymentDeclined { .. } => "PaymentDeclined".into(),
            Input::PaymentTimedOut => "PaymentAuthorizationTimedOut".into(),
            Input::CourierAssigned { .. } => "CourierAssigned".into(),
            Input::ShipmentPickedUp => "ShipmentPickedUp".into(),
            Input::ShipmentDelivered => "ShipmentDelivered".into(),
            Input::ShipmentFailed { .. } => "ShipmentFailed".into(),
            Input::DeadlinePassed => "timer:deadline".into(),
        }
    }
}

/// What a step decided: the commands to send and a note on why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transition {
    pub commands: Vec<Outgoing>,
    pub note: Option<String>,
}

impl FulfillmentState {
    /// Starts a saga from the placed order, or `None` for any other input
    /// (a late event for a saga that ended and was forgotten).
    pub fn start(input: &Input, now: i64) -> Option<(Self, Transition)> {
        let Input::OrderPlaced {
            order_id,
            customer_id,
            lines,
            totals,
            shipping_address,
            payment_token,
        } = input
        else {
            return None;
        };
        let lines: Vec<FulfillmentLine> = lines
            .iter()
            .map(|l| FulfillmentLine {
                line_no: l.line_no,
                sku: l.sku.clone(),
                quantity: l.quantity,
                reserve_command_id: Outgoing::command_id(
                    order_id,
                    &format!("reserve/{}", l.line_no),
                ),
                stock: LineStock::Requested,
            })
            .collect();
        let commands = lines
            .iter()
            .map(|l| Outgoing::reserve(order_id, l))
            .collect();
        let state = FulfillmentState {
            order_id: order_id.clone(),
            customer_id: customer_id.clone(),
            stage: Stage::ReservingStock,
            lines,
            total_minor: totals.total_minor,
            currency: totals.currency.clone(),
            payment_token: payment_token.clone(),
            shipping_address: shipping_address.clone(),
            cancellation_requested: false,
            courier_id: None,
            deadline_at: None,
            unavailable: Vec::new(),
        };
        let _ = now;
        Some((
            state,
            Transition {
                commands,
                note: None,
            },
        ))
    }

    /// Moves the saga on `input` at time `now`; `None` when the input
    /// changes nothing (a duplicate, or too late to matter).
    pub fn handle(
        &mut self,
        input: &Input,
        now: i64,
        timeouts: &FulfillmentTimeouts,
    ) -> Option<Transition> {
        if self.stage.is_terminal() {
            return None;
        }
        match (self.stage, input) {
            (
                Stage::ReservingStock,
                Input::Reply {
                    command_id,
                    command_type: ReplyOf::Stock,
                    accepted,
                    event_types,
                    ..
                },
            ) => self.stock_answered(command_id, *accepted, event_types, now, timeouts),
            (Stage::ReservingStock, Input::CancellationRequested) => {
                // Wait for every reservation's answer, then release what
                // was reserved: releasing now could race a reservation
                // still on its way.
                if self.cancellation_requested {
                    return None;
                }
                self.cancellation_requested = true;
                Some(Transition::default())
            }
            (Stage::AuthorizingPayment, Input::PaymentAuthorized) => {
                self.deadline_at = Some(now.saturating_add(timeouts.courier_assignment_ms));
                self.stage = Stage::SchedulingShipment;
                Some(Transition {
                    commands: vec![
                        Outgoing::confirm_order(&self.order_id),
                        Outgoing::schedule_shipment(self),
                    ],
                    note: None,
                })
            }
            (Stage::AuthorizingPayment, Input::PaymentDeclined { code }) => {
                Some(self.cancel(false, &format!("payment declined: {code}")))
            }
            (Stage::AuthorizingPayment, Input::PaymentTimedOut) => {
                Some(self.cancel(false, "payment authorization timed out"))
            }
            (
                Stage::AuthorizingPayment,
                Input::Reply {
                    command_type: ReplyOf::Payment,
                    accepted: false,
                    error_code,
                    ..
                },
            ) => Some(self.cancel(
                false,
                &format!(
                    "payment refused: {}",
                    error_code.as_deref().unwrap_or("unknown")
                ),
            )),
            (Stage::AuthorizingPayment, Input::DeadlinePassed) => {
                // Ask the payment to give up; its answer (timed out, or an
                // approval that raced the deadline) moves the saga on.
                self.deadline_at = None;
                Some(Transition {
                    commands: vec![Outgoing::expire_authorization(&self.order_id, now)],
                    note: Some("payment authorization deadline passed".into()),
                })
            }
            (Stage::AuthorizingPayment, Input::CancellationRequested) => {
                Some(self.cancel(true, "cancelled by the customer"))
            }
            (Stage::SchedulingShipment, Input::CourierAssigned { courier_id })
            | (Stage::AwaitingPickup, Input::CourierAssigned { courier_id }) => {
                self.courier_id = Some(courier_id.clone());
                self.deadline_at = None;
                self.stage = Stage::AwaitingPickup;
                Some(Transition::default())
            }
            (Stage::SchedulingShipment, Input::DeadlinePassed) => {
                Some(self.cancel_shipped_not("no courier was assigned in time"))
            }
            (Stage::SchedulingShipment | Stage::AwaitingPickup, Input::CancellationRequested) => {
                Some(self.cancel_shipped_not("cancelled by the customer"))
            }
            (
                Stage::SchedulingShipment | Stage::AwaitingPickup,
                Input::ShipmentFailed { reason },
            ) => {
                // The shipment ended by failing: nothing to call off there.
                Some(self.cancel(true, &format!("delivery failed before pickup: {reason}")))
            }
            (Stage::SchedulingShipment | Stage::AwaitingPickup, Input::ShipmentPickedUp) => {
                self.stage = Stage::InTransit;
                self.deadline_at = None;
                let mut commands = vec![
                    Outgoing::mark_shipped(&self.order_id),
                    Outgoing::capture(&self.order_id, self.total_minor, &self.currency),
                ];
                commands.extend(
                    self.lines
                        .iter()
                        .map(|l| Outgoing::commit(&self.order_id, l)),
                );
                Some(Transition {
                    commands,
                    note: None,
                })
            }
            (Stage::InTransit, Input::ShipmentDelivered) => {
                self.stage = Stage::Completed;
                Some(Transition {
                    commands: vec![Outgoing::complete(&self.order_id)],
                    note: None,
                })
            }
            (Stage::InTransit, Input::ShipmentFailed { reason }) => {
                self.stage = Stage::Cancelled;
                let note = format!("delivery failed: {reason}");
                let mut commands = vec![Outgoing::refund(
                    &self.order_id,
                    self.total_minor,
                    &self.currency,
                    &note,
                )];
                commands.extend(
                    self.lines
                        .iter()
                        .map(|l| Outgoing::return_to_stock(&self.order_id, l)),
                );
                commands.push(Outgoing::cancel_order(&self.order_id, &note));
                Some(Transition {
                    commands,
                    note: Some(note),
                })
            }
            (Stage::InTransit, Input::CancellationRequested) => {
                if self.cancellation_requested {
                    return None;
                }
                self.cancellation_requested = true;
                Some(Transition {
                    commands: Vec::new(),
                    note: Some("cancellation refused: the parcel was already picked up".into()),
                })
            }
            (
                _,
                Input::Reply {
                    accepted: false,
                    command_type,
                    error_code,
                    command_id,
                    ..
                },
            ) => Some(Transition {
                // A refused step the saga cannot route around (it should
                // not happen): recorded so ops see it in the saga's state.
                commands: Vec::new(),
                note: Some(format!(
                    "{command_type:?} command {command_id} refused: {}",
                    error_code.as_deref().unwrap_or("unknown")
                )),
            }),
            (_, Input::DeadlinePassed) => {
                self.deadline_at = None;
                None
            }
            _ => None,
        }
    }

    fn stock_answered(
        &mut self,
        command_id: &str,
        accepted: bool,
        event_types: &[String],
        now: i64,
        timeouts: &FulfillmentTimeouts,
    ) -> Option<Transition> {
        let line = self
            .lines
            .iter_mut()
            .find(|l| l.reserve_command_id == command_id && l.stock == LineStock::Requested)?;
        // Accepted with no event = it was already reserved (an idempotent
        // retry); a rejection event or a refused command = not available.
        let rejected = event_types
            .iter()
            .any(|t| t.ends_with("StockReservationRejected"));
        if accepted && !rejected {
            line.stock = LineStock::Reserved;
        } else {
            line.stock = LineStock::Unavailable;
            self.unavailable.push(line.sku.clone());
        }
        if self.lines.iter().any(|l| l.stock == LineStock::Requested) {
            return Some(Transition::default());
        }
        if !self.unavailable.is_empty() {
            self.stage = Stage::Rejected;
            let reason = format!("out of stock: {}", self.unavailable.join(", "));
            let mut commands = self.release_reserved();
            commands.push(Outgoing::reject_order(&self.order_id, &reason));
            return Some(Transition {
                commands,
                note: Some(reason),
            });
        }
        if self.cancellation_requested {
            return Some(self.cancel(false, "cancelled by the customer"));
        }
        let Some(token) = self.payment_token.clone() else {
            return Some(self.cancel(false, "no payment method"));
        };
        self.stage = Stage::AuthorizingPayment;
        self.deadline_at = Some(now.saturating_add(timeouts.payment_authorization_ms));
        Some(Transition {
            commands: vec![Outgoing::authorize(
                &self.order_id,
                self.total_minor,
                &self.currency,
                &token,
            )],
            note: None,
        })
    }

    fn release_reserved(&self) -> Vec<Outgoing> {
        self.lines
            .iter()
            .filter(|l| l.stock == LineStock::Reserved)
            .map(|l| Outgoing::release(&self.order_id, l))
            .collect()
    }

    /// Cancels before a shipment exists: release the stock, void the
    /// payment if one may exist, cancel the order.
    fn cancel(&mut self, void_payment: bool, reason: &str) -> Transition {
        self.stage = Stage::Cancelled;
        self.deadline_at = None;
        let mut commands = self.release_reserved();
        if void_payment {
            commands.push(Outgoing::void(&self.order_id, reason));
        }
        commands.push(Outgoing::cancel_order(&self.order_id, reason));
        Transition {
            commands,
            note: Some(reason.to_owned()),
        }
    }

    /// Cancels with a shipment scheduled but not picked up.
    fn cancel_shipped_not(&mut self, reason: &str) -> Transition {
        let mut transition = self.cancel(true, reason);
        transition
            .commands
            .insert(0, Outgoing::cancel_shipment(&self.order_id, reason));
        transition
    }
}
