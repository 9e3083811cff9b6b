use serde_json::json;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{EntityType, PluginError};
use uuid::Uuid;

#[tokio::test]
async fn emit_event_refuses_a_subject_outside_the_grants_and_records_one_inside() {
    let test = TestContext::new(&["event:publish:data.*"], json!({}));
    let ctx = test.ctx();

    let err = ctx
        .emit_event("system.shutdown", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::PermissionDenied(d) if d.needed.to_string() == "event:publish:system.shutdown"),
        "{err:?}"
    );
    assert!(test.recorded_events().is_empty());

    ctx.emit_event("data.PersonCreated", json!({ "name": "Ada" }))
        .await
        .unwrap();
    let events = test.recorded_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject, "data.PersonCreated");
    assert_eq!(events[0].payload, json!({ "name": "Ada" }));
    assert_eq!(events[0].instance_id, ctx.instance_id());
}

#[tokio::test]
async fn data_reads_are_allowed_only_for_granted_entities() {
    let id = Uuid::new_v4();
    let test = TestContext::new(&["data:read:persons"], json!({})).with_entity(
        EntityType::Person,
        id,
        json!({ "name": "Ada" }),
    );
    let ctx = test.ctx();

    let person = ctx.data().get(EntityType::Person, id).await.unwrap();
    assert_eq!(person, Some(json!({ "name": "Ada" })));
    assert_eq!(
        ctx.data()
            .get(EntityType::Person, Uuid::new_v4())
            .await
            .unwrap(),
        None
    );

    let err = ctx.data().get(EntityType::Message, id).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::PermissionDenied(d) if d.needed.to_string() == "data:read:messages"),
        "{err:?}"
    );
}

#[test]
fn the_context_carries_its_identity_and_keeps_config_out_of_debug_output() {
    let test = TestContext::new(&[], json!({ "token": "hunter2" }));
    let ctx = test.ctx();
    assert_eq!(ctx.plugin_id(), "test.plugin");
    assert_eq!(ctx.instance_id(), "test-instance");
    assert_eq!(ctx.config()["token"], "hunter2");
    assert!(!format!("{ctx:?}").contains("hunter2"));
    // Logging with no subscriber installed is a no-op, but must not panic.
    ctx.log_info("Sync started.");
}

/// Collects what a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_lines_are_tagged_with_the_plugin_and_the_instance() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();

    tracing::subscriber::with_default(subscriber, || {
        // The span is created with the context, so build one under the subscriber.
        let ctx = TestContext::new(&[], json!({})).ctx();
        ctx.log_warn("Token expires soon.");
        let _entered = ctx.span().enter();
        tracing::info!("A plugin's own log line.");
    });

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 2, "{output}");
    for line in lines {
        assert!(line.contains("plugin=test.plugin"), "{line}");
        assert!(line.contains("instance=test-instance"), "{line}");
    }
    assert!(output.contains("Token expires soon."), "{output}");
}
