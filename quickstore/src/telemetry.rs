//! Tracing setup. Logs go to stderr so stdout stays for command output.
//!
//! Up to two layers on one subscriber:
//! - logs (`fmt`), filtered by `RUST_LOG` or `-v`;
//! - spans to OpenTelemetry for QuickStore's own crates at INFO (whatever
//!   the log filter), exported over OTLP (HTTP/protobuf) — only when an
//!   endpoint is set (`QS_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`);
//!   tests swap the exporter for an in-memory one ([`init_with_exporter`]).
//!
//! Without an endpoint there is no OpenTelemetry layer at all: building
//! spans nobody exports cost a command processor more than half of its
//! deciding time (ADR 0029). The trace id still crosses every hop: the
//! HTTP layer and the record handlers fall back to the request's or the
//! record's own trace (`platform::telemetry::propagation`).

use std::path::Path;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The crates whose spans are traced (the rest — rdkafka, scylla, hyper —
/// would swamp a trace with transport detail).
const TRACED: &[&str] = &[
    "quickstore",
    "platform",
    "command_api",
    "sagas",
    "projectors",
    "query_api",
];

/// Flushes and stops the span export when dropped (end of `main`).
#[derive(Debug)]
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: flushing spans: {e}");
            }
        }
    }
}

/// Installs the subscriber; `RUST_LOG` wins over `-v`. The OTLP endpoint
/// and service name come from the settings (`--config` file, `QS_*`, the
/// standard `OTEL_*` variables); a settings error is left for the command
/// to report.
pub fn init(verbose: u8, config: Option<&Path>) -> TelemetryGuard {
    let settings = platform::config::Settings::load(config).ok();
    let service = settings
        .as_ref()
        .map_or_else(|| "quickstore".to_owned(), |s| s.service_name());
    let endpoint = settings.as_ref().and_then(|s| s.otlp_endpoint());
    let provider = endpoint.and_then(|endpoint| match otlp_exporter(&endpoint) {
        // The batch processor exports from its own thread: a slow
        // collector never blocks a request or a transaction.
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_resource(resource(&service))
                .with_batch_exporter(exporter)
                .build(),
        ),
        Err(e) => {
            eprintln!("warning: no span export to {endpoint}: {e}");
            None
        }
    });
    install(log_level(verbose), provider)
}

/// Like [`init`] with every span handed to `exporter` as it ends (tests:
/// `opentelemetry_sdk::trace::InMemorySpanExporter`). Logs only when
/// `RUST_LOG` asks for them: a test's output is its verdict.
pub fn init_with_exporter<E: SpanExporter + 'static>(exporter: E) -> TelemetryGuard {
    let provider = SdkTracerProvider::builder()
        .with_resource(resource("quickstore-test"))
        .with_simple_exporter(exporter)
        .build();
    install("off", Some(provider))
}

fn log_level(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    }
}

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_owned())
        .build()
}

/// OTLP over HTTP/protobuf to `<endpoint>/v1/traces` (the collector's
/// default path; an endpoint already ending in it is used as is).
fn otlp_exporter(
    endpoint: &str,
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    let endpoint = endpoint.trim_end_matches('/');
    let url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_headers(Default::default())
        .build()
}

fn install(default: &str, provider: Option<SdkTracerProvider>) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let otel = provider.as_ref().map(|provider| {
        let traced = TRACED.iter().fold(Targets::new(), |t, target| {
            t.with_target(*target, LevelFilter::INFO)
        });
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("quickstore"))
            .with_filter(traced)
    });
    let exporting = otel.is_some();
    // A second init (tests) is harmless: keep the first subscriber.
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()
        .is_ok();
    if installed && exporting {
        platform::telemetry::propagation::mark_tracer_installed();
    }
    TelemetryGuard {
        provider: provider.filter(|_| installed),
    }
}
