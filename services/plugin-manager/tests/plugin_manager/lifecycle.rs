//! Install, enable, disable, upgrade, fail and uninstall, with their events and audit log.

use serde_json::{json, Value};
use tributary_proto::events::PluginEvent;
use tributary_proto::requests::ErrorCode;

use crate::support::*;
use tributary_proto::requests::plugins::{
    Call, DisableRequest, EnableRequest, HeartbeatRequest, InstallRequest, InstanceCall,
    InstanceFilter, InstanceInfo, RescanPlugins, UninstallRequest, UpgradeRequest,
};

#[tokio::test]
async fn install_needs_every_permission_accepted_and_announces_the_instance() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let mut installed = watch(&env, PluginEvent::Installed).await;

    let refused = ask::<Call<InstallRequest>, Value>(
        &env,
        json!({ "plugin_id": CONTACTS, "instance_id": "work", "config": contacts_config(),
                "accept_permissions": [V1_PERMISSIONS[0]] }),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.error, ErrorCode::PermissionsNotAccepted);
    assert_eq!(refused.permissions, V1_PERMISSIONS.to_vec());
    assert!(refused.message.contains(V1_PERMISSIONS[1]), "{refused:?}");
    let missing = ask::<InstanceInfo, Value>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap_err();
    assert_eq!(missing.error, ErrorCode::NotFound);

    let view = install(&env, "work", contacts_config()).await;
    assert_eq!(view["state"], "installed");
    assert_eq!(view["version"], "1.0.0");
    assert_eq!(view["permissions"], json!(V1_PERMISSIONS));
    let event = next_event(&mut installed).await;
    assert_eq!(event["type"], "plugins.PluginInstalled");
    assert_eq!(event["data"]["instance_id"], "work");
    // NATS does not say who sent the install: the actor is the one user allowed to, the
    // name the request gave only a claim beside it.
    assert_eq!(event["data"]["actor"], "nats:admin");
    assert_eq!(event["data"]["claimed_actor"], "test");
    assert_eq!(event["data"]["state"], "installed");

    // A second instance of the same plugin has its own id and config; the first id is taken.
    install(
        &env,
        "home",
        json!({ "server": "https://home.example.com", "password": "other-pw-123" }),
    )
    .await;
    let taken = ask::<Call<InstallRequest>, Value>(
        &env,
        json!({ "plugin_id": CONTACTS, "instance_id": "work", "accept_permissions": V1_PERMISSIONS }),
    )
    .await
    .unwrap_err();
    assert_eq!(taken.error, ErrorCode::Conflict);
    let all: Vec<Value> = ask::<InstanceFilter, _>(&env, json!({})).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["home", "work"]);
    assert_eq!(all[0]["config"]["server"], "https://home.example.com");

    let (audit, actions) = audit_of(&env, "work").await;
    assert_eq!(actions, vec!["install", "accept_permissions"]);
    assert_eq!(audit[1]["detail"]["permissions"], json!(V1_PERMISSIONS));
    assert_eq!(audit[0]["actor"], "nats:admin");
    assert_eq!(audit[0]["detail"]["claimed_actor"], "test");
    pm.stop().await;
}

#[tokio::test]
async fn an_upgrade_that_adds_a_permission_is_held_until_it_is_accepted() {
    let (env, dir, pm) = started_with_work(true).await;
    let mut upgraded = watch(&env, PluginEvent::Upgraded).await;

    let added = "network:outbound:api.other.org";
    let mut v2: Vec<&str> = V1_PERMISSIONS.to_vec();
    v2.push(added);
    dir.write("contacts", &contacts_manifest("2.0.0", &v2));
    let list: Value = ask::<RescanPlugins, _>(&env, json!({})).await.unwrap();
    assert_eq!(list["plugins"][0]["version"], "2.0.0");
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["available_version"], "2.0.0");

    let held = ask::<InstanceCall<UpgradeRequest>, Value>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap_err();
    assert_eq!(held.error, ErrorCode::PermissionsNotAccepted);
    assert_eq!(held.permissions, vec![added.to_owned()]);
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["version"], "1.0.0", "held: still on the old version");
    assert_eq!(view["state"], "enabled");
    assert_eq!(view["permissions"], json!(V1_PERMISSIONS));
    assert_eq!(
        view["held_upgrade"],
        json!({ "version": "2.0.0", "new_permissions": [added] })
    );

    // Accepting something else does not release it either.
    let still = ask::<InstanceCall<UpgradeRequest>, Value>(
        &env,
        json!({ "instance_id": "work", "accept_permissions": ["network:outbound:api.another.org"] }),
    )
    .await
    .unwrap_err();
    assert_eq!(still.error, ErrorCode::PermissionsNotAccepted);

    let view: Value = ask::<InstanceCall<UpgradeRequest>, _>(
        &env,
        json!({ "instance_id": "work", "accept_permissions": [added], "actor": "alice" }),
    )
    .await
    .unwrap();
    assert_eq!(view["version"], "2.0.0");
    assert_eq!(view["permissions"], json!(v2));
    assert!(view.get("held_upgrade").is_none(), "{view}");
    let event = next_event(&mut upgraded).await;
    assert_eq!(event["data"]["version"], "2.0.0");
    assert_eq!(event["data"]["actor"], "nats:admin");
    assert_eq!(event["data"]["claimed_actor"], "alice");

    // A version that asks for less needs nothing accepted.
    dir.write(
        "contacts",
        &contacts_manifest("3.0.0", &V1_PERMISSIONS[..1]),
    );
    ask::<RescanPlugins, Value>(&env, json!({})).await.unwrap();
    let view: Value =
        ask::<InstanceCall<UpgradeRequest>, _>(&env, json!({ "instance_id": "work" }))
            .await
            .unwrap();
    assert_eq!(view["version"], "3.0.0");
    assert_eq!(view["permissions"], json!([V1_PERMISSIONS[0]]));

    let (audit, actions) = audit_of(&env, "work").await;
    assert_eq!(
        actions,
        vec![
            "install",
            "accept_permissions",
            "enable",
            "upgrade_held",
            "accept_permissions",
            "upgrade",
            "upgrade"
        ]
    );
    assert_eq!(audit[4]["detail"]["permissions"], json!([added]));
    assert_eq!(audit[4]["actor"], "nats:admin");
    assert_eq!(audit[4]["detail"]["claimed_actor"], "alice");
    pm.stop().await;
}

#[tokio::test]
async fn disabling_announces_it_and_the_state_survives_a_restart() {
    let (env, _dir, pm) = started_with_work(false).await;
    let mut enabled = watch(&env, PluginEvent::Enabled).await;
    let mut disabled = watch(&env, PluginEvent::Disabled).await;

    let view: Value = ask::<InstanceCall<EnableRequest>, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "enabled");
    assert_eq!(next_event(&mut enabled).await["data"]["state"], "enabled");
    let view: Value = ask::<InstanceCall<DisableRequest>, _>(
        &env,
        json!({ "instance_id": "work", "actor": "bob" }),
    )
    .await
    .unwrap();
    assert_eq!(view["state"], "disabled");
    let event = next_event(&mut disabled).await;
    assert_eq!(event["type"], "plugins.PluginDisabled");
    assert_eq!(event["source"]["instance"], "work");
    assert_eq!(event["data"]["plugin_id"], CONTACTS);
    assert_eq!(event["data"]["state"], "disabled");
    assert_eq!(event["data"]["actor"], "nats:admin");
    assert_eq!(event["data"]["claimed_actor"], "bob");

    pm.stop().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "disabled");
    assert_eq!(view["secrets"]["/password"], "set");
    pm.stop().await;
}

#[tokio::test]
async fn a_reported_failure_fails_the_instance_once_until_it_is_enabled_again() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut failed = watch(&env, PluginEvent::Failed).await;

    let view: Value = ask::<HeartbeatRequest, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "enabled");
    assert!(view["last_heartbeat"].is_string());
    let view: Value = ask::<HeartbeatRequest, _>(
        &env,
        json!({ "instance_id": "work", "error": "401 from the server" }),
    )
    .await
    .unwrap();
    assert_eq!(view["state"], "failed");
    assert_eq!(view["last_error"], "401 from the server");
    let event = next_event(&mut failed).await;
    assert_eq!(event["data"]["reason"], "401 from the server");
    ask::<HeartbeatRequest, Value>(&env, json!({ "instance_id": "work", "error": "again" }))
        .await
        .unwrap();
    let view: Value = ask::<InstanceCall<EnableRequest>, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "enabled");
    assert!(view.get("last_error").is_none(), "{view}");
    let (audit, _) = audit_of(&env, "work").await;
    let fails = audit.iter().filter(|a| a["action"] == "fail").count();
    assert_eq!(fails, 1, "one failure recorded: {audit:?}");
    pm.stop().await;
}

#[tokio::test]
async fn a_failed_instance_recovers_when_its_service_reports_it_healthy() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut enabled = watch(&env, PluginEvent::Enabled).await;
    let heartbeat = |error: Option<&str>| {
        ask::<HeartbeatRequest, Value>(&env, json!({ "instance_id": "work", "error": error }))
    };
    assert_eq!(heartbeat(Some("timeout")).await.unwrap()["state"], "failed");
    let view = heartbeat(None).await.unwrap();
    assert_eq!(view["state"], "enabled");
    assert!(view.get("last_error").is_none(), "{view}");
    // The set-up's own enable may still be on its way out of the outbox: the recovery is
    // the enable by the connector.
    let event = loop {
        let event = next_event(&mut enabled).await;
        if event["data"]["actor"] != "nats:admin" {
            break event;
        }
    };
    // The connector service's user is the only one that may report on
    // plugins.heartbeat.connector.
    assert_eq!(event["data"]["actor"], "nats:connector");
    assert_eq!(event["data"]["state"], "enabled");
    let (audit, _) = audit_of(&env, "work").await;
    assert!(audit.iter().any(|a| a["action"] == "recover"), "{audit:?}");
    pm.stop().await;
}

#[tokio::test]
async fn uninstall_keeps_the_instance_or_purges_it_with_its_data() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    install(&env, "kept", contacts_config()).await;
    install(&env, "purged", contacts_config()).await;
    let pool = env.pool().await;
    for (instance, external) in [("purged", "p1"), ("purged", "p2"), ("kept", "k1")] {
        sqlx::query(
            "INSERT INTO source_record (instance_id, entity_type, external_id, entity_id, \
             source_modified_at, content_hash) VALUES ($1, 'person', $2, $3, now(), 'h')",
        )
        .bind(instance)
        .bind(external)
        .bind(uuid::Uuid::now_v7())
        .execute(&pool)
        .await
        .unwrap();
    }
    // A decision and a suggestion naming a record of `purged`, and one naming only `kept`'s.
    for (a, b) in [("kept", "purged"), ("kept", "kept")] {
        sqlx::query(
            "INSERT INTO person_decision VALUES ($1, 'k1', $2, 'p1', 'apart', 'cli', now())",
        )
        .bind(a)
        .bind(b)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO person_suggestion VALUES ($1, 'k1', $2, 'p1', 'email', 'ada@x.org', \
             0.4, 'Ada', 'Ann', now())",
        )
        .bind(a)
        .bind(b)
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut uninstalled = watch(&env, PluginEvent::Uninstalled).await;

    let kept: Value =
        ask::<InstanceCall<UninstallRequest>, _>(&env, json!({ "instance_id": "kept" }))
            .await
            .unwrap();
    assert_eq!(
        kept,
        json!({ "instance_id": "kept", "purged": false, "items_deleted": 0 })
    );
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "kept" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "uninstalled");
    assert_eq!(
        view["secrets"]["/password"], "set",
        "kept: credentials stay"
    );
    let refused = ask::<InstanceCall<EnableRequest>, Value>(&env, json!({ "instance_id": "kept" }))
        .await
        .unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict);
    assert_eq!(
        next_event(&mut uninstalled).await["data"]["instance_id"],
        "kept"
    );

    let items = env.nats().await;
    let mut tombstones = items
        .subscribe(env.subjects().connector_items("purged"))
        .await
        .unwrap();
    items.flush().await.unwrap();
    let purged: Value = ask::<InstanceCall<UninstallRequest>, _>(
        &env,
        json!({ "instance_id": "purged", "purge": true }),
    )
    .await
    .unwrap();
    assert_eq!(purged["items_deleted"], 2);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            futures::StreamExt::next(&mut tombstones),
        )
        .await
        .unwrap()
        .unwrap();
        let item: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(item["operation"], "purge");
        assert_eq!(item["instance_id"], "purged");
        seen.push(item["external_id"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(seen, vec!["p1", "p2"]);
    let gone = ask::<InstanceInfo, Value>(&env, json!({ "instance_id": "purged" }))
        .await
        .unwrap_err();
    assert_eq!(gone.error, ErrorCode::NotFound);
    let secrets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM plugin_secret WHERE instance_id = 'purged'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(secrets, 0);
    for table in ["person_decision", "person_suggestion"] {
        let left: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT b_instance_id FROM {table} ORDER BY b_instance_id"
        ))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(left, vec!["kept"], "{table}: only what names `purged` goes");
    }
    let (audit, _) = audit_of(&env, "purged").await;
    assert_eq!(audit.last().unwrap()["action"], "uninstall_purge");
    pm.stop().await;
}
