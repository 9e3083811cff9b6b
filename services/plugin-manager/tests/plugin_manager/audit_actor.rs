//! The audit log's actor is who the plugin manager knows asked, never what a request says
//! (issue 27, Low). Over HTTP it is the bearer token's name; over NATS, which does not tell a
//! responder who sent a message, it is the one NATS user deploy/nats-server.conf lets publish
//! the subject (`nats:admin` for the CLI's changes, `nats:connector` for the connector
//! service's heartbeats). A name the request gives is kept beside it as `claimed_actor`.

use serde_json::{json, Value};
use tributary_proto::events::PluginEvent;
use tributary_proto::requests::plugins::{
    Call, ConfigureRequest, EnableRequest, HeartbeatRequest, InstallRequest, InstanceCall,
};

use crate::support::*;

/// What the attacker claims to be: the admin API's token, which it does not hold.
const FORGED: &str = "admin-api:forged";

#[tokio::test]
async fn a_claimed_actor_is_kept_as_a_claim_and_never_recorded_as_the_actor() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let mut enabled = watch(&env, PluginEvent::Enabled).await;

    // The attack: every request names the admin API's token as who asks, in the field the
    // CLI fills (`actor`, read as `claimed_actor`) or in the new one.
    ask::<Call<InstallRequest>, Value>(
        &env,
        json!({ "plugin_id": CONTACTS, "instance_id": "work", "config": contacts_config(),
                "accept_permissions": V1_PERMISSIONS, "actor": FORGED }),
    )
    .await
    .unwrap();
    ask::<InstanceCall<EnableRequest>, Value>(
        &env,
        json!({ "instance_id": "work", "claimed_actor": FORGED }),
    )
    .await
    .unwrap();
    ask::<HeartbeatRequest, Value>(
        &env,
        json!({ "instance_id": "work", "error": "boom", "actor": FORGED }),
    )
    .await
    .unwrap();
    ask::<InstanceCall<ConfigureRequest>, Value>(
        &env,
        json!({ "instance_id": "work", "config": contacts_config(), "actor": "" }),
    )
    .await
    .unwrap();
    // Over HTTP an `actor` in the body is nothing: the token names who asks.
    let (status, reply) = Admin::new(&env, &pm)
        .call(
            "PUT",
            "/api/v1/instances/work/config",
            Some(json!({ "config": contacts_config(), "actor": FORGED })),
        )
        .await;
    assert_eq!(status, 200, "{reply}");

    let token_actor =
        tributary_plugin_manager::http_api::admin_actor(&env.config.plugin_manager.admin_token);
    let (audit, actions) = audit_of(&env, "work").await;
    assert_eq!(
        actions,
        [
            "install",
            "accept_permissions",
            "enable",
            "fail",
            "configure",
            "configure"
        ]
    );
    let recorded: Vec<(&str, Option<&str>)> = audit
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap(),
                a["detail"]["claimed_actor"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            ("nats:admin", Some(FORGED)),
            ("nats:admin", Some(FORGED)),
            ("nats:admin", Some(FORGED)),
            // The heartbeat's subject is the connector service's: a claim there is dropped.
            ("nats:connector", None),
            // An empty claim is no claim.
            ("nats:admin", None),
            (token_actor.as_str(), None),
        ],
        "{audit:#?}"
    );
    // The event says the same.
    let event = next_event(&mut enabled).await;
    assert_eq!(event["data"]["actor"], "nats:admin", "{event}");
    assert_eq!(event["data"]["claimed_actor"], FORGED, "{event}");
    pm.stop().await;
}
