//! The context the host hands an instance reaches NATS and PostgreSQL through its grants.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tributary_host::InstanceContexts;
use tributary_kit::testing::TestEnv;
use tributary_plugin_sdk::{EntityType, Grants, Permission, PluginContext, PluginError};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use uuid::Uuid;

/// A context for `probe-1` allowed `permissions`, over `env`'s NATS and database.
async fn context(env: &TestEnv, permissions: &[&str]) -> (PluginContext, sqlx::PgPool) {
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database)
        .await
        .expect("the test database migrates");
    let grants = Grants::new(
        permissions
            .iter()
            .map(|p| p.parse::<Permission>().expect("a permission")),
    );
    let ctx = InstanceContexts::new(
        tributary_proto::PluginType::Connector,
        env.nats().await,
        env.subjects(),
        pool.clone(),
    )
    .build(
        "test.probe",
        "probe-1",
        grants,
        json!({ "greeting": "hello" }),
        false,
    )
    .expect("the context builds");
    (ctx, pool)
}

#[tokio::test]
async fn a_hosted_context_publishes_a_granted_event_in_its_instance_namespace() {
    // Proves the host's event sink: an event under an `event:publish` grant reaches NATS in
    // the instance's namespace, under the deployment's prefix, in an envelope whose source
    // the host set; one outside the grants is refused before NATS.
    let env = TestEnv::new().await;
    let (ctx, _pool) = context(&env, &["event:publish:probe.*"]).await;
    let nats = env.nats().await;
    let mut events = nats
        .subscribe(
            env.subjects()
                .qualify("plugin.connector.probe-1.probe.Greeted"),
        )
        .await
        .expect("subscribed");
    nats.flush().await.expect("flushed");

    ctx.emit_event("probe.Greeted", json!({ "to": "Ada" }))
        .await
        .expect("a granted subject publishes");
    let refused = ctx.emit_event("data.PersonCreated", json!({})).await;

    let message = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the event arrives within 5 s")
        .expect("the subscription is open");
    let envelope: Envelope<serde_json::Value> =
        Envelope::from_slice(&message.payload).expect("an event envelope");
    assert_eq!(envelope.data, json!({ "to": "Ada" }));
    assert_eq!(
        envelope.source,
        EventSource::new("connector", Some("probe-1".to_owned()))
    );
    assert_eq!(
        envelope.event_type,
        "plugin.connector.probe-1.probe.Greeted"
    );
    assert!(
        matches!(refused, Err(PluginError::PermissionDenied(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_plugin_granted_service_subjects_publishes_only_in_its_own_namespace() {
    // Proves a plugin's `event:publish` grant is confined (issue 27, Low): granted the
    // connector service's own subjects, the JetStream API and the inboxes, everything it
    // emits lands under `plugin.connector.probe-1.`, never on the subject it named, which
    // would be sent with the service's NATS identity.
    let env = TestEnv::new().await;
    let attacks = [
        "connector.items.victim-1",
        "connector.SyncCompleted",
        "plugins.heartbeat.connector",
        "$JS.API.STREAM.DELETE.CONNECTOR_ITEMS",
        "_INBOX_connector.abc.def",
    ];
    let (ctx, _pool) = context(
        &env,
        &[
            "event:publish:connector.>",
            "event:publish:plugins.heartbeat.connector",
            "event:publish:$JS.API.>",
            "event:publish:_INBOX_connector.>",
            "event:publish:probe.Done",
        ],
    )
    .await;
    let nats = env.nats().await;
    let mut everything = nats
        .subscribe(env.subjects().qualify(">"))
        .await
        .expect("subscribed");
    nats.flush().await.expect("flushed");

    for subject in attacks {
        ctx.emit_event(subject, json!({ "forged": true }))
            .await
            .expect("a granted subject publishes");
    }
    // The last one marks the end: one connection delivers in order.
    ctx.emit_event("probe.Done", json!({}))
        .await
        .expect("published");

    let namespace = env.subjects().qualify("plugin.connector.probe-1.");
    let mut seen = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), everything.next())
            .await
            .expect("the events arrive within 5 s")
            .expect("the subscription is open");
        let subject = message.subject.to_string();
        if subject.ends_with("probe.Done") {
            break;
        }
        seen.push(subject);
    }
    let expected: Vec<String> = attacks.iter().map(|a| format!("{namespace}{a}")).collect();
    assert_eq!(
        seen, expected,
        "every event stays in the instance's namespace"
    );
}

#[tokio::test]
async fn a_hosted_context_reads_a_granted_entity_from_postgresql() {
    // Proves the host's data reader: a `data:read` grant reads the live row as JSON, a
    // missing row is None, and another entity type is refused naming the permission.
    let env = TestEnv::new().await;
    let (ctx, pool) = context(&env, &["data:read:persons"]).await;
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO person (id, display_name) VALUES ($1, 'Ada Lovelace')")
        .bind(id)
        .execute(&pool)
        .await
        .expect("a person row");

    let person = ctx
        .data()
        .get(EntityType::Person, id)
        .await
        .expect("a granted read");
    let missing = ctx
        .data()
        .get(EntityType::Person, Uuid::now_v7())
        .await
        .expect("a granted read");
    let refused = ctx.data().get(EntityType::Message, id).await;

    assert_eq!(
        person.expect("the row is found")["display_name"],
        "Ada Lovelace"
    );
    assert_eq!(missing, None);
    let Err(PluginError::PermissionDenied(denied)) = refused else {
        panic!("{refused:?}")
    };
    assert!(denied.to_string().contains("data:read"), "{denied}");
}

#[tokio::test]
async fn a_hosted_contexts_log_lines_at_info_and_above_are_lines_of_its_timeline_held_to_a_rate() {
    // Proves the journal the host gives every context: info, warn and error lines reach
    // `timeline.connector.<instance>` as `log` lines with their level; past the burst the rest
    // are held back and counted on the next line sent.
    let env = TestEnv::new().await;
    let (ctx, _pool) = context(&env, &[]).await;
    let nats = env.nats().await;
    let mut lines = nats
        .subscribe(env.subjects().qualify("timeline.connector.probe-1"))
        .await
        .expect("subscribed");
    nats.flush().await.expect("flushed");

    ctx.log_info("fetched page 1");
    ctx.log_warn("page 2 was slow");
    ctx.log_error("page 3 refused");
    let mut got = Vec::new();
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(5), lines.next())
            .await
            .expect("a line arrives within 5 s")
            .expect("the subscription is open");
        let line: TimelineEntry = serde_json::from_slice(&message.payload).expect("a line");
        assert_eq!(line.kind, TimelineKind::Log);
        assert_eq!(line.instance_id, "probe-1");
        got.push((line.summary, line.status, line.detail["level"].clone()));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            (
                "fetched page 1".to_owned(),
                TimelineStatus::Ok,
                json!("info")
            ),
            (
                "page 2 was slow".to_owned(),
                TimelineStatus::Warning,
                json!("warn")
            ),
            (
                "page 3 refused".to_owned(),
                TimelineStatus::Error,
                json!("error")
            ),
        ]
    );

    // A chatty plugin: the burst's 17 remaining lines go, the rest are held back.
    for n in 0..100 {
        ctx.log_info(&format!("line {n}"));
    }
    let mut sent = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), lines.next()).await {
        sent += 1;
    }
    assert_eq!(sent, 17, "the burst of 20 less the 3 above");
    tokio::time::sleep(Duration::from_millis(600)).await;
    ctx.log_info("after the flood");
    let message = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .expect("a line arrives within 5 s")
        .expect("the subscription is open");
    let line: TimelineEntry = serde_json::from_slice(&message.payload).expect("a line");
    assert_eq!(line.summary, "after the flood");
    assert_eq!(line.suppressed, 83, "the lines held back are counted");
}
