//! `POST /api/v1/plugins`: a third-party plugin added from a `.tar.gz` over the admin API,
//! checked as `tributary plugins add` checks it, put in `<data_dir>/plugins/<id>/<version>/`,
//! listed and installable; and its refusals, each naming its reason and leaving nothing behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tributary_kit::testing::plugins::{tasks_manifest, TASKS, TASKS_PERMISSIONS, TASKS_SPEC};
use tributary_kit::testing::{RunningService, TestEnv};

use crate::support::*;

/// A `.tar.gz` being written in memory, including entries the `tar` crate would refuse to
/// write (`..`, absolute paths).
pub(crate) struct Archive(tar::Builder<flate2::write::GzEncoder<Vec<u8>>>);

impl Archive {
    pub(crate) fn new() -> Self {
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        Self(tar::Builder::new(gzip))
    }

    /// The tasks plugin at `version` with `spec`, under the top-level directory `tasks/`.
    pub(crate) fn tasks(version: &str, spec: &str) -> Self {
        let mut archive = Self::new();
        archive.file("tasks/plugin.json", tasks_manifest(version).as_bytes());
        archive.file("tasks/tasks.toml", spec.as_bytes());
        archive
    }

    /// A regular file whose name is written as given.
    pub(crate) fn file(&mut self, name: &str, data: &[u8]) {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        let mut gzip = self.0.into_inner().unwrap();
        gzip.flush().unwrap();
        gzip.finish().unwrap()
    }
}

/// `POST /api/v1/plugins` (`?replace=true` when `replace`) with `archive` as the body.
async fn add(admin: &Admin, archive: Vec<u8>, replace: bool) -> (u16, Value) {
    let path = if replace {
        "/api/v1/plugins?replace=true"
    } else {
        "/api/v1/plugins"
    };
    admin
        .send_bytes("POST", path, "application/gzip", archive)
        .await
}

/// The plugin manager running with the contacts plugin in a configured directory, and an
/// empty managed one.
pub(crate) async fn started() -> (TestEnv, PluginDir, RunningService) {
    let (env, dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    (env, dir, pm)
}

/// Where the tasks plugin at `version` is added.
pub(crate) fn managed(env: &TestEnv, version: &str) -> PathBuf {
    env.config.managed_plugin_dir().join(TASKS).join(version)
}

/// The versions of the tasks plugin `GET /api/v1/plugins` lists, with their locations.
pub(crate) async fn listed(admin: &Admin) -> Vec<(String, String)> {
    let (status, list) = admin.call("GET", "/api/v1/plugins", None).await;
    assert_eq!(status, 200, "{list}");
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == TASKS)
        .map(|p| {
            (
                p["version"].as_str().unwrap().to_owned(),
                p["location"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every file and directory under `root`, recursively.
fn everything_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// Asserts nothing of the tasks plugin was added and no staging directory is left.
pub(crate) fn nothing_added(env: &TestEnv) {
    let added = env.config.managed_plugin_dir().join(TASKS);
    assert!(
        everything_under(&added).is_empty(),
        "{:?}",
        everything_under(&added)
    );
    let staging = env.config.data_dir.join(".plugins-incoming");
    assert!(
        everything_under(&staging).is_empty(),
        "staging left: {:?}",
        everything_under(&staging)
    );
}

#[tokio::test]
async fn a_plugin_archive_posted_is_added_listed_audited_and_installable() {
    // Proves an archive over HTTP is checked, put in the managed directory, answered with as
    // the catalog lists it, recorded under the token's name, and can be installed at once.
    let (env, _dir, pm) = started().await;
    let admin = Admin::new(&env, &pm);

    let (status, added) = add(&admin, Archive::tasks("1.0.0", TASKS_SPEC).finish(), false).await;

    assert_eq!(status, 201, "{added}");
    let target = managed(&env, "1.0.0");
    assert_eq!(added["id"], TASKS, "{added}");
    assert_eq!(added["version"], "1.0.0", "{added}");
    assert_eq!(added["location"], target.display().to_string(), "{added}");
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        TASKS_SPEC
    );
    assert_eq!(
        listed(&admin).await,
        [("1.0.0".to_owned(), target.display().to_string())]
    );
    let entry = admin.audit_entry("add_plugin").await;
    assert_eq!(entry["plugin_id"], TASKS, "{entry}");
    assert_eq!(entry["detail"]["version"], "1.0.0", "{entry}");
    assert_eq!(
        entry["actor"],
        tributary_plugin_manager::http_api::admin_actor(&env.config.plugin_manager.admin_token)
    );

    let (status, instance) = admin
        .call(
            "POST",
            "/api/v1/instances",
            Some(json!({ "plugin_id": TASKS, "instance_id": "tasks",
                         "accept_permissions": TASKS_PERMISSIONS })),
        )
        .await;
    assert_eq!(status, 201, "{instance}");
    assert_eq!(instance["version"], "1.0.0", "{instance}");
    nothing_added_but(&env, "1.0.0");
    pm.stop().await;
}

/// Asserts the tasks plugin holds only `version` and no staging directory is left.
fn nothing_added_but(env: &TestEnv, version: &str) {
    let versions: Vec<_> = std::fs::read_dir(env.config.managed_plugin_dir().join(TASKS))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(versions, [version]);
    let staging = env.config.data_dir.join(".plugins-incoming");
    assert!(everything_under(&staging).is_empty(), "staging left");
}

#[tokio::test]
async fn the_same_version_again_is_409_unless_replace_which_swaps_it() {
    // Proves a version once added is not overwritten by accident, and `replace=true` swaps it.
    let (env, _dir, pm) = started().await;
    let admin = Admin::new(&env, &pm);
    let (status, added) = add(&admin, Archive::tasks("1.0.0", TASKS_SPEC).finish(), false).await;
    assert_eq!(status, 201, "{added}");
    let rebuilt = TASKS_SPEC.replace("body.items", "body.tasks");

    let (status, refused) = add(&admin, Archive::tasks("1.0.0", &rebuilt).finish(), false).await;

    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "conflict", "{refused}");
    assert_eq!(
        refused["message"],
        format!("`{TASKS}` 1.0.0 is already added; `?replace=true` replaces it")
    );
    let target = managed(&env, "1.0.0");
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        TASKS_SPEC
    );

    let (status, replaced) = add(&admin, Archive::tasks("1.0.0", &rebuilt).finish(), true).await;
    assert_eq!(status, 201, "{replaced}");
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        rebuilt
    );
    assert_eq!(
        listed(&admin).await,
        [("1.0.0".to_owned(), target.display().to_string())]
    );
    nothing_added_but(&env, "1.0.0");
    pm.stop().await;
}

#[tokio::test]
async fn an_archive_entry_climbing_out_is_400_naming_the_entry_and_writes_nothing() {
    // Proves an uploaded archive cannot write outside its own directory: the `..` entry is
    // named, and no file of it is anywhere under the data directory.
    let (env, _dir, pm) = started().await;
    let admin = Admin::new(&env, &pm);
    let mut archive = Archive::tasks("1.0.0", TASKS_SPEC);
    archive.file("tasks/../../escaped.txt", b"escaped");

    let (status, refused) = add(&admin, archive.finish(), false).await;

    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "bad_request", "{refused}");
    assert_eq!(
        refused["message"],
        "`tasks/../../escaped.txt` in the uploaded archive would be written outside the \
         plugin's directory: an archive entry must be a relative path without `..`"
    );
    nothing_added(&env);
    let escaped: Vec<_> = everything_under(&env.config.data_dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "escaped.txt"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
    assert!(listed(&admin).await.is_empty());
    pm.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_a_gzip_archive_is_400_saying_so() {
    let (env, _dir, pm) = started().await;
    let admin = Admin::new(&env, &pm);

    let (status, refused) = add(&admin, b"plugin.json, honestly".to_vec(), false).await;

    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "bad_request", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.starts_with("the uploaded archive is not a readable .tar.gz: "),
        "{refused}"
    );
    nothing_added(&env);
    pm.stop().await;
}

#[tokio::test]
async fn a_plugin_the_checks_refuse_is_400_naming_each_problem() {
    // Proves the declarative spec is checked as `plugins add` checks it: each problem by its
    // path in the spec, under the archive's name for the file.
    let (env, _dir, pm) = started().await;
    let admin = Admin::new(&env, &pm);
    let bad = TASKS_SPEC.replace("config.token", "config.tenant");

    let (status, refused) = add(&admin, Archive::tasks("1.0.0", &bad).finish(), false).await;

    assert_eq!(status, 400, "{refused}");
    let message = refused["message"].as_str().unwrap();
    for named in [
        "tasks/tasks.toml in the uploaded archive: the connector spec has 1 problem(s)",
        "auth.token: template names config.tenant, which configSchema lacks",
    ] {
        assert!(message.contains(named), "`{named}` not in {refused}");
    }
    nothing_added(&env);
    pm.stop().await;
}

#[tokio::test]
async fn an_archive_unpacking_over_the_cap_is_413_and_leaves_nothing() {
    // Proves the unpacked size is counted on what is written: a small archive that inflates
    // past 256 MiB is stopped at the cap.
    let (env, _dir, pm) = started().await;
    let admin = Admin::new(&env, &pm);
    let mut archive = Archive::tasks("1.0.0", TASKS_SPEC);
    archive.file("tasks/padding.bin", &vec![0u8; 257 * 1024 * 1024]);
    let archive = archive.finish();
    assert!(archive.len() < 2 * 1024 * 1024, "{}", archive.len());

    let (status, refused) = add(&admin, archive, false).await;

    assert_eq!(status, 413, "{refused}");
    assert_eq!(
        refused["message"],
        "the plugin's files add up to more than 268435456 bytes, the most the plugin manager takes"
    );
    nothing_added(&env);
    pm.stop().await;
}

#[tokio::test]
async fn without_the_token_an_archive_is_401_and_adds_nothing() {
    let (env, _dir, pm) = started().await;
    let anonymous = Admin::with_token(&pm, None);

    let (status, refused) = add(
        &anonymous,
        Archive::tasks("1.0.0", TASKS_SPEC).finish(),
        false,
    )
    .await;

    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["error"], "unauthorized", "{refused}");
    nothing_added(&env);
    assert!(listed(&Admin::new(&env, &pm)).await.is_empty());
    pm.stop().await;
}

#[tokio::test]
async fn the_openapi_document_takes_the_archive_as_binary_and_lists_every_answer() {
    let (env, _dir, pm) = started().await;
    let (_, doc) = Admin::new(&env, &pm)
        .call("GET", "/api/v1/openapi.json", None)
        .await;
    let operation = &doc["paths"]["/api/v1/plugins"]["post"];
    let content = &operation["requestBody"]["content"];
    for media in ["application/gzip", "application/octet-stream"] {
        let schema = &content[media]["schema"];
        let schema = match schema["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
            None => schema,
        };
        assert_eq!(schema["type"], "string", "{media}: {operation:#}");
        assert_eq!(schema["format"], "binary", "{media}: {operation:#}");
    }
    let replace = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "replace")
        .unwrap();
    assert_eq!(replace["in"], "query", "{replace}");
    let mut statuses: Vec<&str> = operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["201", "400", "401", "409", "413", "500"]);
    pm.stop().await;
}
