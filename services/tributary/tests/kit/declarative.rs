//! `plugins test` of declarative connectors: no build, the spec checked as an install checks
//! it, each case run by the spec engine against its fixtures.

use std::path::{Path, PathBuf};

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{copy_tree, text, tributary};

/// The repository's plugins/connectors/<name>.
fn builtin_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/connectors")
        .join(name)
}

/// A tasks API's plugin, `network:outbound:<granted>`, its spec `spec` (with `BASE` for its
/// base URL, `base`) and `cases`, written into `<work>/tasks`.
fn tasks_plugin(work: &Path, granted: &str, base: &str, spec: &str, cases: &[(&str, Value)]) {
    let dir = work.join("tasks");
    std::fs::create_dir_all(dir.join("test")).unwrap();
    let manifest = json!({
        "id": "com.example.tasks", "name": "Tasks", "version": "1.0.0", "type": "connector",
        "entrypoint": "declarative:tasks.toml",
        "permissions": [format!("network:outbound:{granted}"), "data:write:documents"],
        "configSchema": {"type": "object", "properties": {
            "apiToken": {"type": "string", "writeOnly": true}
        }, "required": ["apiToken"]}
    });
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join("tasks.toml"), spec.replace("BASE", base)).unwrap();
    for (name, case) in cases {
        std::fs::write(
            dir.join("test").join(format!("{name}.json")),
            serde_json::to_string_pretty(case).unwrap(),
        )
        .unwrap();
    }
}

/// Tasks listed from `body.tasks`, paged by the next URL in `body.next`, as documents.
const TASKS_SPEC: &str = r#"
version = 1
base_url = "BASE"

[auth]
type = "bearer"
token = "{{ config.apiToken }}"

[[streams]]
name = "tasks"
request = { url = "{{ base_url }}/tasks" }
records = { path = "body.tasks" }
pagination = { type = "next_url", next = "body.next" }

[streams.map]
entity = "document"
id = "record.id"
modified = "record.updated_at"
fields = { title = "record.title", content = "record.notes or ''" }
"#;

fn task(id: &str, title: &str) -> Value {
    json!({"id": id, "title": title, "updated_at": "2026-11-02T10:00:00Z"})
}

/// A case of two pages, the first naming the second by `next`.
fn two_pages(next: &str, expect: Value) -> Value {
    json!({
        "description": "Two pages of tasks.",
        "config": {"apiToken": "test-token"},
        "sync": {"mode": "full"},
        "fixtures": [
            {"request": {"path": "/v2/tasks"},
             "response": {"json": {"tasks": [task("t1", "First")], "next": next}}},
            {"request": {"path": "/v2/tasks?page=2"},
             "response": {"json": {"tasks": [task("t2", "Second")], "next": null}}}
        ],
        "expect": expect
    })
}

#[test]
fn the_hubspot_connector_passes_its_recorded_cases_with_nothing_to_build() {
    let work = tempfile::tempdir().unwrap();
    let tested = tributary(
        work.path(),
        &["plugins", "test", builtin_dir("hubspot").to_str().unwrap()],
    );
    assert!(tested.status.success(), "{}", text(&tested));
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        stdout.contains("Checked tributary.hubspot 0.1.0 (declarative connector"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing to build"), "{stdout}");
    assert!(stdout.contains("PASS full-sync"), "{stdout}");
    assert!(stdout.contains("3 cases: 3 passed, 0 failed."), "{stdout}");
}

#[test]
fn a_declarative_case_whose_expectation_is_not_met_fails_naming_what_came() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("hubspot");
    copy_tree(&builtin_dir("hubspot"), &dir);
    let path = dir.join("test/full-sync.json");
    let mut case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    case["expect"]["items"][0]["data"]["display_name"] = json!("Ada King");
    std::fs::write(&path, case.to_string()).unwrap();

    let tested = tributary(work.path(), &["plugins", "test", "hubspot"]);

    assert!(!tested.status.success(), "{}", text(&tested));
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(stdout.contains("FAIL full-sync"), "{stdout}");
    assert!(
        stdout.contains(
            r#"item 0 (persons 101 upsert): data.display_name was expected to be "Ada King", and is "Ada Lovelace""#
        ),
        "{stdout}"
    );
    assert!(stdout.contains("3 cases: 2 passed, 1 failed."), "{stdout}");
}

#[test]
fn a_spec_that_fails_the_install_checks_is_refused_with_every_problem_and_its_path() {
    let work = tempfile::tempdir().unwrap();
    let broken = TASKS_SPEC
        .replace("{{ config.apiToken }}", "{{ config.tenant }}")
        .replace(r#"id = "record.id""#, r#"id = "record.id +""#)
        .replace(
            r#"url = "{{ base_url }}/tasks""#,
            r#"url = "https://api.elsewhere.example/tasks""#,
        );
    tasks_plugin(
        work.path(),
        "api.tasks.example",
        "https://api.tasks.example/v2",
        &broken,
        &[("pages", two_pages("${base_url}/tasks?page=2", json!({})))],
    );

    let tested = tributary(work.path(), &["plugins", "test", "tasks"]);

    assert!(!tested.status.success(), "{}", text(&tested));
    let stderr = String::from_utf8_lossy(&tested.stderr);
    assert!(
        stderr.contains("tasks.toml does not pass the install checks (3 problems)"),
        "{stderr}"
    );
    for problem in [
        "auth.token: template names config.tenant, which configSchema lacks",
        "streams[0].request.url: the URL's host `api.elsewhere.example` is granted by no `network:outbound:` permission",
        "streams[0].map.id: expression does not parse",
    ] {
        assert!(stderr.contains(problem), "{problem} in: {stderr}");
    }
    assert!(
        !String::from_utf8_lossy(&tested.stdout).contains("PASS"),
        "no case runs"
    );
}

#[test]
fn a_next_link_at_the_specs_base_url_is_served_from_the_fixtures() {
    let work = tempfile::tempdir().unwrap();
    let expect = json!({"items": [
        {"entityType": "documents", "externalId": "t1", "data": {"title": "First"}},
        {"entityType": "documents", "externalId": "t2", "data": {"title": "Second"}}
    ], "requests": 2});
    tasks_plugin(
        work.path(),
        "api.tasks.example",
        "https://api.tasks.example/v2",
        TASKS_SPEC,
        &[("pages", two_pages("${base_url}/tasks?page=2", expect))],
    );

    let tested = tributary(work.path(), &["plugins", "test", "tasks"]);

    assert!(tested.status.success(), "{}", text(&tested));
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        stdout.contains("requests: GET /v2/tasks, GET /v2/tasks?page=2"),
        "{stdout}"
    );
}

#[test]
fn a_declarative_connector_led_to_a_host_no_permission_grants_fails_naming_the_permission() {
    let work = tempfile::tempdir().unwrap();
    tasks_plugin(
        work.path(),
        "api.tasks.example",
        "https://api.tasks.example/v2",
        TASKS_SPEC,
        &[(
            "elsewhere",
            two_pages("https://api.elsewhere.example/v2/tasks?page=2", json!({})),
        )],
    );

    let tested = tributary(work.path(), &["plugins", "test", "tasks"]);

    assert!(!tested.status.success(), "{}", text(&tested));
    let all = text(&tested);
    assert!(
        all.contains("the host refused `network:outbound:api.elsewhere.example`, which plugin.json's permissions do not grant"),
        "{all}"
    );
    assert!(
        all.contains("the host refused `network:outbound:api.elsewhere.example` (not granted by plugin.json's permissions)"),
        "{all}"
    );
}

/// A tasks API at `http://127.0.0.1:<port>/v2` wanting `Bearer <token>`, whose first page
/// names the second by its full URL. Answers its base URL and `host:port`.
async fn serve_tasks(token: &'static str) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let base = format!("http://{address}/v2");
    let next = format!("{base}/tasks?page=2");
    let app = Router::new().route(
        "/v2/tasks",
        get(
            move |headers: HeaderMap,
                  Query(query): Query<std::collections::HashMap<String, String>>| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some(&format!("Bearer {token}"))
                {
                    return (
                        StatusCode::UNAUTHORIZED,
                        Json(json!({"error": "bad token"})),
                    );
                }
                let page = match query.get("page") {
                    None => json!({"tasks": [task("t1", "First")], "next": next}),
                    Some(_) => json!({"tasks": [task("t2", "Second")], "next": null}),
                };
                (StatusCode::OK, Json(page))
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, address)
}

#[tokio::test(flavor = "multi_thread")]
async fn record_of_a_declarative_spec_keeps_scrubbed_fixtures_at_base_url_and_they_replay() {
    const TOKEN: &str = "real-secret-token-9d2e";
    let (base, address) = serve_tasks(TOKEN).await;
    let work = tempfile::tempdir().unwrap();
    let case = json!({
        "description": "Every task.",
        "config": {"apiToken": "test-token"},
        "sync": {"mode": "full"}
    });
    tasks_plugin(
        work.path(),
        &address,
        &base,
        TASKS_SPEC,
        &[("full-sync", case)],
    );
    let real = work.path().join("real.json");
    std::fs::write(&real, json!({"apiToken": TOKEN}).to_string()).unwrap();

    let work_dir = work.path().to_path_buf();
    let real_arg = real.display().to_string();
    let recorded = tokio::task::spawn_blocking(move || {
        tributary(
            &work_dir,
            &[
                "plugins", "test", "tasks", "--record", &real_arg, "--update",
            ],
        )
    })
    .await
    .unwrap();
    assert!(recorded.status.success(), "{}", text(&recorded));

    let case_text = std::fs::read_to_string(work.path().join("tasks/test/full-sync.json")).unwrap();
    assert!(
        !case_text.contains(TOKEN),
        "the secret is scrubbed: {case_text}"
    );
    let case: Value = serde_json::from_str(&case_text).unwrap();
    assert_eq!(case["config"]["apiToken"], "test-token", "{case_text}");
    let fixtures = case["fixtures"].as_array().unwrap();
    assert_eq!(fixtures.len(), 2, "{case_text}");
    assert_eq!(fixtures[0]["request"]["path"], "/v2/tasks");
    assert_eq!(
        fixtures[0]["response"]["json"]["next"], "${base_url}/tasks?page=2",
        "the real base URL in an answer becomes ${{base_url}}"
    );
    assert_eq!(fixtures[1]["request"]["path"], "/v2/tasks?page=2");
    let ids: Vec<&str> = case["expect"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "t2"]);

    // The recording replays from the fixture server alone.
    let work_dir = work.path().to_path_buf();
    let replayed =
        tokio::task::spawn_blocking(move || tributary(&work_dir, &["plugins", "test", "tasks"]))
            .await
            .unwrap();
    assert!(replayed.status.success(), "{}", text(&replayed));
}

/// The fenced blocks of `lang` in `text`, in order.
fn fenced<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let open = format!("```{lang}\n");
    text.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect()
}

#[test]
fn the_worked_example_of_the_authors_docs_passes_its_own_case() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/declarative-connectors.md"),
    )
    .unwrap();
    let pick = |lang: &str, marker: &str| {
        fenced(&doc, lang)
            .into_iter()
            .find(|block| block.contains(marker))
            .unwrap_or_else(|| panic!("the page has a {lang} block with {marker}"))
            .to_owned()
    };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("tasks");
    std::fs::create_dir_all(dir.join("test")).unwrap();
    std::fs::write(
        dir.join("plugin.json"),
        pick("json", "\"entrypoint\": \"declarative:tasks.toml\""),
    )
    .unwrap();
    std::fs::write(dir.join("tasks.toml"), pick("toml", "[streams.changes]")).unwrap();
    std::fs::write(
        dir.join("test/first-sync.json"),
        pick("json", "\"fixtures\""),
    )
    .unwrap();

    let tested = tributary(work.path(), &["plugins", "test", "tasks"]);

    assert!(tested.status.success(), "{}", text(&tested));
    let shown = pick("text", "PASS first-sync");
    let stdout = String::from_utf8_lossy(&tested.stdout);
    for line in shown.lines().skip(1) {
        assert!(
            stdout.contains(line),
            "the page shows `{line}`; the run printed: {stdout}"
        );
    }
}
