//! The deployment's three provisioning steps, each run to completion before the services
//! start (compose's `db-provision`, `nats-provision` and `meili-provision` services), each with
//! credentials no service holds:
//!
//! - `tributary db provision`, as the owner of the schema: migrates, creates or updates each
//!   service's role and grants it what deploy/postgres/grants.sql says
//!   ([`tributary_kit::db::provision`]); the services then connect as those roles with
//!   `database.migrate = false`.
//! - `tributary nats provision`, as the NATS user `provision` (`tributary up` calls the same
//!   function itself): creates or updates every JetStream stream (sized by `nats.max_bytes`),
//!   every service's durable pull consumer (filtered to its stream's subject) and the consumers
//!   `[[nats.consumers]]` lists for your own programs
//!   ([`tributary_kit::provision::provision_all`]). No service may create or change a stream
//!   or a consumer itself (issue 27, findings 2 and 11).
//! - `tributary meili provision`, with Meilisearch's master key: makes the search service's own
//!   API key, allowed only the actions the backend uses on `search.index_name` and its rebuild
//!   ([`tributary_search::backend::meilisearch::keys`]), and writes it to
//!   `search.meilisearch_api_key_file` (0600); the search service reads it from there and never
//!   holds the master key, which it would refuse.
//!
//! Each connects only as its configuration says: unlike the other commands, none of them
//! falls back to the NATS admin user of the servers `tributary up` started.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use tributary_kit::db::provision;
use tributary_kit::Config;
use tributary_search::backend::meilisearch::keys;

use crate::outln;

/// `tributary db`: the database's provisioning step.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DbAction,
}

/// The subcommands of `tributary db`.
#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// As `database.user` (the schema's owner): create the database when missing and its
    /// role may, run the migrations, create or update each `database.roles.<service>` role
    /// with its password, and grant each exactly what deploy/postgres/grants.sql says.
    Provision,
}

/// `tributary nats`: NATS's provisioning step.
#[derive(Debug, Args)]
pub struct NatsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: NatsAction,
}

/// The subcommands of `tributary nats`.
#[derive(Debug, Subcommand)]
pub enum NatsAction {
    /// As `nats.user` (`provision` in deploy/nats-server.conf): create or update the seven
    /// streams, the services' durable pull consumers and the `[[nats.consumers]]`.
    Provision,
}

/// `tributary meili`: Meilisearch's provisioning step.
#[derive(Debug, Args)]
pub struct MeiliArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: MeiliAction,
}

/// The subcommands of `tributary meili`.
#[derive(Debug, Subcommand)]
pub enum MeiliAction {
    /// With Meilisearch's master key as `search.meilisearch_api_key`: create (or make right)
    /// the search service's key for `search.index_name` and write it to
    /// `search.meilisearch_api_key_file`.
    Provision,
}

/// Runs `tributary db …` and returns its exit code.
pub async fn run_db(config: &Config, args: DbArgs) -> ExitCode {
    let DbAction::Provision = args.action;
    let done = match provision::provision(&config.database).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    outln!(
        "Database {} is at migration {}; roles granted deploy/postgres/grants.sql:",
        done.database,
        done.schema_version
    );
    for (service, role, created) in &done.roles {
        let how = if *created { "created" } else { "updated" };
        outln!("  {service}: {role} ({how})");
    }
    if done.ran_as_superuser {
        eprintln!(
            "warning: provisioning ran as {}, a superuser; the schema's owner with CREATEROLE is enough",
            config.database.user
        );
    }
    ExitCode::SUCCESS
}

/// Runs `tributary nats …` and returns its exit code.
pub async fn run_nats(config: &Config, args: NatsArgs) -> ExitCode {
    let NatsAction::Provision = args.action;
    let done = match tributary_kit::provision::provision_all(config).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    outln!("NATS at {} provisioned:", config.nats.url);
    for stream in &done.streams {
        outln!("  stream {stream}");
    }
    for consumer in &done.consumers {
        outln!("  consumer {consumer}");
    }
    ExitCode::SUCCESS
}

/// Runs `tributary meili …` and returns its exit code.
pub async fn run_meili(config: &Config, args: MeiliArgs) -> ExitCode {
    let MeiliAction::Provision = args.action;
    match provision_meili(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tributary meili provision`: checks the three settings it needs, makes (or makes right)
/// the search service's key and writes it to `search.meilisearch_api_key_file`.
async fn provision_meili(config: &Config) -> anyhow::Result<()> {
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
    outln!(
        "Meilisearch key {} for indexes {} ({how}), actions {}; written to {}",
        made.uid,
        keys::indexes(&search.index_name).join(", "),
        keys::ACTIONS.join(", "),
        file.display()
    );
    Ok(())
}

/// Writes `text` and a newline to `path`, readable by its owner alone, replacing it whole:
/// through a file beside it, renamed over it, so the search service never reads half a key.
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
