//! What plugin instances log, captured for the test: a tracing layer, installed once for the
//! test process, keeping each event logged inside an instance's span
//! ([`PluginContext::span`](tributary_plugin_sdk::PluginContext::span)) under its instance.

use std::fmt::Debug;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// One line an instance logged.
#[derive(Debug, Clone)]
pub struct Line {
    /// `plugin` for what the guest logged through `host.log`; the host's own lines (such as
    /// the count of dropped lines) have the module that logged them.
    pub target: String,
    pub level: Level,
    pub message: String,
}

/// The instance a `plugin` span is of, kept in the span's extensions.
struct InstanceOf(String);

static LINES: Mutex<Vec<(String, Line)>> = Mutex::new(Vec::new());

struct Capture;

#[derive(Default)]
struct Fields {
    instance: Option<String>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "instance" => self.instance = Some(value.to_owned()),
            "message" => self.message = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        // `%value` fields and messages are `Debug` as their text, unquoted.
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "plugin" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(instance), Some(span)) = (fields.instance, ctx.span(id)) {
            span.extensions_mut().insert(InstanceOf(instance));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(instance) = scope
            .from_root()
            .find_map(|span| span.extensions().get::<InstanceOf>().map(|i| i.0.clone()))
        else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = Line {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            message: fields.message.unwrap_or_default(),
        };
        LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((instance, line));
    }
}

/// Starts capturing (once per process; later calls do nothing), before any service starts, so
/// that the spans of the instances' contexts are made with a subscriber that wants them. With
/// `TEST_LOG` set, the lines are printed too, as kit's test telemetry would.
pub fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let print = std::env::var("TEST_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::new(filter))
        });
        tracing_subscriber::registry()
            .with(Capture.with_filter(LevelFilter::INFO))
            .with(print)
            .try_init()
            .expect("no other tracing subscriber is installed before the capture");
    });
}

/// Every line `instance` logged so far, in order.
pub fn lines_of(instance: &str) -> Vec<Line> {
    LINES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|(of, _)| of == instance)
        .map(|(_, line)| line.clone())
        .collect()
}
