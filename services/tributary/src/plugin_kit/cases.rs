//! A plugin's test cases: `test/<case>.json`, one file each (the format is in
//! docs/plugin-kits.md): the instance's configuration, the HTTP the plugin will meet, what to
//! run (a sync, a webhook, a send) and what it must produce.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KitError;

/// One test case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it shows, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The instance's configuration (secret fields with made-up values).
    #[serde(default = "empty_object")]
    pub config: Value,
    /// A connector's sync to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncCase>,
    /// A webhook to hand a channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookCase>,
    /// A message for a channel to send (an outbound message, as the channel service hands it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Value>,
    /// The HTTP answers the plugin meets.
    #[serde(default)]
    pub fixtures: Vec<Fixture>,
    /// What must come out.
    #[serde(default)]
    pub expect: Expect,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A connector's sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncCase {
    /// `full`, `incremental` or `backfill`.
    #[serde(default = "full")]
    pub mode: String,
    /// For a backfill: from when, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The checkpoint stored before the sync (none on a first sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Value>,
}

fn full() -> String {
    "full".to_owned()
}

/// A webhook as the provider sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookCase {
    /// Its method.
    #[serde(default = "post")]
    pub method: String,
    /// Its query string, without `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Its headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Its body as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Its body as JSON (sent compact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
}

fn post() -> String {
    "POST".to_owned()
}

impl WebhookCase {
    /// The body's bytes.
    pub fn body_bytes(&self) -> Vec<u8> {
        match (&self.body, &self.json) {
            (Some(text), _) => text.clone().into_bytes(),
            (None, Some(json)) => json.to_string().into_bytes(),
            (None, None) => Vec::new(),
        }
    }
}

/// One recorded HTTP exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// What the plugin asks.
    pub request: FixtureRequest,
    /// What it is answered.
    pub response: FixtureResponse,
}

/// The request a fixture answers: matched on method and path with query, exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRequest {
    /// The method.
    #[serde(default = "get")]
    pub method: String,
    /// The path and query (`/notes?page=2`).
    pub path: String,
}

fn get() -> String {
    "GET".to_owned()
}

/// The answer of a fixture. `${key}` in header values and the body becomes the value the
/// configuration field `key` has in the run (the fixture server's URL for a granted one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureResponse {
    /// The status.
    #[serde(default = "ok")]
    pub status: u16,
    /// Its headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A JSON body (sent with `content-type: application/json` unless a header says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
}

fn ok() -> u16 {
    200
}

/// What a case must produce.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A sync's items, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ExpectedItem>>,
    /// Fields the sync's last checkpoint must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Value>,
    /// A webhook's answer status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A handled webhook's events, each as a subset, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Value>>,
    /// Fields the sent message must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Value>,
    /// The events the plugin emits, each `{"subject", "payload"}` as a subset, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emitted: Option<Vec<Value>>,
    /// How many HTTP requests the plugin makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<usize>,
    /// Text the run's failure must contain; none: it must not fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An item a sync must yield.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedItem {
    /// Its entity type.
    pub entity_type: String,
    /// Its id at the source.
    pub external_id: String,
    /// `upsert` (the default) or `delete`.
    #[serde(default = "upsert")]
    pub operation: String,
    /// Fields its data must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

fn upsert() -> String {
    "upsert".to_owned()
}

/// A case read from its file.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// Its name: the file name without `.json`.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// Its content.
    pub case: Case,
}

impl CaseFile {
    /// Writes the case back to its file.
    pub fn save(&self) -> Result<(), KitError> {
        let mut text = serde_json::to_string_pretty(&self.case).unwrap_or_default();
        text.push('\n');
        super::files::write_file(&self.path, text.as_bytes())
    }
}

/// The cases of the plugin in `dir` (its `test/*.json`, by name), checked for what its type
/// runs; only `only` when given.
pub fn read_cases(
    dir: &Path,
    plugin_type: &str,
    only: Option<&str>,
) -> Result<Vec<CaseFile>, KitError> {
    let test_dir = dir.join("test");
    let entries = std::fs::read_dir(&test_dir).map_err(|_| KitError::Case {
        path: test_dir.clone(),
        problem: "no test cases: add test/<case>.json files (docs/plugin-kits.md gives the format; `tributary plugins new` writes examples)".to_owned(),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| KitError::io("read", &path, e))?;
        let case: Case = serde_json::from_str(&text).map_err(|e| KitError::Case {
            path: path.clone(),
            problem: format!("not a test case: {e}"),
        })?;
        let problem = |problem: &str| KitError::Case {
            path: path.clone(),
            problem: problem.to_owned(),
        };
        match plugin_type {
            "connector" if case.sync.is_none() => {
                return Err(problem(
                    "a connector's case needs `sync` (`{\"mode\": \"full\"}`)",
                ))
            }
            "connector" if case.webhook.is_some() || case.send.is_some() => {
                return Err(problem(
                    "a connector's case has `sync`, not `webhook` or `send`",
                ))
            }
            "channel" if case.webhook.is_some() == case.send.is_some() => {
                return Err(problem("a channel's case has either `webhook` or `send`"))
            }
            "channel" if case.sync.is_some() => {
                return Err(problem(
                    "a channel's case has `webhook` or `send`, not `sync`",
                ))
            }
            _ => {}
        }
        if !case.config.is_object() {
            return Err(problem("`config` must be an object"));
        }
        cases.push(CaseFile { name, path, case });
    }
    if cases.is_empty() {
        return Err(KitError::Case {
            path: test_dir,
            problem: match only {
                Some(only) => format!("no case named `{only}` (test/{only}.json)"),
                None => "no test cases: add test/<case>.json files".to_owned(),
            },
        });
    }
    Ok(cases)
}
