//! Live tails of a topic ([`crate::eventlog::EventLog::follow`]).
//!
//! A tail is only positions (one per partition) and a loop: read what the
//! writer published past them, else wait for its next commit. Open and
//! aborted transactions are never written, so whatever is published is
//! committed — read_committed by construction, as everywhere here. No
//! thread and no group: dropping the stream is the whole shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::store::{self, ReadSpan};
use super::topics::TopicState;
use super::{blocking, Shared};
use crate::eventlog::{LogError, LogRecord};

/// Starts a tail at each partition's published end as of this call: every
/// commit published later is past it, so nothing committed after the call
/// is missed and nothing committed before is repeated.
///
/// `chunk` bounds the records read per wake-up (spread over the partitions
/// with news); `tick` is how long a wait lasts at most (see
/// [`Tail::next_batch`]).
pub(super) fn follow(
    shared: Arc<Shared>,
    topic: Arc<TopicState>,
    chunk: usize,
    tick: Duration,
) -> Result<BoxStream<'static, Result<LogRecord, LogError>>, LogError> {
    let positions = (0..topic.partition_count())
        .map(|p| topic.end(p))
        .collect::<Result<Vec<_>, _>>()?;
    let tail = Tail {
        shared,
        topic,
        positions,
        chunk: chunk.max(1),
        tick,
    };
    // `try_unfold` ends the stream after the first error, as the port says.
    Ok(stream::try_unfold(tail, |mut tail| async move {
        let records = tail.next_batch().await?;
        Ok(Some((records, tail)))
    })
    .map_ok(|records| stream::iter(records.into_iter().map(Ok)))
    .try_flatten()
    .boxed())
}

struct Tail {
    shared: Arc<Shared>,
    topic: Arc<TopicState>,
    /// Per partition (index = partition), the next offset to deliver.
    positions: Vec<i64>,
    chunk: usize,
    tick: Duration,
}

/// One span of a read: which partition, where it ends, how many asked.
struct Planned {
    partition: usize,
    until: i64,
    asked: usize,
}

impl Tail {
    /// The next non-empty batch, each partition's records in offset order.
    ///
    /// Waits on the writer's `Notify`, registering before looking at the
    /// ends (as `member.rs` polls do): `notify_waiters` wakes only futures
    /// that already exist, so a commit published between the look and the
    /// wait still wakes us. `tick` is only a fallback against a missed
    /// wake-up; it costs an atomic load per partition.
    async fn next_batch(&mut self) -> Result<Vec<LogRecord>, LogError> {
        // Our own handle, so the notification borrow does not pin `self`.
        let shared = Arc::clone(&self.shared);
        loop {
            let notified = shared.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();

            let (plan, spans) = self.plan()?;
            if spans.is_empty() {
                let _ = tokio::time::timeout(self.tick, notified).await;
                continue;
            }
            let reader = Arc::clone(&self.shared);
            let records = blocking(move || store::read_spans(&reader.db, &spans)).await?;
            self.advance(&records, &plan);
            if !records.is_empty() {
                return Ok(records);
            }
            // Only holes (a compacted topic): positions moved past them.
        }
    }

    /// Spans over every partition with published records past its
    /// position, each an equal share of `chunk` (rounded up) so a busy
    /// partition does not hold back the others.
    fn plan(&self) -> Result<(Vec<Planned>, Vec<ReadSpan>), LogError> {
        let mut news = Vec::new();
        for (index, &position) in self.positions.iter().enumerate() {
            let partition = i32::try_from(index).unwrap_or(i32::MAX);
            let end = self.topic.end(partition)?;
            if end > position {
                news.push((index, partition, position, end));
            }
        }
        let quota = self.chunk.div_ceil(news.len().max(1));
        let mut plan = Vec::with_capacity(news.len());
        let mut spans = Vec::with_capacity(news.len());
        for (index, partition, from, until) in news {
            let asked = usize::try_from(until - from).map_or(quota, |n| n.min(quota));
            plan.push(Planned {
                partition: index,
                until,
                asked,
            });
            spans.push(ReadSpan {
                topic: Arc::clone(&self.topic),
                partition,
                from,
                until,
                count: asked,
            });
        }
        Ok((plan, spans))
    }

    /// Moves each read partition past its last record; a span that yielded
    /// fewer records than asked was read up to its end (compaction holes),
    /// so the position jumps there — else it would look "new" forever.
    fn advance(&mut self, records: &[LogRecord], plan: &[Planned]) {
        for record in records {
            if let Some(position) = usize::try_from(record.partition)
                .ok()
                .and_then(|p| self.positions.get_mut(p))
            {
                *position = record.offset + 1;
            }
        }
        for planned in plan {
            let read = records
                .iter()
                .filter(|r| usize::try_from(r.partition).ok() == Some(planned.partition))
                .count();
            if read < planned.asked {
                let position = &mut self.positions[planned.partition];
                *position = (*position).max(planned.until);
            }
        }
    }
}
