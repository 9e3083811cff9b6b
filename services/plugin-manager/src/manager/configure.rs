//! Configuring an instance: splitting its secrets out and checking it against the
//! plugin's config schema.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tributary_proto::events::PluginEvent;
use tributary_proto::manifest::{config_host_property, Permission, PluginManifest};
use tributary_proto::requests::plugins::InstanceView;
use tributary_proto::requests::ConfigProblem;

use crate::actor::Actor;
use crate::config_schema::{self, SecretChange};
use crate::error::RegistryError;
use crate::store;
use crate::validate;

use super::PluginManager;

impl PluginManager {
    /// Replaces an instance's configuration (secrets left out keep their value).
    pub async fn configure(
        &self,
        instance_id: &str,
        config: Value,
        actor: &Actor,
    ) -> Result<InstanceView, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        let stored = self.secrets_of(&mut tx, instance_id).await?;
        let stored_fields: Vec<String> = stored.iter().map(|(f, _)| f.clone()).collect();
        let (public, changes) = prepare_config(&row.manifest, config, stored)?;
        let moved = moved_destinations(&row.accepted, &row.config, &public);
        if !moved.is_empty() {
            refuse_kept_secrets(instance_id, &moved, &stored_fields, &changes)?;
        }
        let changed_fields = changed_keys(&row.config, &public);
        row.config = public;
        store::save_instance(&mut tx, &row).await?;
        self.apply_secret_changes(&mut tx, instance_id, &changes)
            .await?;
        let secrets_changed: Vec<&String> = changes.iter().map(|(f, _)| f).collect();
        let moved_detail: Vec<Value> = moved
            .iter()
            .map(|m| json!({ "field": m.field, "from": m.from, "to": m.to }))
            .collect();
        if !moved.is_empty() {
            tracing::warn!(instance = instance_id, actor = %actor, moved = ?moved_detail, "A configuration change points the instance's granted hosts elsewhere; its secrets were entered again with it.");
            if row.manifest.auth.is_some() {
                self.forget_tokens_after_move(&mut tx, &mut row, &moved, actor)
                    .await?;
            }
        }
        store::audit(
            &mut tx,
            actor,
            "configure",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "fields_changed": changed_fields, "secrets_changed": secrets_changed,
                    "destinations_moved": moved_detail }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Configured, &row, actor, None)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }
}

/// A `network:outbound:${field}` grant whose destination a change moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MovedDestination {
    /// The config field the grant reads.
    pub field: String,
    /// Where it pointed (`https://api.example.com`), or `none`.
    pub from: String,
    /// Where it points now.
    pub to: String,
}

/// The scheme, host and port of the URL at `field` of `config`, as `scheme://host:port`.
fn destination(config: &Value, field: &str) -> Option<String> {
    let url = url::Url::parse(config.get(field)?.as_str()?.trim()).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    Some(format!(
        "{}://{host}{}",
        url.scheme(),
        url.port_or_known_default()
            .map(|p| format!(":{p}"))
            .unwrap_or_default()
    ))
}

/// The `${field}` grants of `accepted` whose scheme, host or port differs between `old` and
/// `new`: the hosts the instance's secrets would be sent to that they were not sent to.
pub(crate) fn moved_destinations(
    accepted: &[Permission],
    old: &Value,
    new: &Value,
) -> Vec<MovedDestination> {
    let mut moved: Vec<MovedDestination> = Vec::new();
    for permission in accepted {
        let Some(field) = config_host_property(&permission.resource) else {
            continue;
        };
        let (from, to) = (destination(old, field), destination(new, field));
        if from != to && to.is_some() && !moved.iter().any(|m| m.field == field) {
            moved.push(MovedDestination {
                field: field.to_owned(),
                from: from.unwrap_or_else(|| "none".to_owned()),
                to: to.unwrap_or_default(),
            });
        }
    }
    moved
}

/// Refuses a change that moves a granted destination while keeping stored secrets: each one
/// kept would be sent to the new host without the person having given it for that host.
fn refuse_kept_secrets(
    instance_id: &str,
    moved: &[MovedDestination],
    stored: &[String],
    changes: &[(String, SecretChange)],
) -> Result<(), RegistryError> {
    let kept: Vec<&String> = stored
        .iter()
        .filter(|field| !changes.iter().any(|(f, _)| f == *field))
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    let moves = moved
        .iter()
        .map(|m| format!("`{}` from {} to {}", m.field, m.from, m.to))
        .collect::<Vec<_>>()
        .join(", ");
    Err(RegistryError::SecretsNotReentered {
        instance_id: instance_id.to_owned(),
        moves: moves.clone(),
        problems: kept
            .into_iter()
            .map(|field| ConfigProblem {
                path: field.clone(),
                message: format!(
                    "must be given again with this change, which moves {moves}: a stored secret is never sent to a new destination unless it is entered for it"
                ),
            })
            .collect(),
    })
}

/// Splits a requested config into its plain part and its secret changes, and validates
/// the whole (with the `stored` secrets it would keep) against the manifest's schema.
pub(super) fn prepare_config(
    manifest: &PluginManifest,
    config: Value,
    stored: Vec<(String, String)>,
) -> Result<(Value, Vec<(String, SecretChange)>), RegistryError> {
    let nul = validate::nul_problems(&config);
    if !nul.is_empty() {
        return Err(RegistryError::MalformedConfig(nul));
    }
    if !config.is_object() {
        return Err(RegistryError::ConfigNotAnObject);
    }
    let fields = config_schema::secret_fields(&manifest.config_schema);
    let (public, changes) = config_schema::take_secrets(config, &fields)
        .map_err(|p| RegistryError::MalformedConfig(vec![p]))?;
    let mut secrets: BTreeMap<String, String> = stored.into_iter().collect();
    for (field, change) in &changes {
        match change {
            SecretChange::Set(value) => {
                secrets.insert(field.clone(), value.clone());
            }
            SecretChange::Clear => {
                secrets.remove(field);
            }
        }
    }
    let secrets: Vec<(String, String)> = secrets.into_iter().collect();
    let problems = problems_with(&manifest.config_schema, &public, &secrets);
    if !problems.is_empty() {
        return Err(RegistryError::InvalidConfig {
            plugin_id: manifest.id.clone(),
            problems,
        });
    }
    Ok((public, changes))
}

/// What is wrong with a config (without its secrets) once its secrets are put back in.
pub(super) fn problems_with(
    schema: &Value,
    public: &Value,
    secrets: &[(String, String)],
) -> Vec<ConfigProblem> {
    let mut whole = public.clone();
    config_schema::put_secrets(&mut whole, secrets);
    let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();
    config_schema::validate(schema, &whole, &values)
}

/// The top-level keys whose values differ between two configs.
fn changed_keys(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
