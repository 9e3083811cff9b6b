//! `tributary search "<query>"`: searches everything Tributary has indexed (`search.query`)
//! and prints results a person can read; `tributary search reindex` rebuilds the index from
//! PostgreSQL while the old one keeps answering, following its progress live;
//! `tributary search stats` says what the index holds. To search for the word "reindex"
//! itself: `tributary search -- reindex`.

use crate::{out, outln};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use futures::StreamExt;
use tributary_kit::client::{self, MeshClient};
use tributary_kit::Config;
use tributary_proto::model::EntityType;
use tributary_proto::requests::search::{snippet_parts, StartReindex, StatsQuery};
use tributary_search::api::IndexStats;
use tributary_search::query::{SearchQuery, SearchResults};
use tributary_search::reindex::{progress_subject, ReindexPhase, ReindexProgress, ReindexStarted};

use crate::plugins_cli::{print_json, report};

/// How long a reindex may go without a progress message before the CLI gives up waiting.
const PROGRESS_SILENCE: Duration = Duration::from_secs(120);

/// `tributary search`: a query, or one of its subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SearchArgs {
    /// Rebuild or inspect the index instead of searching.
    #[command(subcommand)]
    pub action: Option<SearchAction>,
    /// The words to find (typos are tolerated); empty lists the newest entries.
    pub query: Option<String>,
    /// Only these entity types (person, organization, conversation, message,
    /// calendar_event, document); repeat or separate with commas.
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<EntityType>,
    /// Only entries from this plugin instance.
    #[arg(long)]
    pub source: Option<String>,
    /// Only entries dated at or after this day (2026-03-01) or time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Only entries dated at or before this day or time.
    #[arg(long)]
    pub to: Option<String>,
    /// Results to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Results to skip (for the next page).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The subcommands of `tributary search`.
#[derive(Debug, Subcommand)]
pub enum SearchAction {
    /// Rebuild the index from PostgreSQL; the old index answers until the new one is ready.
    Reindex,
    /// How many entries the index holds, in which backend.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `tributary search` and returns its exit code.
pub async fn run(config: &Config, args: SearchArgs) -> ExitCode {
    let outcome = match args.action {
        Some(SearchAction::Reindex) => reindex(config).await,
        Some(SearchAction::Stats { json }) => stats(config, json).await,
        None => search(config, args).await,
    };
    outcome.unwrap_or_else(|e| report(&e))
}

async fn connect(config: &Config) -> anyhow::Result<MeshClient> {
    Ok(MeshClient::connect(config, client::actor_from_env()).await?)
}

/// Reads `from`/`to` as the HTTP API does, so both accept the same dates.
fn query_of(args: &SearchArgs) -> anyhow::Result<SearchQuery> {
    let mut params = std::collections::HashMap::new();
    for (name, value) in [("from", &args.from), ("to", &args.to)] {
        if let Some(value) = value {
            params.insert(name.to_owned(), value.clone());
        }
    }
    let dates = SearchQuery::from_params(&params).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let query = SearchQuery {
        q: args.query.clone().unwrap_or_default(),
        types: args.types.clone(),
        source: args.source.clone(),
        limit: args.limit,
        offset: args.offset,
        ..dates
    };
    query.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
    Ok(query)
}

async fn search(config: &Config, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let query = query_of(&args)?;
    let results: SearchResults = connect(config).await?.call(&query).await?;
    if args.json {
        print_json(&results)?;
    } else {
        out!(
            "{}",
            render(&query, &results, std::io::stdout().is_terminal())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The results as lines for a person: a header with the count, then per hit its type, title,
/// date and sources, the snippet with matched words emphasised, and its id.
pub fn render(query: &SearchQuery, results: &SearchResults, terminal: bool) -> String {
    let asked = if query.q.is_empty() {
        "everything".to_owned()
    } else {
        format!("\"{}\"", query.q)
    };
    if results.hits.is_empty() {
        return if results.total > 0 {
            format!(
                "No more results for {asked}: all {} were shown.\n",
                results.total
            )
        } else {
            format!("No results for {asked}.\n")
        };
    }
    let first = results.offset + 1;
    let last = results.offset + results.hits.len();
    let mut out = format!(
        "{} result{} for {asked} ({first}–{last} shown, {} index)\n",
        results.total,
        if results.total == 1 { "" } else { "s" },
        results.backend
    );
    for hit in &results.hits {
        out.push('\n');
        out.push_str(&format!(
            "  {:<14} {}\n",
            hit.entity_type.as_str(),
            if hit.title.is_empty() {
                "(untitled)"
            } else {
                &hit.title
            }
        ));
        let snippet = readable_snippet(&hit.snippet, terminal);
        if !snippet.trim().is_empty() {
            out.push_str(&format!("  {:<14} {snippet}\n", ""));
        }
        out.push_str(&format!(
            "  {:<14} {} · {} · {}\n",
            "",
            hit.date.format("%Y-%m-%d %H:%M"),
            if hit.sources.is_empty() {
                "-".to_owned()
            } else {
                hit.sources.join(", ")
            },
            hit.id
        ));
    }
    if last < results.total {
        out.push_str(&format!(
            "\nMore: add --offset {last} for the next {}.\n",
            results.limit
        ));
    }
    out
}

/// A snippet (escaped HTML with `<mark>`) as terminal text: entities decoded, matched words
/// in bold on a terminal and between `*` otherwise.
fn readable_snippet(snippet: &str, terminal: bool) -> String {
    let (start, end) = if terminal {
        ("\u{1b}[1m", "\u{1b}[0m")
    } else {
        ("*", "*")
    };
    snippet_parts(snippet)
        .into_iter()
        .map(|part| {
            if part.matched {
                format!("{start}{}{end}", part.text)
            } else {
                part.text
            }
        })
        .collect()
}

async fn stats(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let stats: IndexStats = connect(config).await?.call(&StatsQuery {}).await?;
    if json {
        print_json(&stats)?;
    } else {
        outln!(
            "{} entries searchable in the {} index{}",
            stats.documents,
            stats.backend,
            if stats.reindexing {
                "; a reindex is running"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn reindex(config: &Config) -> anyhow::Result<ExitCode> {
    let client = connect(config).await?;
    // Subscribed before asking, so no progress message is missed.
    let mut progress = client
        .nats()
        .subscribe(progress_subject(client.subjects()))
        .await?;
    let started: ReindexStarted = client.call(&StartReindex {}).await?;
    outln!(
        "Reindexing the {} index from PostgreSQL (job {}); it keeps answering until the new one is ready.",
        started.backend, started.job_id
    );
    let terminal = std::io::stdout().is_terminal();
    let mut last_line = Instant::now() - Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout(PROGRESS_SILENCE, progress.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no progress from the search service for {} s; see its log",
                    PROGRESS_SILENCE.as_secs()
                )
            })?
            .ok_or_else(|| anyhow::anyhow!("the NATS connection closed"))?;
        let Ok(report) = serde_json::from_slice::<ReindexProgress>(&message.payload) else {
            continue;
        };
        if report.job_id != started.job_id {
            continue;
        }
        match report.phase {
            ReindexPhase::Indexing => {
                // A live line on a terminal; a line a second otherwise.
                if terminal {
                    out!("\r{}", progress_line(&report));
                } else if last_line.elapsed() >= Duration::from_secs(1) {
                    outln!("{}", progress_line(&report));
                    last_line = Instant::now();
                }
            }
            ReindexPhase::Done => {
                if terminal {
                    outln!();
                }
                outln!(
                    "Reindexed {} entries in {:.1} s; the new index is live.",
                    report.indexed,
                    report.elapsed_secs
                );
                return Ok(ExitCode::SUCCESS);
            }
            ReindexPhase::Failed => {
                if terminal {
                    outln!();
                }
                eprintln!(
                    "error: the reindex failed, the old index stays: {}",
                    report.error.as_deref().unwrap_or("no reason given")
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

fn progress_line(report: &ReindexProgress) -> String {
    let percent = if report.total == 0 {
        100.0
    } else {
        report.indexed as f64 * 100.0 / report.total as f64
    };
    let rate = report.indexed as f64 / report.elapsed_secs.max(0.001);
    format!(
        "{:>10} / {} entries ({percent:5.1}%) {:<15} {:.0}/s   ",
        report.indexed,
        report.total,
        report.entity_type.map_or("", EntityType::as_str),
        rate
    )
}
