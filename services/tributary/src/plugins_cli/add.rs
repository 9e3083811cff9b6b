//! `tributary plugins add <directory | .tar.gz>`: a third-party plugin (WebAssembly, or a
//! declarative connector: `plugin.json` and its TOML spec), checked and copied into the
//! managed plugin directory `<data_dir>/plugins/<id>/<version>/`, which the plugin manager
//! scans; then a rescan, and what to do next.
//!
//! The checks, the staging directory and the move into place are the plugin manager's own
//! ([`tributary_plugin_manager::adding`], which its admin API's `POST /api/v1/plugins` runs
//! too); this module asks for the rescan and says what happened. Every refusal is a
//! [`Refusal`] naming its reason.

use crate::outln;
use std::path::PathBuf;

use serde_json::json;
use tributary_kit::client::{self, MeshClient};
use tributary_kit::Config;
use tributary_plugin_manager::adding::{
    found_there, not_loaded, place, stage_and_check, ManagedDir, Staging,
};
use tributary_proto::requests::plugins::PluginList;

use super::print_json;

pub use tributary_plugin_manager::adding::Refusal;

/// What `plugins add` was asked.
#[derive(Debug, Clone)]
pub struct Add {
    /// The plugin's directory, or a `.tar.gz` of it.
    pub source: PathBuf,
    /// Replace the same id and version when it was added before.
    pub replace: bool,
    /// The most the plugin's files may add up to, in bytes.
    pub max_bytes: u64,
}

/// `plugins add`: checks and copies the plugin, asks the plugin manager to rescan, and says
/// what to do next.
pub async fn add(config: &Config, args: Add, json: bool) -> anyhow::Result<()> {
    let managed = ManagedDir::of(config);
    let staging = Staging::new(&managed.data_dir)?;
    let checked = stage_and_check(&args.source, args.max_bytes, &staging)?;
    let (id, version) = (
        checked.manifest.id.clone(),
        checked.manifest.version.to_string(),
    );
    let target = managed.target_of(&checked.manifest);
    place(&checked, &target, args.replace, &staging)?;

    let rescanned = rescan(config).await;
    let mut upgradable = Vec::new();
    let mut note = None;
    match &rescanned {
        Ok((client, list)) => {
            if let Some(problems) = not_loaded(list, &id, &target) {
                staging.take_back(&target);
                let _ = client.rescan().await;
                return Err(Refusal::NotLoaded {
                    id,
                    version,
                    problems,
                }
                .into());
            }
            if !found_there(list, &id, &version, &target) {
                note = Some(format!(
                    "the plugin manager does not list `{id}` {version} from {}: it scans `<data_dir>/plugins` of its own configuration, so add the plugin where it runs, with the same data_dir",
                    target.display()
                ));
            }
            if let Ok(instances) = client.instances().await {
                upgradable = instances
                    .into_iter()
                    .filter(|i| {
                        i.plugin_id == id
                            && i.state != "uninstalled"
                            && older(&i.version, &checked.manifest.version)
                    })
                    .map(|i| i.id)
                    .collect();
            }
        }
        Err(e) => {
            note = Some(format!(
                "the plugin manager was not asked to rescan ({e}); it finds the plugin when it starts, or on `tributary plugins rescan`"
            ))
        }
    }
    let permissions: Vec<String> = checked
        .manifest
        .permissions
        .iter()
        .map(ToString::to_string)
        .collect();
    if json {
        return print_json(&json!({
            "plugin": {
                "id": id,
                "version": version,
                "location": target.display().to_string(),
                "permissions": permissions,
                "sha256": checked.manifest.sha256,
            },
            "rescanned": rescanned.is_ok(),
            "upgradable": upgradable,
            "note": note,
        }));
    }
    outln!("Added `{id}` {version} at {}.", target.display());
    if let Some(note) = &note {
        eprintln!("note: {note}");
    }
    if permissions.is_empty() {
        outln!("It asks for no permissions. Install it: `tributary plugins install {id}`.");
    } else {
        outln!("It asks for these permissions:");
        for permission in &permissions {
            outln!("  {permission}");
        }
        outln!("Install it, accepting them: `tributary plugins install {id}` (it asks; `--accept-permissions` accepts them at once).");
    }
    for instance in &upgradable {
        outln!("Move `{instance}` to this version: `tributary plugins upgrade {instance}`.");
    }
    Ok(())
}

/// Asks the plugin manager to scan again; its client and answer, or why it could not.
async fn rescan(config: &Config) -> anyhow::Result<(MeshClient, PluginList)> {
    let client = MeshClient::connect(config, client::actor_from_env()).await?;
    let list = client.rescan().await?;
    Ok((client, list))
}

/// Whether `version` (an instance's) is older than `than`.
fn older(version: &str, than: &semver::Version) -> bool {
    semver::Version::parse(version).is_ok_and(|v| v < *than)
}
