//! `plugins generate-key` and `plugins rotate-key`: the master key that seals plugin secrets.
//! Rotation talks to PostgreSQL directly, because the plugin manager must not run meanwhile:
//! it would keep sealing new secrets under the old key.

use crate::outln;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use secrecy::ExposeSecret;
use serde_json::json;
use tributary_kit::Config;
use tributary_plugin_manager::keys::{self, MasterKey};
use tributary_plugin_manager::vault;

use tributary_kit::client::{CallError, MeshClient};

/// The environment variable that can hold the new key instead of `--new-key-file`.
pub const NEW_KEY_ENV: &str = "TRIBUTARY_NEW_MASTER_KEY";

/// How long rotation waits to learn whether the plugin manager is running.
const RUNNING_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Prints a fresh master key in base64 (with `json`, as `{"master_key": …, "key_id": …}`).
pub fn generate_key(json: bool) -> anyhow::Result<()> {
    let key = MasterKey::generate();
    if json {
        super::print_json(&json!({
            "master_key": key.to_base64().expose_secret(),
            "key_id": key.id(),
        }))?;
    } else {
        outln!("{}", key.to_base64().expose_secret());
        eprintln!(
            "Keep this key safe: plugin secrets cannot be read without it. Give it to the plugin manager as plugin_manager.master_key (TRIBUTARY__PLUGIN_MANAGER__MASTER_KEY) or in a file named by plugin_manager.master_key_file."
        );
    }
    Ok(())
}

/// Re-seals every plugin secret from the configured master key to the new one (read from
/// `new_key_file`, else from `$TRIBUTARY_NEW_MASTER_KEY`), in one transaction.
pub async fn rotate_key(
    config: &Config,
    new_key_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let (text, source) = match new_key_file {
        Some(file) => (
            std::fs::read_to_string(file)
                .with_context(|| format!("Failed to read the new key from {}", file.display()))?,
            file.display().to_string(),
        ),
        None => (
            env(NEW_KEY_ENV).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                anyhow!("give the new key with --new-key-file <file> or in ${NEW_KEY_ENV}; make one with `tributary plugins generate-key`")
            })?,
            format!("${NEW_KEY_ENV}"),
        ),
    };
    let new = MasterKey::from_base64(&text)
        .map_err(|m| anyhow!("the new key in {source} cannot be used: {m}"))?;
    let (old, old_source) = configured_key(config)?;
    if old.id() == new.id() {
        bail!(
            "the new key is the key in use (id {}); make a new one with `tributary plugins generate-key`",
            old.id()
        );
    }
    refuse_while_running(config).await?;

    let pool = tributary_kit::db::connect_and_migrate(&config.database).await?;
    let moved = vault::rotate_master_key(&pool, &old, &new)
        .await
        .context("Failed to rotate the master key; nothing was changed")?;
    pool.close().await;

    if json {
        super::print_json(&json!({
            "secrets_moved": moved,
            "old_key_id": old.id(),
            "new_key_id": new.id(),
        }))?;
    } else {
        let noun = if moved == 1 { "secret" } else { "secrets" };
        outln!(
            "Moved {moved} {noun} from key {} to key {}.",
            old.id(),
            new.id()
        );
        let next = match &old_source {
            KeySource::Inline => "Restart the plugin manager with the new key in plugin_manager.master_key (TRIBUTARY__PLUGIN_MANAGER__MASTER_KEY)".to_owned(),
            KeySource::File(file) => format!(
                "Put the new key in {} (plugin_manager.master_key_file) and restart the plugin manager",
                file.display()
            ),
            KeySource::Local(file) => format!(
                "Put the new key in {} (the key file `tributary up` made) and restart `tributary up`",
                file.display()
            ),
        };
        outln!("{next}: it no longer starts with the old key.");
    }
    Ok(())
}

/// Where the key in use was configured, so the new one can go to the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeySource {
    /// `plugin_manager.master_key` (or its environment variable).
    Inline,
    /// The file `plugin_manager.master_key_file` names.
    File(PathBuf),
    /// Nothing configured: the file `tributary up` makes under `data_dir`.
    Local(PathBuf),
}

/// The key the plugin manager is configured with. When none is configured, the key file
/// `tributary up` makes and uses (`keys::ensure_local_keys`), if it exists; it is never made
/// here, since a new key would open nothing.
fn configured_key(config: &Config) -> anyhow::Result<(MasterKey, KeySource)> {
    let settings = &config.plugin_manager;
    if !settings.master_key.expose_secret().trim().is_empty() {
        return Ok((keys::master_key_from(settings)?, KeySource::Inline));
    }
    if !settings.master_key_file.as_os_str().is_empty() {
        let file = settings.master_key_file.clone();
        return Ok((keys::master_key_from(settings)?, KeySource::File(file)));
    }
    let local = keys::local_master_key_file(config);
    if local.is_file() {
        let mut settings = settings.clone();
        settings.master_key_file = local.clone();
        return Ok((keys::master_key_from(&settings)?, KeySource::Local(local)));
    }
    // Fails naming the setting to give.
    Ok((keys::master_key_from(settings)?, KeySource::Inline))
}

/// Fails when a plugin manager answers on this deployment's subjects. When NATS itself cannot
/// be reached, nothing can be running that uses it, so rotation goes on.
async fn refuse_while_running(config: &Config) -> anyhow::Result<()> {
    let Ok(client) = MeshClient::connect(config, tributary_kit::client::actor_from_env()).await
    else {
        return Ok(());
    };
    let client = client.with_timeout(RUNNING_CHECK_TIMEOUT);
    match client.plugins().await {
        Err(CallError::NotAnswering { .. }) | Err(CallError::Send { .. }) => Ok(()),
        _ => bail!(
            "the plugin manager is running (it answers on {}); stop it first, or it keeps sealing new secrets under the old key, then rotate and start it with the new key",
            tributary_proto::requests::Request::subject(&tributary_proto::requests::plugins::ListPlugins {}, client.subjects())
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn the_old_key_is_the_configured_one_else_the_key_file_tributary_up_made() {
        let dir = std::env::temp_dir().join(format!(
            "tributary-cli-keys-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let mut config = Config::defaults().unwrap();
        config.data_dir = dir.clone();
        let err = configured_key(&config).unwrap_err();
        assert!(
            err.to_string().contains("plugin_manager.master_key"),
            "{err}"
        );

        let local = MasterKey::generate();
        let file = dir.join("secrets").join("master.key");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, local.to_base64().expose_secret()).unwrap();
        // As `tributary up` writes it: a secret file must be its owner's alone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (found, source) = configured_key(&config).unwrap();
        assert_eq!(found.id(), local.id());
        assert_eq!(source, KeySource::Local(file));

        let inline = MasterKey::generate();
        config.plugin_manager.master_key =
            SecretString::from(inline.to_base64().expose_secret().to_owned());
        let (found, source) = configured_key(&config).unwrap();
        assert_eq!(found.id(), inline.id());
        assert_eq!(source, KeySource::Inline);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
