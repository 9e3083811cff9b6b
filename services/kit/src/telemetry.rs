//! Logs and traces: `tracing` everywhere, exported through OpenTelemetry (OTLP/HTTP) when
//! `telemetry.otlp_endpoint` is set.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Keeps the trace exporter alive; dropping it flushes the spans still buffered.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("Flushing traces on shutdown failed: {e}");
            }
        }
    }
}

/// The telemetry pipeline could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from `telemetry.otlp_endpoint`.
    #[error("cannot export traces to `telemetry.otlp_endpoint` {endpoint}: {source}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The log filter does not parse.
    #[error("`telemetry.log_filter` is not a log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Builds a tracer provider that exports to an OTLP/HTTP endpoint in batches.
pub fn otlp_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let traces_url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// Installs the process-wide subscriber: a filtered log layer and, when an endpoint is
/// configured, an OpenTelemetry layer. Whatever the filter, async-nats's wire-level trace is
/// left out: it prints every message's payload, and payloads carry plugin secrets. Only the first call in a process installs anything;
/// later calls (several services in one process, tests) return an empty guard.
pub fn init(
    config: &TelemetryConfig,
    service_name: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    if INSTALLED.get().is_some() {
        return Ok(TelemetryGuard { provider: None });
    }
    let provider = if config.otlp_endpoint.is_empty() {
        None
    } else {
        Some(otlp_provider(&config.otlp_endpoint, service_name)?)
    };
    let installed = subscriber(config, provider.as_ref().map(|p| p.tracer("tributary")))?
        .try_init()
        .is_ok();
    let _ = INSTALLED.set(());
    if installed {
        Ok(TelemetryGuard { provider })
    } else {
        Ok(TelemetryGuard { provider: None })
    }
}

/// The subscriber [`init`] installs: the log layer and, with a `tracer`, the OpenTelemetry
/// layer, each under `telemetry.log_filter` (and with async-nats's payload trace left out):
/// spans the filter drops are not exported either, so neither `debug` spans nor what the
/// filter keeps out of the logs for a reason reach the collector.
pub fn subscriber(
    config: &TelemetryConfig,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) -> Result<impl tracing::Subscriber + Send + Sync, TelemetryError> {
    let filter = || -> Result<EnvFilter, TelemetryError> {
        Ok(without_payloads(EnvFilter::try_new(&config.log_filter)?))
    };
    let fmt_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
    };
    let otel_layer = match tracer {
        Some(tracer) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(filter()?),
        ),
        None => None,
    };
    Ok(tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer.with_filter(filter()?)))
}

/// Installs a log subscriber for tests when `TEST_LOG` is set; silent otherwise.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(
                std::env::var("TEST_LOG").unwrap_or_default(),
            ))
            .with_test_writer()
            .try_init();
    }
}

/// Targets that print message payloads at `trace` (request bodies with plugin secrets among
/// them); they are held at `debug` whatever the configured filter says.
const PAYLOAD_TARGETS: [&str; 1] = ["async_nats::connection"];

fn without_payloads(mut filter: EnvFilter) -> EnvFilter {
    for target in PAYLOAD_TARGETS {
        if let Ok(directive) = format!("{target}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    #[test]
    fn spans_the_log_filter_drops_are_not_exported() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let config = TelemetryConfig {
            log_filter: "warn".to_owned(),
            log_format: LogFormat::Text,
            otlp_endpoint: String::new(),
        };
        let subscriber = subscriber(&config, Some(provider.tracer("test"))).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("filtered_out").in_scope(|| {});
            tracing::trace_span!(target: "async_nats::connection", "payload").in_scope(|| {});
            tracing::warn_span!("kept").in_scope(|| {});
        });
        provider.force_flush().unwrap();
        let names: Vec<String> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, vec!["kept".to_owned()]);
    }
}
