//! `tributary plugins add`: a third-party plugin from a directory or a `.tar.gz`, checked,
//! copied into `<data_dir>/plugins/<id>/<version>/`, found by the plugin manager, installed
//! with permission consent; and every refusal, each naming its reason, leaving nothing behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tributary_kit::testing::plugins::{tasks_manifest, TASKS, TASKS_SPEC};

use super::{Harness, Run};

/// A component importing nothing: it passes every import check.
const QUIET: &str = "(component)";

const PERMISSIONS: [&str; 2] = [
    "network:outbound:api.example.com",
    "event:publish:connector.items.*",
];

/// A plugin to add: its manifest's fields and its component, written out on demand.
struct Source {
    version: String,
    wat: String,
    permissions: Vec<String>,
    /// The digest the manifest declares; the component's own when `None`.
    sha256: Option<String>,
    entrypoint: String,
}

impl Source {
    fn new(version: &str) -> Self {
        Self {
            version: version.to_owned(),
            wat: QUIET.to_owned(),
            permissions: PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
            sha256: None,
            entrypoint: "wasm:tasks.wasm".to_owned(),
        }
    }

    fn component(&self) -> Vec<u8> {
        wat::parse_str(&self.wat).unwrap()
    }

    fn manifest(&self) -> String {
        let sha256 = self
            .sha256
            .clone()
            .unwrap_or_else(|| tributary_wasm::sha256_hex(&self.component()));
        let mut manifest = json!({
            "id": TASKS,
            "name": "Example Tasks",
            "version": self.version,
            "type": "connector",
            "entrypoint": self.entrypoint,
            "permissions": self.permissions,
        });
        if self.entrypoint.starts_with("wasm:") {
            manifest["sha256"] = json!(sha256);
        }
        manifest.to_string()
    }

    /// Writes the plugin as the directory `<root>/<name>`.
    fn dir(&self, root: &Path, name: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plugin.json"), self.manifest()).unwrap();
        std::fs::write(dir.join("tasks.wasm"), self.component()).unwrap();
        dir
    }

    /// Writes the plugin as `<root>/<name>.tar.gz`, under a top-level directory `<name>/`.
    fn archive(&self, root: &Path, name: &str) -> PathBuf {
        let mut tar = Archive::new(root, name);
        tar.file(&format!("{name}/plugin.json"), self.manifest().as_bytes());
        tar.file(&format!("{name}/tasks.wasm"), &self.component());
        tar.finish()
    }
}

/// A `.tar.gz` being written, including entries the `tar` crate would refuse to write.
struct Archive {
    path: PathBuf,
    builder: tar::Builder<flate2::write::GzEncoder<std::fs::File>>,
}

impl Archive {
    fn new(root: &Path, name: &str) -> Self {
        let path = root.join(format!("{name}.tar.gz"));
        let file = std::fs::File::create(&path).unwrap();
        let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        Self {
            path,
            builder: tar::Builder::new(gzip),
        }
    }

    fn file(&mut self, name: &str, data: &[u8]) {
        self.raw(name, tar::EntryType::Regular, "", data);
    }

    /// An entry whose name and link are written as given, `..` and `/` included.
    fn raw(&mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
    }

    fn finish(self) -> PathBuf {
        let mut gzip = self.builder.into_inner().unwrap();
        gzip.flush().unwrap();
        gzip.finish().unwrap();
        self.path
    }
}

impl Harness {
    /// Where `plugins add` puts `version` of the tasks plugin.
    fn managed(&self, version: &str) -> PathBuf {
        self.env
            .config
            .managed_plugin_dir()
            .join(TASKS)
            .join(version)
    }

    /// Installs the tasks plugin as `tasks`, its permissions accepted, and checks it worked.
    async fn install_tasks(&self) {
        self.cli(&[
            "plugins",
            "install",
            TASKS,
            "--id",
            "tasks",
            "--accept-permissions",
        ])
        .await
        .ok();
    }

    async fn add(&self, source: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["plugins", "add", source.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.cli(&args).await
    }

    /// Asserts `plugins add <source>` is refused, naming each of `reasons`, and that nothing
    /// was added or left in the staging directory.
    async fn refused(&self, source: &Path, extra: &[&str], reasons: &[&str]) {
        let run = self.add(source, extra).await;
        assert_eq!(run.code, 1, "{run:#?}");
        for reason in reasons {
            assert!(
                run.stderr.contains(reason),
                "`{reason}` not named: {run:#?}"
            );
        }
        let added = self.env.config.managed_plugin_dir().join(TASKS);
        let versions: Vec<_> = std::fs::read_dir(&added)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(versions.is_empty(), "{versions:?} added for {run:#?}");
        let staging = self.env.config.data_dir.join(".plugins-incoming");
        let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
        assert_eq!(left, 0, "staging directories left in {}", staging.display());
    }
}

/// An archive entry as written: its name, kind and link target.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str);

fn listed_versions(list: &Value) -> Vec<(String, String)> {
    list["plugins"]["plugins"]
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

#[tokio::test]
async fn add_copies_a_directory_into_the_managed_directory_and_install_asks_for_consent() {
    // Proves a plugin added from a directory is checked, copied where the plugin manager
    // scans, found at once, and installed only with its permissions accepted.
    let h = Harness::start().await;
    let sources = tempfile::tempdir().unwrap();
    let source = Source::new("1.0.0").dir(sources.path(), "tasks");

    let added = h.add(&source, &[]).await.ok();
    let target = h.managed("1.0.0");
    assert!(
        added
            .stdout
            .contains(&format!("Added `{TASKS}` 1.0.0 at {}.", target.display())),
        "{added:#?}"
    );
    assert!(added
        .stdout
        .contains("\n  network:outbound:api.example.com\n"));
    assert!(
        added
            .stdout
            .contains(&format!("`tributary plugins install {TASKS}`")),
        "{added:#?}"
    );
    assert_eq!(
        std::fs::read(target.join("tasks.wasm")).unwrap(),
        std::fs::read(source.join("tasks.wasm")).unwrap()
    );
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(
        listed_versions(&list),
        [("1.0.0".to_owned(), target.display().to_string())]
    );

    let unconsented = h.cli(&["plugins", "install", TASKS, "--id", "tasks"]).await;
    assert_eq!(unconsented.code, 2, "{unconsented:#?}");
    assert!(unconsented
        .stderr
        .contains("\n  event:publish:connector.items.*"));
    h.install_tasks().await;
    assert_eq!(h.instance_json("tasks").await["version"], "1.0.0");
    h.finish().await;
}

#[tokio::test]
async fn a_newer_version_from_a_tar_gz_sits_beside_the_older_and_upgrade_moves_to_it() {
    // Proves an archive is unpacked into its own version directory next to the older one,
    // `add` names the instance that can move to it, and `upgrade` moves it.
    let h = Harness::start().await;
    let sources = tempfile::tempdir().unwrap();
    h.add(&Source::new("1.0.0").dir(sources.path(), "tasks"), &[])
        .await
        .ok();
    h.install_tasks().await;

    let archive = Source::new("1.1.0").archive(sources.path(), "tasks-1.1.0");
    let added = h.add(&archive, &[]).await.ok();
    assert!(
        added.stdout.contains("`tributary plugins upgrade tasks`"),
        "{added:#?}"
    );
    assert!(h.managed("1.1.0").join("tasks.wasm").is_file());
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    let versions: Vec<String> = listed_versions(&list).into_iter().map(|(v, _)| v).collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    assert_eq!(
        h.instance_json("tasks").await["version"],
        "1.0.0",
        "an instance stays on its version until upgraded"
    );

    h.cli(&["plugins", "upgrade", "tasks"]).await.ok();
    assert_eq!(h.instance_json("tasks").await["version"], "1.1.0");
    h.finish().await;
}

#[tokio::test]
async fn the_same_version_again_is_refused_unless_replace() {
    // Proves a version once added is not overwritten by accident, and `--replace` swaps it.
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    h.add(&Source::new("1.0.0").dir(sources.path(), "first"), &[])
        .await
        .ok();
    let mut rebuilt = Source::new("1.0.0");
    rebuilt.wat = r#"(component (import "wasi:random/random@0.2.3" (instance)))"#.to_owned();
    let again = rebuilt.dir(sources.path(), "again");

    let refused = h.add(&again, &[]).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    let target = h.managed("1.0.0");
    assert!(
        refused.stderr.contains(&format!(
            "`{TASKS}` 1.0.0 is already added, at {}; `--replace` replaces it",
            target.display()
        )),
        "{refused:#?}"
    );
    assert_eq!(
        std::fs::read(target.join("tasks.wasm")).unwrap(),
        Source::new("1.0.0").component()
    );

    h.add(&again, &["--replace"]).await.ok();
    assert_eq!(
        std::fs::read(target.join("tasks.wasm")).unwrap(),
        rebuilt.component()
    );
    h.finish().await;
}

#[tokio::test]
async fn added_while_the_plugin_manager_is_stopped_it_is_found_when_it_starts() {
    // Proves `add` needs no running plugin manager: the copy is made, the rescan's absence
    // is said, and the plugin manager finds the plugin at start-up (the managed directory is
    // scanned without being configured).
    let mut h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();

    let added = h
        .add(&Source::new("2.0.0").dir(sources.path(), "tasks"), &[])
        .await
        .ok();
    assert!(
        added
            .stderr
            .contains("the plugin manager was not asked to rescan"),
        "{added:#?}"
    );

    h.start_service().await;
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(
        listed_versions(&list),
        [("2.0.0".to_owned(), h.managed("2.0.0").display().to_string())]
    );
    h.finish().await;
}

#[tokio::test]
async fn a_bad_manifest_is_refused_naming_its_fields() {
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let mut source = Source::new("one");
    source.permissions = vec!["disk:write:/".to_owned()];
    let dir = source.dir(sources.path(), "tasks");

    h.refused(
        &dir,
        &[],
        &[
            &format!("{}/plugin.json: invalid plugin manifest", dir.display()),
            "`version`",
            "`permissions[0]`",
        ],
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn a_builtin_entrypoint_or_a_missing_component_is_refused() {
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let mut builtin = Source::new("1.0.0");
    builtin.entrypoint = "builtin:dav".to_owned();
    let builtin = builtin.dir(sources.path(), "builtin");
    h.refused(
        &builtin,
        &[],
        &["has the entrypoint `builtin:dav`: only a WebAssembly plugin"],
    )
    .await;

    let missing = Source::new("1.0.0").dir(sources.path(), "missing");
    std::fs::remove_file(missing.join("tasks.wasm")).unwrap();
    h.refused(
        &missing,
        &[],
        &[&format!(
            "{}/tasks.wasm does not exist or is not a file; the manifest's entrypoint `wasm:tasks.wasm` names it",
            missing.display()
        )],
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn a_component_whose_digest_is_not_the_manifests_is_refused() {
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let mut source = Source::new("1.0.0");
    source.sha256 = Some("0".repeat(64));
    let dir = source.dir(sources.path(), "tasks");
    let actual = tributary_wasm::sha256_hex(&source.component());

    h.refused(
        &dir,
        &[],
        &[&format!(
            "the component {}/tasks.wasm has SHA-256 {actual}, and its manifest says {}",
            dir.display(),
            "0".repeat(64)
        )],
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn a_component_importing_sockets_is_refused_naming_the_import() {
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let mut source = Source::new("1.0.0");
    source.wat = r#"(component (import "wasi:sockets/tcp@0.2.3" (instance)))"#.to_owned();
    let dir = source.dir(sources.path(), "tasks");

    h.refused(
        &dir,
        &[],
        &["the component imports `wasi:sockets/tcp@0.2.3`, which no permission can grant"],
    )
    .await;
    h.finish().await;
}

#[tokio::test]
async fn outgoing_http_without_a_network_permission_is_refused_and_with_one_is_added() {
    // Proves a component that makes HTTP requests must say where to: its manifest needs a
    // `network:outbound` permission, which a person then accepts at install.
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let mut source = Source::new("1.0.0");
    source.wat = r#"(component (import "wasi:http/outgoing-handler@0.2.3" (instance)))"#.to_owned();
    source.permissions = vec!["event:publish:connector.items.*".to_owned()];
    let dir = source.dir(sources.path(), "no-network");

    h.refused(
        &dir,
        &[],
        &[
            "imports `wasi:http/outgoing-handler@0.2.3`",
            "grants no `network:outbound:<host>` permission",
        ],
    )
    .await;

    source.permissions = PERMISSIONS.iter().map(|p| (*p).to_owned()).collect();
    let dir = source.dir(sources.path(), "with-network");
    h.add(&dir, &[]).await.ok();
    h.finish().await;
}

#[tokio::test]
async fn an_archive_entry_reaching_outside_the_plugin_is_refused() {
    // Proves an archive cannot write outside its own directory: by `..`, by an absolute
    // path, or through a link, each refused naming the entry.
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let plugin = Source::new("1.0.0");
    let escaped = sources.path().join("escaped.txt");
    let outside = "would be written outside the plugin's directory";
    let absolute = format!("`{}` in", escaped.display());
    let cases: [(&str, &[RawEntry], [&str; 2]); 4] = [
        (
            "dotdot",
            &[("tasks/../../escaped.txt", tar::EntryType::Regular, "")],
            ["`tasks/../../escaped.txt` in", outside],
        ),
        (
            "absolute",
            &[(escaped.to_str().unwrap(), tar::EntryType::Regular, "")],
            [&absolute, outside],
        ),
        (
            "link-out",
            &[("tasks/out", tar::EntryType::Symlink, "../../..")],
            [
                "`tasks/out` in",
                "is a link to ../../.., outside the plugin's directory",
            ],
        ),
        (
            // `tasks/up` is the archive's top; `up2` through it would be the one above.
            "through-link",
            &[
                ("tasks/up", tar::EntryType::Symlink, ".."),
                ("tasks/up/up2", tar::EntryType::Symlink, ".."),
                ("tasks/up/up2/escaped.txt", tar::EntryType::Regular, ""),
            ],
            [
                "`tasks/up/up2` in",
                "goes through `tasks/up`, which an earlier entry made a link",
            ],
        ),
    ];
    for (name, entries, reasons) in cases {
        let mut archive = Archive::new(sources.path(), name);
        archive.file("tasks/plugin.json", plugin.manifest().as_bytes());
        archive.file("tasks/tasks.wasm", &plugin.component());
        for (path, kind, link) in entries {
            archive.raw(path, *kind, link, b"escaped");
        }
        let archive = archive.finish();
        h.refused(&archive, &[], &reasons).await;
        assert!(!escaped.exists(), "{name} wrote {}", escaped.display());
    }
    h.finish().await;
}

#[tokio::test]
async fn an_archive_over_the_size_cap_or_with_a_hard_link_is_refused() {
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let plugin = Source::new("1.0.0");

    let mut big = Archive::new(sources.path(), "big");
    big.file("plugin.json", plugin.manifest().as_bytes());
    big.file("tasks.wasm", &plugin.component());
    big.file("padding.bin", &vec![0u8; 2 * 1024 * 1024]);
    let big = big.finish();
    assert!(std::fs::metadata(&big).unwrap().len() < 1024 * 1024);
    h.refused(
        &big,
        &["--max-size", "1"],
        &["add up to more than 1048576 bytes"],
    )
    .await;

    let mut linked = Archive::new(sources.path(), "linked");
    linked.file("plugin.json", plugin.manifest().as_bytes());
    linked.raw("tasks.wasm", tar::EntryType::Link, "/etc/passwd", b"");
    let linked = linked.finish();
    h.refused(&linked, &[], &["`tasks.wasm` in", "is a hard link"])
        .await;
    h.finish().await;
}

#[tokio::test]
async fn a_version_the_plugin_manager_has_from_another_directory_is_refused_and_not_kept() {
    // Proves `add` reads the plugin manager's verdict after the rescan: the same id and version
    // in a configured plugin directory wins, and the copy is taken back, naming both places.
    let h = Harness::start().await;
    let sources = tempfile::tempdir().unwrap();
    let source = Source::new("1.0.0");
    // A whole plugin, its component too: one whose component is missing is listed invalid.
    source.dir(&h.dir.0, "tasks-by-hand");

    h.refused(
        &source.dir(sources.path(), "tasks"),
        &[],
        &[
            "the plugin manager does not load `com.example.tasks` 1.0.0 (the copy is removed again)",
            &h.dir.0.join("tasks-by-hand").display().to_string(),
        ],
    )
    .await;
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(
        list["plugins"]["invalid"].as_array().unwrap().len(),
        0,
        "the rescan after removing the copy leaves nothing invalid: {list:#}"
    );
    h.finish().await;
}

/// The declarative tasks plugin as the directory `<root>/<name>`, with `spec` as its spec.
fn declarative_dir(root: &Path, name: &str, version: &str, spec: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.json"), tasks_manifest(version)).unwrap();
    std::fs::write(dir.join("tasks.toml"), spec).unwrap();
    dir
}

#[tokio::test]
async fn a_declarative_connector_is_added_with_its_spec_and_found_by_the_plugin_manager() {
    // Proves a declarative plugin (plugin.json and its TOML spec) is checked, copied and listed.
    let h = Harness::start().await;
    let sources = tempfile::tempdir().unwrap();
    let source = declarative_dir(sources.path(), "tasks", "1.0.0", TASKS_SPEC);

    h.add(&source, &[]).await.ok();

    let target = h.managed("1.0.0");
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        TASKS_SPEC
    );
    let list = h.cli(&["plugins", "list", "--json"]).await.ok().json();
    assert_eq!(
        listed_versions(&list),
        [("1.0.0".to_owned(), target.display().to_string())]
    );
    h.finish().await;
}

#[tokio::test]
async fn a_declarative_connector_with_a_bad_spec_is_refused_naming_each_problem_by_its_path() {
    let h = Harness::without_service().await;
    let sources = tempfile::tempdir().unwrap();
    let bad = TASKS_SPEC
        .replace("config.token", "config.tenant")
        .replace("https://api.example.com", "https://elsewhere.example");
    let source = declarative_dir(sources.path(), "tasks", "1.0.0", &bad);
    h.refused(
        &source,
        &[],
        &[
            "tasks.toml: the connector spec has 2 problem(s)",
            "auth.token: template names config.tenant, which configSchema lacks",
            "streams[0].request.url: the URL's host `elsewhere.example` is granted by no `network:outbound:` permission",
        ],
    )
    .await;
    h.finish().await;
}
