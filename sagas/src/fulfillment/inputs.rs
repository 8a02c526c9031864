//! Turning the records the saga consumes into [`Input`]s. Events the saga
//! does not react to are skipped by their `event_type` header, before any
//! decoding: most of `orders.events` is cart traffic.

use platform::eventlog::LogRecord;
use schemas::deliveries::DeliveriesEvent;
use schemas::orders::{CartCheckedOut, OrdersEvent};
use schemas::payments::PaymentsEvent;
use schemas::{AvroCodec, CodecError, CommandOutcome, CommandStatus, EventEnvelope, TopicNames};

use super::state::{Input, ReplyOf};

/// What one consumed record means for the saga worker.
#[derive(Debug)]
pub enum Routed {
    /// An input for the saga of `order_id`; `cause_id` is the event or
    /// command id it came from.
    Saga {
        order_id: String,
        cause_id: String,
        input: Input,
    },
    /// A checked-out cart: the checkout policy places its order.
    CartCheckedOut {
        envelope: EventEnvelope,
        event: CartCheckedOut,
    },
    Ignored,
}

/// The topics the saga worker consumes.
#[derive(Debug, Clone)]
pub struct InputTopics {
    pub orders: String,
    pub payments: String,
    pub deliveries: String,
    pub replies: String,
}

impl InputTopics {
    pub fn new(topics: &TopicNames) -> Self {
        Self {
            orders: topics.events(schemas::Context::Orders),
            payments: topics.events(schemas::Context::Payments),
            deliveries: topics.events(schemas::Context::Deliveries),
            replies: topics.saga_replies(schemas::ORDER_FULFILLMENT),
        }
    }

    pub fn all(&self) -> Vec<String> {
        vec![
            self.orders.clone(),
            self.payments.clone(),
            self.deliveries.clone(),
            self.replies.clone(),
        ]
    }
}

const ORDERS_WANTED: [&str; 3] = [
    "OrderPlaced",
    "OrderCancellationRequested",
    "CartCheckedOut",
];
const PAYMENTS_WANTED: [&str; 3] = [
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentAuthorizationTimedOut",
];
const DELIVERIES_WANTED: [&str; 4] = [
    "CourierAssigned",
    "ShipmentPickedUp",
    "ShipmentDelivered",
    "ShipmentFailed",
];

/// Whether the record's `event_type` header names one of `wanted` (a
/// record without the header is decoded to find out).
fn wanted(record: &LogRecord, wanted: &[&str]) -> bool {
    match record.header("event_type") {
        Some(t) => {
            let t = String::from_utf8_lossy(t);
            let short = t.rsplit('.').next().unwrap_or(&t);
            wanted.contains(&short)
        }
        None => true,
    }
}

pub async fn route(
    codec: &AvroCodec,
    topics: &InputTopics,
    record: &LogRecord,
) -> Result<Routed, CodecError> {
    let Some(bytes) = record.value.as_deref() else {
        return Ok(Routed::Ignored);
    };
    if record.topic == topics.replies {
        let outcome: CommandOutcome = codec.decode_named(bytes).await?;
        let command_type = match outcome.aggregate_type.as_str() {
            "StockItem" => ReplyOf::Stock,
            "Payment" => ReplyOf::Payment,
            _ => ReplyOf::Other,
        };
        return Ok(Routed::Saga {
            order_id: outcome.correlation_id.clone(),
            cause_id: outcome.command_id.clone(),
            input: Input::Reply {
                command_id: outcome.command_id,
                command_type,
                accepted: outcome.status == CommandStatus::Accepted,
                event_types: outcome.event_types,
                error_code: outcome.error_code,
            },
        });
    }
    if record.topic == topics.orders {
        if !wanted(record, &ORDERS_WANTED) {
            return Ok(Routed::Ignored);
        }
        let (envelope, event) = codec.decode_event::<OrdersEvent>(bytes).await?;
        let order_id = envelope.aggregate_id.clone();
        let input = match event {
            OrdersEvent::OrderPlaced(e) => Input::OrderPlaced {
                order_id: order_id.clone(),
                customer_id: e.customer_id,
                lines: e.lines,
                totals: e.totals,
                shipping_address: e.shipping_address,
                payment_token: e.payment_token,
            },
            OrdersEvent::OrderCancellationRequested(_) => Input::CancellationRequested,
            OrdersEvent::CartCheckedOut(event) => {
                return Ok(Routed::CartCheckedOut { envelope, event })
            }
            _ => return Ok(Routed::Ignored),
        };
        return Ok(Routed::Saga {
            order_id,
            cause_id: envelope.event_id,
            input,
        });
    }
    if record.topic == topics.payments {
        if !wanted(record, &PAYMENTS_WANTED) {
            return Ok(Routed::Ignored);
        }
        let (envelope, event) = codec.decode_event::<PaymentsEvent>(bytes).await?;
        let input = match event {
            PaymentsEvent::PaymentAuthorized(_) => Input::PaymentAuthorized,
            PaymentsEvent::PaymentDeclined(e) => Input::PaymentDeclined {
                code: e.decline_code,
            },
            PaymentsEvent::PaymentAuthorizationTimedOut(_) => Input::PaymentTimedOut,
            _ => return Ok(Routed::Ignored),
        };
        // The payment's id is its order's id.
        return Ok(Routed::Saga {
            order_id: envelope.aggregate_id,
            cause_id: envelope.event_id,
            input,
        });
    }
    if record.topic == topics.deliveries {
        if !wanted(record, &DELIVERIES_WANTED) {
            return Ok(Routed::Ignored);
        }
        let (envelope, event) = codec.decode_event::<DeliveriesEvent>(bytes).await?;
        let input = match event {
            DeliveriesEvent::CourierAssigned(e) => Input::CourierAssigned {
                courier_id: e.courier_id,
            },
            DeliveriesEvent::ShipmentPickedUp(_) => Input::ShipmentPickedUp,
            DeliveriesEvent::ShipmentDelivered(_) => Input::ShipmentDelivered,
            DeliveriesEvent::ShipmentFailed(e) => Input::ShipmentFailed { reason: e.reason },
            _ => return Ok(Routed::Ignored),
        };
        // The shipment's id is its order's id.
        return Ok(Routed::Saga {
            order_id: envelope.aggregate_id,
            cause_id: envelope.event_id,
            input,
        });
    }
    Ok(Routed::Ignored)
}
