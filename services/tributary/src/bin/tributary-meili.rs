//! `tributary-meili provision`: Meilisearch's provisioning step, run with the master key before
//! the search service starts (compose's `meili-provision` service). It makes the search
//! service's own API key, allowed only the actions the backend uses on `search.index_name` and
//! its rebuild ([`tributary_search::backend::meilisearch::keys`]), and writes it to
//! `search.meilisearch_api_key_file` (0600); the search service reads it from there and never
//! holds the master key, which it would refuse.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use tributary_kit::{Config, ConfigSources};
use tributary_search::backend::meilisearch::keys;

/// Meilisearch's provisioning step.
#[derive(Debug, Parser)]
#[command(name = "tributary-meili", version, about)]
struct Cli {
    /// A TOML configuration file (overrides the built-in defaults; TRIBUTARY__… variables
    /// override it). Defaults to $TRIBUTARY_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// With Meilisearch's master key as `search.meilisearch_api_key`: create (or make right)
    /// the search service's key for `search.index_name` and write it to
    /// `search.meilisearch_api_key_file`.
    Provision,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let sources = ConfigSources::from_process(Config::file_from_env(cli.config.as_deref()));
    let config = Config::load(&sources)?;
    let Command::Provision = cli.command;
    let search = &config.search;
    if !search.uses_meilisearch() {
        anyhow::bail!("`search.meilisearch_url` is not set: there is no Meilisearch to provision");
    }
    if search.meilisearch_api_key.expose_secret().trim().is_empty() {
        anyhow::bail!("`search.meilisearch_api_key` is not set: give Meilisearch's master key (TRIBUTARY__SEARCH__MEILISEARCH_API_KEY) to this step alone");
    }
    let file = &search.meilisearch_api_key_file;
    if file.as_os_str().is_empty() {
        anyhow::bail!("`search.meilisearch_api_key_file` is not set: name the file the search service reads its key from");
    }
    let made = keys::provision_key(
        &search.meilisearch_url,
        &search.meilisearch_api_key,
        &search.index_name,
    )
    .await?;
    write_private(file, made.key.expose_secret()).with_context(|| {
        format!(
            "`search.meilisearch_api_key_file`: cannot write {}",
            file.display()
        )
    })?;
    let how = if made.created { "created" } else { "unchanged" };
    println!(
        "Meilisearch key {} for indexes {} ({how}), actions {}; written to {}",
        made.uid,
        keys::indexes(&search.index_name).join(", "),
        keys::ACTIONS.join(", "),
        file.display()
    );
    Ok(())
}

/// Writes `text` to `path` readable by its owner alone, replacing it whole.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)
}
