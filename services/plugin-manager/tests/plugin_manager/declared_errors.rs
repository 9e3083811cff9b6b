//! Each `plugins.*` request of proto's catalog declares the codes it can be refused with
//! (`Request::ERRORS`, which the catalog page and the JSON Schemas show clients). These tests
//! provoke every refusal the real plugin manager makes, request by request, and hold that
//! each code it answers is one its request declares.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use tributary_kit::testing::TestEnv;
use tributary_proto::requests::plugins::{
    AccessTokenQuery, AuditQuery, Call, ConfigureRequest, ConnectRequest, ConnectStatusQuery,
    DisableRequest, EnableRequest, HeartbeatRequest, InstallRequest, InstanceCall, InstanceFilter,
    InstanceInfo, ListPlugins, PluginInfo, RescanPlugins, RuntimeQuery, UninstallRequest,
    UpgradeRequest,
};
use tributary_proto::requests::{catalog, ErrorCode, Request};
use tributary_proto::ServiceName;

use crate::support::*;

type Install = Call<InstallRequest>;
type Configure = InstanceCall<ConfigureRequest>;
type Enable = InstanceCall<EnableRequest>;
type Disable = InstanceCall<DisableRequest>;
type Upgrade = InstanceCall<UpgradeRequest>;
type Uninstall = InstanceCall<UninstallRequest>;
type Heartbeat = HeartbeatRequest;
type Connect = InstanceCall<ConnectRequest>;

/// What each request answered: the codes it was refused with, by verb, and every refusal
/// with a code its request does not declare.
#[derive(Default)]
struct Answers {
    refused: BTreeMap<&'static str, BTreeSet<&'static str>>,
    undeclared: Vec<String>,
}

impl Answers {
    /// Sends each of `bodies` as request `R` and records how it was answered.
    async fn ask<R: Request>(&mut self, env: &TestEnv, bodies: impl IntoIterator<Item = Value>) {
        for body in bodies {
            let refused = self.refused.entry(R::VERB).or_default();
            let Err(e) = ask::<R, Value>(env, &body).await else {
                continue;
            };
            refused.insert(e.error.as_str());
            if !R::ERRORS.contains(&e.error) {
                self.undeclared.push(format!(
                    "plugins.{} answered `{}` to {body}, which it does not declare ({:?}): {}",
                    R::VERB,
                    e.error.as_str(),
                    R::ERRORS,
                    e.message
                ));
            }
        }
    }

    /// Sends every request about one instance, with nothing else wrong, about `id`.
    async fn ask_about(&mut self, env: &TestEnv, id: &str) {
        let body = || [json!({ "instance_id": id })];
        self.ask::<InstanceInfo>(env, body()).await;
        self.ask::<RuntimeQuery>(env, body()).await;
        self.ask::<Enable>(env, body()).await;
        self.ask::<Disable>(env, body()).await;
        self.ask::<Upgrade>(env, body()).await;
        self.ask::<Uninstall>(env, body()).await;
        self.ask::<Heartbeat>(env, body()).await;
        self.ask::<Connect>(env, body()).await;
        self.ask::<AccessTokenQuery>(env, body()).await;
        let config = json!({ "instance_id": id, "config": contacts_config() });
        self.ask::<Configure>(env, [config]).await;
    }
}

/// A second plugin, asking for nothing, to take another plugin's kept id with.
const OTHER: &str = "com.example.other";

fn other_manifest() -> String {
    json!({
        "id": OTHER, "name": "Other", "version": "1.0.0", "type": "connector",
        "entrypoint": "builtin:other", "permissions": [],
        "configSchema": { "type": "object" }
    })
    .to_string()
}

/// A plugin that connects to a Google account, and one that signs in as its own Microsoft
/// client; the test configures no OAuth client for either.
const MAIL: &str = "com.example.mail";
const DAEMON: &str = "com.example.daemon";

fn oauth_manifest(id: &str, auth: Value) -> String {
    json!({
        "id": id, "name": id, "version": "1.0.0", "type": "connector",
        "entrypoint": "builtin:other", "permissions": [], "auth": auth,
        "configSchema": { "type": "object" }
    })
    .to_string()
}

/// The refusals of connecting and of tokens: a plugin with no `auth`, one never connected,
/// no OAuth client configured, an attempt that does not exist.
async fn refusals_of_oauth(env: &TestEnv, answers: &mut Answers) {
    for (id, plugin) in [("mailbox", MAIL), ("daemon", DAEMON)] {
        ask::<Install, Value>(
            env,
            json!({ "plugin_id": plugin, "instance_id": id, "accept_permissions": [] }),
        )
        .await
        .unwrap();
    }
    let instances = || ["work", "mailbox", "daemon"].map(|id| json!({ "instance_id": id }));
    answers.ask::<Connect>(env, instances()).await;
    let nul_actor = json!({ "instance_id": "mailbox", "actor": "\u{0}" });
    answers.ask::<Connect>(env, [nul_actor]).await;
    answers.ask::<AccessTokenQuery>(env, instances()).await;
    answers
        .ask::<AccessTokenQuery>(env, [json!("not a request")])
        .await;
    let attempts = [
        json!({ "attempt_id": uuid::Uuid::nil() }),
        json!({ "attempt_id": "not a uuid" }),
    ];
    answers.ask::<ConnectStatusQuery>(env, attempts).await;
}

/// The permissions of version 2 of the contacts plugin: one more than version 1.
const V2_PERMISSIONS: [&str; 3] = [V1_PERMISSIONS[0], V1_PERMISSIONS[1], "data:write:persons"];

/// Version 2 of the contacts plugin: one permission more, and a config field it requires.
fn contacts_v2() -> String {
    let mut manifest: Value =
        serde_json::from_str(&contacts_manifest("2.0.0", &V2_PERMISSIONS)).unwrap();
    let schema = &mut manifest["configSchema"];
    schema["properties"]["tenant"] = json!({ "type": "string" });
    schema["required"] = json!(["server", "password", "tenant"]);
    manifest.to_string()
}

/// The refusals that need no change to the catalog or the database: unreadable requests,
/// unknown plugins and instances, an uninstalled instance, bad ids, permissions and configs.
async fn refusals_of_the_caller(env: &TestEnv, answers: &mut Answers) {
    let nul = "\u{0}";
    let not_a_request = || [json!("not a request")];
    answers.ask::<ListPlugins>(env, not_a_request()).await;
    answers.ask::<RescanPlugins>(env, not_a_request()).await;
    let unknown = json!({ "plugin_id": "com.example.none" });
    answers.ask::<PluginInfo>(env, [unknown, json!({})]).await;
    let filters = [json!({ "state": "asleep" }), json!({ "plugin_type": nul })];
    answers.ask::<InstanceFilter>(env, filters).await;
    let audits = [json!({ "instance_id": nul }), json!({ "limit": 0 })];
    answers.ask::<AuditQuery>(env, audits).await;
    // An unknown instance, one whose id could not be stored, and an uninstalled one.
    for id in ["ghost", nul, "gone"] {
        answers.ask_about(env, id).await;
    }
    let purge = json!({ "instance_id": "ghost", "purge": true });
    answers.ask::<Uninstall>(env, [purge]).await;

    let install = |plugin: &str, id: &str, accept: &[&str], config: Value| {
        json!({ "plugin_id": plugin, "instance_id": id, "accept_permissions": accept,
                "config": config })
    };
    let installs = [
        install("com.example.none", "new", &V1_PERMISSIONS, json!({})),
        install(CONTACTS, "a b", &V1_PERMISSIONS, contacts_config()),
        install(CONTACTS, "new", &["network:sideways:x"], contacts_config()),
        install(CONTACTS, "new", &[], contacts_config()),
        install(CONTACTS, "work", &V1_PERMISSIONS, contacts_config()),
        install(OTHER, "gone", &[], json!({})),
        install(
            CONTACTS,
            "new",
            &V1_PERMISSIONS,
            json!({ "server": "short" }),
        ),
        install(CONTACTS, "new", &V1_PERMISSIONS, json!("not an object")),
        install(CONTACTS, "new", &V1_PERMISSIONS, json!({ "server": nul })),
        json!({ "plugin_id": CONTACTS, "actor": nul }),
    ];
    answers.ask::<Install>(env, installs).await;
    let configs = [
        json!({ "instance_id": "work", "config": { "server": 1 } }),
        json!({ "instance_id": "work", "config": [] }),
        json!({ "instance_id": "work", "config": contacts_config(), "actor": nul }),
    ];
    answers.ask::<Configure>(env, configs).await;
    let incomplete = json!({ "instance_id": "bare" });
    answers.ask::<Enable>(env, [incomplete]).await;
    let upgrades = [
        json!({ "instance_id": "work" }),
        json!({ "instance_id": "work", "accept_permissions": ["network:sideways:x"] }),
    ];
    answers.ask::<Upgrade>(env, upgrades).await;
}

/// The refusals of an upgrade to a version that asks for more: held until its permissions
/// are accepted, and refused for an enabled instance whose config it would not take.
async fn refusals_of_an_upgrade(env: &TestEnv, dir: &PluginDir, answers: &mut Answers) {
    dir.write("contacts", &contacts_v2());
    answers.ask::<RescanPlugins>(env, [json!({})]).await;
    let upgrades = [
        json!({ "instance_id": "work" }),
        json!({ "instance_id": "live", "accept_permissions": ["data:write:persons"] }),
    ];
    answers.ask::<Upgrade>(env, upgrades).await;
}

/// The refusals of a registry that fails: every request that reads or writes it, with the
/// plugin manager's tables gone from under it.
async fn refusals_of_a_broken_registry(env: &TestEnv, answers: &mut Answers) {
    let pool = env.pool().await;
    for table in [
        "plugin",
        "plugin_instance",
        "plugin_secret",
        "plugin_audit",
        "plugin_oauth_consent",
    ] {
        sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_gone"))
            .execute(&pool)
            .await
            .unwrap();
    }
    answers.ask::<RescanPlugins>(env, [json!({})]).await;
    answers.ask::<InstanceFilter>(env, [json!({})]).await;
    answers.ask::<AuditQuery>(env, [json!({})]).await;
    answers
        .ask::<ConnectStatusQuery>(env, [json!({ "attempt_id": uuid::Uuid::nil() })])
        .await;
    answers.ask_about(env, "work").await;
    let install = json!({ "plugin_id": CONTACTS, "instance_id": "fresh",
                          "accept_permissions": V2_PERMISSIONS, "config": contacts_config() });
    answers.ask::<Install>(env, [install]).await;
}

#[tokio::test]
async fn every_refusal_of_a_plugins_request_is_a_code_the_request_declares() {
    let (env, dir) = env_with_plugin().await;
    dir.write("other", &other_manifest());
    dir.write(
        "mail",
        &oauth_manifest(
            MAIL,
            json!({ "grant": "authorization_code", "provider": "google", "scopes": ["openid"] }),
        ),
    );
    dir.write(
        "daemon",
        &oauth_manifest(
            DAEMON,
            json!({ "grant": "client_credentials", "provider": "microsoft",
                    "scopes": ["https://graph.microsoft.com/.default"], "tenant": "contoso.example" }),
        ),
    );
    let pm = RunningPm::start(env.config.clone()).await;
    install(&env, "work", contacts_config()).await;
    install(&env, "live", contacts_config()).await;
    ask::<Enable, Value>(&env, json!({ "instance_id": "live" }))
        .await
        .unwrap();
    // Installed without a config: enabling it is refused until one is given.
    ask::<Install, Value>(
        &env,
        json!({ "plugin_id": CONTACTS, "instance_id": "bare", "accept_permissions": V1_PERMISSIONS }),
    )
    .await
    .unwrap();
    install(&env, "gone", contacts_config()).await;
    ask::<Uninstall, Value>(&env, json!({ "instance_id": "gone" }))
        .await
        .unwrap();

    let mut answers = Answers::default();
    refusals_of_the_caller(&env, &mut answers).await;
    refusals_of_an_upgrade(&env, &dir, &mut answers).await;
    refusals_of_oauth(&env, &mut answers).await;
    refusals_of_a_broken_registry(&env, &mut answers).await;

    assert!(
        answers.undeclared.is_empty(),
        "refusals with undeclared codes:\n{}",
        answers.undeclared.join("\n")
    );
    // Every `plugins.*` request of the catalog was refused here: one added to the catalog
    // fails this test until its refusals are provoked above.
    for entry in catalog()
        .iter()
        .filter(|e| e.service == ServiceName::PluginManager)
    {
        let refused = answers.refused.get(entry.verb);
        assert!(
            refused.is_some_and(|codes| !codes.is_empty()),
            "plugins.{} was never refused here: provoke its refusals",
            entry.verb
        );
    }
    // And each provocation did provoke what it aims at, so no request passes by being asked
    // only what it never refuses.
    use ErrorCode::*;
    let every = &[
        BadRequest,
        NotFound,
        InvalidConfig,
        PermissionsNotAccepted,
        Conflict,
        Internal,
    ];
    let aimed: [(&str, &[ErrorCode]); 17] = [
        (
            "connect",
            &[BadRequest, NotFound, InvalidConfig, Conflict, Internal],
        ),
        ("connect_status", &[BadRequest, NotFound, Internal]),
        (
            "token",
            &[BadRequest, NotFound, InvalidConfig, Conflict, Internal],
        ),
        ("list", &[BadRequest]),
        ("rescan", &[BadRequest, Internal]),
        ("info", &[BadRequest, NotFound]),
        ("instances", &[BadRequest, Internal]),
        ("instance", &[NotFound, Internal]),
        ("runtime", &[NotFound, Internal]),
        ("install", every),
        (
            "configure",
            &[BadRequest, NotFound, InvalidConfig, Conflict, Internal],
        ),
        ("enable", &[NotFound, InvalidConfig, Conflict, Internal]),
        ("disable", &[NotFound, Conflict, Internal]),
        ("upgrade", every),
        ("uninstall", &[NotFound, Internal]),
        ("heartbeat", &[NotFound, Conflict, Internal]),
        ("audit", &[BadRequest, Internal]),
    ];
    for (verb, codes) in aimed {
        let refused = &answers.refused[verb];
        for code in codes {
            assert!(
                refused.contains(code.as_str()),
                "plugins.{verb} was never refused with `{}` ({refused:?})",
                code.as_str()
            );
        }
    }
    pm.stop().await;
}
