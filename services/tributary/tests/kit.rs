//! The plugin author's kit as an author uses it: the real `tributary` binary writes plugins
//! with `plugins new`, builds them into components with the real toolchains (installed on
//! first use into the cache), runs their test cases in the real wasm host with `plugins test`
//! and packages them with `plugins package`. Builds are cached by content, so only the first
//! run on a machine (or after an SDK change) pays for componentizing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

#[path = "kit/declarative.rs"]
mod declarative;

/// Runs `tributary <args>` in `dir`.
fn tributary(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .current_dir(dir)
        .env("TRIBUTARY__DATA_DIR", dir.join("data"))
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `plugins new` of `id` as `kind` in `lang` into `<work>/<last label>`, asserting it worked.
fn new_plugin(work: &Path, id: &str, kind: &str, lang: &str) -> PathBuf {
    let output = tributary(
        work,
        &["plugins", "new", id, "--type", kind, "--lang", lang],
    );
    assert!(output.status.success(), "{}", text(&output));
    work.join(id.rsplit('.').next().unwrap())
}

/// new → test → package of a generated plugin, unchanged; the archive is what `add` takes.
fn generated_plugin_builds_tests_and_packages(kind: &str, lang: &str) {
    let work = tempfile::tempdir().unwrap();
    let id = format!("com.example.generated-{kind}-{lang}");
    let dir = new_plugin(work.path(), &id, kind, lang);
    let short = id.rsplit('.').next().unwrap();
    // Editors find the SDK's types: TypeScript's in node_modules, Python's through pyright's
    // extraPaths.
    if lang == "python" {
        assert!(dir
            .join(".tributary-sdk/python/tributary_plugin/__init__.py")
            .is_file());
        assert!(dir
            .join(".tributary-sdk/python/tributary_plugin/model.py")
            .is_file());
        let pyright: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("pyrightconfig.json")).unwrap())
                .unwrap();
        assert_eq!(pyright["extraPaths"], json!([".tributary-sdk/python"]));
    } else {
        assert!(dir
            .join("node_modules/@tributary/plugin/package.json")
            .is_file());
    }

    let tested = tributary(work.path(), &["plugins", "test", short]);
    assert!(tested.status.success(), "{}", text(&tested));
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(stdout.contains("0 failed."), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");

    let packaged = tributary(work.path(), &["plugins", "package", short]);
    assert!(packaged.status.success(), "{}", text(&packaged));
    let archive = dir.join("dist").join(format!("{id}-0.1.0.tar.gz"));
    assert!(archive.is_file(), "{}", text(&packaged));
    // The build filled in the digest of the component it wrote.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plugin.json")).unwrap()).unwrap();
    let component = std::fs::read(dir.join(format!("{short}.wasm"))).unwrap();
    use sha2::Digest as _;
    assert_eq!(
        manifest["sha256"],
        hex::encode(sha2::Sha256::digest(&component))
    );
    assert_eq!(manifest["id"], id.as_str());
}

#[test]
fn a_generated_typescript_connector_builds_tests_and_packages_as_written() {
    generated_plugin_builds_tests_and_packages("connector", "ts");
}

#[test]
fn a_generated_typescript_channel_builds_tests_and_packages_as_written() {
    generated_plugin_builds_tests_and_packages("channel", "ts");
}

#[test]
fn a_generated_python_connector_builds_tests_and_packages_as_written() {
    generated_plugin_builds_tests_and_packages("connector", "python");
}

#[test]
fn a_generated_python_channel_builds_tests_and_packages_as_written() {
    generated_plugin_builds_tests_and_packages("channel", "python");
}

/// A generated connector edited to reach for a host no permission grants: `plugins test`
/// fails, naming the permission.
fn reaching_for_a_host_not_granted_fails_naming_the_permission(
    lang: &str,
    source: &str,
    from: &str,
    to: &str,
) {
    let work = tempfile::tempdir().unwrap();
    let dir = new_plugin(
        work.path(),
        &format!("com.example.reach-{lang}"),
        "connector",
        lang,
    );
    let path = dir.join(source);
    let code = std::fs::read_to_string(&path).unwrap();
    assert!(
        code.contains(from),
        "the template's {source} no longer has {from}"
    );
    std::fs::write(&path, code.replacen(from, to, 1)).unwrap();

    let tested = tributary(
        work.path(),
        &[
            "plugins",
            "test",
            dir.to_str().unwrap(),
            "--case",
            "full-sync",
        ],
    );
    assert!(!tested.status.success(), "{}", text(&tested));
    let all = text(&tested);
    assert!(
        all.contains("`network:outbound:api.not-granted.example`"),
        "the refusal names the permission: {all}"
    );
    assert!(
        all.contains("which plugin.json's permissions do not grant"),
        "{all}"
    );
}

#[test]
fn a_typescript_connector_reaching_for_a_host_not_granted_fails_naming_the_permission() {
    reaching_for_a_host_not_granted_fails_naming_the_permission(
        "ts",
        "src/index.ts",
        "url: `${baseUrl}/notes`",
        "url: 'https://api.not-granted.example/notes'",
    );
}

#[test]
fn a_python_connector_reaching_for_a_host_not_granted_fails_naming_the_permission() {
    reaching_for_a_host_not_granted_fails_naming_the_permission(
        "python",
        "src/app.py",
        "f\"{base_url}/notes\"",
        "\"https://api.not-granted.example/notes\"",
    );
}

/// The repository's examples/plugins/<name>, copied (a build writes into the plugin's
/// directory) into `work`.
fn example(work: &Path, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins")
        .join(name);
    let target = work.join(name);
    copy_tree(&source, &target);
    target
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if matches!(name_text.as_ref(), "node_modules" | "dist" | "__pycache__")
            || name_text.ends_with(".wasm")
        {
            continue;
        }
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn example_passes_its_own_tests_and_packages(name: &str) {
    let work = tempfile::tempdir().unwrap();
    let dir = example(work.path(), name);
    let tested = tributary(work.path(), &["plugins", "test", name]);
    assert!(tested.status.success(), "{}", text(&tested));
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("0 failed."),
        "{}",
        text(&tested)
    );
    let packaged = tributary(work.path(), &["plugins", "package", name, "--json"]);
    assert!(packaged.status.success(), "{}", text(&packaged));
    let report: Value = serde_json::from_slice(&packaged.stdout).unwrap();
    let archive = work.path().join(report["archive"].as_str().unwrap());
    assert!(archive.starts_with(&dir) && archive.is_file(), "{report}");
    assert!(report["archiveBytes"].as_u64().unwrap() > 0);
}

#[test]
fn the_rss_feed_example_passes_its_own_tests_and_packages() {
    example_passes_its_own_tests_and_packages("rss-feed");
}

#[test]
fn the_github_issues_example_passes_its_own_tests_and_packages() {
    example_passes_its_own_tests_and_packages("github-issues");
}

#[test]
fn the_mattermost_example_passes_its_own_tests_and_packages() {
    example_passes_its_own_tests_and_packages("mattermost");
}

/// A notes API as the template connector reads it, at `base`, wanting `Bearer <token>`; its
/// first page names the second by the API's full URL (as many APIs' next links do).
async fn serve_notes(token: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    let next_base = base.clone();
    let app = Router::new().route(
        "/api/notes",
        get(move |headers: HeaderMap, Query(query): Query<std::collections::HashMap<String, String>>| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {token}")) {
                let link = String::new();
                return (StatusCode::UNAUTHORIZED, [("link", link)], Json(json!({"error": "invalid token"})));
            }
            let page = match query.get("cursor").map(String::as_str) {
                None => json!({"notes": [
                    {"id": "r1", "title": "Recorded", "body": format!("The token is {token}."), "updated_at": "2026-02-01T09:00:00Z"}
                ], "next_cursor": "page-2"}),
                Some(_) => json!({"notes": [
                    {"id": "r2", "title": "Recorded too", "updated_at": "2026-02-02T09:00:00Z"}
                ], "next_cursor": null}),
            };
            let link = format!("<{}/notes?cursor=page-2>; rel=\"next\"", next_base);
            (StatusCode::OK, [("link", link)], Json(page))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn record_keeps_scrubbed_fixtures_from_the_real_server_and_they_replay() {
    const TOKEN: &str = "real-secret-token-4f1c";
    let base = serve_notes(TOKEN).await;
    let work = tempfile::tempdir().unwrap();
    let dir = new_plugin(work.path(), "com.example.recorded", "connector", "ts");
    let real = work.path().join("real.json");
    std::fs::write(
        &real,
        json!({"baseUrl": base, "apiToken": TOKEN}).to_string(),
    )
    .unwrap();

    let work_dir = work.path().to_path_buf();
    let real_arg = real.display().to_string();
    let recorded = tokio::task::spawn_blocking(move || {
        tributary(
            &work_dir,
            &[
                "plugins",
                "test",
                "recorded",
                "--case",
                "full-sync",
                "--record",
                &real_arg,
                "--update",
            ],
        )
    })
    .await
    .unwrap();
    assert!(recorded.status.success(), "{}", text(&recorded));

    let case_text = std::fs::read_to_string(dir.join("test/full-sync.json")).unwrap();
    assert!(
        !case_text.contains(TOKEN),
        "the secret is scrubbed: {case_text}"
    );
    let case: Value = serde_json::from_str(&case_text).unwrap();
    assert_eq!(
        case["config"]["baseUrl"],
        base.as_str(),
        "the case keeps the real URL"
    );
    assert_eq!(
        case["config"]["apiToken"], "test-token",
        "and its made-up token"
    );
    let fixtures = case["fixtures"].as_array().unwrap();
    assert_eq!(fixtures.len(), 2, "{case_text}");
    assert_eq!(fixtures[0]["request"]["path"], "/api/notes");
    assert_eq!(
        fixtures[0]["response"]["headers"]["link"],
        "<${baseUrl}/notes?cursor=page-2>; rel=\"next\"",
        "the real URL in an answer becomes ${{baseUrl}}"
    );
    assert_eq!(fixtures[1]["request"]["path"], "/api/notes?cursor=page-2");
    assert_eq!(
        fixtures[0]["response"]["json"]["notes"][0]["body"], "The token is test-token.",
        "a secret in a body becomes the case's made-up value"
    );
    let ids: Vec<&str> = case["expect"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r1", "r2"]);

    // The recording replays with no server but the fixture server, on the case's config.
    let work_dir = work.path().to_path_buf();
    let replayed = tokio::task::spawn_blocking(move || {
        tributary(
            &work_dir,
            &["plugins", "test", "recorded", "--case", "full-sync"],
        )
    })
    .await
    .unwrap();
    assert!(replayed.status.success(), "{}", text(&replayed));
}

#[test]
fn the_typescript_sdk_passes_its_own_tests() {
    // The SDK's tests run under node against its toolchain, which `plugins build` installs.
    let work = tempfile::tempdir().unwrap();
    new_plugin(work.path(), "com.example.sdk-check", "connector", "ts");
    let built = tributary(work.path(), &["plugins", "build", "sdk-check"]);
    assert!(built.status.success(), "{}", text(&built));
    let toolchain = tributary::plugin_kit::toolchain::ensure(
        tributary::plugin_kit::toolchain::Language::TypeScript,
        &tributary::plugin_kit::files::KitFiles::materialize().unwrap(),
    )
    .unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/typescript");
    let output = Command::new("node")
        .arg(sdk.join("scripts/test.mjs"))
        .arg("--toolchain")
        .arg(&toolchain)
        .current_dir(&sdk)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn the_python_sdk_probe_passes_in_the_real_host() {
    // What only the real host shows of the Python SDK: grants, secrets attached, refusals kept.
    let work = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/tests/probe");
    copy_tree(&source, &work.path().join("probe"));
    let tested = tributary(work.path(), &["plugins", "test", "probe"]);
    assert!(tested.status.success(), "{}", text(&tested));
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("0 failed."),
        "{}",
        text(&tested)
    );
}

#[test]
fn the_python_sdk_passes_its_own_tests() {
    let toolchain = tributary::plugin_kit::toolchain::ensure(
        tributary::plugin_kit::toolchain::Language::Python,
        &tributary::plugin_kit::files::KitFiles::materialize().unwrap(),
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(tributary::plugin_kit::toolchain::python())
        .args(["-m", "unittest", "discover", "-s", "sdk/python/tests"])
        .env("TRIBUTARY_PY_TOOLCHAIN", &toolchain)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}
