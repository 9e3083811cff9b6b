//! The admin console in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven
//! by Playwright (tests/console/console.mjs) against the five real service processes. Sign-in
//! with a wrong token, then the right one; every page; a plugin added from an archive through
//! the Plugins page's file input; a forged form post without its CSRF
//! token refused; a folder connector instance enabled, synced with Sync now while the page
//! follows it, its notes found through the search page, and disabled with the keyboard; a
//! person two demo instances know shown with her merge's evidence and unmerged; a document of
//! an instance not installed yet dead-lettered, the instance installed, the dead letter
//! replayed from its page and the document stored once; sign-out. Screenshots of each page go to
//! `<target dir>/console-screenshots/` (CI keeps them as artefacts); docs/console/ holds the
//! main ones.
//!
//! Chromium and playwright-core are installed by `scripts/services-up` (through
//! `scripts/playwright-modules`, which this test runs too): a machine without them installs
//! them or fails here saying why, never skips.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde_json::json;
use tributary_e2e::{eventually, installed_by, repo, Stack};
use tributary_kit::testing::plugins::{tasks_manifest, TASKS, TASKS_SPEC};
use tributary_plugin_manager::console::auth::{CSRF_REFUSED, WRONG_TOKEN};
use tributary_proto::item::ItemOperation;
use tributary_proto::model::EntityType;
use tributary_proto::requests::connector::{StateQuery, SyncStateView};
use tributary_proto::streams::ConsumerKey;
use tributary_proto::{ConnectorItem, ServiceName};

const INSTANCE: &str = "notes";
const FILES: usize = 7;
/// Two instances of the demo set: each of its seven people comes from both, one person each.
const DEMOS: [&str; 2] = ["demo-a", "demo-b"];
/// One of them, her address and a word that finds her.
const PERSON: (&str, &str, &str) = ("Ada Okafor", "ada@riverbend.example", "Okafor");
/// The instance installed only after its document was dead-lettered, and the document's word.
const LATE: (&str, &str) = ("late", "cormorants");

/// The late instance's document, published as its connector would.
fn late_item() -> ConnectorItem {
    ConnectorItem {
        instance_id: LATE.0.to_owned(),
        entity_type: EntityType::Document,
        external_id: "late-note.md".to_owned(),
        operation: ItemOperation::Upsert,
        source_modified_at: chrono::Utc::now(),
        data: json!({ "title": "Late note", "content": format!("A note about {}.", LATE.1) }),
        raw: json!({ "path": "late-note.md" }),
    }
}

/// The declarative tasks plugin as `<dir>/tasks.tar.gz` (written with the system's `tar`),
/// for the browser to add.
fn tasks_archive(dir: &Path) -> PathBuf {
    let plugin = dir.join("tasks");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(plugin.join("plugin.json"), tasks_manifest("1.0.0")).unwrap();
    std::fs::write(plugin.join("tasks.toml"), TASKS_SPEC).unwrap();
    let archive = dir.join("tasks.tar.gz");
    let packed = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .arg("tasks")
        .status()
        .unwrap();
    assert!(packed.success(), "tar writes {}", archive.display());
    archive
}

/// Where playwright-core is: `$TRIBUTARY_PLAYWRIGHT_MODULES`, or what
/// `scripts/playwright-modules` installs (and Chromium with it).
fn playwright_modules() -> PathBuf {
    installed_by(
        "playwright-modules",
        "TRIBUTARY_PLAYWRIGHT_MODULES",
        "Chromium and playwright-core",
    )
}

/// `<target dir>/console-screenshots`, emptied.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("console-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_syncs_and_disables_an_instance_in_chromium() {
    let modules = playwright_modules();
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: run scripts/services-up"
    );
    let folder = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        std::fs::write(
            folder.path().join(format!("note-{i}.md")),
            format!("# Heron {i}\n\nA note about herons, number {i}."),
        )
        .unwrap();
    }
    let mut stack = Stack::new().await;
    stack.start_all().await;
    // The browser installs the folder instance through the form, then enables it.

    for demo in DEMOS {
        stack
            .admin_install("tributary.demo", demo, json!({ "schedule": "24h" }))
            .await;
        stack.admin_enable(demo).await;
    }
    // Both synced and each person merged: fourteen records, seven people, all indexed.
    let records = "SELECT count(*) FROM source_record WHERE entity_type = 'person' \
                   AND instance_id IN ('demo-a', 'demo-b')";
    stack
        .wait_for_rows(records, 14, std::time::Duration::from_secs(60))
        .await;
    let people =
        "SELECT count(DISTINCT entity_id) FROM source_record WHERE entity_type = 'person' \
                  AND instance_id IN ('demo-a', 'demo-b')";
    stack
        .wait_for_rows(people, 7, std::time::Duration::from_secs(60))
        .await;
    stack
        .wait_consumer_settled(ConsumerKey::SearchIndexer, 60)
        .await;

    // A document of an instance not installed yet: the ETL dead-letters it, saying so. The
    // browser installs the instance (the fix) and replays it; it is then stored once.
    let late_folder = tempfile::tempdir().unwrap();
    let permissions = stack
        .admin_api()
        .permissions("tributary.folder")
        .await
        .unwrap();
    let late_install = json!({
        "plugin_id": "tributary.folder", "instance_id": LATE.0,
        "config": { "path": late_folder.path(), "schedule": "24h" },
        "accept_permissions": permissions,
    });
    stack.mesh().publish_items(&[late_item()]).await;
    eventually(30, "the late document dead-lettered", || async {
        let (_, page) = stack
            .admin(reqwest::Method::GET, "/api/v1/dead-letters", None)
            .await;
        (page["total"] == 1).then_some(())
    })
    .await;

    // A plugin to add through the Plugins page's file input.
    let sources = tempfile::tempdir().unwrap();
    let archive = tasks_archive(sources.path());

    let shots = screenshots();
    let base = format!("http://{}", stack.http_addr(ServiceName::PluginManager));
    let token = stack
        .config()
        .plugin_manager
        .admin_token
        .expose_secret()
        .to_owned();
    let script = repo().join("tests/console/console.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .env("CONSOLE_URL", &base)
        .env("ADMIN_TOKEN", &token)
        .env("INSTANCE", INSTANCE)
        .env("FOLDER", folder.path())
        .env("FILES", FILES.to_string())
        .env("PERSON_NAME", PERSON.0)
        .env("PERSON_EMAIL", PERSON.1)
        .env("PERSON_WORD", PERSON.2)
        .env("LATE_INSTANCE", LATE.0)
        .env("LATE_WORD", LATE.1)
        .env("LATE_INSTALL", late_install.to_string())
        .env("SCREENSHOTS", &shots)
        .env("PLAYWRIGHT_MODULES", &modules)
        .env("WRONG_TOKEN_MESSAGE", WRONG_TOKEN)
        .env("CSRF_MESSAGE", CSRF_REFUSED)
        .env("ARCHIVE", &archive)
        .env("ARCHIVE_PLUGIN", TASKS)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("the browser test ends within 240 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\nplugin manager log:\n{}",
        stack.log_text(ServiceName::PluginManager)
    );
    assert!(
        !stdout.contains(&token) && !stderr.contains(&token),
        "the token is never printed"
    );

    // What the browser did, as the admin API and the connector service see it.
    let view = stack.admin_instance(INSTANCE).await;
    assert_eq!(view["state"], "disabled", "{view}");
    let state: SyncStateView = eventually(10, "the sync state", || async {
        let asked = stack
            .ask(&StateQuery {
                instance_id: INSTANCE.to_owned(),
            })
            .await
            .ok()?;
        serde_json::from_value(asked).ok()
    })
    .await;
    assert_eq!(state.status.as_str(), "succeeded", "{state:?}");
    assert_eq!(state.items, FILES as u64, "{state:?}");
    let (status, audit) = stack
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/audit?instance_id={INSTANCE}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let by_console: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["actor"]
                .as_str()
                .unwrap_or_default()
                .starts_with("admin-console:")
        })
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_console,
        ["install", "accept_permissions", "enable", "disable"],
        "{audit}"
    );

    // The unmerge the browser asked for, recorded as the console's.
    let split = stack
        .count(
            "SELECT count(DISTINCT entity_id) FROM source_record WHERE entity_type = 'person' \
             AND instance_id IN ('demo-a', 'demo-b')",
        )
        .await;
    assert_eq!(split, 8, "one of the seven split in two");
    let ada: uuid::Uuid = sqlx::query_scalar(
        "SELECT entity_id FROM source_record WHERE instance_id = 'demo-a' AND external_id = 'p-ada'",
    )
    .fetch_one(stack.pool())
    .await
    .unwrap();
    let (status, shown) = stack
        .admin(reqwest::Method::GET, &format!("/api/v1/people/{ada}"), None)
        .await;
    assert_eq!(status, 200, "{shown}");
    let actor = shown["decisions"][0]["actor"].as_str().unwrap_or_default();
    assert!(actor.starts_with("admin-console:"), "{shown}");

    // The replayed document, stored once, nothing left waiting.
    let stored = stack
        .count(
            "SELECT count(*) FROM source_record WHERE instance_id = 'late' \
             AND external_id = 'late-note.md'",
        )
        .await;
    assert_eq!(stored, 1, "the replayed document is stored once");
    let (_, waiting) = stack
        .admin(reqwest::Method::GET, "/api/v1/dead-letters", None)
        .await;
    assert_eq!(waiting["total"], 0, "{waiting}");

    for page in [
        "dead-letters",
        "dead-letters-replayed",
        "search",
        "person",
        "person-unmerged",
        "sign-in",
        "sign-in-refused",
        "overview",
        "plugins",
        "plugins-added",
        "instance",
        "instance-synced",
        "timeline",
        "instance-disabled",
    ] {
        let file = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", file.display());
    }
}
