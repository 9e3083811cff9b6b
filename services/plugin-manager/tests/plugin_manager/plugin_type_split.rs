//! `plugins.runtime.<plugin type>` and `plugins.token.<plugin type>` (issue 27, finding 4):
//! each service is answered only about instances of the plugin type it runs, so the connector
//! service cannot read a channel's bot token, nor the channel service a connector's password.
//! `plugins.heartbeat.<plugin type>` likewise (issue 27, Low): neither service can mark an
//! instance of the other's type failed, recover it or keep it looking alive.

use serde_json::{json, Value};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_proto::events::PluginEvent;
use tributary_proto::requests::plugins::{
    AccessTokenQuery, Call, HeartbeatRequest, InstallRequest, InstanceInfo, RuntimeQuery,
};
use tributary_proto::requests::{ApiError, ErrorCode, Request};

use crate::support::*;

/// The channel plugin's id.
const HELPDESK: &str = "com.example.helpdesk";
/// The channel instance's bot token.
const BOT_TOKEN: &str = "bot-token-Yq7r2LkP0w";
/// The connector instance's password.
const PASSWORD: &str = "pw-0123456789";

/// The plugin manager with a connector instance `work` and a channel instance `desk`, each
/// holding a secret.
async fn started_with_both() -> (TestEnv, PluginDir, RunningService) {
    let (env, dir) = env_with_plugin().await;
    dir.write(
        "helpdesk",
        &json!({
            "id": HELPDESK,
            "name": "Example Helpdesk",
            "version": "1.0.0",
            "type": "channel",
            "entrypoint": "builtin:example-channel",
            "permissions": ["network:outbound:api.helpdesk.example.com", "network:inbound"],
            "configSchema": {
                "type": "object",
                "properties": { "botToken": { "type": "string", "writeOnly": true } },
                "required": ["botToken"]
            }
        })
        .to_string(),
    );
    let pm = RunningPm::start(env.config.clone()).await;
    install(&env, "work", contacts_config()).await;
    ask::<Call<InstallRequest>, Value>(
        &env,
        json!({
            "plugin_id": HELPDESK,
            "instance_id": "desk",
            "config": { "botToken": BOT_TOKEN },
            "accept_permissions": ["network:outbound:api.helpdesk.example.com", "network:inbound"],
            "actor": "test",
        }),
    )
    .await
    .unwrap();
    (env, dir, pm)
}

/// `plugins.<verb>.<asker>` about `instance`, of another plugin type: refused as no instance
/// of the asker's type, naming the subject.
async fn refused_as_another_type<R: Request>(
    env: &TestEnv,
    verb: &str,
    asker: &str,
    instance: &str,
) -> ApiError {
    let e = ask_on::<R, Value>(env, asker, json!({ "instance_id": instance }))
        .await
        .unwrap_err();
    assert_eq!(
        e.error,
        ErrorCode::NotFound,
        "{asker} about {instance}: {e:?}"
    );
    assert!(
        e.message
            .contains(&format!("no {asker} instance `{instance}`"))
            && e.message.contains(&format!("plugins.{verb}.{asker}")),
        "{e:?}"
    );
    e
}

#[tokio::test]
async fn each_service_reads_the_secrets_of_its_own_plugin_type_only() {
    let (env, _dir, _pm) = started_with_both().await;

    // Each asks about its own: answered with the secret.
    let desk: Value = ask_on::<RuntimeQuery, _>(&env, "channel", json!({ "instance_id": "desk" }))
        .await
        .unwrap();
    assert_eq!(desk["config"]["botToken"], BOT_TOKEN, "{desk}");
    let work: Value =
        ask_on::<RuntimeQuery, _>(&env, "connector", json!({ "instance_id": "work" }))
            .await
            .unwrap();
    assert_eq!(work["config"]["password"], PASSWORD, "{work}");

    // The attack: the connector service asks for the channel's bot token, the channel service
    // for the connector's password, an operator-type asker for either. Refused as no such
    // instance of its type, nothing of the secret in the answer.
    for (asker, instance, secret) in [
        ("connector", "desk", BOT_TOKEN),
        ("channel", "work", PASSWORD),
        ("operator", "work", PASSWORD),
        ("operator", "desk", BOT_TOKEN),
    ] {
        let e = refused_as_another_type::<RuntimeQuery>(&env, "runtime", asker, instance).await;
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
    }

    // A subject whose last token is no plugin type is a bad request naming the form.
    let e = ask_on::<RuntimeQuery, Value>(&env, "anything", json!({ "instance_id": "desk" }))
        .await
        .unwrap_err();
    assert_eq!(e.error, ErrorCode::BadRequest, "{e:?}");
    assert!(e.message.contains("plugins.runtime.<plugin type>"), "{e:?}");
}

#[tokio::test]
async fn each_service_asks_for_the_access_tokens_of_its_own_plugin_type_only() {
    let (env, _dir, _pm) = started_with_both().await;
    // Neither plugin has an `auth` section: asked by its own service, the broker says so.
    let e = ask_on::<AccessTokenQuery, Value>(&env, "connector", json!({ "instance_id": "work" }))
        .await
        .unwrap_err();
    assert_eq!(e.error, ErrorCode::Conflict, "{e:?}");
    // Asked by the other service, it is no instance of the asker's type: the broker looks no
    // further (no refresh, no token read).
    for (asker, instance) in [("channel", "work"), ("connector", "desk")] {
        refused_as_another_type::<AccessTokenQuery>(&env, "token", asker, instance).await;
    }
    let e = ask_on::<AccessTokenQuery, Value>(&env, "nonsense", json!({ "instance_id": "work" }))
        .await
        .unwrap_err();
    assert_eq!(e.error, ErrorCode::BadRequest, "{e:?}");
}

#[tokio::test]
async fn each_service_reports_the_health_of_its_own_plugin_type_only() {
    let (env, _dir, _pm) = started_with_both().await;
    let mut failed = watch(&env, PluginEvent::Failed).await;
    let view = |id: &'static str| {
        let env = &env;
        async move {
            ask::<InstanceInfo, Value>(env, json!({ "instance_id": id }))
                .await
                .unwrap()
        }
    };
    let desk_before = view("desk").await;
    let work_before = view("work").await;

    // The attack: the connector service marks the channel instance failed (and would keep it
    // looking alive), the channel service the connector instance. Refused as no instance of
    // the reporter's type, naming the subject; nothing of either instance changes.
    for (reporter, instance) in [("connector", "desk"), ("channel", "work")] {
        for error in [Some("forged outage"), None] {
            let e = ask_on::<HeartbeatRequest, Value>(
                &env,
                reporter,
                json!({ "instance_id": instance, "error": error }),
            )
            .await
            .unwrap_err();
            assert_eq!(
                e.error,
                ErrorCode::NotFound,
                "{reporter} on {instance}: {e:?}"
            );
            assert!(
                e.message
                    .contains(&format!("no {reporter} instance `{instance}`"))
                    && e.message.contains(&format!("plugins.heartbeat.{reporter}")),
                "{e:?}"
            );
        }
    }
    assert_eq!(
        view("desk").await,
        desk_before,
        "the channel instance changed"
    );
    assert_eq!(
        view("work").await,
        work_before,
        "the connector instance changed"
    );
    assert!(desk_before.get("last_heartbeat").is_none(), "{desk_before}");
    // Each refusal is in the audit log, under the reporter's NATS user.
    for (instance, reporter) in [("desk", "connector"), ("work", "channel")] {
        let (audit, actions) = audit_of(&env, instance).await;
        assert_eq!(
            actions,
            [
                "install",
                "accept_permissions",
                "heartbeat_refused",
                "heartbeat_refused"
            ],
            "{instance}"
        );
        let refused = &audit[2];
        assert_eq!(refused["actor"], format!("nats:{reporter}"), "{refused}");
        assert_eq!(refused["detail"]["reporter"], reporter, "{refused}");
        assert_eq!(refused["detail"]["reported"], "failed", "{refused}");
    }

    // Its own service's report is taken: the first failure announced is that one.
    let reported: Value = ask_on::<HeartbeatRequest, _>(
        &env,
        "channel",
        json!({ "instance_id": "desk", "error": "the bot token was revoked" }),
    )
    .await
    .unwrap();
    assert_eq!(reported["state"], "failed", "{reported}");
    let event = next_event(&mut failed).await;
    assert_eq!(event["data"]["instance_id"], "desk", "{event}");
    assert_eq!(event["data"]["actor"], "nats:channel", "{event}");
    assert_eq!(
        event["data"]["reason"], "the bot token was revoked",
        "{event}"
    );

    // A subject whose last token is no plugin type is a bad request naming the form.
    let e = ask_on::<HeartbeatRequest, Value>(&env, "anything", json!({ "instance_id": "desk" }))
        .await
        .unwrap_err();
    assert_eq!(e.error, ErrorCode::BadRequest, "{e:?}");
    assert!(
        e.message.contains("plugins.heartbeat.<plugin type>"),
        "{e:?}"
    );
}
