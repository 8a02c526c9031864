//! The whole-system report (`report.json`): schema-versioned, one section
//! per target (real servers, embedded twins), each with its figures beside
//! their baselines and the component reports they came from.

use anyhow::{ensure, Result};
use serde::Serialize;

use super::figure::{Figure, Target};
use super::log::LogBenchReport;
use super::machine::Machine;
use super::order_steps::StepsReport;
use super::projections::ProjectionsBenchReport;

/// Bumped whenever a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// What the `memory` section is (`quickstore bench memory`'s figures)
/// fills it.
pub const MEMORY_NOTE: &str = "each role's peak RSS at each number of aggregates (command processor, projectors, saga worker, command API, query API; each point a child process), as `quickstore bench memory` measures it; per role rss_ratio = RSS(largest) / RSS(smallest): flat ≈ 1–2, linear ≈ aggregates_ratio; the top-level points and rss_ratio are the command processor's";

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub generated_at: String,
    /// `quick` (checks the report; figures mean nothing) or `full`.
    pub mode: String,
    pub machine: Machine,
    pub targets: Vec<TargetReport>,
    /// RSS of each role at 10k and 1M aggregates (1k and 10k or 3k in quick
    /// mode): `bench memory`'s `MemoryFigures`, see `memory_note`.
    pub memory: Option<serde_json::Value>,
    pub memory_note: String,
    /// Plot files written beside this report (relative names).
    pub plots: Vec<String>,
}

/// One target: `kafka` (the real broker and CQL node) or `embedded`.
#[derive(Debug, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub figures: Vec<Figure>,
    pub command_append: LogBenchReport,
    pub orders: StepsReport,
    pub read_side: ProjectionsBenchReport,
}

impl TargetReport {
    pub fn new(
        target: &str,
        command_append: LogBenchReport,
        orders: StepsReport,
        read_side: ProjectionsBenchReport,
    ) -> Self {
        let figures = figures(target, &command_append, &orders, &read_side);
        Self {
            target: target.into(),
            figures,
            command_append,
            orders,
            read_side,
        }
    }
}

/// The figures of one target, each beside its baseline, with the issue's
/// targets (issue 7).
fn figures(
    target: &str,
    log: &LogBenchReport,
    orders: &StepsReport,
    read: &ProjectionsBenchReport,
) -> Vec<Figure> {
    let kafka = target == "kafka";
    let rate = orders.reference_rate;
    let step = orders.reference_step();
    let ack = step.map(|s| s.ack.clone()).unwrap_or_default();
    let raw = &orders.raw_produce_ack;
    let at_rate = format!("open loop at {rate} orders/s (the highest rate that held)");
    let mut out = vec![
        Figure::new(
            "command_append",
            "command append (decide + events + outcome + snapshot + offsets, one transaction)",
            "commands/s",
            log.processor_commands_per_sec,
        )
        .baseline(
            if kafka {
                "raw rdkafka transactional produce, same records"
            } else {
                "raw embedded-log transactions, same records"
            },
            log.raw_commands_per_sec,
        )
        .cpu(log.processor_cpu_us_per_command)
        .target(Target::RatioAtLeast(0.5))
        .conditions(format!(
            "{} commands, batch {}, {} records ({} bytes) per command",
            log.commands, log.batch, log.records_per_command, log.bytes_per_command
        )),
        Figure::new(
            "orders_completed",
            "orders driven to completion (best step of the open-loop sweep)",
            "orders/s",
            orders.max_achieved(),
        )
        .cpu(step.and_then(|s| s.cpu_us_per_order))
        .target(Target::ValueAtLeast(if kafka { 1_000.0 } else { 5_000.0 }))
        .conditions(format!(
            "offered {:?} orders/s until one did not hold",
            orders
                .steps
                .iter()
                .map(|s| s.offered_per_sec)
                .collect::<Vec<_>>()
        )),
    ];
    for (id, name, value, base, target) in [
        (
            "place_order_p50",
            "place-order ack p50",
            ack.p50_ms,
            raw.p50_ms,
            None,
        ),
        (
            "place_order_p95",
            "place-order ack p95",
            ack.p95_ms,
            raw.p95_ms,
            None,
        ),
        (
            "place_order_p99",
            "place-order ack p99",
            ack.p99_ms,
            raw.p99_ms,
            Some(Target::RatioAtMost(2.0)),
        ),
        (
            "place_order_p999",
            "place-order ack p99.9",
            ack.p999_ms,
            raw.p999_ms,
            None,
        ),
    ] {
        let mut f = Figure::new(id, name, "ms", value)
            .baseline(
                "raw produce-ack of a PlaceOrder-sized record, same rate",
                base,
            )
            .conditions(at_rate.clone());
        if let Some(t) = target {
            f = f.target(t);
        }
        out.push(f);
    }
    out.push(
        Figure::new(
            "place_order_vs_http_noop_p99",
            "place-order ack p99",
            "ms",
            ack.p99_ms,
        )
        .baseline(
            "HTTP no-op (GET /healthz, same server stack), same rate",
            orders.http_noop.p99_ms,
        )
        .cpu(ack.cpu_us_per_request)
        .conditions(at_rate.clone()),
    );
    if let Some(s) = step {
        out.push(
            Figure::new(
                "end_to_end_p50",
                "place-order to COMPLETED visible in the query API, p50",
                "ms",
                s.e2e_p50_ms,
            )
            .conditions(format!("{} sampled orders, {at_rate}", s.e2e_samples)),
        );
        out.push(
            Figure::new(
                "end_to_end_p99",
                "place-order to COMPLETED visible in the query API, p99",
                "ms",
                s.e2e_p99_ms,
            )
            .conditions(format!("{} sampled orders, {at_rate}", s.e2e_samples)),
        );
        let mut lag = Figure::new(
            "projector_lag_max",
            "projectors' largest total lag during the step",
            "events",
            s.projector_lag_max as f64,
        )
        .conditions(format!(
            "{at_rate}; the projectors wrote {:.0} events/s",
            s.projector_events_per_sec
        ));
        lag.zero_ok = true;
        out.push(lag);
    }
    out.push(
        Figure::new(
            "projector_write",
            "orders projector, rows written",
            "rows/s",
            read.projector_rows_per_sec,
        )
        .baseline(
            if kafka {
                "raw prepared INSERT loop on the CQL node"
            } else {
                "raw EmbeddedStore::write of the same mutations"
            },
            read.raw_rows_per_sec,
        )
        .cpu(read.projector_cpu_us_per_event)
        .target(Target::RatioAtLeast(0.5))
        .conditions(format!(
            "{} OrderPlaced events, {:.1} rows each",
            read.events, read.rows_per_event
        )),
    );
    let mut rebuild = Figure::new(
        "rebuild",
        "rebuild: the orders projection from offset 0 into a new table generation",
        "events/s",
        read.projector_events_per_sec,
    )
    .baseline(
        if kafka {
            "raw rdkafka consume loop, same topic"
        } else {
            "raw consume through the embedded log port, same topic"
        },
        read.raw_consume.records_per_sec,
    )
    .cpu(read.projector_cpu_us_per_event)
    .conditions(format!("{} events", read.events));
    if !kafka {
        rebuild = rebuild.target(Target::ValueAtLeast(100_000.0));
    }
    out.push(rebuild);
    out.push(
        Figure::new(
            "query_by_id_p99",
            "GET /orders/{id} p99",
            "ms",
            read.query.p99_ms,
        )
        .baseline(
            if kafka {
                "raw prepared SELECT by key on the CQL node"
            } else {
                "raw EmbeddedStore::get by key"
            },
            read.raw_get.p99_ms,
        )
        .cpu(read.query.cpu_us_per_request)
        .target(Target::ValueAtMost(5.0))
        .conditions(format!(
            "open loop at {} req/s (target stated at 5,000 req/s), {:.0} achieved",
            read.query_rate, read.query.achieved_rate
        )),
    );
    out.push(
        Figure::new(
            "orders_by_customer_p99",
            "GET /customers/{id}/orders p99",
            "ms",
            read.by_customer.p99_ms,
        )
        .baseline(
            "raw select by key, same store, same rate",
            read.raw_get.p99_ms,
        )
        .cpu(read.by_customer.cpu_us_per_request)
        .conditions(format!(
            "open loop at {} req/s, {:.0} achieved",
            read.query_rate, read.by_customer.achieved_rate
        )),
    );
    out
}

impl Report {
    /// Complete and sane: both sections of every target present, every
    /// figure a positive finite number with its ratio, no failed request,
    /// at least one load step, the plots listed.
    pub fn check(&self) -> Result<()> {
        ensure!(!self.targets.is_empty(), "the report has no target");
        for t in &self.targets {
            ensure!(
                t.figures.len() >= 12,
                "{}: only {} figures",
                t.target,
                t.figures.len()
            );
            for f in &t.figures {
                ensure!(
                    f.is_sane(),
                    "{}: figure {} is not sane: {f:?}",
                    t.target,
                    f.id
                );
            }
            ensure!(!t.orders.steps.is_empty(), "{}: no load step", t.target);
            for s in &t.orders.steps {
                ensure!(
                    s.ack.errors == 0 && s.ack.requests > 0 && s.completed > 0,
                    "{}: the step at {}/s failed requests or completed nothing: {s:?}",
                    t.target,
                    s.offered_per_sec
                );
                // Every order passes the orders processor, the saga and the
                // command API's outcome follower: their stages must show.
                for stage in [
                    "wait command-processor/orders",
                    "wait saga/order-fulfillment",
                    "wait command-api/outcomes",
                    "submit outcome",
                    "transaction orders",
                ] {
                    ensure!(
                        s.stages.iter().any(|x| x.stage == stage && x.count > 0),
                        "{}: the step at {}/s has no `{stage}` latency: {:?}",
                        t.target,
                        s.offered_per_sec,
                        s.stages
                    );
                }
            }
            ensure!(
                t.orders.raw_produce_ack.errors == 0 && t.orders.http_noop.errors == 0,
                "{}: a baseline request failed",
                t.target
            );
        }
        ensure!(self.plots.len() >= 2, "plots missing: {:?}", self.plots);
        Ok(())
    }
}
