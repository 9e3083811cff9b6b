//! W3C trace context across NATS: `traceparent` (and `tracestate`) in message headers.
//!
//! A publisher calls [`inject`] (or [`crate::Envelope::headers`], which does it for the current
//! span); a consumer calls [`set_parent`] on the span it opens for the message, so one trace
//! follows an item from webhook or connector through the ETL to the index.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes headers into a NATS header map.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// Reads headers from a NATS header map.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// The W3C header that carries a trace across NATS.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Puts the trace context of `span` into `headers`. Does nothing when the span is not
/// recorded by OpenTelemetry (no exporter configured).
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let cx = span.context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Puts the trace context of the current span into `headers`.
pub fn inject_current(headers: &mut HeaderMap) {
    inject(&tracing::Span::current(), headers);
}

/// Reads the remote trace context from `headers`.
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes the publisher's span, carried in `headers`, the parent of `span`. A message without
/// a `traceparent` leaves `span` a root.
pub fn set_parent(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(headers) = headers {
        if headers.get(TRACEPARENT_HEADER).is_some() {
            // An error here only means the span is not recorded; there is nothing to link.
            let _ = span.set_parent(extract(headers));
        }
    }
}
