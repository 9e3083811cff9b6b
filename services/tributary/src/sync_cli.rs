//! `tributary sync …`: start a connector instance's sync and follow it live, cancel one, or
//! list every instance's sync state. It asks the connector service on NATS
//! (`connector.sync`, `connector.cancel`, `connector.states`) and follows the sync through
//! its `connector.Sync*` events.
//!
//! Exit codes: 0 the sync completed (or was started, with `--detach`), 1 it failed, was
//! cancelled or could not start.

use crate::{out, outln};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use futures::StreamExt;
use tributary_connector::api::{
    CancelAccepted, CancelSync, StateQuery, StatesQuery, SyncAccepted, SyncCommand, SyncStateView,
    SyncStates,
};
use tributary_kit::client::{self, MeshClient};
use tributary_kit::Config;
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{EventKind, SyncEvent, SyncLifecycle, SyncMode};

use crate::plugins_cli::render::Table;
use crate::plugins_cli::{print_json, report};

/// How long `tributary sync` waits without any event before it asks the connector service
/// whether the sync still runs.
const QUIET_CHECK: Duration = Duration::from_secs(30);

/// `tributary sync`: its options and subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    /// The instance to sync now.
    pub instance: Option<String>,
    /// Sync everything again, not only what changed.
    #[arg(long, conflicts_with = "since")]
    pub full: bool,
    /// Backfill: everything since this date (`2026-01-31` or RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Start the sync and return at once instead of following it.
    #[arg(long)]
    pub detach: bool,
    /// Print the data as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// `status` or `cancel`.
    #[command(subcommand)]
    pub command: Option<SyncSubcommand>,
}

/// The `tributary sync` subcommands.
#[derive(Debug, Subcommand)]
pub enum SyncSubcommand {
    /// Every connector instance's sync state: status, last success, items, errors, last error.
    Status,
    /// Stop the running sync of an instance.
    Cancel {
        /// The instance.
        instance: String,
    },
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| format!("`{text}` is neither a date (2026-01-31) nor an RFC 3339 time"))
}

/// Runs one `tributary sync` command and returns the exit code.
pub async fn run(config: &Config, args: SyncArgs) -> ExitCode {
    match execute(config, args).await {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

async fn execute(config: &Config, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let client = MeshClient::connect(config, client::actor_from_env()).await?;
    match (args.command, args.instance) {
        (Some(SyncSubcommand::Status), _) => {
            let states: SyncStates = client.call(&StatesQuery {}).await?;
            if args.json {
                print_json(&states)?;
            } else {
                out!("{}", status_table(&states.instances));
            }
            Ok(ExitCode::SUCCESS)
        }
        (Some(SyncSubcommand::Cancel { instance }), _) => {
            let request = CancelSync {
                instance_id: instance,
            };
            let cancelled: CancelAccepted = client.call(&request).await?;
            if args.json {
                print_json(&cancelled)?;
            } else {
                outln!(
                    "Asked sync {} of {} to stop.",
                    cancelled.sync_id, cancelled.instance_id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(instance)) => {
            let mode = match (args.full, args.since) {
                (_, Some(_)) => SyncMode::Backfill,
                (true, None) => SyncMode::Full,
                (false, None) => SyncMode::Incremental,
            };
            let command = SyncCommand {
                instance_id: instance,
                mode,
                since: args.since,
            };
            follow_sync(&client, command, args.detach, args.json).await
        }
        (None, None) => anyhow::bail!(
            "name the instance to sync (`tributary sync <instance>`), or use `tributary sync status`"
        ),
    }
}

/// Starts the sync and, unless detached, prints its progress until it ends.
async fn follow_sync(
    client: &MeshClient,
    command: SyncCommand,
    detach: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Subscribed before asking, so not even a sync that ends at once is missed.
    let mut events = Vec::new();
    for event in [SyncEvent::Progress, SyncEvent::Completed, SyncEvent::Failed] {
        let subject = client.subjects().event(EventKind::Sync(event));
        events.push(client.nats().subscribe(subject).await?);
    }
    let mut events = futures::stream::select_all(events);
    let accepted: SyncAccepted = client.call(&command).await?;
    if detach {
        if json {
            print_json(&accepted)?;
        } else {
            outln!(
                "Started sync {} of {}{}.",
                accepted.sync_id,
                accepted.instance_id,
                if accepted.resumed { " (resuming)" } else { "" }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let live = !json && std::io::stderr().is_terminal();
    if !json {
        eprintln!(
            "Syncing {} ({:?}{}), sync {}…",
            accepted.instance_id,
            command.mode,
            if accepted.resumed {
                ", resuming from its last checkpoint"
            } else {
                ""
            },
            accepted.sync_id
        );
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last = SyncLifecycle {
        instance_id: accepted.instance_id.clone(),
        sync_id: accepted.sync_id,
        mode: command.mode,
        items: 0,
        rate: 0.0,
        errors: 0,
        error: None,
    };
    let mut last_event = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if live {
                    eprint!("\r{}", progress_line(&last, started.elapsed()));
                    let _ = std::io::stderr().flush();
                }
                if last_event.elapsed() > QUIET_CHECK {
                    last_event = Instant::now();
                    let request = StateQuery { instance_id: accepted.instance_id.clone() };
                    let state: SyncStateView = client.call(&request).await?;
                    if state.sync_id != Some(accepted.sync_id) || state.status != tributary_connector::api::SyncStatus::Running {
                        anyhow::bail!("sync {} is no longer running (status {:?}) and its end was not seen", accepted.sync_id, state.status);
                    }
                }
            }
            message = events.next() => {
                let Some(message) = message else {
                    anyhow::bail!("the NATS connection closed while following the sync");
                };
                let Ok(envelope) = Envelope::<SyncLifecycle>::from_slice(&message.payload) else {
                    continue;
                };
                if envelope.data.sync_id != accepted.sync_id {
                    continue;
                }
                last_event = Instant::now();
                let kind = envelope.kind();
                last = envelope.data;
                match kind {
                    Some(EventKind::Sync(SyncEvent::Progress)) if !live && !json => {
                        eprintln!("{}", progress_line(&last, started.elapsed()));
                    }
                    Some(EventKind::Sync(SyncEvent::Completed)) => {
                        finish_line(live);
                        if json {
                            print_json(&last)?;
                        } else {
                            outln!("Sync completed: {}", progress_line(&last, started.elapsed()));
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                    Some(EventKind::Sync(SyncEvent::Failed)) => {
                        finish_line(live);
                        if json {
                            print_json(&last)?;
                        } else {
                            eprintln!(
                                "Sync failed after {}: {}",
                                progress_line(&last, started.elapsed()),
                                last.error.as_deref().unwrap_or("no reason given")
                            );
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                    _ => {}
                }
            }
        }
    }
}

fn finish_line(live: bool) {
    if live {
        eprint!("\r\x1b[2K");
    }
}

/// `1234 items · 456.7/s · 0:12 elapsed · 0 errors`.
pub fn progress_line(state: &SyncLifecycle, elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    format!(
        "{} items · {:.1}/s · {}:{:02} elapsed · {} errors",
        state.items,
        state.rate,
        secs / 60,
        secs % 60,
        state.errors
    )
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The `tributary sync status` table.
pub fn status_table(states: &[SyncStateView]) -> String {
    if states.is_empty() {
        return "No connector instances.\n".to_owned();
    }
    let mut table = Table::new(&[
        "INSTANCE",
        "STATUS",
        "LAST SUCCESS",
        "ITEMS",
        "TOTAL",
        "ERRORS",
        "NEXT SYNC",
        "LAST ERROR",
    ]);
    for s in states {
        table.row(vec![
            s.instance_id.clone(),
            s.status.as_str().to_owned(),
            when(s.last_success_at),
            s.items.to_string(),
            s.total_items.to_string(),
            s.errors.to_string(),
            when(s.next_sync_at),
            s.last_error.clone().unwrap_or_default(),
        ]);
    }
    table.render()
}
