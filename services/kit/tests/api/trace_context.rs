use std::time::Duration;

use futures::StreamExt;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tributary_kit::testing::TestEnv;

/// Spans go to an in-memory exporter through the same tracing-opentelemetry layer the
/// services use; the subscriber is local to the calling thread while the guard lives.
fn in_memory_tracing() -> (
    InMemorySpanExporter,
    SdkTracerProvider,
    tracing::subscriber::DefaultGuard,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, provider, guard)
}

#[tokio::test]
async fn the_publishers_span_is_the_parent_of_the_consumers_span_across_nats() {
    let (exporter, provider, _guard) = in_memory_tracing();

    let env = TestEnv::new().await;
    let client = env.nats().await;
    let subject = env.subjects().qualify("trace.test");
    let mut sub = client.subscribe(subject.clone()).await.unwrap();

    {
        let publish = tracing::info_span!("publish");
        let _entered = publish.enter();
        let envelope = tributary_proto::Envelope::new(
            tributary_proto::EventKind::PersonMerged,
            tributary_proto::EventSource::new("test", None),
            None,
            "payload",
        );
        let headers = envelope.headers();
        assert!(
            headers.get("traceparent").is_some(),
            "the envelope's headers carry traceparent"
        );
        client
            .publish_with_headers(
                subject.clone(),
                headers,
                envelope.to_bytes().unwrap().into(),
            )
            .await
            .unwrap();
        client.flush().await.unwrap();
    }

    let message = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    {
        let consume = tracing::info_span!("consume");
        tributary_proto::trace_context::set_parent(&consume, message.headers.as_ref());
        let _entered = consume.enter();
    }

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let publish = spans
        .iter()
        .find(|s| s.name == "publish")
        .expect("publish span exported");
    let consume = spans
        .iter()
        .find(|s| s.name == "consume")
        .expect("consume span exported");
    assert_eq!(
        consume.span_context.trace_id(),
        publish.span_context.trace_id()
    );
    assert_eq!(consume.parent_span_id, publish.span_context.span_id());
}

#[tokio::test]
async fn a_message_without_traceparent_starts_its_own_trace() {
    let (exporter, provider, _guard) = in_memory_tracing();
    {
        let consume = tracing::info_span!("consume");
        tributary_proto::trace_context::set_parent(&consume, Some(&async_nats::HeaderMap::new()));
        let _entered = consume.enter();
    }
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].parent_span_id,
        opentelemetry::trace::SpanId::INVALID
    );
}
