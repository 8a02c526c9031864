//! W3C trace context across the log: the producer of a record injects the
//! current span's context as a `traceparent` (and `tracestate`) header;
//! the consumer that handles the record makes it the parent of its span.
//! Headers, not the Avro envelope: tools (kcat, Kafka UIs) see them
//! without decoding, and the contract's schemas stay free of transport
//! concerns.
//!
//! Without an OpenTelemetry layer (no span exporter is configured, or a
//! library test) spans carry no context, yet the trace id still crosses
//! every hop (ADR 0029):
//! - an HTTP request runs in [`in_request_trace`]: the caller's
//!   `traceparent`, or a new trace minted for it;
//! - a record's handler runs under [`handling`]: the record's own trace
//!   headers;
//! - [`inject_current`] writes whichever of those is current, and
//!   [`propagate`] copies the incoming record's headers.
//!
//! A record then names the last hop that had a tracer as its parent —
//! nothing else existed to name, since no span was recorded.

use std::cell::RefCell;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::eventlog::Header;

/// The W3C trace-context headers.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

struct HeaderInjector<'a>(&'a mut Vec<Header>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // One value per key: a record re-sent under a new span carries the
        // new context only.
        self.0.retain(|h| h.key != key);
        if value.is_empty() {
            // The propagator writes an empty `tracestate` when there is
            // none: a header only when there is something to carry.
            return;
        }
        self.0.push(Header {
            key: key.to_owned(),
            value: value.into_bytes(),
        });
    }
}

struct HeaderExtractor<'a>(&'a [Header]);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| std::str::from_utf8(&h.value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.key.as_str()).collect()
    }
}

struct HttpExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HttpExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes `cx` into `headers` (nothing when it has no valid span).
pub fn inject_context(cx: &Context, headers: &mut Vec<Header>) -> bool {
    if !cx.span().span_context().is_valid() {
        return false;
    }
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
    true
}

/// Writes the current span's context into `headers`; without one (no
/// OpenTelemetry layer), the record or request being handled.
pub fn inject_current(headers: &mut Vec<Header>) -> bool {
    if inject_context(&tracing::Span::current().context(), headers) {
        return true;
    }
    let handled = HANDLING.with(|h| h.borrow().as_ref().map(|cx| inject_context(cx, headers)));
    if let Some(injected) = handled {
        return injected;
    }
    REQUEST_TRACE
        .try_with(|cx| inject_context(cx, headers))
        .unwrap_or(false)
}

thread_local! {
    /// The trace of the record whose handler runs on this thread now
    /// ([`handling`]).
    static HANDLING: RefCell<Option<Context>> = const { RefCell::new(None) };
}

tokio::task_local! {
    /// The trace of the HTTP request this task serves ([`in_request_trace`]).
    static REQUEST_TRACE: Context;
}

/// Until dropped, [`inject_current`] on this thread falls back to the
/// trace in `headers` — or, for a record without one (a timer firing), a
/// new trace. For synchronous handling only (a thread, not a task).
pub fn handling(headers: &[Header]) -> HandlingGuard {
    if tracer_installed() {
        // The handler's span carries the trace.
        return HandlingGuard {
            previous: None,
            restore: false,
        };
    }
    let cx = or_new_trace(extract(headers));
    HandlingGuard {
        previous: HANDLING.with(|h| h.replace(Some(cx))),
        restore: true,
    }
}

/// Restores the trace [`handling`] replaced.
#[derive(Debug)]
#[must_use = "the fallback trace lasts only while the guard lives"]
pub struct HandlingGuard {
    previous: Option<Context>,
    restore: bool,
}

impl Drop for HandlingGuard {
    fn drop(&mut self) {
        if !self.restore {
            return;
        }
        let previous = self.previous.take();
        HANDLING.with(|h| *h.borrow_mut() = previous);
    }
}

/// Runs `request` with `caller` (its [`extract_http`]ed `traceparent`), or
/// a new trace when it sent none, as the fallback of [`inject_current`].
pub async fn in_request_trace<F: std::future::Future>(caller: Context, request: F) -> F::Output {
    REQUEST_TRACE.scope(or_new_trace(caller), request).await
}

/// Set once the process installed an OpenTelemetry layer.
static TRACER_INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says the process installed an OpenTelemetry layer: its spans carry the
/// trace from now on, and the fallbacks stand down.
pub fn mark_tracer_installed() {
    TRACER_INSTALLED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`mark_tracer_installed`] was called.
pub fn tracer_installed() -> bool {
    TRACER_INSTALLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// `cx` when it carries a valid span context, else [`new_trace`].
fn or_new_trace(cx: Context) -> Context {
    if cx.span().span_context().is_valid() {
        cx
    } else {
        new_trace()
    }
}

/// A new root: random trace and span ids, sampled (so a downstream
/// process that does export records its part, as it would have before).
fn new_trace() -> Context {
    let ids = RandomIdGenerator::default();
    Context::new().with_remote_span_context(SpanContext::new(
        ids.new_trace_id(),
        ids.new_span_id(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// The current span's context into `headers`, or else (no OpenTelemetry
/// layer) the trace headers of `incoming`, the record being handled.
pub fn propagate(headers: &mut Vec<Header>, incoming: &[Header]) {
    if inject_current(headers) {
        return;
    }
    for h in incoming {
        if h.key == TRACEPARENT || h.key == TRACESTATE {
            headers.retain(|o| o.key != h.key);
            headers.push(h.clone());
        }
    }
}

/// The context carried by record headers (empty if none or malformed).
pub fn extract(headers: &[Header]) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The context carried by HTTP request headers.
pub fn extract_http(headers: &axum::http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HttpExtractor(headers))
}

/// Makes the context in `headers` the parent of `span`: the handling of a
/// record continues the trace of whoever produced it. A record without
/// (valid) trace headers leaves `span` a root.
pub fn continue_from(span: &tracing::Span, headers: &[Header]) {
    set_parent(span, extract(headers));
}

/// Makes `cx` the parent of `span` when it carries a valid span context.
pub fn set_parent(span: &tracing::Span, cx: Context) {
    if cx.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed: then
        // there is no trace to continue.
        let _ = span.set_parent(cx);
    }
}

/// Links `span` to the context in `headers` (a batch span to the spans of
/// the records it carries).
pub fn link_to(span: &tracing::Span, headers: &[Header]) {
    let cx = extract(headers);
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

/// The trace id (32 hex digits) in a `traceparent` header, if well formed.
pub fn trace_id_of(headers: &[Header]) -> Option<String> {
    let cx = extract(headers);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn traced() -> Vec<Header> {
        vec![Header {
            key: TRACEPARENT.into(),
            value: format!("00-{TRACE}-00f067aa0ba902b7-01").into_bytes(),
        }]
    }

    #[test]
    fn without_a_tracer_the_handled_record_s_trace_is_injected_while_the_guard_lives() {
        let mut out = Vec::new();
        assert!(!inject_current(&mut out), "nothing is being handled");
        {
            let _trace = handling(&traced());
            assert!(inject_current(&mut out));
            assert_eq!(trace_id_of(&out).as_deref(), Some(TRACE));
            {
                // A timer: a trace of its own, then the record's again.
                let _timer = handling(&[]);
                let mut own = Vec::new();
                assert!(inject_current(&mut own));
                let id = trace_id_of(&own).unwrap();
                assert_ne!(id, TRACE);
                assert_eq!(id.len(), 32);
            }
            let mut again = Vec::new();
            assert!(inject_current(&mut again));
            assert_eq!(trace_id_of(&again).as_deref(), Some(TRACE));
        }
        assert!(
            !inject_current(&mut Vec::new()),
            "the guard restored nothing"
        );
    }

    #[tokio::test]
    async fn without_a_tracer_a_request_carries_the_caller_s_trace_or_a_new_one() {
        let mut http = axum::http::HeaderMap::new();
        http.insert(
            TRACEPARENT,
            format!("00-{TRACE}-00f067aa0ba902b7-01").parse().unwrap(),
        );
        let carried = in_request_trace(extract_http(&http), async {
            tokio::task::yield_now().await;
            let mut out = Vec::new();
            inject_current(&mut out);
            trace_id_of(&out)
        })
        .await;
        assert_eq!(carried.as_deref(), Some(TRACE));
        let minted = in_request_trace(extract_http(&axum::http::HeaderMap::new()), async {
            let mut out = Vec::new();
            inject_current(&mut out);
            trace_id_of(&out)
        })
        .await;
        assert!(minted.is_some_and(|id| id != TRACE));
    }

    #[test]
    fn a_traceparent_round_trips_through_record_headers() {
        let incoming = vec![Header {
            key: TRACEPARENT.into(),
            value: b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec(),
        }];
        assert_eq!(
            trace_id_of(&incoming).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let cx = extract(&incoming);
        let mut out = Vec::new();
        assert!(inject_context(&cx, &mut out));
        assert_eq!(out, incoming);
    }

    #[test]
    fn malformed_or_missing_headers_carry_no_trace() {
        assert_eq!(trace_id_of(&[]), None);
        let bad = vec![Header {
            key: TRACEPARENT.into(),
            value: b"00-zz-00f067aa0ba902b7-01".to_vec(),
        }];
        assert_eq!(trace_id_of(&bad), None);
        let mut out = Vec::new();
        assert!(!inject_context(&extract(&bad), &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn without_a_layer_the_incoming_trace_headers_are_copied() {
        let incoming = vec![
            Header {
                key: TRACEPARENT.into(),
                value: b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec(),
            },
            Header {
                key: "event_type".into(),
                value: b"x".to_vec(),
            },
        ];
        let mut out = Vec::new();
        propagate(&mut out, &incoming);
        assert_eq!(out, incoming[..1].to_vec());
    }
}
