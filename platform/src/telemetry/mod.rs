//! Observability shared by every service (docs/observability.md):
//!
//! - [`propagation`] — W3C trace context (`traceparent`, `tracestate`) in
//!   record headers and HTTP headers, so one trace follows a request from
//!   the HTTP API through commands, events, saga steps and projections.
//! - [`metrics`] — the `quickstore_*` Prometheus series and their text
//!   exposition.
//! - [`http`] — the axum layer every API mounts: a span per request
//!   (continuing an incoming `traceparent`) and the request histogram.
//! - [`health`] — `/healthz`, `/readyz` (named readiness checks) and
//!   `/metrics` as a router any service merges, or serves alone as the ops
//!   listener of a process without an HTTP API.
//! - [`lag`] — a sampler of consumer lag per group and partition from the
//!   group's committed offsets.

pub mod health;
pub mod http;
pub mod lag;
pub mod metrics;
pub mod propagation;
pub mod request_limits;

pub use health::{ops_router, Readiness};
pub use metrics::metrics;
pub use propagation::{continue_from, inject_current, trace_id_of};
