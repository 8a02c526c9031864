//! W3C trace context across the log: the producer of a record injects the
//! current span's context as a `traceparent` (and `tracestate`) header;
//! the consumer that handles the record makes it the parent of its span.
//! Headers, not the Avro envelope: tools (kcat, Kafka UIs) see them
//! without decoding, and the contract's schemas stay free of transport
//! concerns.
//!
//! Without an OpenTelemetry layer installed (library tests) spans carry no
//! context: nothing is injected, and [`propagate`] copies the incoming
//! record's headers so the trace still crosses the hop.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
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

/// Writes the current span's context into `headers`.
pub fn inject_current(headers: &mut Vec<Header>) -> bool {
    inject_context(&tracing::Span::current().context(), headers)
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
mod tests {
    use super::*;

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
