//! An aggregate's state at a past moment: its events with `occurred_at <=
//! as_of`, in chain order, folded through the command side's own pure
//! `evolve` — the same function the command processor decides with, so the
//! state shown is the state the system acted on. The saga has no `evolve`
//! outside its worker; each of its steps records the state after it
//! (`state_json`), so its state at a moment is its last step's.

use command_api::aggregate::Aggregate;
use command_api::domain::catalog::Product;
use command_api::domain::customers::Customer;
use command_api::domain::deliveries::Shipment;
use command_api::domain::inventory::StockItem;
use command_api::domain::orders::{Cart, Order};
use command_api::domain::payments::Payment;
use platform::eventlog::LogRecord;
use query_api::audit_log::{AuditLogError, StateAt};
use schemas::{AnyEvent, AvroCodec, OrderFulfillmentStep};
use serde_json::Value;

use super::decode::Decoded;

fn unavailable(e: impl std::fmt::Display) -> AuditLogError {
    AuditLogError::Unavailable(e.to_string())
}

/// The events of one aggregate that make its chain, in order: each the
/// next version of the one before (a record out of order or a repeat is
/// left out, as `audit verify` reports it).
pub fn chain_order(events: &[(LogRecord, Decoded)]) -> Vec<&(LogRecord, Decoded)> {
    let mut out = Vec::with_capacity(events.len());
    let mut last = 0i64;
    for pair in events {
        if pair.1.envelope.version > last {
            last = pair.1.envelope.version;
            out.push(pair);
        }
    }
    out
}

/// Folds the events at or before `as_of_ms` of an aggregate of
/// `aggregate_type` into its state.
pub async fn state_at(
    codec: &AvroCodec,
    aggregate_type: &str,
    aggregate_id: &str,
    events: &[(LogRecord, Decoded)],
    as_of_ms: i64,
) -> Result<StateAt, AuditLogError> {
    let included: Vec<&(LogRecord, Decoded)> = chain_order(events)
        .into_iter()
        .filter(|(_, d)| d.envelope.occurred_at <= as_of_ms)
        .collect();
    let state = match aggregate_type {
        "Product" => {
            fold::<Product>(codec, &included, |e| match e {
                AnyEvent::Catalog(e) => Some(e),
                _ => None,
            })
            .await?
        }
        "StockItem" => {
            fold::<StockItem>(codec, &included, |e| match e {
                AnyEvent::Inventory(e) => Some(e),
                _ => None,
            })
            .await?
        }
        "Cart" => {
            fold::<Cart>(codec, &included, |e| match e {
                AnyEvent::Orders(e) => Some(e),
                _ => None,
            })
            .await?
        }
        "Order" => {
            fold::<Order>(codec, &included, |e| match e {
                AnyEvent::Orders(e) => Some(e),
                _ => None,
            })
            .await?
        }
        "Payment" => {
            fold::<Payment>(codec, &included, |e| match e {
                AnyEvent::Payments(e) => Some(e),
                _ => None,
            })
            .await?
        }
        "Shipment" => {
            fold::<Shipment>(codec, &included, |e| match e {
                AnyEvent::Deliveries(e) => Some(e),
                _ => None,
            })
            .await?
        }
        "Customer" => {
            fold::<Customer>(codec, &included, |e| match e {
                AnyEvent::Customers(e) => Some(e),
                _ => None,
            })
            .await?
        }
        t if t == sagas::fulfillment::worker::SAGA_TYPE => saga_state(codec, &included).await?,
        other => return Err(AuditLogError::UnknownType(other.to_owned())),
    };
    let last = included.last().map(|(_, d)| &d.envelope);
    Ok(StateAt {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        as_of: query_api::time::rfc3339(as_of_ms),
        version: last.map_or(0, |e| e.version),
        version_occurred_at: last.map(|e| query_api::time::rfc3339(e.occurred_at)),
        state,
    })
}

async fn fold<A: Aggregate>(
    codec: &AvroCodec,
    events: &[&(LogRecord, Decoded)],
    pick: impl Fn(AnyEvent) -> Option<A::Event>,
) -> Result<Value, AuditLogError> {
    let mut state = A::default();
    for (record, decoded) in events {
        let value = record.value.as_deref().unwrap_or_default();
        let (_, event) = codec
            .decode_event::<AnyEvent>(value)
            .await
            .map_err(unavailable)?;
        match pick(event) {
            Some(event) => state.evolve(&event),
            None => {
                return Err(AuditLogError::Unavailable(format!(
                    "{} at {}-{}@{} is not an event of a {}",
                    decoded.short_type(),
                    record.topic,
                    record.partition,
                    record.offset,
                    A::TYPE
                )))
            }
        }
    }
    serde_json::to_value(&state).map_err(unavailable)
}

async fn saga_state(
    codec: &AvroCodec,
    events: &[&(LogRecord, Decoded)],
) -> Result<Value, AuditLogError> {
    let Some((record, _)) = events.last() else {
        return Ok(Value::Null);
    };
    let step: OrderFulfillmentStep = codec
        .decode_named(record.value.as_deref().unwrap_or_default())
        .await
        .map_err(unavailable)?;
    serde_json::from_str(&step.state_json).map_err(unavailable)
}
