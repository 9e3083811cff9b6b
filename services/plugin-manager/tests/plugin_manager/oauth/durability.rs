//! The plugin manager as its own process: a refresh token rotated by the provider (which
//! revokes the old one at once) survives a `kill -9` right after the refresh, and no access
//! token, refresh token or client secret appears in an API response, an event, the log at
//! trace level, or the database's bytes.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tributary_kit::testing::oauth::{Provider, ProviderServer, Rotation, ServerSettings};
use tributary_kit::testing::TestEnv;
use tributary_proto::requests::plugins::{
    token_fingerprint, AccessToken, AccessTokenQuery, AttemptStatus, AuditQuery, Call,
    ConnectAttempt, ConnectRequest, ConnectStatusQuery, InstallRequest, InstanceCall,
    InstanceFilter, InstanceInfo, ListPlugins,
};
use tributary_proto::requests::Request;

use super::{code_grant, mail_manifest, MAIL, MAIL_PERMISSIONS};
use crate::support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the plugin manager's binary with `config_file`, logging at trace into `log`.
fn spawn(env: &TestEnv, config_file: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(binary())
        .arg("--config")
        .arg(config_file)
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
        .unwrap()
}

async fn wait_ready(env: &TestEnv, log: &std::path::Path) {
    let client = env.nats().await;
    let list = Request::subject(&ListPlugins {}, &env.subjects());
    for _ in 0..150 {
        let asked = tokio::time::timeout(
            Duration::from_millis(500),
            client.request(list.clone(), "{}".into()),
        );
        if let Ok(Ok(reply)) = asked.await {
            if !reply.payload.starts_with(b"{\"error\"") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the plugin manager answers: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_kill_and_no_token_leaks_anywhere() {
    let env = TestEnv::new().await;
    // As a deployment's provisioning step does before the services start.
    tributary_kit::testing::provision(&env.config).await;
    let mut settings = ServerSettings::expiring(Provider::GitHub, Duration::from_secs(28_800));
    settings.rotation = Rotation::RotateAndRevoke;
    let github = ProviderServer::start_with(Provider::GitHub, settings)
        .await
        .unwrap();
    let dir = PluginDir::new();
    dir.write(
        "mail",
        &mail_manifest(code_grant(Provider::GitHub, &["repo"])),
    );
    let port = free_port();
    let config_file = dir.0.join("tributary.toml");
    std::fs::write(
        &config_file,
        format!(
            "[plugin_manager]\nplugin_dirs = [{dir:?}]\nhttp_addr = \"127.0.0.1:{port}\"\n\n\
             [oauth]\nrefresh_check_secs = 3600\n\n\
             [oauth.providers.github]\nclient_id = {id:?}\nclient_secret = {secret:?}\n\
             authorization_url = {authorize:?}\ntoken_url = {token:?}\n",
            dir = dir.0.display().to_string(),
            id = github.client_id(),
            secret = github.client_secret().expose_secret(),
            authorize = github.authorization_url(),
            token = github.token_url(),
        ),
    )
    .unwrap();
    let log = dir.0.join("service.log");
    let mut child = spawn(&env, &config_file, &log);
    wait_ready(&env, &log).await;

    let nats = env.nats().await;
    let mut events = nats
        .subscribe(format!("{}.plugins.*", env.prefix))
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let mut seen: Vec<String> = Vec::new();
    let installed: Value = ask::<Call<InstallRequest>, _>(
        &env,
        json!({ "plugin_id": MAIL, "instance_id": "mail", "config": {},
                "accept_permissions": MAIL_PERMISSIONS }),
    )
    .await
    .unwrap();
    seen.push(installed.to_string());

    // The consent, through the process's own callback.
    let attempt: ConnectAttempt =
        ask::<InstanceCall<ConnectRequest>, _>(&env, json!({ "instance_id": "mail" }))
            .await
            .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at_github = browser
        .get(attempt.consent_url.clone().unwrap())
        .send()
        .await
        .unwrap();
    let back = at_github.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let page = browser.get(&back).send().await.unwrap();
    assert_eq!(page.status(), 200);
    seen.push(page.text().await.unwrap());
    let ended: ConnectAttempt =
        ask::<ConnectStatusQuery, _>(&env, json!({ "attempt_id": attempt.attempt_id }))
            .await
            .unwrap();
    assert_eq!(ended.status, AttemptStatus::Connected, "{ended:?}");
    seen.push(serde_json::to_string(&ended).unwrap());

    // A refresh, then kill -9 the moment its answer is in.
    let first: AccessToken = ask::<AccessTokenQuery, _>(&env, json!({ "instance_id": "mail" }))
        .await
        .unwrap();
    let refreshed: AccessToken = ask::<AccessTokenQuery, _>(
        &env,
        json!({ "instance_id": "mail", "rejected": token_fingerprint(&first.access_token) }),
    )
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(github.token_requests().refresh_token, 1);
    assert!(!github.accepts_access_token(&first.access_token));

    let mut child = spawn(&env, &config_file, &log);
    wait_ready(&env, &log).await;
    // The next refresh must use the rotated refresh token: the one before it is revoked.
    let after: AccessToken = ask::<AccessTokenQuery, _>(
        &env,
        json!({ "instance_id": "mail", "rejected": token_fingerprint(&refreshed.access_token) }),
    )
    .await
    .unwrap();
    assert!(github.accepts_access_token(&after.access_token));
    let counts = github.token_requests();
    assert_eq!((counts.refresh_token, counts.refused), (2, 0), "{counts:?}");

    // What the APIs show.
    let token = env
        .config
        .plugin_manager
        .admin_token
        .expose_secret()
        .to_owned();
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/instances/mail",
        "/api/v1/instances",
        "/api/v1/audit",
    ] {
        let response = http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        seen.push(response.text().await.unwrap());
    }
    let shown: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "mail" }))
        .await
        .unwrap();
    assert_eq!(shown["auth"]["status"], "connected", "{shown}");
    seen.push(shown.to_string());
    seen.push(
        ask::<InstanceFilter, Value>(&env, json!({}))
            .await
            .unwrap()
            .to_string(),
    );
    seen.push(
        ask::<AuditQuery, Value>(&env, json!({}))
            .await
            .unwrap()
            .to_string(),
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // Every access token and refresh token GitHub issued, and the client secret.
    let secrets: Vec<String> = github
        .secrets()
        .into_iter()
        .filter(|s| s.starts_with("ghu_") || s.starts_with("ghr_"))
        .chain([github.client_secret().expose_secret().to_owned()])
        .collect();
    assert!(secrets.len() >= 7, "{} secrets", secrets.len());
    for body in &seen {
        for secret in &secrets {
            assert!(
                !body.contains(secret),
                "an API response holds a secret: {body}"
            );
        }
    }
    let mut plugin_events = 0;
    while let Ok(Some(event)) = tokio::time::timeout(
        Duration::from_millis(300),
        futures::StreamExt::next(&mut events),
    )
    .await
    {
        // `plugins.token` replies carry the access token by design (only the connector and
        // channel users may ask); the events must not.
        if !event
            .subject
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .starts_with("Plugin")
        {
            continue;
        }
        plugin_events += 1;
        for secret in &secrets {
            assert!(!contains(&event.payload, secret), "an event holds a secret");
        }
    }
    assert_eq!(plugin_events, 2, "installed and connected");
    let logged = std::fs::read(&log).unwrap();
    assert!(logged.len() > 10_000, "a trace-level log");
    for secret in &secrets {
        assert!(!contains(&logged, secret), "the log holds a secret");
    }
    let pool = env.pool().await;
    for table in [
        "plugin_instance",
        "plugin_secret",
        "plugin_oauth_connection",
        "plugin_oauth_consent",
        "plugin_audit",
        "outbox",
    ] {
        let bytes = table_bytes(&pool, table).await;
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{table}'s bytes hold a secret in plaintext"
            );
        }
    }
}
