//! Observability end to end, once per adapter (the embedded log and store;
//! real Kafka, the real registry and the real CQL node): one trace from an
//! HTTP request through the command, the saga and the projection; the
//! `/metrics` series of the command API, the query API and an ops
//! listener; `/healthz` and `/readyz`.
//!
//! Spans go to an in-memory exporter installed as this binary's global
//! subscriber. The cases run one at a time: the metrics are the process's,
//! and a case's deltas must be its own.

#[allow(
    dead_code,
    reason = "the shared fixture has helpers these cases do not use"
)]
#[path = "../write_side/app.rs"]
mod app;
mod cases;
mod ops_cli;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use libtest_mimic::{Arguments, Failed, Trial};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use platform::testing::TestAdapter;

type Case = fn(TestAdapter) -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

macro_rules! case {
    ($module:ident :: $name:ident) => {
        (stringify!($name), (|a| Box::pin($module::$name(a))) as Case)
    };
}

/// The spans every case's system produced.
pub static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();

fn main() {
    let exporter = InMemorySpanExporter::default();
    let _guard = quickstore::telemetry::init_with_exporter(exporter.clone());
    let _ = SPANS.set(exporter);
    let cases = [
        case!(cases::one_trace_from_request_to_projection),
        case!(cases::metrics_exist_and_move),
        case!(cases::health_and_readiness),
        case!(ops_cli::projections_run_serves_an_ops_listener),
    ];
    let mut trials = Vec::new();
    for adapter in TestAdapter::ALL {
        for (name, case) in cases {
            trials.push(Trial::test(
                format!("{}::{name}", adapter.name()),
                move || platform::testing::run_case(case(adapter)).map_err(Failed::from),
            ));
        }
    }
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit();
}
