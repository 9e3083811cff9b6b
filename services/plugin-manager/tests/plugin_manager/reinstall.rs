//! Coming back from an uninstall: a kept instance is installed again with what it kept, and
//! an id whose purge the ETL has not applied yet is not reused until it has.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tributary_proto::requests::ErrorCode;

use crate::support::*;
use tributary_proto::requests::plugins::{
    Call, DisableRequest, EnableRequest, InstallRequest, InstanceCall, InstanceInfo,
    UninstallRequest,
};

/// Stores a source record of `instance`, as the ETL does for an item it wrote.
async fn source_record(pool: &sqlx::PgPool, instance: &str, external_id: &str) {
    sqlx::query(
        "INSERT INTO source_record (instance_id, entity_type, external_id, entity_id, \
         source_modified_at, content_hash) VALUES ($1, 'person', $2, $3, now(), 'h')",
    )
    .bind(instance)
    .bind(external_id)
    .bind(uuid::Uuid::now_v7())
    .execute(pool)
    .await
    .unwrap();
}

fn install_request(instance: &str, config: Option<Value>, accept: &[&str]) -> Value {
    let mut request = json!({
        "plugin_id": CONTACTS,
        "instance_id": instance,
        "accept_permissions": accept,
        "actor": "test",
    });
    if let Some(config) = config {
        request["config"] = config;
    }
    request
}

#[tokio::test]
async fn an_uninstalled_instance_says_how_to_bring_it_back() {
    let (env, _dir, pm) = started_with_work(true).await;
    let _: Value = ask::<InstanceCall<UninstallRequest>, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    for verb in ["enable", "disable"] {
        let body = json!({ "instance_id": "work" });
        let refused = match verb {
            "enable" => ask::<InstanceCall<EnableRequest>, Value>(&env, body).await,
            _ => ask::<InstanceCall<DisableRequest>, Value>(&env, body).await,
        }
        .unwrap_err();
        assert_eq!(refused.error, ErrorCode::Conflict, "{verb}");
        assert!(
            refused
                .message
                .contains(&format!("tributary plugins install {CONTACTS} --id work")),
            "{verb}: {}",
            refused.message
        );
        assert!(refused.message.contains("--purge"), "{}", refused.message);
    }
    pm.stop().await;
}

#[tokio::test]
async fn installing_an_uninstalled_instance_again_brings_back_what_it_kept() {
    let (env, _dir, pm) = started_with_work(true).await;
    let _: Value = ask::<InstanceCall<UninstallRequest>, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();

    // Its permissions must be accepted again.
    let refused = ask::<Call<InstallRequest>, Value>(&env, install_request("work", None, &[]))
        .await
        .unwrap_err();
    assert_eq!(refused.error, ErrorCode::PermissionsNotAccepted);

    let view: Value =
        ask::<Call<InstallRequest>, _>(&env, install_request("work", None, &V1_PERMISSIONS))
            .await
            .unwrap();
    assert_eq!(view["state"], "installed");
    assert_eq!(view["config"]["server"], "https://dav.example.com");
    assert_eq!(view["secrets"]["/password"], "set", "credentials kept");
    let enabled: Value =
        ask::<InstanceCall<EnableRequest>, _>(&env, json!({ "instance_id": "work" }))
            .await
            .unwrap();
    assert_eq!(enabled["state"], "enabled");
    let (_, actions) = audit_of(&env, "work").await;
    assert_eq!(
        actions[actions.len() - 4..],
        ["uninstall", "reinstall", "accept_permissions", "enable"]
    );

    // A config given with it replaces the kept one, secrets left out keeping their value.
    let _: Value = ask::<InstanceCall<UninstallRequest>, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    let view: Value = ask::<Call<InstallRequest>, _>(
        &env,
        install_request(
            "work",
            Some(json!({ "server": "https://other.example.com" })),
            &V1_PERMISSIONS,
        ),
    )
    .await
    .unwrap();
    assert_eq!(view["config"]["server"], "https://other.example.com");
    assert_eq!(view["secrets"]["/password"], "set");
    pm.stop().await;
}

#[tokio::test]
async fn an_uninstalled_id_is_not_taken_by_another_plugin() {
    let (env, dir) = env_with_plugin().await;
    let other = contacts_manifest("1.0.0", &V1_PERMISSIONS).replace(CONTACTS, "com.example.other");
    dir.write("other", &other);
    let pm = RunningPm::start(env.config.clone()).await;
    install(&env, "work", contacts_config()).await;
    let _: Value = ask::<InstanceCall<UninstallRequest>, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    let mut request = install_request("work", Some(contacts_config()), &V1_PERMISSIONS);
    request["plugin_id"] = json!("com.example.other");
    let refused = ask::<Call<InstallRequest>, Value>(&env, request)
        .await
        .unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict);
    assert!(
        refused.message.contains(CONTACTS) && refused.message.contains("--purge"),
        "{}",
        refused.message
    );
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "uninstalled");
    assert_eq!(view["plugin_id"], CONTACTS);
    pm.stop().await;
}

#[tokio::test]
async fn an_install_under_a_purged_id_waits_until_the_etl_has_forgotten_its_records() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let pool = env.pool().await;
    // What a purge left for the ETL to forget: records of an id with no instance.
    source_record(&pool, "gone", "p1").await;

    let forget = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            sqlx::query("DELETE FROM source_record WHERE instance_id = 'gone'")
                .execute(&pool)
                .await
                .unwrap();
        })
    };
    let started = Instant::now();
    let view = install(&env, "gone", contacts_config()).await;
    assert_eq!(view["state"], "installed");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the install waited for the purge: {:?}",
        started.elapsed()
    );
    forget.await.unwrap();
    pm.stop().await;
}

#[tokio::test]
async fn an_install_under_an_id_whose_purge_is_never_applied_is_refused_saying_why() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let pool = env.pool().await;
    source_record(&pool, "stuck", "p1").await;
    source_record(&pool, "stuck", "p2").await;

    let refused = ask::<Call<InstallRequest>, Value>(
        &env,
        install_request("stuck", Some(contacts_config()), &V1_PERMISSIONS),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.error, ErrorCode::Conflict);
    assert!(
        refused.message.contains("2 of its items")
            && refused
                .message
                .contains("tributary plugins uninstall stuck --purge"),
        "{}",
        refused.message
    );

    // Purging the id again sends the purge for what is left.
    let items = env.nats().await;
    let mut purges = items
        .subscribe(env.subjects().connector_items("stuck"))
        .await
        .unwrap();
    items.flush().await.unwrap();
    let again: Value = ask::<InstanceCall<UninstallRequest>, _>(
        &env,
        json!({ "instance_id": "stuck", "purge": true }),
    )
    .await
    .unwrap();
    assert_eq!(again["items_deleted"], 2);
    for _ in 0..2 {
        let message = tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut purges),
        )
        .await
        .unwrap()
        .unwrap();
        let item: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(item["operation"], "purge");
    }
    pm.stop().await;
}
