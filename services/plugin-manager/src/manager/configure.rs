//! Configuring an instance: splitting its secrets out and checking it against the
//! plugin's config schema.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tributary_proto::events::PluginEvent;
use tributary_proto::manifest::PluginManifest;
use tributary_proto::requests::plugins::InstanceView;
use tributary_proto::requests::ConfigProblem;

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
        actor: &str,
    ) -> Result<InstanceView, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let mut row = self.lock_live(&mut tx, instance_id).await?;
        let stored = self.secrets_of(&mut tx, instance_id).await?;
        let (public, changes) = prepare_config(&row.manifest, config, stored)?;
        let changed_fields = changed_keys(&row.config, &public);
        row.config = public;
        store::save_instance(&mut tx, &row).await?;
        self.apply_secret_changes(&mut tx, instance_id, &changes)
            .await?;
        let secrets_changed: Vec<&String> = changes.iter().map(|(f, _)| f).collect();
        store::audit(
            &mut tx,
            actor,
            "configure",
            Some(&row.plugin_id),
            Some(instance_id),
            json!({ "fields_changed": changed_fields, "secrets_changed": secrets_changed }),
        )
        .await?;
        self.announce(&mut tx, PluginEvent::Configured, &row, actor, None)
            .await?;
        self.commit(tx).await?;
        self.instance(instance_id).await
    }
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
