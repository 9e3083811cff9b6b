//! A bounded soak: the five services as separate processes under a steady mix of work for a
//! fixed number of minutes, with each process's memory and open file descriptors sampled
//! along the way and every error counted.
//!
//! ```sh
//! cargo build --release --workspace --bins      # the service binaries the bench runs
//! cargo bench -p tributary-e2e --bench soak -- --minutes 3
//! # or on the debug binaries of `cargo build --workspace --bins`:
//! cargo bench --profile dev -p tributary-e2e --bench soak -- --minutes 3
//! ```
//!
//! Options (each with its default): `--minutes 3`, `--sync-every 5` (seconds between
//! incremental syncs), `--webhooks-per-sec 5`, `--searches-per-sec 5`, `--files 500` (the
//! folder synced), `--fd-slack 16` (how many more open descriptors a process may hold at
//! the end than at the start), `--log-filter warn,tributary_kit::service=info` (the
//! services' `telemetry.log_filter`; it must keep `tributary_kit::service` at `info`).
//!
//! The mix, all at once after a warm-up:
//! - a `tributary.folder` instance (on-demand syncs only) synced incrementally every
//!   `--sync-every` seconds, with 10 of its files rewritten, 2 added and 1 deleted before each
//!   sync; each sync is awaited to its `connector.SyncCompleted` (or `SyncFailed`);
//! - signed Twilio SMS webhooks (`X-Twilio-Signature`, as `tributary_e2e::twilio` signs them)
//!   POSTed to a `tributary.twilio-sms` instance's route at a fixed rate;
//! - `GET /search` at a fixed rate, rotating through a word of the files, a word of the
//!   webhooks, by type and by source.
//!
//! Each process's RSS (`VmRSS` of `/proc/<pid>/status`) and open file descriptors (the
//! entries of `/proc/<pid>/fd`) are sampled after the warm-up, every minute, and at the end
//! (before the pipeline is drained). Errors: webhooks answered other than 2xx, syncs refused,
//! failed, with errors or not finished within a minute, searches answered other than 200,
//! every dead letter on the dead-letter stream (by its `deadletter.<consumer>` subject), a
//! consumer with work left a minute after the mix stopped, a webhook accepted but not stored
//! as a message, `ERROR` lines in a service's log, and a service that exited. It prints a
//! table per service and the totals, and exits non-zero when there was any error or a
//! process's descriptors grew by more than `--fd-slack`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tributary_e2e::{twilio, Servers, ServiceName, Stack};
use tributary_proto::events::{EventKind, SyncEvent, SyncMode};
use tributary_proto::requests::connector::SyncCommand;
use tributary_proto::streams::{ConsumerKey, StreamKey};

const FOLDER: &str = "soak-notes";
const SMS: &str = "soak-sms";
const AUTH_TOKEN: &str = "soak-token";
/// Files rewritten, added and deleted before each sync.
const CHANGED: usize = 10;
const ADDED: usize = 2;
const DELETED: usize = 1;
/// How long a sync may take before it counts as an error.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the pipeline gets to drain once the mix stops.
const DRAIN: Duration = Duration::from_secs(60);

/// The value after `name` on the command line, `default` without one; panics on one that
/// does not parse.
fn flag<T: FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => {
            let value = args
                .get(i + 1)
                .unwrap_or_else(|| panic!("{name} needs a value"));
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name} {value}: not a value {name} takes"))
        }
    }
}

/// One process's memory and descriptors at one moment.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: u64,
}

/// `VmRSS` (KiB) and the number of open descriptors of process `pid`.
fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count() as u64;
    Usage { rss_kib, fds }
}

/// Every service's usage now, with when it was taken.
struct Sample {
    at: Duration,
    usage: BTreeMap<ServiceName, Usage>,
}

fn sample(stack: &Stack, since: Instant) -> Sample {
    Sample {
        at: since.elapsed(),
        usage: ServiceName::ALL
            .into_iter()
            .map(|s| (s, usage(stack.process(s).pid())))
            .collect(),
    }
}

/// The error counts, by kind, shared by the loops of the mix.
#[derive(Default)]
struct Counts {
    syncs: AtomicU64,
    sync_items: AtomicU64,
    webhooks: AtomicU64,
    searches: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn error(&self, kind: &str, detail: impl std::fmt::Display) {
        let mut errors = self.errors.lock().unwrap();
        let n = errors.entry(kind.to_owned()).or_insert(0);
        *n += 1;
        // The first few of each kind, to see what went wrong.
        if *n <= 3 {
            eprintln!("error ({kind}): {detail}");
        }
    }

    fn add_errors(&self, kind: &str, n: u64) {
        if n > 0 {
            *self
                .errors
                .lock()
                .unwrap()
                .entry(kind.to_owned())
                .or_insert(0) += n;
        }
    }

    fn total_errors(&self) -> u64 {
        self.errors.lock().unwrap().values().sum()
    }
}

fn note(dir: &Path, i: usize, round: usize) {
    std::fs::write(
        dir.join(format!("note-{i:05}.txt")),
        format!("heron note number {i}, round {round} of the soak: lagoon{round}"),
    )
    .unwrap();
}

/// Rewrites, adds and deletes a few files of the folder for sync `round`.
fn change_files(dir: &Path, round: usize, next_file: &mut usize, oldest: &mut usize) {
    for k in 0..CHANGED {
        let i = *oldest + (round * CHANGED + k) % (*next_file - *oldest);
        note(dir, i, round);
    }
    for _ in 0..ADDED {
        note(dir, *next_file, round);
        *next_file += 1;
    }
    for _ in 0..DELETED {
        std::fs::remove_file(dir.join(format!("note-{:05}.txt", *oldest))).unwrap();
        *oldest += 1;
    }
}

/// An incremental `connector.sync` of the folder, awaited to its end; whether it succeeded.
/// A refusal is asked again for a few seconds (a sync that just ended may hold the instance
/// a moment longer than its event).
async fn sync_once(
    stack: &Stack,
    completed: &mut tributary_kit::testing::Events,
    failed: &mut tributary_kit::testing::Events,
    counts: &Counts,
) {
    let command = SyncCommand {
        instance_id: FOLDER.to_owned(),
        mode: SyncMode::Incremental,
        since: None,
    };
    let asked = Instant::now();
    let accepted = loop {
        match stack.ask(&command).await {
            Ok(accepted) => break accepted,
            Err(_) if asked.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                counts.error("sync refused", e);
                return;
            }
        }
    };
    let sync_id = accepted["sync_id"].clone();
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            counts.error("sync not finished in 60 s", &sync_id);
            return;
        }
        tokio::select! {
            Some(done) = completed.try_next(left) => {
                if done.data["sync_id"] == sync_id {
                    counts.syncs.fetch_add(1, Ordering::Relaxed);
                    counts
                        .sync_items
                        .fetch_add(done.data["items"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    let errors = done.data["errors"].as_u64().unwrap_or(0);
                    if errors > 0 {
                        counts.error("sync completed with errors", &done.data);
                    }
                    return;
                }
            }
            Some(done) = failed.try_next(left) => {
                if done.data["sync_id"] == sync_id {
                    counts.error("sync failed", &done.data);
                    return;
                }
            }
            () = tokio::time::sleep(left) => {}
        }
    }
}

/// A signed SMS webhook with text `text`; counted, or an error when not answered 2xx.
async fn webhook(stack: &Stack, url: &str, i: u64, text: &str, counts: &Counts) {
    let params = twilio::inbound_sms(&format!("SM{i:0>32}"), "+15550002", text);
    let (headers, body) = twilio::signed(AUTH_TOKEN, url, &params);
    let (status, answer) = stack.post(url, &headers, body).await;
    if (200..300).contains(&status) {
        counts.webhooks.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.error("webhook not 2xx", format!("{status}: {answer}"));
    }
}

/// The `i`th search of the rotation; counted, or an error when not answered 200.
async fn search(stack: &Stack, token: &str, i: u64, counts: &Counts) {
    let word = format!("lagoon{}", i % 7);
    let params: Vec<(&str, &str)> = match i % 4 {
        0 => vec![("q", "heron"), ("limit", "10")],
        1 => vec![("q", word.as_str()), ("limit", "10")],
        2 => vec![("q", "soak"), ("type", "message"), ("limit", "10")],
        _ => vec![("source", FOLDER), ("limit", "20"), ("offset", "40")],
    };
    let (status, answer) = stack.search_http(&params, Some(token)).await;
    if status == 200 {
        counts.searches.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.error("search not 200", format!("{params:?}: {status}: {answer}"));
    }
}

/// A ticker at `per_second`, skipping ticks it could not keep rather than bursting.
fn ticker(per_second: f64) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// What JetStream says of a consumer: delivered and acknowledged sequences, redeliveries.
async fn consumer_detail(stack: &Stack, consumer: ConsumerKey) -> String {
    let found = stack
        .jetstream()
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            consumer.durable_name(),
            consumer.stream().name(stack.subjects()),
        )
        .await;
    match found {
        Ok(found) => {
            let info = found.cached_info();
            format!(
                "delivered up to stream sequence {}, acknowledged up to {}, {} redelivered, {} waiting pulls",
                info.delivered.stream_sequence,
                info.ack_floor.stream_sequence,
                info.num_redelivered,
                info.num_waiting
            )
        }
        Err(e) => e.to_string(),
    }
}

/// The number of `ERROR` lines in a JSON log.
fn error_lines(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"].as_str() == Some("ERROR"))
        })
        .count() as u64
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let minutes: f64 = flag(&args, "--minutes", 3.0);
    let sync_every: f64 = flag(&args, "--sync-every", 5.0);
    let webhook_rate: f64 = flag(&args, "--webhooks-per-sec", 5.0);
    let search_rate: f64 = flag(&args, "--searches-per-sec", 5.0);
    let files: usize = flag(&args, "--files", 500);
    let fd_slack: u64 = flag(&args, "--fd-slack", 16);
    let log_filter: String = flag(
        &args,
        "--log-filter",
        "warn,tributary_kit::service=info".to_owned(),
    );
    assert!(
        minutes > 0.0 && sync_every > 0.0 && webhook_rate > 0.0 && search_rate > 0.0,
        "--minutes, --sync-every and the rates must be positive"
    );
    assert!(files > CHANGED, "--files must be more than {CHANGED}");
    println!(
        "soak: five service processes from {}, {} cores; {minutes} min; a sync every {sync_every} s \
         ({CHANGED} files changed, {ADDED} added, {DELETED} deleted of {files}), \
         {webhook_rate} webhooks/s, {search_rate} searches/s",
        tributary_e2e::binary_dir().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let folder = tempfile::tempdir().unwrap();
    for i in 0..files {
        note(folder.path(), i, 0);
    }
    let mut stack = Stack::on(Servers::shared()).await;
    // Built-in defaults, logs at `warn` unless asked otherwise (the harness still needs the
    // `Service started.` line).
    stack.set("telemetry.log_filter", &log_filter);
    stack.start_all().await;
    let mut completed = stack.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let mut failed = stack.watch(EventKind::Sync(SyncEvent::Failed)).await;

    // Warm-up: the first (full) sync of the folder, a few webhooks and searches, everything
    // drained, so the start sample has connections, statements and the index writer open.
    let warm = Instant::now();
    stack
        .admin_install(
            "tributary.folder",
            FOLDER,
            json!({ "path": folder.path(), "schedule": "24h" }),
        )
        .await;
    stack.admin_enable(FOLDER).await;
    let first = completed
        .collect(1, SYNC_TIMEOUT, |e| e.data["instance_id"] == FOLDER)
        .await;
    assert_eq!(first.len(), 1, "the first sync did not complete in 60 s");
    let first_sync = warm.elapsed();
    stack
        .admin_install("tributary.twilio-sms", SMS, twilio::config(AUTH_TOKEN))
        .await;
    stack.admin_enable(SMS).await;
    let url = stack.webhook_url(SMS).await;
    let token = secrecy::ExposeSecret::expose_secret(&stack.config().search.api_token).to_owned();
    let warm_counts = Counts::default();
    let mut sms = 0u64;
    for _ in 0..10 {
        webhook(&stack, &url, sms, "soak warm-up", &warm_counts).await;
        search(&stack, &token, sms, &warm_counts).await;
        sms += 1;
    }
    for consumer in ConsumerKey::ALL {
        stack.wait_consumer_settled(consumer, 60).await;
    }
    assert_eq!(
        warm_counts.total_errors(),
        0,
        "errors in the warm-up: {:?}",
        warm_counts.errors.lock().unwrap()
    );
    println!(
        "warm-up: {files} files synced (in {:.1} s), 10 webhooks and searches, all drained after {:.1} s",
        first_sync.as_secs_f64(),
        warm.elapsed().as_secs_f64()
    );

    // The mix.
    let counts = Counts::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    let mut samples = vec![sample(&stack, start)];
    let warm_webhooks = sms;
    let syncs = async {
        let mut next_file = files;
        let mut oldest = 0;
        let mut ticker = ticker(1.0 / sync_every);
        let mut round = 1;
        loop {
            ticker.tick().await;
            if Instant::now() >= end {
                break;
            }
            change_files(folder.path(), round, &mut next_file, &mut oldest);
            sync_once(&stack, &mut completed, &mut failed, &counts).await;
            round += 1;
        }
        next_file - oldest
    };
    let webhooks = async {
        let mut ticker = ticker(webhook_rate);
        let mut i = warm_webhooks;
        loop {
            ticker.tick().await;
            if Instant::now() >= end {
                break;
            }
            let text = format!("soak message {i} lagoon{}", i % 7);
            webhook(&stack, &url, i, &text, &counts).await;
            i += 1;
        }
    };
    let searches = async {
        let mut ticker = ticker(search_rate);
        let mut i = 0;
        loop {
            ticker.tick().await;
            if Instant::now() >= end {
                break;
            }
            search(&stack, &token, i, &counts).await;
            i += 1;
        }
    };
    let sampler = async {
        let mut minute = 1;
        let mut taken = Vec::new();
        loop {
            let at = start + Duration::from_secs(60 * minute);
            if at >= end {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
            let s = sample(&stack, start);
            println!(
                "  {:>4.0} s: {}",
                s.at.as_secs_f64(),
                s.usage
                    .iter()
                    .map(|(name, u)| format!("{name} {} {} fds", mib(u.rss_kib), u.fds))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            taken.push(s);
            minute += 1;
        }
        taken
    };
    let (files_now, (), (), taken) = tokio::join!(syncs, webhooks, searches, sampler);
    samples.extend(taken);
    samples.push(sample(&stack, start));
    let ran = start.elapsed();

    // Drained: every consumer has handed out and had acknowledged what its stream holds.
    let drained = Instant::now();
    let mut drain_times = Vec::new();
    for consumer in ConsumerKey::ALL {
        loop {
            match stack.consumer_settled(consumer).await {
                Ok(()) => break,
                Err(state) if drained.elapsed() > DRAIN => {
                    counts.error(
                        "consumer not drained",
                        format!(
                            "{}: {state}; {}",
                            consumer.durable_name(),
                            consumer_detail(&stack, consumer).await
                        ),
                    );
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        drain_times.push(format!(
            "{} {:.1} s",
            consumer.durable_name(),
            drained.elapsed().as_secs_f64()
        ));
    }
    // Every accepted webhook is a message.
    let accepted = (warm_webhooks + counts.webhooks.load(Ordering::Relaxed)) as i64;
    let messages = stack.count("SELECT count(*) FROM message").await;
    if messages != accepted {
        counts.add_errors(
            "webhook accepted but not stored",
            accepted.abs_diff(messages),
        );
        eprintln!("error: {accepted} webhooks accepted, {messages} messages stored");
    }
    // Dead letters, by the consumer that gave up.
    let mut dead: BTreeMap<String, u64> = ConsumerKey::ALL
        .iter()
        .map(|c| (format!("deadletter.{}", c.durable_name()), 0))
        .collect();
    for letter in stack.stream_messages(StreamKey::DeadLetters).await {
        *dead.entry(letter.subject).or_insert(0) += 1;
    }
    for (subject, n) in &dead {
        counts.add_errors(&format!("dead letters on {subject}"), *n);
    }
    let mut logged = BTreeMap::new();
    for service in ServiceName::ALL {
        let n = error_lines(stack.process(service).log());
        counts.add_errors(&format!("ERROR lines in the {service} log"), n);
        logged.insert(service, n);
    }
    // A service that exited fails the soak here, with every log.
    stack.assert_all_running();

    // The table.
    let first = &samples[0];
    let last = &samples[samples.len() - 1];
    println!();
    println!(
        "soak of {:.1} min ({} samples: after the warm-up, every minute, at the end)",
        ran.as_secs_f64() / 60.0,
        samples.len()
    );
    println!();
    println!(
        "| service | RSS start | RSS end | RSS end/start | RSS max | fds start | fds end | fds max | ERROR lines |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut fd_growth = Vec::new();
    for service in ServiceName::ALL {
        let (a, b) = (first.usage[&service], last.usage[&service]);
        let rss_max = samples.iter().map(|s| s.usage[&service].rss_kib).max();
        let fds_max = samples.iter().map(|s| s.usage[&service].fds).max();
        println!(
            "| {service} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
            mib(a.rss_kib),
            mib(b.rss_kib),
            b.rss_kib as f64 / a.rss_kib as f64,
            mib(rss_max.unwrap_or(0)),
            a.fds,
            b.fds,
            fds_max.unwrap_or(0),
            logged[&service]
        );
        if b.fds > a.fds + fd_slack {
            fd_growth.push(format!("{service}: {} → {} fds", a.fds, b.fds));
        }
    }
    println!();
    let syncs = counts.syncs.load(Ordering::Relaxed);
    println!(
        "totals: {syncs} syncs ({} items, {files_now} files at the end), {} webhooks, {} searches; \
         {} messages stored; drained after the mix stopped: {}",
        counts.sync_items.load(Ordering::Relaxed),
        counts.webhooks.load(Ordering::Relaxed),
        counts.searches.load(Ordering::Relaxed),
        messages,
        drain_times.join(", ")
    );
    println!(
        "dead letters: {}",
        dead.iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let errors = counts.total_errors();
    println!(
        "errors: {errors}{}",
        if errors == 0 {
            String::new()
        } else {
            format!(" {:?}", counts.errors.lock().unwrap())
        }
    );
    if errors > 0 || !fd_growth.is_empty() {
        if !fd_growth.is_empty() {
            eprintln!("open descriptors grew by more than {fd_slack}: {fd_growth:?}");
        }
        let dir: PathBuf = stack.dir();
        eprintln!("the stack's logs were in {}", dir.display());
        stack.print_logs();
        drop(stack);
        std::process::exit(1);
    }
}
