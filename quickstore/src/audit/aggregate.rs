//! One aggregate read from the log: its records decoded, its chain
//! checked, its state folded — for `quickstore audit stream` and, through
//! [`LogAudit`], the query API's audit routes.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use platform::eventlog::{EventLog, LogRecord};
use platform::readstore::ReadStore;
use query_api::audit_log::{AuditLog, AuditLogError, ChainReport, LoggedEvent, StateAt};
use schemas::{AvroCodec, TopicNames};

use super::check::{ChainChecker, Location, Seen};
use super::decode::{decode, DecodeError, Decoded};
use super::locate;

/// An aggregate's records as the log holds them.
#[derive(Debug, Default)]
pub struct AggregateLog {
    /// Decoded events, in log order.
    pub events: Vec<(LogRecord, Decoded)>,
    /// Records under the aggregate's key that are not events.
    pub undecodable: Vec<(LogRecord, String)>,
    /// Partitions of the aggregate's topic (to check placement).
    pub partitions: i32,
    /// Where the positions came from: `index` or `log`.
    pub source: &'static str,
}

/// Reads one aggregate's records: at the offsets the audit index names
/// when `index` is given and has them, else by scanning its partition.
pub async fn load(
    log: &dyn EventLog,
    codec: &AvroCodec,
    topics: &TopicNames,
    index: Option<&dyn ReadStore>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<AggregateLog, AuditLogError> {
    let topic = locate::topic_for(topics, aggregate_type)?;
    let partitions = log
        .partition_count(&topic)
        .await
        .map_err(|e| AuditLogError::Unavailable(format!("{topic}: {e}")))?;
    let mut source = "log";
    let mut records = Vec::new();
    if let Some(store) = index {
        match locate::index_positions(store, aggregate_type, aggregate_id).await {
            Ok(positions) if !positions.is_empty() => {
                records = locate::records_at(log, &positions).await?;
                // The index may lag the log: what was appended after the
                // last indexed record is only in the partition's tail.
                let tail_from = positions
                    .iter()
                    .filter(|(t, ..)| *t == topic)
                    .map(|(_, _, o)| o + 1)
                    .max();
                records.extend(locate::scan_partition(log, &topic, aggregate_id, tail_from).await?);
                source = "index";
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "the audit index is unavailable; scanning the log"
            ),
        }
    }
    if source == "log" {
        records = locate::scan_partition(log, &topic, aggregate_id, None).await?;
    }
    let mut out = AggregateLog {
        partitions,
        source,
        ..AggregateLog::default()
    };
    for record in records {
        match decode(codec, &record).await {
            Ok(d) if d.link.aggregate_type == aggregate_type => out.events.push((record, d)),
            // Orders' topic holds carts and orders: the other kind under
            // the same key is not this aggregate's.
            Ok(_) => {}
            Err(DecodeError::NotAnEvent(reason)) => out.undecodable.push((record, reason)),
            Err(DecodeError::Registry(e)) => {
                return Err(AuditLogError::Unavailable(format!(
                    "the schema registry: {e}"
                )))
            }
        }
    }
    Ok(out)
}

impl AggregateLog {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.undecodable.is_empty()
    }

    /// The history entries, in log order.
    pub fn history(&self) -> Vec<LoggedEvent> {
        self.events.iter().map(|(r, d)| d.logged(r)).collect()
    }

    /// The aggregate's chain checked record by record, in log order.
    pub fn verify(&self, aggregate_type: &str, aggregate_id: &str) -> ChainReport {
        let mut checker = ChainChecker::new();
        let mut all: Vec<(&LogRecord, Option<&Decoded>, Option<&str>)> = self
            .events
            .iter()
            .map(|(r, d)| (r, Some(d), None))
            .chain(
                self.undecodable
                    .iter()
                    .map(|(r, why)| (r, None, Some(why.as_str()))),
            )
            .collect();
        all.sort_by_key(|(r, ..)| (r.topic.clone(), r.partition, r.offset));
        for (record, decoded, why) in &all {
            let at = Location {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
            };
            match decoded {
                Some(d) => checker.check(Seen {
                    at: &at,
                    key: &record.key,
                    partitions: Some(self.partitions),
                    link: &d.link,
                    event_id: &d.envelope.event_id,
                }),
                None => checker.undecodable(&at, why.unwrap_or_default()),
            }
        }
        if checker.has_duplicates() {
            for (record, decoded, _) in &all {
                if let Some(d) = decoded {
                    let at = Location {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                    };
                    checker.first_use(&d.envelope.event_id, &at);
                }
            }
            checker.name_first_uses();
        }
        let (last_version, head_hash) = checker
            .head(aggregate_type, aggregate_id)
            .map(|(v, h)| (v, hex::encode(h)))
            .unwrap_or_default();
        ChainReport {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            events: checker.events(),
            last_version,
            head_hash,
            intact: checker.findings_total() == 0,
            findings: checker.findings().to_vec(),
        }
    }
}

/// [`AuditLog`] over the event log: what the query API's audit routes
/// read when `quickstore` serves it.
#[derive(Debug, Clone)]
pub struct LogAudit {
    pub log: Arc<dyn EventLog>,
    pub codec: Arc<AvroCodec>,
    pub topics: TopicNames,
}

impl LogAudit {
    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<AggregateLog, AuditLogError> {
        let loaded = load(
            self.log.as_ref(),
            &self.codec,
            &self.topics,
            None,
            aggregate_type,
            aggregate_id,
        )
        .await?;
        if loaded.is_empty() {
            return Err(AuditLogError::NotFound(
                aggregate_type.to_owned(),
                aggregate_id.to_owned(),
            ));
        }
        Ok(loaded)
    }
}

impl AuditLog for LogAudit {
    fn history<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LoggedEvent>, AuditLogError>> {
        async move { Ok(self.load(aggregate_type, aggregate_id).await?.history()) }.boxed()
    }

    fn state_at<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
        as_of_ms: i64,
    ) -> BoxFuture<'a, Result<StateAt, AuditLogError>> {
        async move {
            let loaded = self.load(aggregate_type, aggregate_id).await?;
            super::fold::state_at(
                &self.codec,
                aggregate_type,
                aggregate_id,
                &loaded.events,
                as_of_ms,
            )
            .await
        }
        .boxed()
    }

    fn verify<'a>(
        &'a self,
        aggregate_type: &'a str,
        aggregate_id: &'a str,
    ) -> BoxFuture<'a, Result<ChainReport, AuditLogError>> {
        async move {
            Ok(self
                .load(aggregate_type, aggregate_id)
                .await?
                .verify(aggregate_type, aggregate_id))
        }
        .boxed()
    }
}
