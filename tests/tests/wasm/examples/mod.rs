//! The example third-party plugins of `examples/plugins` through the real services: each built
//! with the plugin kit (`tributary plugins build`) from a copy of its directory, discovered by
//! the plugin manager there, installed with its permissions accepted and enabled through the
//! admin API, then run by the connector or channel process against a local server answering
//! as the real service documents (a web feed, GitHub's REST API, Mattermost's webhooks).
//!
//! Builds are cached by content (`~/.cache/tributary-plugin-builds`) and compiled components
//! too ([`guests::compiled_cache_dir`]), so only the first test after a change to an example
//! pays for building and compiling it.

mod feed_site;
mod github_api;
mod github_issues;
mod mattermost;
mod rss_feed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary::plugin_kit::build::{build, BuildOptions};
use tributary_e2e::{ServiceName, Stack};
use tributary_kit::testing::guests;

/// Where the examples are checked in.
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins")
}

/// What of an example's directory is not its source: what a build or an editor leaves there.
fn is_build_output(name: &str) -> bool {
    matches!(name, "node_modules" | "dist" | "__pycache__") || name.ends_with(".wasm")
}

/// Copies the source of plugin directory `from` to `to` (made here), leaving out build output.
fn copy_source(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot make {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if is_build_output(&name.to_string_lossy()) {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_source(&source, &target);
        } else {
            std::fs::copy(&source, &target).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} to {}: {e}",
                    source.display(),
                    target.display()
                )
            });
        }
    }
}

/// A stack of the five services whose plugin manager finds `example` (the directory name
/// under `examples/plugins`) built, and nothing else but the built-ins; all started. The
/// example is copied into the stack's directory and built there, so the checked-in one is
/// left as it is (a build writes the component and its `sha256` into the directory it builds).
pub async fn stack_serving(example: &str) -> Stack {
    let mut stack = Stack::new().await;
    let plugins = stack.dir().join("plugins");
    let dir = plugins.join(example);
    copy_source(&examples_dir().join(example), &dir);
    let started = Instant::now();
    let built = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || build(&dir, BuildOptions::default())
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("building examples/plugins/{example}: {e}"));
    eprintln!(
        "{}: built in {:.1?} ({}, {:.1} MB)",
        built.id,
        started.elapsed(),
        if built.cached {
            "from the build cache"
        } else {
            "cold"
        },
        built.bytes as f64 / 1e6
    );
    stack
        .set_list(
            "plugin_manager.plugin_dirs",
            &[plugins.display().to_string()],
        )
        .set(
            "wasm.cache_dir",
            guests::compiled_cache_dir().display().to_string(),
        );
    stack.start_all().await;
    stack
}

/// Installs `plugin` as `instance` with `config` through the admin API, accepting the
/// permissions it asks for (which must be `permissions`), after checking that the plugin
/// manager found it where [`stack_serving`] built it; then enables it. When it was enabled.
pub async fn install_and_enable(
    stack: &Stack,
    plugin: &str,
    permissions: &[&str],
    instance: &str,
    config: Value,
) -> Instant {
    let (status, info) = stack
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/plugins/{plugin}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{plugin} is discovered: {info}");
    let location = info["location"].as_str().unwrap_or_default();
    assert!(
        Path::new(location).starts_with(stack.dir().join("plugins")),
        "{plugin} is the one built for this test, not the one at {location}"
    );
    assert_eq!(
        info["permissions"],
        serde_json::json!(permissions),
        "{info}"
    );
    stack.admin_install(plugin, instance, config).await;
    let view = stack.admin_instance(instance).await;
    assert_eq!(
        view["permissions"],
        serde_json::json!(permissions),
        "the permissions accepted: {view}"
    );
    let enabled = Instant::now();
    stack.admin_enable(instance).await;
    enabled
}

/// Asserts that `secret` is in no admin view of `instance`, no log of the stack, and no stored
/// row of the unified model's sources, and that the admin API shows `field` as a set secret.
pub async fn assert_secret_kept(stack: &Stack, instance: &str, field: &str, secret: &str) {
    let view = stack.admin_instance(instance).await;
    assert!(!view.to_string().contains(secret), "{view}");
    let secrets = view["secrets"].as_object().unwrap();
    assert!(
        secrets
            .iter()
            .any(|(name, status)| name.ends_with(field) && status == "set"),
        "{field} is kept as a secret: {view}"
    );
    for path in ["/api/v1/instances", "/api/v1/audit"] {
        let (status, answer) = stack.admin(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {answer}");
        assert!(!answer.to_string().contains(secret), "GET {path}: {answer}");
    }
    let stored = stack
        .count(&format!(
            "SELECT count(*) FROM source_record WHERE raw::text LIKE '%{secret}%'"
        ))
        .await;
    assert_eq!(stored, 0, "no stored payload holds the secret");
    for service in ServiceName::ALL {
        assert!(
            !stack.log_text(service).contains(secret),
            "the {service} log holds the secret of {field}"
        );
    }
}

/// The events of the test's data stream about what `instance` synced or received, in order:
/// (subject, entity id), such as (`data.DocumentCreated`, `0193…`).
pub async fn data_events(stack: &Stack, instance: &str) -> Vec<(String, String)> {
    stack
        .stream_messages(tributary_proto::streams::StreamKey::DataEvents)
        .await
        .into_iter()
        .filter(|event| event.json["source"]["instance"] == instance)
        .map(|event| {
            let entity = event.json["entity_id"].as_str().unwrap_or_default();
            (event.subject, entity.to_owned())
        })
        .collect()
}

/// How many of the [`data_events`] of `instance` each subject has.
pub async fn data_event_counts(stack: &Stack, instance: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (subject, _) in data_events(stack, instance).await {
        *counts.entry(subject).or_insert(0) += 1;
    }
    counts
}

/// Waits until the ETL has written every item published so far and its outbox has been
/// published: from then on, the rows and events of what was synced are all there.
pub async fn wait_until_written(stack: &Stack) {
    stack
        .wait_consumer_settled(tributary_proto::streams::ConsumerKey::EtlItems, 60)
        .await;
    stack
        .wait_for_rows("SELECT count(*) FROM outbox", 0, Duration::from_secs(60))
        .await;
}
