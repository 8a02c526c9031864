//! Consumer lag of the write side's groups (command processors, saga
//! workers), sampled from outside the consumers: per partition, the
//! read_committed end minus the group's committed offset — what
//! `kafka-consumer-groups --describe` shows, so the metric and the
//! operator's tool agree. (The projectors report their own lag, measured
//! from their positions: see `projectors::service`.)
//!
//! On Kafka a transaction's commit marker takes an offset of its own: a
//! group that commits "last record + 1" (as the command processor does)
//! stays one behind a partition whose last record was written in a
//! transaction (a saga's command) until its next record, so a quiet
//! partition may show a lag of 1. The projectors, which report positions
//! that move past markers, show exactly 0.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::metrics::metrics;
use crate::eventlog::{EventLog, LogError, TopicPartition};

/// A group and the topics it consumes.
#[derive(Debug, Clone)]
pub struct WatchedGroup {
    pub group: String,
    pub topics: Vec<String>,
}

/// Samples the lag of `groups` every `every` until `stop` turns true.
pub async fn sample_lag(
    log: Arc<dyn EventLog>,
    groups: Vec<WatchedGroup>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for g in &groups {
            if let Err(e) = sample_group(log.as_ref(), g).await {
                tracing::debug!(group = %g.group, error = %e, "sampling consumer lag");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() || stop.has_changed().is_err() {
            return;
        }
    }
}

/// One sample of one group's lag, into `quickstore_consumer_lag`.
pub async fn sample_group(log: &dyn EventLog, group: &WatchedGroup) -> Result<(), LogError> {
    let mut tps = Vec::new();
    for topic in &group.topics {
        let n = log.partition_count(topic).await?;
        tps.extend((0..n).map(|p| TopicPartition::new(topic.clone(), p)));
    }
    let committed = log.committed_offsets(&group.group, &tps).await?;
    for tp in &tps {
        let end = log.end_offset(tp).await?;
        let position = match committed.get(tp) {
            Some(c) => c.next_offset,
            None => log.start_offset(tp).await?,
        };
        metrics()
            .consumer_lag
            .with_label_values(&[
                group.group.as_str(),
                tp.topic.as_str(),
                &tp.partition.to_string(),
            ])
            .set((end - position).max(0));
    }
    Ok(())
}
