//! Where an aggregate's events are: its type names its topic, its id (the
//! record key) names the partition — murmur2, as every Kafka client
//! computes it — and the audit index read model, when there is one, names
//! each event's offset.

use anyhow::{Context as _, Result};
use futures::StreamExt;
use platform::eventlog::{EventLog, LogRecord, TopicPartition};
use platform::readstore::{ReadStore, Row, Value};
use projectors::projections::audit::EVENTS_BY_AGGREGATE;
use query_api::audit_log::AuditLogError;
use schemas::{Context, TopicNames, ORDER_FULFILLMENT};

/// The event topic of an aggregate type.
pub fn topic_for(topics: &TopicNames, aggregate_type: &str) -> Result<String, AuditLogError> {
    let context = match aggregate_type {
        "Product" => Context::Catalog,
        "StockItem" => Context::Inventory,
        "Cart" | "Order" => Context::Orders,
        "Payment" => Context::Payments,
        "Shipment" => Context::Deliveries,
        "Customer" => Context::Customers,
        t if t == sagas::fulfillment::worker::SAGA_TYPE => {
            return Ok(topics.saga_events(ORDER_FULFILLMENT))
        }
        other => return Err(AuditLogError::UnknownType(other.to_owned())),
    };
    Ok(topics.events(context))
}

/// Every event topic whose records are chained: the six contexts' and the
/// order-fulfillment saga's.
pub fn chained_topics(topics: &TopicNames) -> Vec<String> {
    let mut all: Vec<String> = Context::ALL.iter().map(|c| topics.events(*c)).collect();
    all.push(topics.saga_events(ORDER_FULFILLMENT));
    all
}

fn unavailable(e: impl std::fmt::Display) -> AuditLogError {
    AuditLogError::Unavailable(e.to_string())
}

/// Every record keyed `aggregate_id` in its partition of `topic` from
/// offset `from` (`None`: the partition's start), in offset order. Reads
/// the partition (its size, not the aggregate's, is the cost);
/// [`records_at`] reads only the offsets the audit index names.
pub async fn scan_partition(
    log: &dyn EventLog,
    topic: &str,
    aggregate_id: &str,
    from: Option<i64>,
) -> Result<Vec<LogRecord>, AuditLogError> {
    let partitions = log.partition_count(topic).await.map_err(unavailable)?;
    if partitions <= 0 {
        return Ok(Vec::new());
    }
    let partition = platform::partitioner::partition_for_key(aggregate_id.as_bytes(), partitions);
    let tp = TopicPartition::new(topic, partition);
    let start = log.start_offset(&tp).await.map_err(unavailable)?;
    let start = from.map_or(start, |f| f.max(start));
    let end = log.end_offset(&tp).await.map_err(unavailable)?;
    let mut stream = log.read_range(tp, start, end);
    let mut out = Vec::new();
    while let Some(record) = stream.next().await {
        let record = record.map_err(unavailable)?;
        if record.key == aggregate_id.as_bytes() {
            out.push(record);
        }
    }
    Ok(out)
}

/// The records at `positions` (topic, partition, offset), in that order;
/// a position whose record is gone is skipped.
pub async fn records_at(
    log: &dyn EventLog,
    positions: &[(String, i32, i64)],
) -> Result<Vec<LogRecord>, AuditLogError> {
    let mut out = Vec::with_capacity(positions.len());
    for (topic, partition, offset) in positions {
        let tp = TopicPartition::new(topic.clone(), *partition);
        let mut stream = log.read_range(tp, *offset, offset.saturating_add(1));
        if let Some(record) = stream.next().await {
            let record = record.map_err(unavailable)?;
            if record.offset == *offset {
                out.push(record);
            }
        }
    }
    Ok(out)
}

/// The positions the audit index holds for one aggregate, in version
/// order (empty when the index has none: not projected yet, or no such
/// aggregate).
pub async fn index_positions(
    store: &dyn ReadStore,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<(String, i32, i64)>> {
    let generation = projectors::generations::serving(store, "audit")
        .await
        .context("reading the audit index's serving generation")?;
    let partition = Row::from([
        (
            "aggregate_type".to_owned(),
            Value::Text(aggregate_type.to_owned()),
        ),
        (
            "aggregate_id".to_owned(),
            Value::Text(aggregate_id.to_owned()),
        ),
    ]);
    let mut out = Vec::new();
    let mut page = None;
    loop {
        let listed = store
            .scan(
                &EVENTS_BY_AGGREGATE,
                generation,
                &partition,
                page.as_ref(),
                500,
            )
            .await
            .context("reading the audit index (events_by_aggregate)")?;
        for row in &listed.rows {
            if let (Some(Value::Text(t)), Some(Value::Int(p)), Some(Value::BigInt(o))) =
                (row.get("topic"), row.get("partition"), row.get("offset"))
            {
                out.push((t.clone(), *p, *o));
            }
        }
        match listed.next {
            Some(next) if !listed.rows.is_empty() => page = Some(next),
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_topic_and_others_are_refused() {
        let t = TopicNames::new("x.");
        assert_eq!(topic_for(&t, "Product").unwrap(), "x.catalog.events");
        assert_eq!(topic_for(&t, "Cart").unwrap(), "x.orders.events");
        assert_eq!(
            topic_for(&t, "OrderFulfillment").unwrap(),
            "x.sagas.order-fulfillment.events"
        );
        for t2 in query_api::audit_log::AGGREGATE_TYPES {
            assert!(topic_for(&t, t2).is_ok(), "{t2}");
        }
        assert!(matches!(
            topic_for(&t, "product"),
            Err(AuditLogError::UnknownType(_))
        ));
        assert_eq!(chained_topics(&t).len(), 7);
    }
}
