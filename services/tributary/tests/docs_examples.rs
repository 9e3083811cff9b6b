//! Every command the README and docs/ show, run as a reader would run it: each `tributary …`
//! line of their `sh` code blocks, through bash, against a real plugin manager (and search
//! service, for the pages that search) on the real NATS and PostgreSQL, one mesh per page. A
//! command that cannot run here is listed in [`NOT_RUN`] with the reason, and the list must
//! match the docs exactly, so a new example is either run or explained.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tributary_kit::testing::{RunningService, TestEnv};

/// Commands the docs show that this test does not run: (page, the command's start, why).
const NOT_RUN: &[(&str, &str, &str)] = &[
    ("README.md", "cargo run -p tributary -- up", "runs the whole mesh until ctrl-c; tests/up.rs and tests/local_servers.rs run it"),
    ("README.md", "cargo run -p tributary -- search loyalty", "searches the demo set of `up --demo`; tests/local_servers.rs runs that"),
    ("docs/connectors/demo.md", "cargo run -p tributary -- up --demo", "runs the whole mesh until ctrl-c; tests/local_servers.rs runs it"),
    ("docs/channels.md", "tributary send ", "sends through a provider (Twilio, Slack, SMTP) this machine cannot reach; tests/send_cli.rs sends through a stand-in"),
    ("docs/connectors.md", "tributary sync <instance>", "`<instance>` is a placeholder"),
    ("docs/connectors.md", "tributary sync cancel <instance>", "`<instance>` is a placeholder"),
    ("docs/connectors.md", "tributary sync status", "asks the connector service, which follows its instances; tests/sync_cli.rs runs it"),
    ("docs/connectors/dav.md", "tributary sync dav-ada", "syncs from dav.example.com, which does not exist; tests/sync_cli.rs syncs a real server"),
    ("docs/plugin-manager.md", "tributary plugins rotate-key", "needs the plugin manager stopped; tests/plugins_cli.rs rotates a key"),
    ("docs/plugin-manager.md", "tributary plugins configure work --config-json config.json", "config.json is the reader's own file"),
    ("docs/plugin-manager.md", "tributary plugins upgrade work", "needs a newer version of the plugin; tests/plugins_cli.rs upgrades one"),
    ("docs/plugins.md", "tributary plugins add ", "adds the reader's own WebAssembly plugin; tests/plugins_cli/add.rs adds one from a directory and from a .tar.gz"),
    ("docs/plugins.md", "tributary plugins install com.example.tasks", "installs the plugin the reader added; tests/plugins_cli/add.rs installs one it added"),
    ("docs/connecting-accounts.md", "tributary ", "installs and connects the reader's own OAuth plugin, which needs an app registered with a real provider and a person consenting in a browser; tests/plugins_cli/connect.rs runs connect and info against a local Microsoft identity platform"),
    ("docs/declarative-connectors.md", "tributary ", "adds, installs and syncs the reader's own spec against api.tasks.example, which does not exist; tests/plugins_cli/add.rs adds a declarative plugin and refuses a bad spec, plugins/declarative/tests runs specs against a local server"),
    ("docs/connectors/microsoft-365.md", "tributary ", "connects a real Microsoft account, which needs an app registered with Microsoft and a person consenting in a browser; plugins/declarative/tests/declarative/microsoft_365.rs syncs the spec against a local Graph"),
    ("docs/connectors/google-calendar.md", "tributary ", "connects a real Google account, which needs a client registered with Google and a person consenting in a browser; plugins/declarative/tests/declarative/google_calendar.rs and services/connector/tests/connector/declarative.rs sync the spec against a local Calendar API"),
    ("docs/connectors/hubspot.md", "tributary ", "syncs from api.hubapi.com with a real private app's token; plugins/declarative/tests/declarative/hubspot.rs syncs the spec against a local CRM API"),
    ("docs/connectors/todoist.md", "tributary ", "syncs from api.todoist.com with a real account's API token; plugins/declarative/tests/declarative/todoist.rs syncs the spec against a local Todoist"),
    ("docs/connectors/zendesk.md", "tributary ", "syncs from a real Zendesk account (acme.zendesk.com) with an admin's API token; plugins/declarative/tests/declarative/zendesk.rs syncs the spec against a local Zendesk"),
    ("docs/plugin-kits.md", "tributary ", "the plugin author's walk-through, run step by step in TypeScript and in Python by tests/kit_guide.rs (its mesh steps listed there with the tests that run them)"),
];

/// The variables a reader of the pages has set before (the pages use them without setting).
const READER_ENV: &[(&str, &str)] = &[
    ("SMTP_PASSWORD", "smtp password"),
    ("DAV_PASSWORD", "app password"),
];

/// `com.example.contacts`, the third-party plugin docs/plugin-manager.md installs.
const EXAMPLE_PLUGIN: &str = r#"{"id": "com.example.contacts", "name": "Example Contacts", "version": "1.0.0", "type": "connector",
 "entrypoint": "builtin:example", "permissions": ["network:outbound:${server}", "event:publish:connector.items.*"],
 "configSchema": {"type": "object", "properties": {"server": {"type": "string", "format": "uri"}, "pageSize": {"type": "integer", "minimum": 1}, "password": {"type": "string", "writeOnly": true}}, "required": ["server", "password"]}}"#;

/// One command of a page, with the variable assignments its code block makes before it.
#[derive(Debug, Clone)]
struct Example {
    page: String,
    setup: Vec<String>,
    command: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every page under docs/, as paths relative to the repository.
fn pages() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.display().to_string());
            }
        }
    }
    let root = repo_root().canonicalize().unwrap();
    let mut pages = vec!["README.md".to_owned()];
    walk(&root.join("docs"), &root, &mut pages);
    pages
}

/// The commands of `text`'s `sh` blocks: lines joined across a trailing `\`, comments after
/// two spaces dropped; `export …` and `name=…` lines are kept as the setup of what follows.
fn examples(page: &str, text: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut in_sh = false;
    let mut setup = Vec::new();
    let mut line = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && lang == "sh";
            setup.clear();
            continue;
        }
        if !in_sh {
            continue;
        }
        line.push_str(trimmed.trim_end_matches('\\').trim_end());
        if trimmed.ends_with('\\') {
            line.push(' ');
            continue;
        }
        let command = std::mem::take(&mut line);
        let command = match command.find("  #") {
            Some(at) => command[..at].trim_end().to_owned(),
            None => command,
        };
        let assignment = command
            .split_once('=')
            .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if command.starts_with("export ") || assignment {
            setup.push(command);
        } else if command.starts_with("tributary ") || command.starts_with("cargo run -p tributary")
        {
            found.push(Example {
                page: page.to_owned(),
                setup: setup.clone(),
                command,
            });
        }
    }
    found
}

fn not_run_reason(example: &Example) -> Option<&'static str> {
    NOT_RUN
        .iter()
        .find(|(page, start, _)| *page == example.page && example.command.starts_with(start))
        .map(|(_, _, why)| *why)
}

/// The mesh one page's commands run against, and the reader's home and working directory.
struct Page {
    env: TestEnv,
    home: tempfile::TempDir,
    bin: PathBuf,
    services: Vec<RunningService>,
}

impl Page {
    async fn start(with_search: bool) -> Self {
        let mut env = TestEnv::new().await;
        let home = tempfile::tempdir().unwrap();
        let plugins = home.path().join("plugins/contacts");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::write(plugins.join("plugin.json"), EXAMPLE_PLUGIN).unwrap();
        env.config.plugin_manager.plugin_dirs = vec![home.path().join("plugins")];
        // `tributary` on the PATH, as an installed binary is.
        let bin = home.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tributary"), bin.join("tributary")).unwrap();
        let mut services =
            vec![RunningService::start(tributary_plugin_manager::build, env.config.clone()).await];
        if with_search {
            services.push(RunningService::start(tributary_search::build, env.config.clone()).await);
        }
        Self {
            env,
            home,
            bin,
            services,
        }
    }

    /// Runs the example through bash, as typed; its exit code and what it printed.
    async fn run(&self, example: &Example) -> (i32, String) {
        let script = example
            .setup
            .iter()
            .chain(std::iter::once(&example.command))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let output = tokio::process::Command::new("bash")
            .args(["-c", &script])
            .current_dir(self.home.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home.path())
            .env("USER", "reader")
            .envs(READER_ENV.iter().copied())
            .env("TRIBUTARY__NATS__SUBJECT_PREFIX", &self.env.prefix)
            .env("TRIBUTARY__DATABASE__NAME", &self.env.database)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), printed)
    }

    async fn stop(self) {
        for service in self.services.into_iter().rev() {
            service.stop().await;
        }
    }
}

#[tokio::test]
async fn every_command_the_docs_show_runs_or_is_listed_with_the_reason() {
    // Proves the docs' commands work as printed, `plugins install` first of all (a value the
    // schema types as a string, like WhatsApp's phoneNumberId, stays a string).
    let root = repo_root();
    let mut all = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(root.join(&page)).unwrap();
        all.extend(examples(&page, &text));
    }
    let installs = all
        .iter()
        .filter(|e| e.command.starts_with("tributary plugins install"))
        .count();
    assert!(
        installs >= 10,
        "only {installs} install examples found: {all:#?}"
    );
    for (page, start, _) in NOT_RUN {
        assert!(
            all.iter()
                .any(|e| e.page == *page && e.command.starts_with(start)),
            "NOT_RUN lists `{start}` on {page}, which no longer shows it"
        );
    }

    let mut failures = Vec::new();
    let mut ran = 0;
    let mut pages: Vec<&str> = all.iter().map(|e| e.page.as_str()).collect();
    pages.dedup();
    for page in pages {
        let runnable: Vec<&Example> = all
            .iter()
            .filter(|e| e.page == page && not_run_reason(e).is_none())
            .collect();
        if runnable.is_empty() {
            continue;
        }
        let with_search = runnable
            .iter()
            .any(|e| e.command.starts_with("tributary search"));
        let mesh = Page::start(with_search).await;
        for example in runnable {
            let (code, printed) = mesh.run(example).await;
            ran += 1;
            if code != 0 {
                failures.push(format!(
                    "{page}: `{}` exited {code}:\n{printed}",
                    example.command
                ));
            }
        }
        mesh.stop().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran >= 30, "only {ran} commands ran");
}
