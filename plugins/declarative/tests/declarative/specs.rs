//! Bad specs, each refused with every problem named by its path in the spec.

use tributary_declarative::{validate, SpecProblem};
use tributary_plugin_sdk::PluginManifest;

fn manifest(permissions: &[&str], auth: bool) -> PluginManifest {
    let mut manifest = serde_json::json!({
        "id": "com.example.tasks",
        "name": "Tasks",
        "version": "1.0.0",
        "type": "connector",
        "entrypoint": "declarative:tasks.toml",
        "permissions": permissions,
        "configSchema": {
            "type": "object",
            "properties": {
                "apiKey": {"type": "string", "writeOnly": true},
                "server": {"type": "string"},
                "projects": {"type": "array", "items": {"type": "string"}}
            }
        }
    });
    if auth {
        manifest["auth"] = serde_json::json!({
            "grant": "authorization_code", "provider": "google", "scopes": ["openid"]
        });
    }
    PluginManifest::from_value(&manifest).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A spec that passes, to break one line at a time.
const GOOD: &str = r#"
version = 1
base_url = "https://api.tasks.example/v2"

[auth]
type = "api_key"
in = "header"
name = "X-Api-Key"
value = "{{ config.apiKey }}"

[[streams]]
name = "tasks"
request = { url = "{{ base_url }}/tasks", query = { updated_since = "{{ state.since }}" } }
records = { path = "body.data" }
pagination = { type = "cursor", token = "body.next_cursor", param = "cursor" }
changes = { type = "datetime_cursor", field = "record.updated_at", lookback_seconds = 300 }

[streams.map]
entity = "document"
id = "record.id"
modified = "record.updated_at"
fields = { title = "record.title", content = "record.notes or ''" }
"#;

fn problems(spec: &str, manifest: &PluginManifest) -> Vec<SpecProblem> {
    match validate(spec, manifest) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

#[test]
fn the_good_spec_passes() {
    let manifest = manifest(&["network:outbound:api.tasks.example"], false);
    assert_eq!(problems(GOOD, &manifest), []);
}

#[test]
fn each_bad_spec_is_refused_naming_the_path_of_its_problem() {
    let granted = manifest(&["network:outbound:api.tasks.example"], false);
    let table: &[(&str, &str, &str, &str)] = &[
        (
            "a template naming a config property the schema lacks",
            r#"value = "{{ config.apiKey }}""#,
            r#"value = "{{ config.tenant }}""#,
            "auth.value: template names config.tenant, which configSchema lacks",
        ),
        (
            "an unknown key",
            r#"records = { path = "body.data" }"#,
            r#"records = { path = "body.data", pth = "x" }"#,
            "streams[0].records.pth: unknown key",
        ),
        (
            "an expression that does not parse",
            r#"id = "record.id""#,
            r#"id = "record.id +""#,
            "streams[0].map.id: expression does not parse",
        ),
        (
            "a template that does not parse",
            r#"url = "{{ base_url }}/tasks""#,
            r#"url = "{{ base_url }/tasks""#,
            "streams[0].request.url: template does not parse",
        ),
        (
            "a host no permission grants",
            r#"base_url = "https://api.tasks.example/v2""#,
            r#"base_url = "https://api.elsewhere.example/v2""#,
            "streams[0].request.url: the URL's host `api.elsewhere.example` is granted by no `network:outbound:` permission",
        ),
        (
            "a name the context does not have",
            r#"title = "record.title""#,
            r#"title = "body.title""#,
            "streams[0].map.fields.title: expression names `body`, which is not available here",
        ),
        (
            "an unknown entity type",
            r#"entity = "document""#,
            r#"entity = "task""#,
            "streams[0].map.entity:",
        ),
        (
            "an unknown pagination type",
            r#"type = "cursor""#,
            r#"type = "cursr""#,
            "streams[0].pagination",
        ),
        (
            "a missing key",
            r#"records = { path = "body.data" }"#,
            "",
            "streams[0].records: is required",
        ),
        (
            "a key of the wrong type",
            "lookback_seconds = 300",
            r#"lookback_seconds = "5m""#,
            "streams[0].changes",
        ),
        (
            "OAuth without an auth section in plugin.json",
            "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"\nvalue = \"{{ config.apiKey }}\"",
            r#"type = "oauth""#,
            "auth.type: `oauth` needs an `auth` section in plugin.json",
        ),
        (
            "a parent stream that does not exist",
            r#"changes = { type = "datetime_cursor", field = "record.updated_at", lookback_seconds = 300 }"#,
            r#"partitions = { from = "parent", stream = "projects", value = "record.id" }"#,
            "streams[0].partitions.stream: `projects` names no earlier stream",
        ),
        (
            "a stream condition naming a record",
            r#"name = "tasks""#,
            "name = \"tasks\"\nwhen = \"record.done\"",
            "streams[0].when: expression names `record`, which is not available here",
        ),
        (
            "a method that is not one",
            r#"request = { url"#,
            r#"request = { method = "FETCH", url"#,
            "streams[0].request.method: `FETCH` is not an HTTP method",
        ),
        (
            "a request with both a body and a form",
            r#"request = { url"#,
            r#"request = { method = "POST", body = "{}", form = { a = "b" }, url"#,
            "streams[0].request.form: a request sends `body` or `form`, not both",
        ),
        (
            "a form field naming a record",
            r#"request = { url"#,
            r#"request = { method = "POST", form = { done = "{{ record.done }}" }, url"#,
            "streams[0].request.form.done: template names `record`, which is not available here",
        ),
        (
            "a sync token without a parameter that no template sends",
            r#"changes = { type = "datetime_cursor", field = "record.updated_at", lookback_seconds = 300 }"#,
            r#"changes = { type = "sync_token", token = "body.sync_token" }"#,
            "streams[0].changes.param: without `param`, a query, header, form or body template of the request must send `state.token`",
        ),
    ];
    for (what, from, to, expected) in table {
        assert!(GOOD.contains(from), "{what}: the good spec has no `{from}`");
        let bad = GOOD.replacen(from, to, 1);
        let found = problems(&bad, &granted);
        assert!(
            found.iter().any(|p| p.to_string().starts_with(expected)),
            "{what}: expected a problem starting `{expected}`, found {found:#?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let granted = manifest(&["network:outbound:api.tasks.example"], false);
    let bad = GOOD
        .replacen("{{ config.apiKey }}", "{{ config.tenant }}", 1)
        .replacen("record.id\"", "record.id +\"", 1)
        .replacen("https://api.tasks.example", "https://api.other.example", 1);
    let found: Vec<String> = problems(&bad, &granted)
        .iter()
        .map(|p| p.path.clone())
        .collect();
    assert_eq!(
        found,
        ["auth.value", "streams[0].request.url", "streams[0].map.id"],
    );
    let unknown = GOOD
        .replacen("records = { path", "records = { extra = 1, path", 1)
        .replacen("version = 1", "version = 1\nnmae = \"x\"", 1);
    let found: Vec<String> = problems(&unknown, &granted)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(found.contains(&"nmae: unknown key".to_owned()), "{found:?}");
    assert!(
        found.contains(&"streams[0].records.extra: unknown key".to_owned()),
        "{found:?}"
    );
}

#[test]
fn a_host_from_config_needs_its_config_host_permission() {
    let spec = GOOD.replacen(
        r#"base_url = "https://api.tasks.example/v2""#,
        r#"base_url = "{{ config.server }}/v2""#,
        1,
    );
    let found = problems(
        &spec,
        &manifest(&["network:outbound:api.tasks.example"], false),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "streams[0].request.url");
    assert!(found[0].message.contains("config.server"), "{found:?}");
    assert_eq!(
        problems(&spec, &manifest(&["network:outbound:${server}"], false)),
        []
    );
}

#[test]
fn the_built_in_specs_pass_against_their_manifests() {
    for builtin in tributary_declarative::BUILTIN_SPECS {
        let manifest = PluginManifest::parse(builtin.manifest).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(manifest.id, builtin.plugin_id);
        validate(builtin.spec, &manifest).unwrap_or_else(|e| panic!("{}: {e}", builtin.plugin_id));
    }
}

#[test]
fn the_spec_schema_in_proto_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../proto/schemas/specs/declarative-connector.json");
    let mut text = serde_json::to_string_pretty(&tributary_declarative::spec_schema()).unwrap();
    text.push('\n');
    if std::env::var_os("TRIBUTARY_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "{} is stale: run `TRIBUTARY_REGENERATE=1 cargo test -p tributary-declarative --test declarative the_spec_schema` and commit it",
        path.display()
    );
}

#[test]
fn retry_rules_further_mappings_and_their_skips_are_checked_with_their_paths() {
    let granted = manifest(&["network:outbound:api.tasks.example"], false);
    let with = |errors: &str, also: &str| {
        let spec = GOOD.replacen("[[streams]]", &format!("{errors}\n[[streams]]"), 1);
        format!("{spec}\n{also}")
    };
    let good_also = r#"
[[streams.also]]
entity = "conversation"
id = "record.thread_id"
skip = "not record.thread_id"
fields = { channel = "'tasks'", title = "record.title" }
"#;
    let good_retry = "[[errors.retry_when]]\nstatus = 403\nwhen = \"body.error.reason == 'rateLimited' or headers['x-rate-limit'] == '0'\"\n";
    assert_eq!(problems(&with(good_retry, good_also), &granted), []);

    let table: &[(&str, String, &str)] = &[
        (
            "a retry rule that does not parse",
            with(
                "[[errors.retry_when]]\nstatus = 403\nwhen = \"body.error +\"\n",
                "",
            ),
            "errors.retry_when[0].when: expression does not parse",
        ),
        (
            "a retry rule naming a record",
            with(
                "[[errors.retry_when]]\nstatus = 403\nwhen = \"record.x\"\n",
                "",
            ),
            "errors.retry_when[0].when: expression names `record`, which is not available here",
        ),
        (
            "a retry rule without its status",
            with("[[errors.retry_when]]\nwhen = \"true\"\n", ""),
            "errors.retry_when[0].status: is required",
        ),
        (
            "a further mapping's skip naming the answer",
            with("", &good_also.replace("not record.thread_id", "body.x")),
            "streams[0].also[0].skip: expression names `body`",
        ),
        (
            "a further mapping's field that does not parse",
            with("", &good_also.replace("record.title\"", "record.title +\"")),
            "streams[0].also[0].fields.title: expression does not parse",
        ),
        (
            "a further mapping with an unknown key",
            with("", &good_also.replace("skip =", "skp =")),
            "streams[0].also[0].skp: unknown key",
        ),
    ];
    for (what, spec, expected) in table {
        let found = problems(spec, &granted);
        assert!(
            found.iter().any(|p| p.to_string().starts_with(expected)),
            "{what}: expected a problem starting `{expected}`, found {found:#?}"
        );
    }
}

#[test]
fn the_engines_functions_are_no_unknown_names() {
    let granted = manifest(&["network:outbound:api.tasks.example"], false);
    let spec = GOOD.replacen(
        r#"updated_since = "{{ state.since }}""#,
        r#"updated_since = "{{ state.since or days_from_today(-30) }}""#,
        1,
    );
    assert!(spec.contains("days_from_today"));
    assert_eq!(problems(&spec, &granted), []);
    let unknown = spec.replacen("days_from_today", "days_from_tomorrow", 1);
    let found = problems(&unknown, &granted);
    assert!(
        found
            .iter()
            .any(|p| p.message.contains("names `days_from_tomorrow`")),
        "{found:?}"
    );
}
