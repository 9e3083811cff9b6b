//! Secrets: never in an API response, a log line, an event or the database's bytes; rotation
//! moves every one to the new key; a wrong or missing key stops start-up and loses nothing.

use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tributary_plugin_manager::keys::{MasterKey, SealedSecret};
use tributary_plugin_manager::vault::{self, secret_context, VaultError};

use crate::support::*;
use tributary_proto::requests::plugins::{
    AuditQuery, ConfigureRequest, EnableRequest, InstanceCall, InstanceFilter, InstanceInfo,
    RuntimeQuery,
};
use tributary_proto::requests::Request;

const FIRST_SECRET: &str = "s3cret-first-Zq81xv";
const SECOND_SECRET: &str = "s3cret-second-Pw92mk";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_secret_never_appears_in_responses_logs_events_or_database_bytes() {
    let (env, dir) = env_with_plugin().await;
    let port = free_port();
    let config_file = dir.0.join("tributary.toml");
    std::fs::write(
        &config_file,
        format!(
            "[plugin_manager]\nplugin_dirs = [{:?}]\nhttp_addr = \"127.0.0.1:{port}\"\n",
            dir.0.display().to_string()
        ),
    )
    .unwrap();
    let log_file = dir.0.join("service.log");
    let log = std::fs::File::create(&log_file).unwrap();
    // As a deployment's provisioning step does before the services start.
    tributary_kit::testing::provision(&env.config).await;
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config_file)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &env.prefix)
        .env("TRIBUTARY__DATABASE__NAME", &env.database)
        .env("TRIBUTARY__TELEMETRY__LOG_FILTER", "trace")
        .env(
            "TRIBUTARY__PLUGIN_MANAGER__MASTER_KEY",
            env.config.plugin_manager.master_key.expose_secret(),
        )
        .env(
            "TRIBUTARY__PLUGIN_MANAGER__ADMIN_TOKEN",
            env.config.plugin_manager.admin_token.expose_secret(),
        )
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();

    let client = env.nats().await;
    let mut events = client
        .subscribe(format!("{}.plugins.*", env.prefix))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let list = Request::subject(
        &tributary_proto::requests::plugins::ListPlugins {},
        &env.subjects(),
    );
    let mut ready = false;
    for _ in 0..100 {
        let asked = tokio::time::timeout(
            Duration::from_millis(500),
            client.request(list.clone(), "{}".into()),
        );
        if let Ok(Ok(_)) = asked.await {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "the service answers: {}",
        std::fs::read_to_string(&log_file).unwrap_or_default()
    );

    let token = env
        .config
        .plugin_manager
        .admin_token
        .expose_secret()
        .to_owned();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut seen: Vec<String> = Vec::new();
    let install = http
        .post(format!("{base}/api/v1/instances"))
        .bearer_auth(&token)
        .json(&json!({ "plugin_id": CONTACTS, "instance_id": "work",
                       "config": { "server": "https://dav.example.com", "password": FIRST_SECRET },
                       "accept_permissions": V1_PERMISSIONS }))
        .send()
        .await
        .unwrap();
    assert_eq!(install.status(), 201);
    seen.push(install.text().await.unwrap());
    let configured: Value = ask::<InstanceCall<ConfigureRequest>, _>(
        &env,
        json!({ "instance_id": "work", "config": { "server": "https://dav.example.com", "password": SECOND_SECRET } }),
    )
    .await
    .unwrap();
    seen.push(configured.to_string());
    seen.push(
        ask::<InstanceCall<EnableRequest>, Value>(&env, json!({ "instance_id": "work" }))
            .await
            .unwrap()
            .to_string(),
    );
    for path in [
        "/api/v1/instances/work",
        "/api/v1/instances",
        "/api/v1/audit",
        "/api/v1/plugins",
    ] {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        seen.push(response.text().await.unwrap());
    }
    for (verb, body) in [
        ("instance", json!({ "instance_id": "work" })),
        ("instances", json!({})),
        ("audit", json!({})),
    ] {
        let answer = match verb {
            "instance" => ask::<InstanceInfo, Value>(&env, body).await,
            "instances" => ask::<InstanceFilter, Value>(&env, body).await,
            _ => ask::<AuditQuery, Value>(&env, body).await,
        };
        seen.push(answer.unwrap().to_string());
    }
    let shown: Value = serde_json::from_str(&seen[3]).unwrap();
    assert_eq!(
        shown["secrets"]["/password"], "set",
        "a secret is shown only as set"
    );
    // The service that runs the instance does get it.
    let runtime: Value = ask::<RuntimeQuery, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(runtime["config"]["password"], SECOND_SECRET);

    for body in &seen {
        for secret in [FIRST_SECRET, SECOND_SECRET] {
            assert!(
                !body.contains(secret),
                "an API response holds a secret: {body}"
            );
        }
    }
    let mut event_count = 0;
    while let Ok(Some(event)) = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut events),
    )
    .await
    {
        // Requests to `plugins.<verb>` carry secrets by design; events must not.
        if !event
            .subject
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .starts_with("Plugin")
        {
            continue;
        }
        event_count += 1;
        for secret in [FIRST_SECRET, SECOND_SECRET] {
            assert!(!contains(&event.payload, secret), "an event holds a secret");
        }
    }
    assert_eq!(event_count, 3, "installed, configured, enabled");

    let pool = env.pool().await;
    let mut instance_bytes = Vec::new();
    for table in [
        "plugin_instance",
        "plugin_secret",
        "plugin_audit",
        "outbox",
        "plugin_master_key",
    ] {
        let bytes = table_bytes(&pool, table).await;
        for secret in [FIRST_SECRET, SECOND_SECRET] {
            assert!(
                !contains(&bytes, secret),
                "{table}'s bytes hold a secret in plaintext"
            );
        }
        if table == "plugin_instance" {
            instance_bytes = bytes;
        }
    }
    assert!(
        contains(&instance_bytes, "https://dav.example.com"),
        "the check reads the real table bytes: the plain config is there"
    );

    assert!(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "SIGTERM ends it cleanly: {status}");
    let logs = std::fs::read(&log_file).unwrap();
    assert!(
        contains(&logs, "Instance installed"),
        "the logs were captured"
    );
    for secret in [FIRST_SECRET, SECOND_SECRET] {
        let leaks: Vec<&str> = std::str::from_utf8(&logs)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(secret))
            .collect();
        assert!(leaks.is_empty(), "a log line holds a secret: {leaks:#?}");
    }
}

async fn sealed_rows(pool: &sqlx::PgPool) -> Vec<(String, String, SealedSecret)> {
    type Row = (String, String, String, Vec<u8>, Vec<u8>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT instance_id, field, key_id, nonce, ciphertext FROM plugin_secret ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(i, f, key_id, nonce, ciphertext)| {
            (
                i,
                f,
                SealedSecret {
                    key_id,
                    nonce,
                    ciphertext,
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn rotation_keeps_every_secret_readable_under_the_new_key_and_none_under_the_old() {
    let (mut env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    install(
        &env,
        "one",
        json!({ "server": "https://one.example.com", "password": FIRST_SECRET }),
    )
    .await;
    install(
        &env,
        "two",
        json!({ "server": "https://two.example.com", "password": SECOND_SECRET }),
    )
    .await;
    pm.stop().await;

    let pool = env.pool().await;
    let old = MasterKey::from_base64(env.config.plugin_manager.master_key.expose_secret()).unwrap();
    let new = MasterKey::generate();
    let stranger = MasterKey::generate();
    let before = sealed_rows(&pool).await;
    let refused = vault::rotate_master_key(&pool, &stranger, &new)
        .await
        .unwrap_err();
    assert!(matches!(refused, VaultError::WrongKey { .. }), "{refused}");
    assert_eq!(
        sealed_rows(&pool).await,
        before,
        "a refused rotation changes nothing"
    );

    let moved = vault::rotate_master_key(&pool, &old, &new).await.unwrap();
    assert_eq!(moved, 2);
    let after = sealed_rows(&pool).await;
    assert_eq!(after.len(), 2);
    for ((instance, field, sealed), wanted) in after.iter().zip([FIRST_SECRET, SECOND_SECRET]) {
        let context = secret_context(instance, field);
        assert_eq!(new.open(sealed, &context).unwrap().expose_secret(), wanted);
        assert!(
            old.open(sealed, &context).is_err(),
            "{instance} still opens under the old key"
        );
        let relabelled = SealedSecret {
            key_id: old.id().to_owned(),
            ..sealed.clone()
        };
        assert!(
            old.open(&relabelled, &context).is_err(),
            "not even relabelled"
        );
    }

    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin_manager.master_key"),
        "the old key is refused: {err}"
    );
    env.config.plugin_manager.master_key = new.to_base64();
    let pm = RunningPm::start(env.config.clone()).await;
    for (instance, wanted) in [("one", FIRST_SECRET), ("two", SECOND_SECRET)] {
        let runtime: Value = ask::<RuntimeQuery, _>(&env, json!({ "instance_id": instance }))
            .await
            .unwrap();
        assert_eq!(runtime["config"]["password"], wanted);
    }
    pm.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_master_key_stops_start_up_and_loses_no_secret() {
    let (mut env, _dir) = env_with_plugin().await;
    let right = env.config.plugin_manager.master_key.clone();
    let pm = RunningPm::start(env.config.clone()).await;
    install(
        &env,
        "work",
        json!({ "server": "https://dav.example.com", "password": FIRST_SECRET }),
    )
    .await;
    pm.stop().await;

    env.config.plugin_manager.master_key = SecretString::from(String::new());
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`plugin_manager.master_key`") && err.contains("not set"),
        "{err}"
    );
    env.config.plugin_manager.master_key_file = "/nonexistent/master.key".into();
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin_manager.master_key_file"), "{err}");
    env.config.plugin_manager.master_key_file = Default::default();
    env.config.plugin_manager.master_key = SecretString::from("dG9vIHNob3J0".to_owned());
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin_manager.master_key") && err.contains("32 bytes"),
        "{err}"
    );
    env.config.plugin_manager.master_key = MasterKey::generate().to_base64();
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin_manager.master_key") && err.contains("does not open"),
        "{err}"
    );
    env.config.plugin_manager.admin_token = SecretString::from(String::new());
    env.config.plugin_manager.master_key = right.clone();
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin_manager.admin_token"), "{err}");

    env.config.plugin_manager.admin_token =
        SecretString::from("a-long-enough-admin-token".to_owned());
    let pm = RunningPm::start(env.config.clone()).await;
    let runtime: Value = ask::<RuntimeQuery, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(
        runtime["config"]["password"], FIRST_SECRET,
        "no secret was lost"
    );
    pm.stop().await;
}

#[tokio::test]
async fn a_new_key_is_taken_while_no_secret_is_stored_and_kept_once_one_is() {
    let (mut env, _dir) = env_with_plugin().await;
    let first = env.config.plugin_manager.master_key.clone();
    RunningPm::start(env.config.clone()).await.stop().await;

    // Nothing was sealed under the first key, so another key loses nothing and starts.
    env.config.plugin_manager.master_key = MasterKey::generate().to_base64();
    let pm = RunningPm::start(env.config.clone()).await;
    install(
        &env,
        "work",
        json!({ "server": "https://dav.example.com", "password": FIRST_SECRET }),
    )
    .await;
    pm.stop().await;

    // Now a secret is sealed under the second key: the first is refused.
    let second = env.config.plugin_manager.master_key.clone();
    env.config.plugin_manager.master_key = first;
    let err = tributary_plugin_manager::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not open"), "{err}");
    env.config.plugin_manager.master_key = second;
    let pm = RunningPm::start(env.config.clone()).await;
    let runtime: Value = ask::<RuntimeQuery, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(runtime["config"]["password"], FIRST_SECRET);
    pm.stop().await;
}
