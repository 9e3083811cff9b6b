//! `tributary plugins …`: the plugin registry from the command line. Every command but the
//! key commands asks the plugin manager on NATS (`plugins.<verb>`); `rotate-key` works on
//! PostgreSQL directly, while the plugin manager is stopped; `add` copies a plugin into the
//! managed plugin directory ([`add`]) and then asks for a rescan.
//!
//! Exit codes: 0 done, 1 failed, 2 permissions not accepted, 130 `connect` stopped waiting by
//! ctrl-c.

pub mod add;
pub mod commands;
pub mod config_input;
pub mod connect;
pub mod keys;
pub mod kit;
pub mod render;

use crate::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_kit::Config;
use tributary_proto::requests::{ApiError, ErrorCode};

use crate::plugin_kit::build::BuildOptions;
use crate::plugin_kit::scaffold::NewPlugin;
use crate::plugin_kit::toolchain::Language;
use config_input::ConfigArgs;
use tributary_kit::client::{self, CallError, MeshClient};

/// The exit code when permissions were not accepted.
pub const EXIT_PERMISSIONS_NOT_ACCEPTED: u8 = 2;

/// `tributary plugins`: its options and subcommand.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Print the data as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginsCommand,
}

/// The `tributary plugins` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the plugins found (and the invalid ones, with their problems) and the installed
    /// instances.
    List,
    /// Show an instance (state, configuration, which secrets are set, permissions) or, when
    /// no instance has that id, a plugin (permissions, configuration fields).
    Info {
        /// An instance id or a plugin id.
        id: String,
    },
    /// Install an instance of a plugin. Its permissions must be accepted.
    Install {
        /// The plugin to install (`tributary plugins list` shows them).
        plugin_id: String,
        /// The instance id (letters, digits, `-`, `_`); made up when absent.
        #[arg(long = "id", value_name = "INSTANCE_ID")]
        instance_id: Option<String>,
        /// Its configuration.
        #[command(flatten)]
        config: ConfigArgs,
        /// Accept every permission the plugin asks for.
        #[arg(long, visible_alias = "yes", short = 'y')]
        accept_permissions: bool,
    },
    /// Change an instance's configuration and print the result.
    Configure {
        /// The instance.
        instance: String,
        /// The configuration.
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Enable an instance: its service starts running it. Its configuration must be complete.
    Enable {
        /// The instance.
        instance: String,
    },
    /// Disable an instance: its service stops running it.
    Disable {
        /// The instance.
        instance: String,
    },
    /// Connect an instance to its account with OAuth 2.0 (its plugin's manifest has an `auth`
    /// section): prints the consent URL to open in a browser, on this machine or any other,
    /// and waits until the provider sends the browser back; then says who it is connected as
    /// and which scopes were granted. Also what to run when `info` says it needs a reconnect.
    Connect {
        /// The instance.
        instance: String,
        /// Print the consent URL and return at once instead of waiting for the consent.
        #[arg(long)]
        no_wait: bool,
        /// Stop waiting after this many seconds (the consent URL keeps working until it
        /// expires); without it, wait until it expires.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
        timeout: Option<u64>,
    },
    /// Move an instance to the newest version found of its plugin.
    Upgrade {
        /// The instance.
        instance: String,
        /// Accept the permissions the new version asks for.
        #[arg(long, visible_alias = "yes", short = 'y')]
        accept_permissions: bool,
    },
    /// Uninstall an instance; its configuration, credentials and data are kept unless
    /// `--purge`.
    Uninstall {
        /// The instance.
        instance: String,
        /// Also delete its configuration, credentials and every item it brought in.
        #[arg(long)]
        purge: bool,
    },
    /// Show the audit log of the registry, oldest first.
    Audit {
        /// Only this instance's entries.
        instance: Option<String>,
        /// The newest this many entries.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Add a third-party (WebAssembly) plugin from its directory or a .tar.gz of it: checks
    /// its manifest, its component's SHA-256 and imports, copies it into
    /// `<data_dir>/plugins/<id>/<version>/` and rescans. Install it next.
    Add {
        /// The plugin's directory, or a .tar.gz (.tgz) archive of it.
        source: PathBuf,
        /// Replace the same id and version when it was added before.
        #[arg(long)]
        replace: bool,
        /// The most the plugin's files may add up to, in MiB (an archive unpacking to more is
        /// refused).
        #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
        max_size: u64,
    },
    /// Scan the plugin directories again (after adding or updating a plugin).
    Rescan,
    /// Write a new plugin, in TypeScript or Python, that builds, passes its own tests and
    /// installs as written: `tributary plugins new com.example.notes --type connector --lang ts`.
    New {
        /// Its id, reverse-DNS (`com.example.notes`).
        id: String,
        /// What it is.
        #[arg(long = "type", value_parser = ["connector", "channel"])]
        plugin_type: String,
        /// What it is written in.
        #[arg(long, value_parser = ["ts", "python"])]
        lang: String,
        /// Its display name; made from the id when absent.
        #[arg(long)]
        name: Option<String>,
        /// Where to write it; `./<last label of the id>` when absent.
        dir: Option<PathBuf>,
    },
    /// Build a plugin's component (`<name>.wasm` next to its plugin.json, whose `sha256` it
    /// fills in); cached by the content of its sources.
    Build {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Build even when the build cache holds the component (to time a cold build).
        #[arg(long)]
        no_cache: bool,
    },
    /// Build a plugin and run its test cases (`test/*.json`) in the real wasm host, with its
    /// HTTP fixtures served locally and no NATS or PostgreSQL; prints what each produced.
    Test {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only the case of this name (`test/<name>.json`).
        #[arg(long)]
        case: Option<String>,
        /// Rewrite each case's `expect` from what the run produced.
        #[arg(long)]
        update: bool,
        /// First record each case's fixtures from the real servers the manifest grants, with
        /// this JSON file's fields (the real URLs and secrets) over the case's configuration;
        /// secrets are scrubbed from what is kept.
        #[arg(long, value_name = "REAL_CONFIG_JSON")]
        record: Option<PathBuf>,
    },
    /// Build a plugin and write a .tar.gz of it that `tributary plugins add` accepts, checked
    /// as `add` checks it.
    Package {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the archive; `<dir>/dist/` when absent.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Build even when the build cache holds the component (to time a cold build).
        #[arg(long)]
        no_cache: bool,
    },
    /// Print a fresh master key (32 random bytes, base64) for plugin_manager.master_key.
    GenerateKey,
    /// Re-seal every plugin secret under a new master key. Stop the plugin manager first;
    /// the old key is the configured one, the new one comes from --new-key-file or
    /// $TRIBUTARY_NEW_MASTER_KEY.
    RotateKey {
        /// A file holding the new key (`tributary plugins generate-key > new.key`).
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

/// Runs one `tributary plugins` command with `config`, printing what it did (or `error: …` on
/// standard error) and returning the exit code.
pub async fn run(config: &Config, args: PluginsArgs) -> ExitCode {
    match execute(config, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

async fn execute(config: &Config, args: PluginsArgs) -> anyhow::Result<()> {
    let json = args.json;
    // Only the commands that ask the plugin manager connect to NATS.
    let connect = || MeshClient::connect(config, client::actor_from_env());
    match args.command {
        PluginsCommand::List => commands::list(&connect().await?, json).await,
        PluginsCommand::Info { id } => commands::info(&connect().await?, &id, json).await,
        PluginsCommand::Install {
            plugin_id,
            instance_id,
            config,
            accept_permissions,
        } => {
            let install = commands::Install {
                plugin_id,
                instance_id,
                config,
                accept_permissions,
            };
            commands::install(&connect().await?, install, json).await
        }
        PluginsCommand::Configure { instance, config } => {
            commands::configure(&connect().await?, &instance, &config, json).await
        }
        PluginsCommand::Enable { instance } => {
            commands::set_enabled(&connect().await?, &instance, true, json).await
        }
        PluginsCommand::Disable { instance } => {
            commands::set_enabled(&connect().await?, &instance, false, json).await
        }
        PluginsCommand::Connect {
            instance,
            no_wait,
            timeout,
        } => {
            let args = connect::Connect {
                instance_id: instance,
                wait: !no_wait,
                timeout: timeout.map(std::time::Duration::from_secs),
            };
            connect::connect(&connect().await?, args, json).await
        }
        PluginsCommand::Upgrade {
            instance,
            accept_permissions,
        } => commands::upgrade(&connect().await?, &instance, accept_permissions, json).await,
        PluginsCommand::Uninstall { instance, purge } => {
            commands::uninstall(&connect().await?, &instance, purge, json).await
        }
        PluginsCommand::Audit { instance, limit } => {
            commands::audit(&connect().await?, instance, limit, json).await
        }
        PluginsCommand::Add {
            source,
            replace,
            max_size,
        } => {
            let add = add::Add {
                source,
                replace,
                max_bytes: max_size * 1024 * 1024,
            };
            add::add(config, add, json).await
        }
        PluginsCommand::Rescan => commands::rescan(&connect().await?, json).await,
        PluginsCommand::New {
            id,
            plugin_type,
            lang,
            name,
            dir,
        } => {
            let language = match lang.as_str() {
                "python" => Language::Python,
                _ => Language::TypeScript,
            };
            let new = NewPlugin {
                id,
                plugin_type,
                language,
                dir,
                name,
            };
            kit::new(new, json)
        }
        PluginsCommand::Build { dir, no_cache } => {
            kit::build_command(dir, BuildOptions { no_cache }, json).await
        }
        PluginsCommand::Test {
            dir,
            case,
            update,
            record,
        } => {
            let test = kit::TestArgs {
                dir,
                case,
                update,
                record,
            };
            kit::test(config, test, json).await
        }
        PluginsCommand::Package { dir, out, no_cache } => {
            kit::package_command(dir, out, BuildOptions { no_cache }, json).await
        }
        PluginsCommand::GenerateKey => keys::generate_key(json),
        PluginsCommand::RotateKey { new_key_file } => {
            let env = |name: &str| std::env::var(name).ok();
            keys::rotate_key(config, new_key_file.as_deref(), env, json).await
        }
    }
}

/// Prints `value` as indented JSON on standard output.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a failed command's error on standard error, with each configuration problem or
/// permission on its own line, and returns its exit code.
pub fn report(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    if let Some(ended) = error.downcast_ref::<connect::NotConnected>() {
        return ended.exit_code();
    }
    let api =
        error
            .downcast_ref::<ApiError>()
            .or_else(|| match error.downcast_ref::<CallError>() {
                Some(CallError::Api(e)) => Some(e),
                _ => None,
            });
    let Some(api) = api else {
        return ExitCode::FAILURE;
    };
    for problem in &api.problems {
        let path = if problem.path.is_empty() {
            "(the whole configuration)"
        } else {
            problem.path.as_str()
        };
        eprintln!("  {path}: {}", problem.message);
    }
    if api.error == ErrorCode::PermissionsNotAccepted {
        for permission in &api.permissions {
            eprintln!("  {permission}");
        }
        return ExitCode::from(EXIT_PERMISSIONS_NOT_ACCEPTED);
    }
    ExitCode::FAILURE
}
