//! A third-party plugin for the tests that add one (`tributary plugins add`, the admin API's
//! `POST /api/v1/plugins`, the console's upload form): a declarative connector of tasks from
//! api.example.com, whose spec and manifest every such test writes out the same.

use serde_json::json;

/// The tasks plugin's id.
pub const TASKS: &str = "com.example.tasks";

/// What the tasks plugin asks for: its API's host, and to write documents.
pub const TASKS_PERMISSIONS: [&str; 2] =
    ["network:outbound:api.example.com", "data:write:documents"];

/// The tasks plugin's spec (its `tasks.toml`): tasks from api.example.com as documents, paged
/// by a next URL, with a bearer token from its configuration.
pub const TASKS_SPEC: &str = r#"
version = 1
base_url = "https://api.example.com"
auth = { type = "bearer", token = "{{ config.token }}" }

[[streams]]
name = "tasks"
request = { url = "{{ base_url }}/tasks" }
records = { path = "body.items" }
pagination = { type = "next_url", next = "body.next" }
map = { entity = "document", id = "record.id", fields = { title = "record.title" } }
"#;

/// The tasks plugin's `plugin.json` at `version`: the declarative connector of
/// [`TASKS_SPEC`] (as `tasks.toml`), asking for [`TASKS_PERMISSIONS`], configured with a
/// write-only `token`.
pub fn tasks_manifest(version: &str) -> String {
    json!({
        "id": TASKS, "name": "Example Tasks", "version": version, "type": "connector",
        "entrypoint": "declarative:tasks.toml",
        "permissions": TASKS_PERMISSIONS,
        "configSchema": {"type": "object", "properties": {"token": {"type": "string", "writeOnly": true}}}
    })
    .to_string()
}
