//! Each service's own PostgreSQL role (issue 27, finding 3), provisioned in the test's
//! database by the real provisioning step: the attacks a compromised channel service would
//! try with its credentials, each refused by PostgreSQL, and the mesh doing its work with
//! every service connected as its own role and not migrating, as compose runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::ask;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tributary_kit::client::MeshClient;
use tributary_kit::db::provision::{self, GRANTS_SQL};
use tributary_kit::testing::{RunningService, TestEnv, TestRoles};
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_proto::requests::channel::{SendMessage, SendRequest, WebhookRequest};
use tributary_proto::requests::connector::StateQuery;
use tributary_proto::requests::plugins::{
    Call, EnableRequest, InstallRequest, InstanceCall, PluginInfo, UninstallRequest,
};
use tributary_proto::requests::search::{StartReindex, StatsQuery};
use tributary_proto::ServiceName;

/// A test database, migrated, with the five roles provisioned and an instance whose config
/// points at its API and whose token is sealed, as the plugin manager stores them.
async fn provisioned() -> (TestEnv, TestRoles) {
    let env = TestEnv::new().await;
    let roles = TestRoles::provision(&env).await;
    let pool = env.pool().await;
    // Not sealed with any key: no plugin manager runs on this database.
    sqlx::raw_sql(
        "INSERT INTO plugin (id, name, version, plugin_type, manifest, location) \
           VALUES ('com.example.api', 'API', '1.0.0', 'connector', '{}', 'builtin'); \
         INSERT INTO plugin_instance (id, plugin_id, version, manifest, config, state) \
           VALUES ('crm', 'com.example.api', '1.0.0', '{}', \
                   '{\"apiBaseUrl\": \"https://api.example.com\"}', 'enabled'); \
         INSERT INTO plugin_secret (instance_id, field, key_id, nonce, ciphertext) \
           VALUES ('crm', '/token', 'k1', '\\x00', '\\x01');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    (env, roles)
}

/// The SQLSTATE `statement` fails with, run on `conn`; panics if it succeeds.
async fn refused(conn: &mut PgConnection, statement: &str) -> String {
    match sqlx::raw_sql(statement).execute(&mut *conn).await {
        Ok(done) => panic!("`{statement}` was allowed ({} rows)", done.rows_affected()),
        Err(sqlx::Error::Database(e)) => e.code().unwrap_or_default().into_owned(),
        Err(e) => panic!("`{statement}`: {e}"),
    }
}

/// PostgreSQL's code for "permission denied" (and for a row-level security refusal).
const DENIED: &str = "42501";

#[tokio::test]
async fn the_channel_role_cannot_read_plugin_instances_or_their_secrets() {
    let (env, roles) = provisioned().await;
    let mut channel = roles.connect_as(ServiceName::Channel).await;

    for statement in [
        "SELECT config FROM plugin_instance",
        "SELECT ciphertext, nonce FROM plugin_secret",
        "SELECT ciphertext FROM plugin_master_key",
        "SELECT * FROM plugin_oauth_connection",
        "SELECT verifier FROM plugin_oauth_consent",
        "SELECT * FROM plugin_audit",
    ] {
        assert_eq!(
            refused(&mut channel, statement).await,
            DENIED,
            "{statement}"
        );
    }
    // No right of any kind on any table of the registry, on any column.
    let granted: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relname LIKE 'plugin\\_%' AND c.relkind IN ('r', 'S') \
           AND CASE WHEN c.relkind = 'S' \
                    THEN has_sequence_privilege($1, c.oid, 'USAGE, SELECT, UPDATE') \
                    ELSE has_any_column_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES') \
                      OR has_table_privilege($1, c.oid, 'DELETE, TRUNCATE, TRIGGER') END",
    )
    .bind(roles.user(ServiceName::Channel))
    .fetch_all(&env.pool().await)
    .await
    .unwrap();
    assert!(granted.is_empty(), "the channel role may touch {granted:?}");
}

#[tokio::test]
async fn the_channel_role_cannot_point_an_instance_at_another_host() {
    let (env, roles) = provisioned().await;
    let mut channel = roles.connect_as(ServiceName::Channel).await;

    let code = refused(
        &mut channel,
        "UPDATE plugin_instance \
         SET config = jsonb_set(config, '{apiBaseUrl}', '\"https://attacker.example\"') \
         WHERE id = 'crm'",
    )
    .await;
    assert_eq!(code, DENIED);
    assert_eq!(
        refused(
            &mut channel,
            "UPDATE plugin_secret SET instance_id = 'crm' WHERE field = '/token'"
        )
        .await,
        DENIED
    );
    let url: String =
        sqlx::query_scalar("SELECT config->>'apiBaseUrl' FROM plugin_instance WHERE id = 'crm'")
            .fetch_one(&env.pool().await)
            .await
            .unwrap();
    assert_eq!(url, "https://api.example.com");
}

#[tokio::test]
async fn the_channel_role_cannot_run_a_program_on_the_database_host() {
    let (_env, roles) = provisioned().await;
    let mut channel = roles.connect_as(ServiceName::Channel).await;
    let witness = std::env::temp_dir().join(format!("pwned-{}", uuid::Uuid::new_v4().simple()));

    let code = refused(
        &mut channel,
        &format!("COPY (SELECT 1) TO PROGRAM 'touch {}'", witness.display()),
    )
    .await;
    assert_eq!(code, DENIED);
    assert!(!witness.exists(), "the program ran");
    // Nor read or write the server's files.
    assert_eq!(
        refused(&mut channel, "COPY channel_outbound FROM '/etc/passwd'").await,
        DENIED
    );
    assert_eq!(
        refused(&mut channel, "SELECT pg_read_file('/etc/passwd')").await,
        DENIED
    );
}

#[tokio::test]
async fn the_channel_role_cannot_create_a_table() {
    let (_env, roles) = provisioned().await;
    let mut channel = roles.connect_as(ServiceName::Channel).await;

    for statement in [
        "CREATE TABLE loot (secret text)",
        "CREATE TEMP TABLE loot (secret text)",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA loot",
        "ALTER TABLE channel_outbound ADD COLUMN loot text",
        "DROP TABLE channel_outbound",
    ] {
        let code = refused(&mut channel, statement).await;
        assert_eq!(
            code, DENIED,
            "{statement}: refused, but not for lack of privilege"
        );
    }
}

#[tokio::test]
async fn no_service_can_forge_read_or_drop_another_services_outbox_events() {
    let (env, roles) = provisioned().await;
    // An event the ETL has yet to publish with its NATS identity.
    sqlx::query("INSERT INTO outbox (emitter, event_count, events) VALUES ('etl', 1, '\\x5b5d')")
        .execute(&env.pool().await)
        .await
        .unwrap();
    let mut channel = roles.connect_as(ServiceName::Channel).await;

    // Forging: a data event the ETL's publisher would publish as its own.
    assert_eq!(
        refused(
            &mut channel,
            "INSERT INTO outbox (emitter, event_count, events) VALUES ('etl', 1, '\\x5b5d')"
        )
        .await,
        DENIED
    );
    // Its own kind is fine.
    sqlx::raw_sql(
        "INSERT INTO outbox (emitter, event_count, events) VALUES ('channel', 1, '\\x5b5d')",
    )
    .execute(&mut channel)
    .await
    .unwrap();
    // Reading or dropping the ETL's: it sees none.
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE emitter <> 'channel'")
        .fetch_one(&mut channel)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let deleted = sqlx::raw_sql("DELETE FROM outbox WHERE emitter = 'etl'")
        .execute(&mut channel)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE emitter = 'etl'")
        .fetch_one(&env.pool().await)
        .await
        .unwrap();
    assert_eq!(left, 1);
    // And the search service, which emits nothing, has no outbox at all.
    let mut search = roles.connect_as(ServiceName::Search).await;
    assert_eq!(
        refused(&mut search, "SELECT count(*) FROM outbox").await,
        DENIED
    );
}

#[tokio::test]
async fn the_roles_are_not_superusers_owners_or_members_of_anything() {
    let (env, roles) = provisioned().await;
    let pool = env.pool().await;
    for service in ServiceName::ALL {
        let user = roles.user(service);
        let (superuser, create_role, create_db, bypass_rls, memberships, owned): (
            bool,
            bool,
            bool,
            bool,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, \
                    (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid), \
                    (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) \
             FROM pg_roles r WHERE r.rolname = $1",
        )
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            !superuser && !create_role && !create_db && !bypass_rls,
            "{service}: {user} has attributes"
        );
        assert_eq!(memberships, 0, "{service}: {user} is a member of a role");
        assert_eq!(owned, 0, "{service}: {user} owns relations");
    }
}

#[tokio::test]
async fn provisioning_again_takes_back_a_grant_the_file_does_not_make() {
    let (env, roles) = provisioned().await;
    let channel = roles.user(ServiceName::Channel);
    sqlx::raw_sql(&format!(
        "GRANT SELECT ON plugin_secret TO \"{channel}\"; \
         GRANT SELECT (config) ON plugin_instance TO \"{channel}\""
    ))
    .execute(&env.pool().await)
    .await
    .unwrap();

    provision::provision(roles.owner_config()).await.unwrap();

    let mut conn = roles.connect_as(ServiceName::Channel).await;
    assert_eq!(
        refused(&mut conn, "SELECT * FROM plugin_secret").await,
        DENIED
    );
    assert_eq!(
        refused(&mut conn, "SELECT config FROM plugin_instance").await,
        DENIED
    );
}

#[tokio::test]
async fn every_table_and_sequence_of_the_schema_is_named_in_the_grants_file() {
    let (env, _roles) = provisioned().await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm', 'p') ORDER BY 1",
    )
    .fetch_all(&env.pool().await)
    .await
    .unwrap();
    assert!(names.len() > 15, "{names:?}");
    let words: Vec<&str> = GRANTS_SQL
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for name in names {
        assert!(
            words.contains(&name.as_str()),
            "deploy/postgres/grants.sql does not say who may use {name}: grant it, or say why nobody is"
        );
    }
}

#[tokio::test]
async fn a_service_that_does_not_migrate_refuses_an_unmigrated_database_naming_the_step() {
    let env = TestEnv::new().await;
    let mut config = env.config.database.clone();
    config.migrate = false;

    let error = tributary_kit::db::connect(&config).await.unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("tributary db provision") && message.contains(&env.database),
        "{message}"
    );
    // Nor did it migrate on its own.
    let mut conn = PgConnection::connect_with(&tributary_kit::db::connect_options(
        &env.config.database,
        &env.database,
    ))
    .await
    .unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0);
}

async fn wait_for(what: &str, secs: u64, mut done: impl AsyncFnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = done().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_syncs_stores_sends_receives_reindexes_and_purges_with_each_service_as_its_own_role(
) {
    let mut env = TestEnv::new().await;
    let roles = TestRoles::provision(&env).await;
    env.config.etl.batch_wait_ms = 20;
    env.config.search.batch_wait_ms = 20;
    let start = |service: ServiceName| roles.config_for(&env, service);
    let pm = RunningService::start(
        tributary_plugin_manager::build,
        start(ServiceName::PluginManager),
    )
    .await;
    let etl = RunningService::start(tributary_etl::build, start(ServiceName::Etl)).await;
    let connector =
        RunningService::start(tributary_connector::build, start(ServiceName::Connector)).await;
    let channel =
        RunningService::start(tributary_channel::build, start(ServiceName::Channel)).await;
    let search = RunningService::start(tributary_search::build, start(ServiceName::Search)).await;
    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());

    // A sync: the connector service keeps its state, the ETL stores the documents.
    let notes = std::env::temp_dir().join(format!("db-roles-{}", env.prefix));
    std::fs::create_dir_all(&notes).unwrap();
    for (name, text) in [("a.md", "# A\n\nalpha"), ("b.md", "# B\n\nbeta")] {
        std::fs::write(notes.join(name), text).unwrap();
    }
    ask::<Call<InstallRequest>>(
        &env,
        json!({
            "plugin_id": "tributary.folder",
            "instance_id": "notes",
            "config": { "path": notes.display().to_string() },
            "accept_permissions": ["data:write:documents"],
        }),
    )
    .await;
    ask::<InstanceCall<EnableRequest>>(&env, json!({ "instance_id": "notes" })).await;
    wait_for("the first sync", 30, async || {
        let state: Value = client
            .call_with_body::<StateQuery, Value>(&json!({ "instance_id": "notes" }))
            .await
            .unwrap_or(Value::Null);
        (state["status"] == "succeeded").then_some(state)
    })
    .await;
    env.wait_count(
        "SELECT count(*) FROM document WHERE deleted_at IS NULL",
        2,
        20,
    )
    .await;

    // A webhook received and a message sent: the channel service's outbox and outbound rows.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let info = ask::<PluginInfo>(&env, json!({"plugin_id": "tributary.webhook"})).await;
    let receiver = tributary_plugin_sdk::testing::FixtureServer::start()
        .await
        .unwrap();
    receiver.respond(
        "/inbox",
        [tributary_plugin_sdk::testing::Canned::json(
            202,
            json!({"id": "remote-1"}),
        )],
    );
    ask::<Call<InstallRequest>>(
        &env,
        json!({
            "plugin_id": "tributary.webhook",
            "instance_id": "hook",
            "config": {"secret": secret, "outboundUrl": receiver.url("/inbox")},
            "accept_permissions": info["permissions"],
        }),
    )
    .await;
    ask::<InstanceCall<EnableRequest>>(&env, json!({"instance_id": "hook"})).await;
    let route = wait_for("the webhook route", 10, async || {
        let view: Value = client
            .call_with_body::<WebhookRequest, Value>(&json!({"instance_id": "hook"}))
            .await
            .ok()?;
        (view["served"] == true).then_some(view)
    })
    .await;
    let url = format!(
        "http://{}/webhooks/{}/hook",
        channel.http_addr,
        route["channel"].as_str().unwrap()
    );
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let body = json!({
        "type": "message.received",
        "timestamp": "2026-11-21T10:00:00Z",
        "data": {"id": id, "from": {"address": "alice"}, "to": [{"address": "hub"}], "text": "hello"}
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let key = standard_webhooks::key_of(&secret.to_owned().into()).unwrap();
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            standard_webhooks::sign(&key, &id, now, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    wait_for("communication.MessageReceived", 20, async || {
        (env.stored_on("communication.MessageReceived").await >= 1).then_some(Value::Null)
    })
    .await;
    let sent = client
        .call(&SendMessage {
            instance_id: "hook".into(),
            message: SendRequest {
                id: None,
                to: vec!["bob".into()],
                text: "Hello Bob".into(),
                subject: None,
                conversation_id: None,
                in_reply_to: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("remote-1"),
        "{sent:?}"
    );
    env.wait_count(
        "SELECT count(*) FROM channel_outbound WHERE provider_message_id = 'remote-1'",
        1,
        10,
    )
    .await;

    // A reindex: the search service reads the unified model and its sources.
    client
        .call_with_body::<StartReindex, Value>(&json!({}))
        .await
        .unwrap();
    wait_for("the reindex", 30, async || {
        let stats: Value = client
            .call_with_body::<StatsQuery, Value>(&json!({}))
            .await
            .ok()?;
        (stats["reindexing"] == false && stats["documents"].as_u64() >= Some(2)).then_some(stats)
    })
    .await;

    // A purge: the plugin manager forgets what the connector service and the ETL kept.
    let _ = client
        .call_with_body::<InstanceCall<UninstallRequest>, Value>(
            &json!({"instance_id": "notes", "purge": true}),
        )
        .await
        .unwrap();
    env.wait_count(
        "SELECT count(*) FROM connector_sync_state WHERE instance_id = 'notes'",
        0,
        10,
    )
    .await;
    env.wait_count(
        "SELECT count(*) FROM source_record WHERE instance_id = 'notes'",
        0,
        30,
    )
    .await;

    search.stop().await;
    channel.stop().await;
    connector.stop().await;
    etl.stop().await;
    pm.stop().await;
    let _ = std::fs::remove_dir_all(&notes);
}

#[tokio::test]
async fn only_the_plugin_manager_role_keeps_the_consoles_sessions() {
    use tower_sessions::session::{Id, Record};
    use tower_sessions::{ExpiredDeletion, SessionStore};
    use tributary_plugin_manager::console::session_store::PgSessionStore;

    let (env, roles) = provisioned().await;
    let config = roles.config_for(&env, ServiceName::PluginManager);
    let pool = sqlx::PgPool::connect_with(tributary_kit::db::connect_options(
        &config.database,
        &config.database.name,
    ))
    .await
    .unwrap();
    let store = PgSessionStore::new(pool);
    let expiry = tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + tower_sessions::cookie::time::Duration::hours(2);
    let mut record = Record {
        id: Id::default(),
        data: [("csrf".to_owned(), serde_json::json!("t0k3n"))].into(),
        expiry_date: expiry,
    };
    store.create(&mut record).await.unwrap();
    record
        .data
        .insert("flash".into(), serde_json::json!("saved"));
    store.save(&record).await.unwrap();
    let loaded = store.load(&record.id).await.unwrap().expect("the session");
    assert_eq!(loaded.data, record.data);
    store.delete_expired().await.unwrap();
    assert!(
        store.load(&record.id).await.unwrap().is_some(),
        "not expired yet"
    );
    store.delete(&record.id).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_none());

    for service in [
        ServiceName::Channel,
        ServiceName::Connector,
        ServiceName::Etl,
        ServiceName::Search,
    ] {
        let mut conn = roles.connect_as(service).await;
        let code = refused(&mut conn, "SELECT * FROM console_session").await;
        assert_eq!(code, DENIED, "{service}");
    }
}
