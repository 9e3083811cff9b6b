//! Declarative connectors run by the real plugin manager, connector service and ETL: each
//! built-in spec from a plugin directory, pointed at a local server answering as its
//! provider's API reference documents (Graph, Google's People and Calendar APIs, HubSpot,
//! Todoist, Zendesk). Each one syncs everything, then only the changes, then a deletion, then
//! a full resync with nothing twice in PostgreSQL; a kill mid-sync resumes from its
//! checkpoint ([`microsoft_365`] for next links, [`google`] for page tokens and a sync token).

use std::path::Path;

use serde_json::json;
use tributary_kit::testing::{Accept, Events};
use tributary_proto::events::{EventKind, SyncEvent};

use crate::support::{Harness, TempDir};

mod google;
mod hubspot;
mod microsoft_365;
mod todoist;
mod zendesk;

/// Persons not deleted.
const PERSONS: &str = "SELECT count(*) FROM person WHERE deleted_at IS NULL";
/// Calendar events not deleted.
const EVENTS: &str = "SELECT count(*) FROM calendar_event WHERE deleted_at IS NULL";

/// The built-in plugin `builtin_id` as a directory plugin `id`: its spec pointed from
/// `real_base` at `local_base`, with a bearer token from config instead of the OAuth broker,
/// and granted that host and `data` (`data:write:…`).
fn write_builtin(
    dir: &Path,
    builtin_id: &str,
    id: &str,
    real_base: &str,
    local_base: &str,
    data: &[&str],
) {
    let builtin = tributary_declarative::builtin_spec(builtin_id).unwrap();
    let host = local_base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let spec = builtin.spec.replace(real_base, local_base).replace(
        "type = \"oauth\"",
        "type = \"bearer\"\ntoken = \"{{ config.token }}\"",
    );
    let mut manifest: serde_json::Value = serde_json::from_str(builtin.manifest).unwrap();
    manifest["id"] = json!(id);
    let mut permissions = vec![format!("network:outbound:{host}")];
    permissions.extend(data.iter().map(|d| (*d).to_owned()));
    manifest["permissions"] = json!(permissions);
    manifest.as_object_mut().unwrap().remove("auth");
    manifest["configSchema"]["properties"]["token"] = json!({"type": "string", "writeOnly": true});
    let file = manifest["entrypoint"]
        .as_str()
        .and_then(tributary_declarative::spec_file)
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join(file), spec).unwrap();
}

/// The services (with the ETL) reading the plugin directories under `plugins`, a watch on
/// completed syncs, and `instance` of `plugin_id` installed with `config` and enabled.
async fn start_enabled(
    plugins: &TempDir,
    plugin_id: &str,
    instance: &str,
    config: serde_json::Value,
) -> (Harness, Events) {
    let dir = plugins.0.clone();
    let mesh = Harness::start_with(true, move |env| {
        env.config.plugin_manager.plugin_dirs.push(dir);
    })
    .await;
    let completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.install(plugin_id, instance, config, Accept::Requested)
        .await;
    mesh.enable(instance).await;
    (mesh, completed)
}
