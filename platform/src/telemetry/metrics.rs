//! The `quickstore_*` Prometheus series (docs/observability.md lists each
//! with its labels). One registry per process: every service of a process
//! (`quickstore dev` runs them all) reports into it, and every `/metrics`
//! of the process serves all of it.

use std::sync::LazyLock;

use crate::eventlog::LogRecord;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Request and transaction latencies: 1 ms … 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A record's wait and a command's stages: 1 ms … 30 s, finer than
/// [`LATENCY_BUCKETS`] between 1 and 100 ms, where a hop should sit.
const STAGE_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// Commands per transaction: 1 … the default batch cap (500) and beyond.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Every series, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `quickstore_http_request_duration_seconds{service, method, route, status}`.
    pub http_request_duration: HistogramVec,
    /// `quickstore_commands_total{context, command_type, outcome}`.
    pub commands: IntCounterVec,
    /// `quickstore_command_batch_size{context}`.
    pub command_batch_size: HistogramVec,
    /// `quickstore_command_transaction_duration_seconds{context}`.
    pub command_transaction_duration: HistogramVec,
    /// `quickstore_record_wait_seconds{consumer}`: see [`Metrics::record_waits`].
    pub record_wait: HistogramVec,
    /// `quickstore_command_submit_seconds{stage}`: the command API's side
    /// of a command, `append` (sent until the broker acknowledged it) and
    /// `outcome` (acknowledged until its outcome arrived).
    pub command_submit: HistogramVec,
    /// `quickstore_consumer_lag{group, topic, partition}`.
    pub consumer_lag: IntGaugeVec,
    /// `quickstore_saga_instances{saga, state, step}`.
    pub saga_instances: IntGaugeVec,
    /// `quickstore_projection_lag{projection}`.
    pub projection_lag: IntGaugeVec,
    /// `quickstore_dlq_size{projection, kind}`.
    pub dlq_size: IntGaugeVec,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "quickstore_http_request_duration_seconds",
                "HTTP request latency by service, method, matched route template and status",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "method", "route", "status"],
        )?;
        let commands = IntCounterVec::new(
            Opts::new(
                "quickstore_commands_total",
                "Commands decided by the command processors, by outcome (counted when the transaction carrying the outcome committed)",
            ),
            &["context", "command_type", "outcome"],
        )?;
        let command_batch_size = HistogramVec::new(
            HistogramOpts::new(
                "quickstore_command_batch_size",
                "Commands per committed command-processor transaction",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
            &["context"],
        )?;
        let command_transaction_duration = HistogramVec::new(
            HistogramOpts::new(
                "quickstore_command_transaction_duration_seconds",
                "Command-processor transaction latency, begin to committed",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["context"],
        )?;
        let record_wait = HistogramVec::new(
            HistogramOpts::new(
                "quickstore_record_wait_seconds",
                "From a record's producer timestamp to a consumer taking it up: the producer's linger, the transaction's commit, the fetch and the consumer's own queue",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["consumer"],
        )?;
        let command_submit = HistogramVec::new(
            HistogramOpts::new(
                "quickstore_command_submit_seconds",
                "The command API's side of a command: append (sent until the log acknowledged it), outcome (acknowledged until its outcome arrived)",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "quickstore_consumer_lag",
                "Records a consumer group has yet to consume, per partition (read_committed end minus the group's position)",
            ),
            &["group", "topic", "partition"],
        )?;
        let saga_instances = IntGaugeVec::new(
            Opts::new(
                "quickstore_saga_instances",
                "Live saga instances held by this process's saga workers, by state (active, or waiting for a deadline) and step",
            ),
            &["saga", "state", "step"],
        )?;
        let projection_lag = IntGaugeVec::new(
            Opts::new(
                "quickstore_projection_lag",
                "Events a projection has yet to project, summed over its input partitions",
            ),
            &["projection"],
        )?;
        let dlq_size = IntGaugeVec::new(
            Opts::new(
                "quickstore_dlq_size",
                "Dead letters of a projection: parked keys now (kind=parked_keys), records dead-lettered since the process started (kind=dead_letters)",
            ),
            &["projection", "kind"],
        )?;
        registry.register(Box::new(http_request_duration.clone()))?;
        registry.register(Box::new(commands.clone()))?;
        registry.register(Box::new(command_batch_size.clone()))?;
        registry.register(Box::new(command_transaction_duration.clone()))?;
        registry.register(Box::new(record_wait.clone()))?;
        registry.register(Box::new(command_submit.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        registry.register(Box::new(saga_instances.clone()))?;
        registry.register(Box::new(projection_lag.clone()))?;
        registry.register(Box::new(dlq_size.clone()))?;
        Ok(Self {
            registry,
            http_request_duration,
            commands,
            command_batch_size,
            command_transaction_duration,
            record_wait,
            command_submit,
            consumer_lag,
            saga_instances,
            projection_lag,
            dlq_size,
        })
    }

    /// Observes, for each of `records`, how long it waited between being
    /// sent ([`sent_at_ms`]) and `consumer` taking it up now. Each hop of a
    /// command or an event is one consumer, so the series says where time
    /// goes between hops. Producer and consumer clocks differ across hosts:
    /// the figure carries their skew (a negative wait counts as 0).
    pub fn record_waits(&self, consumer: &str, records: &[LogRecord]) {
        self.record_waits_at(consumer, records, crate::eventlog::unix_now_ms());
    }

    /// [`Metrics::record_waits`] as of `now_ms` (Unix ms).
    fn record_waits_at(&self, consumer: &str, records: &[LogRecord], now_ms: i64) {
        if records.is_empty() {
            return;
        }
        let histogram = self.record_wait.with_label_values(&[consumer]);
        for sent in records.iter().filter_map(sent_at_ms) {
            histogram.observe(now_ms.saturating_sub(sent).max(0) as f64 / 1000.0);
        }
    }

    /// The stage series as they stand: every consumer's record wait
    /// (`wait <consumer>`), the command API's submit stages (`submit
    /// <stage>`) and each context's command transaction (`transaction
    /// <context>`). The benchmark diffs two readings to say where a step's
    /// time went.
    pub fn stage_readings(&self) -> Vec<HistogramReading> {
        let mut out = Vec::new();
        for (prefix, vec) in [
            ("wait", &self.record_wait),
            ("submit", &self.command_submit),
            ("transaction", &self.command_transaction_duration),
        ] {
            for family in prometheus::core::Collector::collect(vec) {
                for metric in family.get_metric() {
                    let label = metric
                        .get_label()
                        .iter()
                        .map(|l| l.value())
                        .collect::<Vec<_>>()
                        .join(",");
                    let h = metric.get_histogram();
                    out.push(HistogramReading {
                        series: format!("{prefix} {label}"),
                        count: h.get_sample_count(),
                        sum_seconds: h.get_sample_sum(),
                        buckets: h
                            .get_bucket()
                            .iter()
                            .map(|b| (b.upper_bound(), b.cumulative_count()))
                            .collect(),
                    });
                }
            }
        }
        out
    }

    /// Every series in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[allow(
    clippy::expect_used,
    reason = "constant series definitions: a failure is a programming error caught by the first test"
)]
static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| Metrics::new().expect("the quickstore_* series are well formed"));

/// The process's series.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// One labelled histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// `<kind> <label values>`, e.g. `wait saga/order-fulfillment`.
    pub series: String,
    pub count: u64,
    pub sum_seconds: f64,
    /// (upper bound in seconds, cumulative count), ascending; the `+Inf`
    /// bucket is `count`.
    pub buckets: Vec<(f64, u64)>,
}

/// The header an event record carries with the Unix ms its processor sent
/// it at. An event record's own timestamp is its command's `issued_at`
/// (data: the same on every replay), so without this header a consumer of
/// events would count the wait from the command's issue, not from this hop.
pub const SENT_AT_HEADER: &str = "sent_at";

/// A [`SENT_AT_HEADER`] for a record sent now.
pub fn sent_at_header() -> crate::eventlog::Header {
    crate::eventlog::Header {
        key: SENT_AT_HEADER.into(),
        value: crate::eventlog::unix_now_ms().to_string().into_bytes(),
    }
}

/// When `record` was sent: its [`SENT_AT_HEADER`] if it has a valid one,
/// else its timestamp (the producer's clock at send for every record but
/// events); `None` for a record without either.
pub fn sent_at_ms(record: &LogRecord) -> Option<i64> {
    let from_header = record
        .header(SENT_AT_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok());
    from_header
        .or(Some(record.timestamp_ms))
        .filter(|&ms| ms > 0)
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_renders_once_it_has_a_value() {
        let m = metrics();
        m.commands
            .with_label_values(&["orders", "PlaceOrder", "accepted"])
            .inc();
        m.projection_lag.with_label_values(&["orders"]).set(0);
        let text = m.render();
        assert!(text.contains(
            "quickstore_commands_total{command_type=\"PlaceOrder\",context=\"orders\",outcome=\"accepted\"}"
        ));
        assert!(text.contains("quickstore_projection_lag{projection=\"orders\"} 0"));
    }

    fn record(timestamp_ms: i64, sent_at: Option<&str>) -> LogRecord {
        LogRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: Vec::new(),
            value: None,
            headers: sent_at
                .map(|v| crate::eventlog::Header {
                    key: SENT_AT_HEADER.into(),
                    value: v.as_bytes().to_vec(),
                })
                .into_iter()
                .collect(),
            timestamp_ms,
        }
    }

    #[test]
    fn a_record_was_sent_at_its_header_else_its_timestamp() {
        assert_eq!(sent_at_ms(&record(1_000, Some("1500"))), Some(1_500));
        assert_eq!(sent_at_ms(&record(1_000, None)), Some(1_000));
        // A header that is not a number does not hide the timestamp.
        assert_eq!(sent_at_ms(&record(1_000, Some("soon"))), Some(1_000));
        // No time at all (librdkafka reports none as 0): not observed,
        // rather than a wait of 56 years.
        assert_eq!(sent_at_ms(&record(0, None)), None);
        assert_eq!(sent_at_ms(&record(i64::MIN, None)), None);
    }

    #[test]
    fn record_waits_never_panic_nor_count_records_without_a_time() {
        let m = metrics();
        let h = m.record_wait.with_label_values(&["test/consumer"]);
        let before = h.get_sample_count();
        m.record_waits_at(
            "test/consumer",
            &[
                record(0, None),
                record(i64::MAX, None),
                record(1, Some("9223372036854775807")),
                record(5_000, None),
            ],
            i64::MIN,
        );
        assert_eq!(h.get_sample_count() - before, 3);
    }
}
