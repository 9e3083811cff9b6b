//! `tributary plugins …` as a person runs it: the real binary, against a real plugin manager
//! started in this process on the real NATS and PostgreSQL, each test with its own database,
//! subject prefix and plugin directory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary_kit::testing::TestEnv;
use tributary_kit::{Config, KitError};

#[path = "plugins_cli/add.rs"]
mod add;
#[path = "plugins_cli/connect.rs"]
mod connect;

const PLUGIN: &str = "com.example.contacts";

const MANIFEST: &str = r#"{"id": "com.example.contacts", "name": "Example Contacts", "version": "1.0.0", "type": "connector",
 "entrypoint": "builtin:example", "permissions": ["network:outbound:*.example.com", "event:publish:connector.items.*"],
 "configSchema": {"type": "object", "properties": {"server": {"type": "string", "format": "uri"}, "pageSize": {"type": "integer", "minimum": 1}, "password": {"type": "string", "writeOnly": true}}, "required": ["server", "password"]}}"#;

/// A plugin directory under the system's temporary directory, deleted on drop.
struct PluginDir(PathBuf);

impl PluginDir {
    fn new(env: &TestEnv) -> Self {
        let root = std::env::temp_dir().join(format!("tributary-plugins-cli-{}", env.prefix));
        let dir = Self(root);
        dir.write("contacts", MANIFEST);
        dir
    }

    fn write(&self, plugin: &str, manifest: &str) {
        std::fs::create_dir_all(self.0.join(plugin)).unwrap();
        std::fs::write(self.0.join(plugin).join("plugin.json"), manifest).unwrap();
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plugin manager running in this process until [`Service::stop`].
struct Service {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), KitError>>,
}

impl Service {
    /// Starts the real service and waits until it answers `plugins.list`.
    async fn start(env: &TestEnv, config: Config) -> Self {
        // As a deployment's provisioning step does before the services start.
        tributary_kit::testing::provision(&config).await;
        let runtime = tributary_plugin_manager::build(config).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(runtime.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let client = env.nats().await;
        let subject = tributary_proto::Request::subject(
            &tributary_proto::requests::plugins::ListPlugins {},
            &env.subjects(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.request(subject.clone(), "{}".into()).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the plugin manager never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// What one run of the CLI printed and how it exited.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts that the command succeeded.
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "the command failed: {self:#?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    fn everything(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// One test's environment, plugin directory and (maybe) running plugin manager.
struct Harness {
    env: TestEnv,
    dir: PluginDir,
    service: Option<Service>,
}

impl Harness {
    /// Installs the test plugin as `contacts`, its permissions accepted, and checks it worked.
    async fn install_contacts(&self) {
        self.cli(&[
            "plugins",
            "install",
            PLUGIN,
            "--id",
            "contacts",
            "--accept-permissions",
        ])
        .await
        .ok();
    }

    /// An environment whose plugin directory holds the example plugin, with the plugin
    /// manager running.
    async fn start() -> Self {
        let mut harness = Self::without_service().await;
        harness.start_service().await;
        harness
    }

    async fn without_service() -> Self {
        let mut env = TestEnv::new().await;
        let dir = PluginDir::new(&env);
        env.config.plugin_manager.plugin_dirs = vec![dir.0.clone()];
        Self {
            env,
            dir,
            service: None,
        }
    }

    async fn start_service(&mut self) {
        let service = Service::start(&self.env, self.env.config.clone()).await;
        self.service = Some(service);
    }

    async fn stop_service(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop().await;
        }
    }

    /// Runs `tributary <args>` as a user named alice would, with this test's prefix,
    /// database and data directory.
    async fn cli(&self, args: &[&str]) -> Run {
        self.cli_with(args, &[]).await
    }

    /// `tributary <args>` as [`Harness::cli`] runs it, not yet started (for a test that reads
    /// its output while it runs).
    fn command(&self, args: &[&str], vars: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "alice")
            .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &self.env.prefix)
            .env("TRIBUTARY__DATABASE__NAME", &self.env.database)
            .env("TRIBUTARY__DATA_DIR", &self.env.config.data_dir)
            .envs(vars.iter().copied())
            .stdin(Stdio::null());
        command
    }

    async fn cli_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let output = self.command(args, vars).output().await.unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Installs the example plugin as `contacts`, accepting its permissions, with a complete
    /// configuration whose password comes from the environment.
    async fn install_configured(&self, password: &str) {
        self.cli_with(
            &[
                "plugins",
                "install",
                PLUGIN,
                "--id",
                "contacts",
                "--accept-permissions",
                "--set",
                "server=https://crm.example.com",
                "--secret-from-env",
                "password=CONTACTS_PASSWORD",
            ],
            &[("CONTACTS_PASSWORD", password)],
        )
        .await
        .ok();
    }

    async fn instance_json(&self, id: &str) -> Value {
        self.cli(&["plugins", "info", id, "--json"])
            .await
            .ok()
            .json()["instance"]
            .clone()
    }

    async fn finish(mut self) {
        self.stop_service().await;
    }
}

/// The state `list --json` shows for an instance, or `None` when it is not listed.
fn listed_state(list: &Value, id: &str) -> Option<String> {
    list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .map(|i| i["state"].as_str().unwrap().to_owned())
}

/// The line of a text table that starts with `first`.
fn row<'a>(text: &'a str, first: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row `{first}` in:\n{text}"))
}

#[tokio::test]
async fn install_is_refused_until_the_permissions_are_accepted() {
    // Proves a plugin gets nothing a person has not seen and accepted.
    let h = Harness::start().await;

    let refused = h
        .cli(&["plugins", "install", PLUGIN, "--id", "contacts"])
        .await;
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.starts_with("error: "), "{refused:#?}");
    assert!(refused
        .stderr
        .contains("\n  network:outbound:*.example.com\n"));
    assert!(refused
        .stderr
        .contains("\n  event:publish:connector.items.*\n"));
    assert!(refused.stderr.contains("--accept-permissions"));
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(listed_state(&list, "contacts"), None);

    let installed = h
        .cli(&[
            "plugins",
            "install",
            PLUGIN,
            "--id",
            "contacts",
            "--accept-permissions",
        ])
        .await
        .ok();
    assert!(
        installed.stdout.contains("Installed `contacts`"),
        "{installed:#?}"
    );
    let instance = h.instance_json("contacts").await;
    assert_eq!(instance["state"], "installed");
    assert_eq!(
        instance["permissions"],
        json!([
            "network:outbound:*.example.com",
            "event:publish:connector.items.*"
        ])
    );
    h.finish().await;
}

#[tokio::test]
async fn a_secret_from_the_environment_is_stored_and_never_printed() {
    // Proves a secret given with --secret-from-env reaches the plugin manager, shows as set,
    // and appears in no output of any command, in tables or JSON.
    let h = Harness::start().await;
    let secret = format!("hunter2-{}", h.env.prefix);
    h.cli(&["plugins", "install", PLUGIN, "--id", "contacts", "--yes"])
        .await
        .ok();

    let mut outputs = vec![h
        .cli_with(
            &[
                "plugins",
                "configure",
                "contacts",
                "--set",
                "server=https://crm.example.com",
                "--set",
                "pageSize=50",
                "--secret-from-env",
                "password=CONTACTS_PASSWORD",
            ],
            &[("CONTACTS_PASSWORD", &secret)],
        )
        .await
        .ok()];
    // A later --set changes one field; the others and the stored secret stay.
    outputs.push(
        h.cli(&[
            "plugins",
            "configure",
            "contacts",
            "--set",
            "pageSize=25",
            "--json",
        ])
        .await
        .ok(),
    );
    let info = h.cli(&["plugins", "info", "contacts"]).await.ok();
    assert!(
        row(&info.stdout, "password").ends_with(" set")
            && !row(&info.stdout, "password").contains("not set"),
        "{}",
        info.stdout
    );
    outputs.push(info);
    let info_json = h.cli(&["plugins", "info", "contacts", "--json"]).await.ok();
    let instance = info_json.json()["instance"].clone();
    assert_eq!(instance["secrets"], json!({"/password": "set"}));
    assert_eq!(
        instance["config"],
        json!({"server": "https://crm.example.com", "pageSize": 25})
    );
    outputs.push(info_json);
    for args in [
        &["plugins", "list"][..],
        &["plugins", "list", "--json"],
        &["plugins", "audit"],
        &["plugins", "audit", "--json"],
        &["plugins", "enable", "contacts"],
        &["plugins", "info", PLUGIN, "--json"],
    ] {
        outputs.push(h.cli(args).await.ok());
    }

    for run in &outputs {
        assert!(
            !run.everything().contains(&secret),
            "the secret leaked: {run:#?}"
        );
    }
    h.finish().await;
}

#[tokio::test]
async fn enable_and_disable_change_the_state_that_list_shows() {
    // Proves the lifecycle commands change what a person sees in `list`.
    let h = Harness::start().await;
    h.install_configured("pw-1").await;

    let enabled = h.cli(&["plugins", "enable", "contacts"]).await.ok();
    assert_eq!(enabled.stdout.trim(), "`contacts` is enabled.");
    let list = h.cli(&["plugins", "list"]).await.ok();
    assert!(
        row(&list.stdout, "contacts").contains(" enabled"),
        "{}",
        list.stdout
    );
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(listed_state(&list, "contacts").as_deref(), Some("enabled"));
    assert_eq!(list["plugins"]["plugins"][0]["id"], PLUGIN);

    h.cli(&["plugins", "disable", "contacts"]).await.ok();
    let list = h.cli(&["plugins", "list"]).await.ok();
    assert!(
        row(&list.stdout, "contacts").contains(" disabled"),
        "{}",
        list.stdout
    );
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(listed_state(&list, "contacts").as_deref(), Some("disabled"));
    h.finish().await;
}

#[tokio::test]
async fn list_shows_plugins_invalid_manifests_with_their_problems_and_instances() {
    // Proves `list` is a readable table of what was found, what is broken and why, and what
    // is installed.
    let mut h = Harness::without_service().await;
    h.dir
        .write("broken", r#"{"id": "Bad Id", "version": "one"}"#);
    h.start_service().await;
    h.install_configured("pw-1").await;

    let list = h.cli(&["plugins", "list"]).await.ok();
    let header = row(&list.stdout, "ID");
    for column in ["VERSION", "TYPE", "NAME", "LOCATION"] {
        assert!(header.contains(column), "{}", list.stdout);
    }
    let plugin = row(&list.stdout, PLUGIN);
    assert!(
        plugin.contains("1.0.0")
            && plugin.contains("connector")
            && plugin.contains("Example Contacts")
    );
    // Columns line up: each value starts where its title does.
    assert_eq!(
        header.find("VERSION"),
        plugin.find("1.0.0"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("broken (Bad Id)"), "{}", list.stdout);
    assert!(list.stdout.contains("\n  id: "), "{}", list.stdout);
    assert!(list.stdout.contains("\n  version: "), "{}", list.stdout);
    let instances = row(&list.stdout, "INSTANCE");
    assert!(instances.contains("LAST ERROR"));
    let contacts = row(&list.stdout, "contacts");
    assert!(contacts.contains(PLUGIN) && contacts.contains("installed"));

    let json = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(json["plugins"]["invalid"].as_array().unwrap().len(), 1);
    assert_eq!(json["instances"][0]["id"], "contacts");
    h.finish().await;
}

#[tokio::test]
async fn info_shows_a_plugins_permissions_and_which_fields_are_secret() {
    // Proves `info` on a plugin id tells a person what it asks for and what is secret.
    let h = Harness::start().await;

    let info = h.cli(&["plugins", "info", PLUGIN]).await.ok();
    assert!(
        info.stdout.contains("\n  network:outbound:*.example.com\n"),
        "{}",
        info.stdout
    );
    assert!(info
        .stdout
        .contains("\n  event:publish:connector.items.*\n"));
    assert!(
        row(&info.stdout, "password").contains("yes (write-only)"),
        "{}",
        info.stdout
    );
    assert!(row(&info.stdout, "server").contains("string (uri)"));
    assert!(!row(&info.stdout, "server").contains("write-only"));
    let json = h
        .cli(&["plugins", "info", PLUGIN, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(json["plugin"]["id"], PLUGIN);

    let missing = h.cli(&["plugins", "info", "nothing-here"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("no instance or plugin `nothing-here`"),
        "{missing:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn an_invalid_configuration_prints_the_json_path_of_each_problem() {
    // Proves a refused configuration names every offending field, so a person can fix it.
    let h = Harness::start().await;
    h.install_contacts().await;

    let refused = h
        .cli(&["plugins", "configure", "contacts", "--set", "pageSize=0"])
        .await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    let lines: Vec<&str> = refused.stderr.lines().collect();
    assert!(lines[0].starts_with("error: "), "{refused:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("  /pageSize: ")),
        "{refused:#?}"
    );
    assert!(lines.contains(&"  /server: is required"), "{refused:#?}");
    assert!(lines.contains(&"  /password: is required"), "{refused:#?}");

    let not_ready = h.cli(&["plugins", "enable", "contacts"]).await;
    assert_eq!(not_ready.code, 1, "{not_ready:#?}");
    assert!(
        not_ready.stderr.contains("\n  /server: is required"),
        "{not_ready:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn configure_with_a_json_file_replaces_the_configuration_and_keeps_the_secrets() {
    // Proves --config-json sets the whole configuration (fields it leaves out are gone) while
    // a secret it leaves out keeps its stored value.
    let h = Harness::start().await;
    h.install_configured("pw-1").await;
    h.cli(&["plugins", "configure", "contacts", "--set", "pageSize=5"])
        .await
        .ok();
    let file = h.dir.0.join("contacts.json");
    std::fs::write(&file, r#"{"server": "https://other.example.com"}"#).unwrap();

    h.cli(&[
        "plugins",
        "configure",
        "contacts",
        "--config-json",
        path(&file),
    ])
    .await
    .ok();
    let instance = h.instance_json("contacts").await;
    assert_eq!(
        instance["config"],
        json!({"server": "https://other.example.com"})
    );
    assert_eq!(instance["secrets"], json!({"/password": "set"}));
    h.finish().await;
}

#[tokio::test]
async fn uninstall_keeps_the_instance_as_uninstalled_and_purge_removes_it() {
    // Proves both kinds of uninstall do what they say, as `list` shows.
    let h = Harness::start().await;
    h.install_configured("pw-1").await;

    let kept = h.cli(&["plugins", "uninstall", "contacts"]).await.ok();
    assert!(kept.stdout.contains("--purge"), "{kept:#?}");
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(
        listed_state(&list, "contacts").as_deref(),
        Some("uninstalled")
    );

    let purged = h
        .cli(&["plugins", "uninstall", "contacts", "--purge", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(purged["purged"], true);
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(listed_state(&list, "contacts"), None);
    h.finish().await;
}

#[tokio::test]
async fn audit_lists_the_changes_in_order_with_who_made_them() {
    // Proves the audit log shows every change, oldest first, recorded as the NATS user the
    // CLI's requests come from (`nats:admin`: NATS does not say who sent one), with the CLI's
    // user kept beside it as what the request claimed.
    let h = Harness::start().await;
    h.install_configured("pw-1").await;
    for args in [
        &["plugins", "configure", "contacts", "--set", "pageSize=5"][..],
        &["plugins", "enable", "contacts"],
        &["plugins", "disable", "contacts"],
        &["plugins", "uninstall", "contacts"],
    ] {
        h.cli(args).await.ok();
    }

    let entries = h
        .cli(&["plugins", "audit", "contacts", "--json"])
        .await
        .ok()
        .json();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let expected = [
        "install",
        "accept_permissions",
        "configure",
        "enable",
        "disable",
        "uninstall",
    ];
    assert_eq!(actions, expected);
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "nats:admin" && e["detail"]["claimed_actor"] == "cli:alice"),
        "{entries:#}"
    );

    let text = h.cli(&["plugins", "audit", "contacts"]).await.ok().stdout;
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), expected.len(), "{text}");
    for (line, action) in rows.iter().zip(expected) {
        assert!(
            line.contains(&format!(" {action} ")),
            "expected {action} in `{line}`"
        );
        assert!(line.contains(" nats:admin (claims cli:alice) "), "{line}");
    }

    let newest = h
        .cli(&["plugins", "audit", "contacts", "--limit", "2", "--json"])
        .await
        .ok()
        .json();
    let actions: Vec<&str> = newest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["disable", "uninstall"]);
    h.finish().await;
}

#[tokio::test]
async fn upgrade_asking_for_new_permissions_waits_until_they_are_accepted() {
    // Proves a new version cannot widen what a plugin may do without a person accepting it.
    let h = Harness::start().await;
    h.install_contacts().await;
    let newer = MANIFEST.replace("\"1.0.0\"", "\"1.1.0\"").replace(
        "\"event:publish:connector.items.*\"]",
        "\"event:publish:connector.items.*\", \"network:outbound:*.example.org\"]",
    );
    h.dir.write("contacts", &newer);
    h.cli(&["plugins", "rescan"]).await.ok();

    let held = h.cli(&["plugins", "upgrade", "contacts"]).await;
    assert_eq!(held.code, 2, "{held:#?}");
    assert!(
        held.stderr.contains("\n  network:outbound:*.example.org"),
        "{held:#?}"
    );
    assert!(held.stderr.contains("--accept-permissions"), "{held:#?}");
    let info = h.cli(&["plugins", "info", "contacts"]).await.ok();
    assert!(
        info.stdout.contains("Held upgrade to 1.1.0"),
        "{}",
        info.stdout
    );
    assert_eq!(h.instance_json("contacts").await["version"], "1.0.0");

    h.cli(&["plugins", "upgrade", "contacts", "--accept-permissions"])
        .await
        .ok();
    let instance = h.instance_json("contacts").await;
    assert_eq!(instance["version"], "1.1.0");
    assert!(instance["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("network:outbound:*.example.org")));
    h.finish().await;
}

#[tokio::test]
async fn a_plugin_manager_that_does_not_answer_gives_one_clear_line() {
    // Proves a stopped plugin manager is reported as such, not as a cryptic NATS error.
    let h = Harness::without_service().await;

    let run = h.cli(&["plugins", "list"]).await;
    assert_eq!(run.code, 1);
    let subject = tributary_proto::Request::subject(
        &tributary_proto::requests::plugins::ListPlugins {},
        &h.env.subjects(),
    );
    assert_eq!(
        run.stderr,
        format!("error: the plugin manager does not answer on {subject}; is it running (tributary up)?\n")
    );
    h.finish().await;
}

#[tokio::test]
async fn generate_key_prints_32_bytes_of_base64() {
    // Proves the printed key is one the plugin manager accepts, and fresh each time.
    let run = || async {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["plugins", "generate-key"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .await
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run().await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(first.trim())
        .unwrap();
    assert_eq!(bytes.len(), 32);
    assert_ne!(first, run().await);
    tributary_plugin_manager::keys::MasterKey::from_base64(&first).unwrap();
}

#[tokio::test]
async fn rotate_key_moves_the_secrets_to_a_new_key_the_restarted_service_uses() {
    // Proves rotation re-seals every secret: a plugin manager restarted with the new key reads
    // them, and the old key no longer starts it.
    let mut h = Harness::start().await;
    h.install_configured("pw-before-rotation").await;
    let old_key = h
        .env
        .config
        .plugin_manager
        .master_key
        .expose_secret()
        .to_owned();
    let old_key_var = [("TRIBUTARY__PLUGIN_MANAGER__MASTER_KEY", old_key.as_str())];
    let new_key = h.cli(&["plugins", "generate-key"]).await.ok().stdout;
    let key_file = h.dir.0.join("new.key");
    std::fs::write(&key_file, &new_key).unwrap();
    let rotate = ["plugins", "rotate-key", "--new-key-file", path(&key_file)];

    let refused = h.cli_with(&rotate, &old_key_var).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(refused.stderr.contains("stop it first"), "{refused:#?}");

    h.stop_service().await;
    let rotated = h.cli_with(&rotate, &old_key_var).await.ok();
    assert!(
        rotated.stdout.contains("Moved 1 secret from key"),
        "{rotated:#?}"
    );
    assert!(
        rotated.stdout.contains("Restart the plugin manager"),
        "{rotated:#?}"
    );
    assert!(!rotated.everything().contains(new_key.trim()));

    let Err(err) = tributary_plugin_manager::build(h.env.config.clone()).await else {
        panic!("the old key must no longer start the plugin manager");
    };
    assert!(
        err.to_string().contains("plugin_manager.master_key"),
        "{err}"
    );

    h.env.config.plugin_manager.master_key = SecretString::from(new_key.trim().to_owned());
    h.start_service().await;
    let info = h.cli(&["plugins", "info", "contacts"]).await.ok();
    assert!(
        row(&info.stdout, "password").ends_with(" set"),
        "{}",
        info.stdout
    );
    h.cli(&["plugins", "enable", "contacts"]).await.ok();
    let client = h.env.nats().await;
    let runtime = client
        .request(
            tributary_proto::Request::subject(
                &tributary_proto::requests::plugins::RuntimeQuery {
                    plugin_type: Some(tributary_proto::PluginType::Connector),
                    instance_id: "contacts".into(),
                },
                &h.env.subjects(),
            ),
            r#"{"instance_id": "contacts"}"#.into(),
        )
        .await
        .unwrap();
    let runtime: Value = serde_json::from_slice(&runtime.payload).unwrap();
    assert_eq!(
        runtime["ok"]["config"]["password"], "pw-before-rotation",
        "{runtime}"
    );
    h.finish().await;
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn install_and_info_show_the_host_a_config_property_permission_grants() {
    // Proves a person sees what `network:outbound:${url}` grants this instance, not only the
    // pattern: install's page and `info` both show the resolved host next to it.
    let h = Harness::start().await;
    let resolved = "network:outbound:${url} → network:outbound:dav.example.com";

    let installed = h
        .cli(&[
            "plugins",
            "install",
            "tributary.dav",
            "--id",
            "dav-ada",
            "--set",
            "url=https://dav.example.com/ada/",
            "--set",
            "username=ada",
            "--yes",
        ])
        .await
        .ok();
    let info = h.cli(&["plugins", "info", "dav-ada"]).await.ok();

    assert!(installed.stdout.contains(resolved), "{}", installed.stdout);
    assert!(info.stdout.contains(resolved), "{}", info.stdout);
    h.finish().await;
}

/// `plugins info <id> --json` until its `webhook` says the route is served (or `secs` pass).
async fn wait_served_webhook(h: &Harness, id: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let info = h.cli(&["plugins", "info", id, "--json"]).await.ok().json();
        if info["webhook"]["served"] == true {
            return info["webhook"]["webhook_url"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the route was never served: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn install_and_info_print_the_webhook_url_the_channel_route_answers_on() {
    // Proves a person gets the URL to paste into the provider from the CLI alone, and that it
    // is the URL the channel service really answers once the instance is enabled.
    let h = Harness::start().await;
    let channel = tributary_kit::testing::RunningService::start(
        tributary_channel::build,
        h.env.config.clone(),
    )
    .await;
    let expected = format!("http://{}/webhooks/telegram/tg", channel.http_addr);

    let installed = h
        .cli(&[
            "plugins",
            "install",
            "tributary.telegram",
            "--id",
            "tg",
            "--set",
            "botToken=110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "--set",
            "secretToken=a-long-random-token",
            "--yes",
        ])
        .await
        .ok();
    assert!(
        installed.stdout.contains(&format!(
            "webhook URL:     {expected} (answers once enabled)\n"
        )),
        "{}",
        installed.stdout
    );
    assert!(
        installed
            .stdout
            .contains(&format!("Give the provider this webhook URL: {expected}\n")),
        "{}",
        installed.stdout
    );
    // With --json, the install answers the instance and the same URL, for scripts.
    let installed_json = h
        .cli(&[
            "plugins",
            "install",
            "tributary.telegram",
            "--id",
            "tg-json",
            "--set",
            "botToken=110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "--set",
            "secretToken=a-long-random-token",
            "--yes",
            "--json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(installed_json["id"], "tg-json", "{installed_json}");
    assert_eq!(
        installed_json["webhook"]["webhook_url"],
        format!("http://{}/webhooks/telegram/tg-json", channel.http_addr),
        "{installed_json}"
    );
    h.cli(&["plugins", "enable", "tg"]).await.ok();
    let served = wait_served_webhook(&h, "tg", 10).await;
    let info = h.cli(&["plugins", "info", "tg"]).await.ok();
    let answer = reqwest::Client::new()
        .post(&served)
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", "a-long-random-token")
        .body(json!({"update_id": 1}).to_string())
        .send()
        .await
        .unwrap();

    assert_eq!(served, expected);
    assert!(
        info.stdout
            .contains(&format!("webhook URL:     {expected}\n")),
        "{}",
        info.stdout
    );
    assert_eq!(answer.status().as_u16(), 200);
    channel.stop().await;
    h.finish().await;
}

#[tokio::test]
async fn a_channel_without_webhooks_says_so_and_a_stopped_channel_service_is_named() {
    // Proves `info` on a channel instance never invents a URL: e-mail takes no webhooks, and
    // without a channel service the page says why the URL is unknown.
    let h = Harness::start().await;
    h.cli(&[
        "plugins",
        "install",
        "tributary.email",
        "--id",
        "mail-out",
        "--set",
        "server=smtp://smtp.example.com:587",
        "--set",
        "from=hub@example.com",
        "--yes",
    ])
    .await
    .ok();

    let without_service = h.cli(&["plugins", "info", "mail-out"]).await.ok();
    let channel = tributary_kit::testing::RunningService::start(
        tributary_channel::build,
        h.env.config.clone(),
    )
    .await;
    let with_service = h.cli(&["plugins", "info", "mail-out"]).await.ok();

    assert!(
        without_service
            .stdout
            .contains("webhook URL:     unknown: the channel service does not answer"),
        "{}",
        without_service.stdout
    );
    assert!(
        with_service
            .stdout
            .contains("webhook URL:     none (this channel takes no webhooks)\n"),
        "{}",
        with_service.stdout
    );
    channel.stop().await;
    h.finish().await;
}
