//! `Shipment`: the parcel of one order (the aggregate id is the order id) —
//! scheduled by the order-fulfillment saga, given to a courier, picked up,
//! and then delivered or failed; or cancelled before pickup.
//!
//! ```text
//! New ─schedule→ Scheduled ─assign→ Assigned ─pick up→ PickedUp ─deliver→ Delivered
//!                    │                 │ ↺ reassign        └──────fail──→ Failed
//!                    └──── cancel / fail ──→ Cancelled / Failed
//! ```
//!
//! Couriers act only on the shipments assigned to them: the HTTP edge knows
//! the caller is *a* courier, only the aggregate knows *which* one is
//! assigned, so that check lives here (see [`crate::domain::actor`]).

use schemas::deliveries::{
    AssignCourier, CancelShipment, CourierAssigned, DeliverShipment, DeliveriesCommand,
    DeliveriesEvent, FailShipment, PickUpShipment, ScheduleShipment, ShipmentCancelled,
    ShipmentDelivered, ShipmentFailed, ShipmentItem, ShipmentPickedUp, ShipmentScheduled,
};
use schemas::PostalAddress;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecisionContext, DomainError};
use crate::domain::actor::Actor;
use crate::domain::validate::{self, MAX_TEXT, MAX_URL};

/// Items per shipment at most: an order's lines, bounded like them.
pub const MAX_ITEMS: usize = 100;

/// Where a shipment is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentStatus {
    /// Nothing scheduled yet: the shipment does not exist.
    #[default]
    New,
    Scheduled,
    Assigned,
    PickedUp,
    Delivered,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub status: ShipmentStatus,
    pub order_id: String,
    /// `None` until scheduled.
    pub destination: Option<PostalAddress>,
    pub items: Vec<ShipmentItem>,
    /// The courier assigned (and, once picked up, carrying the parcel).
    pub courier: Option<String>,
}

/// Why a deliveries command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShipmentError {
    #[error("the shipment is already scheduled")]
    AlreadyScheduled,
    #[error("no such shipment")]
    NotFound,
    #[error("the shipment was already picked up")]
    AlreadyPickedUp,
    #[error("the shipment is delivered, failed or cancelled")]
    ShipmentClosed,
    #[error("no courier is assigned to the shipment")]
    NoCourierAssigned,
    #[error("the shipment is not assigned to this courier")]
    NotYourShipment,
    #[error("the shipment has not been picked up")]
    NotPickedUp,
    #[error("`{field}` {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
}

impl DomainError for ShipmentError {
    fn code(&self) -> &'static str {
        match self {
            ShipmentError::AlreadyScheduled => "already-scheduled",
            ShipmentError::NotFound => "not-found",
            ShipmentError::AlreadyPickedUp => "already-picked-up",
            ShipmentError::ShipmentClosed => "shipment-closed",
            ShipmentError::NoCourierAssigned => "no-courier-assigned",
            ShipmentError::NotYourShipment => "not-your-shipment",
            ShipmentError::NotPickedUp => "not-picked-up",
            ShipmentError::InvalidField { .. } => "invalid-field",
        }
    }
}

fn check(field: &'static str, result: Result<(), &'static str>) -> Result<(), ShipmentError> {
    result.map_err(|reason| ShipmentError::InvalidField { field, reason })
}

/// The destination, refused with the sub-field at fault
/// (`destination.line1`…), spelt out so the field stays `&'static str`.
fn check_destination(address: &PostalAddress) -> Result<(), ShipmentError> {
    validate::address(address).map_err(|(sub, reason)| {
        let field = match sub {
            "recipient" => "destination.recipient",
            "line1" => "destination.line1",
            "line2" => "destination.line2",
            "city" => "destination.city",
            "region" => "destination.region",
            "postal_code" => "destination.postal_code",
            "country" => "destination.country",
            _ => "destination",
        };
        ShipmentError::InvalidField { field, reason }
    })
}

fn check_items(items: &[ShipmentItem]) -> Result<(), ShipmentError> {
    let refuse = |reason| {
        Err(ShipmentError::InvalidField {
            field: "items",
            reason,
        })
    };
    if items.is_empty() {
        return refuse("must not be empty");
    }
    if items.len() > MAX_ITEMS {
        return refuse("has more than 100 items");
    }
    for item in items {
        check("items", validate::text(&item.sku, MAX_TEXT))?;
        check("items", validate::quantity(item.quantity))?;
    }
    Ok(())
}

impl Shipment {
    /// A courier acting on a shipment that is not assigned to them.
    fn check_courier_actor(&self, context: &DecisionContext) -> Result<(), ShipmentError> {
        if Actor::parse(&context.actor).is_courier_other_than(self.courier.as_deref()) {
            Err(ShipmentError::NotYourShipment)
        } else {
            Ok(())
        }
    }

    fn schedule(&self, c: &ScheduleShipment) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        if self.status != ShipmentStatus::New {
            return Err(ShipmentError::AlreadyScheduled);
        }
        check("order_id", validate::text(&c.order_id, MAX_TEXT))?;
        check_destination(&c.destination)?;
        check_items(&c.items)?;
        Ok(vec![DeliveriesEvent::ShipmentScheduled(
            ShipmentScheduled {
                order_id: c.order_id.clone(),
                destination: c.destination.clone(),
                items: c.items.clone(),
            },
        )])
    }

    /// Re-assigning before pickup is allowed (a courier called in sick);
    /// after pickup the parcel is in someone's van, and only delivery or
    /// failure moves it on.
    fn assign(&self, c: &AssignCourier) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        match self.status {
            ShipmentStatus::New => return Err(ShipmentError::NotFound),
            ShipmentStatus::Scheduled | ShipmentStatus::Assigned => {}
            ShipmentStatus::PickedUp => return Err(ShipmentError::AlreadyPickedUp),
            ShipmentStatus::Delivered | ShipmentStatus::Failed | ShipmentStatus::Cancelled => {
                return Err(ShipmentError::ShipmentClosed)
            }
        }
        check("courier_id", validate::text(&c.courier_id, MAX_TEXT))?;
        if self.courier.as_deref() == Some(c.courier_id.as_str()) {
            return Ok(Vec::new()); // already theirs: the request is satisfied
        }
        Ok(vec![DeliveriesEvent::CourierAssigned(CourierAssigned {
            courier_id: c.courier_id.clone(),
            previous_courier_id: self.courier.clone(),
        })])
    }

    /// Only the assigned courier picks up — named in the command and, when
    /// a courier sends it, being the sender. A repeated pickup (a retried
    /// request from the courier's app) records nothing.
    fn pick_up(
        &self,
        c: &PickUpShipment,
        context: &DecisionContext,
    ) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        match self.status {
            ShipmentStatus::New => return Err(ShipmentError::NotFound),
            ShipmentStatus::Scheduled => return Err(ShipmentError::NoCourierAssigned),
            ShipmentStatus::Assigned | ShipmentStatus::PickedUp => {}
            ShipmentStatus::Delivered | ShipmentStatus::Failed | ShipmentStatus::Cancelled => {
                return Err(ShipmentError::ShipmentClosed)
            }
        }
        if self.courier.as_deref() != Some(c.courier_id.as_str()) {
            return Err(ShipmentError::NotYourShipment);
        }
        self.check_courier_actor(context)?;
        if self.status == ShipmentStatus::PickedUp {
            return Ok(Vec::new());
        }
        Ok(vec![DeliveriesEvent::ShipmentPickedUp(ShipmentPickedUp {
            courier_id: c.courier_id.clone(),
        })])
    }

    /// The event names the courier who carried the parcel (the assigned
    /// one): the command does not, so a courier can't deliver as another.
    fn deliver(
        &self,
        c: &DeliverShipment,
        context: &DecisionContext,
    ) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        match self.status {
            ShipmentStatus::New => return Err(ShipmentError::NotFound),
            ShipmentStatus::Scheduled | ShipmentStatus::Assigned => {
                return Err(ShipmentError::NotPickedUp)
            }
            ShipmentStatus::PickedUp | ShipmentStatus::Delivered => {}
            ShipmentStatus::Failed | ShipmentStatus::Cancelled => {
                return Err(ShipmentError::ShipmentClosed)
            }
        }
        self.check_courier_actor(context)?;
        if self.status == ShipmentStatus::Delivered {
            return Ok(Vec::new()); // a retried hand-over: already recorded
        }
        if let Some(received_by) = &c.received_by {
            check("received_by", validate::text(received_by, MAX_TEXT))?;
        }
        if let Some(proof_key) = &c.proof_key {
            check("proof_key", validate::text(proof_key, MAX_URL))?;
        }
        Ok(vec![DeliveriesEvent::ShipmentDelivered(
            ShipmentDelivered {
                courier_id: self.courier.clone().unwrap_or_default(),
                received_by: c.received_by.clone(),
                proof_key: c.proof_key.clone(),
            },
        )])
    }

    /// A delivery can fail before pickup too (the parcel was lost in the
    /// warehouse); a courier may only fail their own shipments.
    fn fail(
        &self,
        c: &FailShipment,
        context: &DecisionContext,
    ) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        match self.status {
            ShipmentStatus::New => return Err(ShipmentError::NotFound),
            ShipmentStatus::Scheduled | ShipmentStatus::Assigned | ShipmentStatus::PickedUp => {}
            ShipmentStatus::Delivered | ShipmentStatus::Failed | ShipmentStatus::Cancelled => {
                return Err(ShipmentError::ShipmentClosed)
            }
        }
        self.check_courier_actor(context)?;
        check("reason", validate::text(&c.reason, MAX_TEXT))?;
        Ok(vec![DeliveriesEvent::ShipmentFailed(ShipmentFailed {
            reason: c.reason.clone(),
            courier_id: self.courier.clone(),
        })])
    }

    /// Cancelling is the saga's compensation when an order is cancelled:
    /// repeating it records nothing, and once the parcel is picked up it is
    /// too late (the delivery runs its course, then returns are a refund).
    fn cancel(&self, c: &CancelShipment) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        match self.status {
            ShipmentStatus::New => return Err(ShipmentError::NotFound),
            ShipmentStatus::Scheduled | ShipmentStatus::Assigned => {}
            ShipmentStatus::Cancelled => return Ok(Vec::new()),
            ShipmentStatus::PickedUp => return Err(ShipmentError::AlreadyPickedUp),
            ShipmentStatus::Delivered | ShipmentStatus::Failed => {
                return Err(ShipmentError::ShipmentClosed)
            }
        }
        check("reason", validate::text(&c.reason, MAX_TEXT))?;
        Ok(vec![DeliveriesEvent::ShipmentCancelled(
            ShipmentCancelled {
                reason: c.reason.clone(),
            },
        )])
    }
}

impl Aggregate for Shipment {
    const TYPE: &'static str = "Shipment";
    type Facts = ();
    type Command = DeliveriesCommand;
    type Event = DeliveriesEvent;
    type Error = ShipmentError;

    fn decide(
        &self,
        command: &DeliveriesCommand,
        context: &DecisionContext,
    ) -> Result<Vec<DeliveriesEvent>, ShipmentError> {
        match command {
            DeliveriesCommand::ScheduleShipment(c) => self.schedule(c),
            DeliveriesCommand::AssignCourier(c) => self.assign(c),
            DeliveriesCommand::PickUpShipment(c) => self.pick_up(c, context),
            DeliveriesCommand::DeliverShipment(c) => self.deliver(c, context),
            DeliveriesCommand::FailShipment(c) => self.fail(c, context),
            DeliveriesCommand::CancelShipment(c) => self.cancel(c),
        }
    }

    fn evolve(&mut self, event: &DeliveriesEvent) {
        match event {
            DeliveriesEvent::ShipmentScheduled(e) => {
                *self = Shipment {
                    status: ShipmentStatus::Scheduled,
                    order_id: e.order_id.clone(),
                    destination: Some(e.destination.clone()),
                    items: e.items.clone(),
                    courier: None,
                }
            }
            DeliveriesEvent::CourierAssigned(e) => {
                self.status = ShipmentStatus::Assigned;
                self.courier = Some(e.courier_id.clone());
            }
            DeliveriesEvent::ShipmentPickedUp(e) => {
                self.status = ShipmentStatus::PickedUp;
                self.courier = Some(e.courier_id.clone());
            }
            DeliveriesEvent::ShipmentDelivered(_) => self.status = ShipmentStatus::Delivered,
            DeliveriesEvent::ShipmentFailed(_) => self.status = ShipmentStatus::Failed,
            DeliveriesEvent::ShipmentCancelled(_) => self.status = ShipmentStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests;
