//! The saga backlog: order-fulfillment sagas not yet in a terminal stage.
//!
//! Counted from the saga's own event topic (`sagas.order-fulfillment.events`,
//! the source of truth): the last step per saga id gives its stage. The read
//! store's `saga_state_by_order` holds the same per order, but the store
//! port reads by key only, so a count would need a full-table scan it does
//! not offer; reading the topic costs one pass over it (read_committed),
//! which `status` reports in its notes.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, Result};
use futures::StreamExt;
use platform::eventlog::TopicPartition;
use schemas::{FulfillmentStage, OrderFulfillmentStep, TopicNames, ORDER_FULFILLMENT};
use serde::Serialize;

use crate::system::System;

#[derive(Debug, Serialize)]
pub struct SagaBacklog {
    pub saga: String,
    /// The topic counted.
    pub topic: String,
    /// Sagas started (distinct saga ids on the topic).
    pub total: usize,
    /// Not yet completed, rejected or cancelled.
    pub open: usize,
    pub by_stage: Vec<StageCount>,
}

#[derive(Debug, Serialize)]
pub struct StageCount {
    pub stage: String,
    pub open: usize,
    /// The oldest open saga's time in this stage (ms since the epoch).
    pub oldest_since: i64,
}

/// The topics the order-fulfillment saga worker consumes.
pub fn saga_inputs(topics: &TopicNames) -> Vec<String> {
    sagas::fulfillment::inputs::InputTopics::new(topics).all()
}

fn terminal(stage: FulfillmentStage) -> bool {
    matches!(
        stage,
        FulfillmentStage::Completed | FulfillmentStage::Rejected | FulfillmentStage::Cancelled
    )
}

pub async fn backlog(
    system: &System,
    existing: &[String],
    notes: &mut Vec<String>,
) -> Result<SagaBacklog> {
    let topic = system.topics.saga_events(ORDER_FULFILLMENT);
    let mut last: HashMap<Vec<u8>, (FulfillmentStage, i64)> = HashMap::new();
    if existing.contains(&topic) {
        let log = system.log.as_ref();
        for p in 0..log.partition_count(&topic).await? {
            let tp = TopicPartition::new(topic.clone(), p);
            let end = log.end_offset(&tp).await?;
            let start = log.start_offset(&tp).await?;
            let mut records = log.read_range(tp, start, end);
            while let Some(record) = records.next().await {
                let record = record?;
                let Some(value) = record.value.as_deref() else {
                    continue;
                };
                let step: OrderFulfillmentStep =
                    system.codec.decode_named(value).await.with_context(|| {
                        format!(
                            "decoding {}-{}@{}",
                            record.topic, record.partition, record.offset
                        )
                    })?;
                // Steps of one saga are in order in its partition; `since`
                // is when it entered its current stage.
                let entry = last
                    .entry(record.key)
                    .or_insert((step.stage, step.envelope.occurred_at));
                if entry.0 != step.stage {
                    *entry = (step.stage, step.envelope.occurred_at);
                }
            }
        }
        notes.push(format!(
            "saga backlog counted from {topic} (one read of the topic); one saga's state: GET /ops/sagas/{{order_id}} on the query API"
        ));
    } else {
        notes.push(format!("{topic} does not exist yet: no saga has started"));
    }
    let mut by_stage: BTreeMap<String, StageCount> = BTreeMap::new();
    let mut open = 0;
    for (stage, since) in last.values() {
        if terminal(*stage) {
            continue;
        }
        open += 1;
        let name = format!("{stage:?}");
        let count = by_stage.entry(name.clone()).or_insert(StageCount {
            stage: name,
            open: 0,
            oldest_since: *since,
        });
        count.open += 1;
        count.oldest_since = count.oldest_since.min(*since);
    }
    Ok(SagaBacklog {
        saga: ORDER_FULFILLMENT.to_owned(),
        topic,
        total: last.len(),
        open,
        by_stage: by_stage.into_values().collect(),
    })
}
