//! The plugin author's commands, `tributary plugins new | build | test | package`: the
//! output of [`crate::plugin_kit`] for people (and with `--json`, for programs).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;
use tributary_kit::Config;

use super::print_json;
use crate::outln;
use crate::plugin_kit::build::{build, BuildOptions, Built};
use crate::plugin_kit::cases::read_cases;
use crate::plugin_kit::declarative;
use crate::plugin_kit::package::package;
use crate::plugin_kit::record::record;
use crate::plugin_kit::run::{CaseOutcome, CaseRunner};
use crate::plugin_kit::scaffold::{scaffold, NewPlugin};

/// `plugins new`: writes the plugin and says what to do next.
pub fn new(new: NewPlugin, json: bool) -> anyhow::Result<()> {
    let dir = scaffold(&new)?;
    if json {
        return print_json(&serde_json::json!({ "id": new.id, "dir": dir }));
    }
    let shown = dir.display();
    let language = match new.language {
        crate::plugin_kit::toolchain::Language::TypeScript => "TypeScript",
        crate::plugin_kit::toolchain::Language::Python => "Python",
    };
    outln!(
        "Wrote {} (a {language} {}) in {shown}.",
        new.id,
        new.plugin_type
    );
    outln!("Next:");
    outln!(
        "  tributary plugins test {shown}      # builds it and runs its test cases (test/*.json)"
    );
    outln!("  tributary plugins package {shown}   # a .tar.gz in {shown}/dist/ for `tributary plugins add`");
    Ok(())
}

/// `plugins build`: builds the plugin and reports the component.
pub async fn build_command(dir: PathBuf, options: BuildOptions, json: bool) -> anyhow::Result<()> {
    let built = tokio::task::spawn_blocking(move || build(&dir, options)).await??;
    if json {
        return print_json(&built);
    }
    outln!("{}", describe_build(&built));
    Ok(())
}

/// One line on a build: the component, its size and digest, how long it took.
pub fn describe_build(built: &Built) -> String {
    let how = match built.timings {
        Some(t) => {
            let mut parts = Vec::new();
            if built.language == "ts" {
                parts.push(format!("type check {}", seconds(t.check_ms)));
                parts.push(format!("bundle {}", seconds(t.bundle_ms)));
            }
            parts.push(format!("componentize {}", seconds(t.componentize_ms)));
            format!(
                "built in {} ({})",
                seconds(built.elapsed_ms),
                parts.join(", ")
            )
        }
        None => format!("from the build cache in {}", seconds(built.elapsed_ms)),
    };
    format!(
        "Built {} {} ({} in {}): {}, {}, sha256 {}; {how}.",
        built.id,
        built.version,
        built.plugin_type,
        built.language,
        built.component.display(),
        megabytes(built.bytes),
        &built.sha256[..12.min(built.sha256.len())],
    )
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// What `plugins test` was asked.
#[derive(Debug, Clone)]
pub struct TestArgs {
    /// The plugin's directory.
    pub dir: PathBuf,
    /// Only the case of this name.
    pub case: Option<String>,
    /// Rewrite each case's `expect` from what the run produced.
    pub update: bool,
    /// Record the fixtures from the real servers first, with this file's configuration.
    pub record: Option<PathBuf>,
}

/// `plugins test`: builds the plugin (or checks a declarative one's spec, as an install
/// does), runs its cases, prints what each produced; fails when one fails.
pub async fn test(config: &Config, args: TestArgs, json: bool) -> anyhow::Result<()> {
    show_plugin_logs();
    let dir = args.dir.clone();
    let runner = if declarative::is_declarative(&dir) {
        let checked = declarative::check(&dir)?;
        if !json {
            outln!("{}", declarative::describe(&checked));
        }
        CaseRunner::declarative(checked)?
    } else {
        let built =
            tokio::task::spawn_blocking(move || build(&dir, BuildOptions::default())).await??;
        if !json {
            outln!("{}", describe_build(&built));
        }
        CaseRunner::new(built, &config.wasm)?
    };
    let plugin_type = runner.plugin_type();
    let mut cases = read_cases(&args.dir, plugin_type, args.case.as_deref())?;
    let real = match &args.record {
        Some(path) => Some(read_json(path)?),
        None => None,
    };
    for host in runner.fixed_hosts() {
        eprintln!(
            "note: `network:outbound:{host}` names a host, not a configuration field: requests to it are not served from the fixtures but sent to the real host (grant `network:outbound:${{field}}` to test them offline)"
        );
    }
    let mut outcomes = Vec::new();
    for file in &mut cases {
        if let Some(real) = &real {
            let recorded = record(&runner, file, real).await?;
            if !json {
                outln!(
                    "Recorded {} exchanges for {} ({} requests).",
                    file.case.fixtures.len(),
                    file.name,
                    recorded.requests.len()
                );
            }
        }
        let outcome = runner.run(file).await?;
        if args.update {
            file.case.expect = outcome.as_expect(plugin_type);
            file.save()?;
        }
        if !json {
            print_outcome(&outcome, args.update);
        }
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    if json {
        let mut report = serde_json::json!({ "cases": outcomes });
        if let Some(built) = runner.built() {
            report["build"] = serde_json::to_value(built)?;
        }
        if let Some(checked) = runner.checked_spec() {
            report["spec"] = serde_json::to_value(checked)?;
        }
        print_json(&report)?;
    } else {
        outln!(
            "{} case{}: {} passed, {failed} failed.",
            outcomes.len(),
            if outcomes.len() == 1 { "" } else { "s" },
            outcomes.len() - failed
        );
    }
    if failed > 0 && !args.update {
        let refused: Vec<&str> = outcomes
            .iter()
            .filter_map(|o| o.refused.as_deref())
            .collect();
        if !refused.is_empty() {
            anyhow::bail!(
                "{failed} of {} cases failed; the host refused {} (not granted by plugin.json's permissions)",
                outcomes.len(),
                refused.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            );
        }
        anyhow::bail!("{failed} of {} cases failed", outcomes.len());
    }
    Ok(())
}

/// Prints what the plugin logs (and the host's refusals and secret reads) on standard error
/// while its cases run; `RUST_LOG` chooses more or less.
fn show_plugin_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,tributary_plugin_sdk=info,tributary_wasm=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .try_init();
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    anyhow::ensure!(
        value.is_object(),
        "{} must hold a JSON object of configuration fields",
        path.display()
    );
    Ok(value)
}

fn print_outcome(outcome: &CaseOutcome, updated: bool) {
    let verdict = match (outcome.passed(), updated) {
        (_, true) => "UPDATED",
        (true, false) => "PASS",
        (false, false) => "FAIL",
    };
    if outcome.description.is_empty() {
        outln!("{verdict} {}", outcome.name);
    } else {
        outln!("{verdict} {}: {}", outcome.name, outcome.description);
    }
    for item in &outcome.items {
        let field = |name: &str| {
            item.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let entity = crate::plugin_kit::run::plural(&field("entity_type"));
        outln!(
            "    {} {} {}{}",
            entity,
            field("external_id"),
            field("operation"),
            headline(item.get("data"))
        );
    }
    if let Some(checkpoint) = &outcome.checkpoint {
        outln!("    checkpoint {checkpoint}");
    }
    if let Some(status) = outcome.status {
        outln!("    answered {status}");
    }
    for event in &outcome.events {
        outln!("    event {event}");
    }
    for event in &outcome.emitted {
        outln!("    emitted {event}");
    }
    if let Some(sent) = &outcome.sent {
        outln!("    sent {sent}");
    }
    if let Some(error) = &outcome.error {
        outln!("    failed: {error}");
    }
    if !outcome.requests.is_empty() {
        outln!("    requests: {}", outcome.requests.join(", "));
    }
    if !updated {
        for problem in &outcome.problems {
            outln!("  - {problem}");
        }
    }
}

/// ` "<title>"` of an item's data, for the listing.
fn headline(data: Option<&Value>) -> String {
    let Some(data) = data else {
        return String::new();
    };
    [
        "title",
        "display_name",
        "name",
        "subject",
        "summary",
        "text",
    ]
    .iter()
    .find_map(|key| data.get(*key).and_then(Value::as_str))
    .map(|text| {
        let short: String = text.chars().take(60).collect();
        format!("  \"{short}\"")
    })
    .unwrap_or_default()
}

/// `plugins package`: builds, packages and checks the plugin.
pub async fn package_command(
    dir: PathBuf,
    out_dir: Option<PathBuf>,
    options: BuildOptions,
    json: bool,
) -> anyhow::Result<()> {
    let packaged =
        tokio::task::spawn_blocking(move || package(&dir, out_dir.as_deref(), options)).await??;
    if json {
        return print_json(&packaged);
    }
    outln!("{}", describe_build(&packaged.built));
    outln!(
        "Packaged {} {}: {} ({}: {}), checked as `tributary plugins add` checks it.",
        packaged.built.id,
        packaged.built.version,
        packaged.archive.display(),
        megabytes(packaged.archive_bytes),
        packaged.files.join(", ")
    );
    outln!(
        "Add it: tributary plugins add {}",
        std::path::absolute(&packaged.archive)
            .unwrap_or_else(|_| packaged.archive.clone())
            .display()
    );
    Ok(())
}
