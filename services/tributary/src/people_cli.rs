//! `tributary people …`: why a person is who she is, and mending a merge. It asks the ETL on
//! NATS (`etl.people.show`, `etl.people.suggestions`, `etl.people.shared`, and the changes
//! `etl.people.unmerge.admin`, `etl.people.merge.admin`, `etl.people.decide.admin`, which the
//! ETL records as made by `nats:admin`).
//!
//! Exit codes: 0 done, 1 refused (the ETL says why) or the ETL did not answer.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use tributary_kit::client::{self, MeshClient};
use tributary_kit::Config;
use tributary_proto::requests::etl::{
    Caller, DecideSuggestion, DecisionOutcome, ListShared, ListSuggestions, MergeKind, MergePeople,
    MergeView, Page, PersonDetail, PersonShown, RecordRef, SharedPage, ShowPerson, SuggestionPage,
    UnmergePerson, Verdict,
};
use uuid::Uuid;

use crate::plugins_cli::render::Table;
use crate::plugins_cli::{print_json, report};
use crate::{out, outln};

/// `tributary people`: its subcommand.
#[derive(Debug, Args)]
pub struct PeopleArgs {
    /// Print the ETL's answer as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: PeopleCommand,
}

/// The `tributary people` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// A person: her source records, the merges that built her with their evidence, the
    /// decisions about her, open suggestions, her messages and events.
    Show {
        /// The person's id.
        id: Uuid,
    },
    /// Split a merged person back into the people her sources describe, and remember it: no
    /// later sync merges them again.
    Unmerge {
        /// The person's id.
        id: Uuid,
        /// Split off only the records of this plugin instance (together).
        #[arg(long)]
        source: Option<String>,
    },
    /// Merge two persons who may share nothing; later syncs keep them one.
    Merge {
        /// One person's id.
        a: Uuid,
        /// The other's.
        b: Uuid,
    },
    /// The pairs who share an identifier but whose names do not match, best score first.
    Suggestions(PageArgs),
    /// Accept a suggestion: merge its two people (the ids `suggestions` prints).
    Accept {
        /// One side's person id.
        a: Uuid,
        /// The other's.
        b: Uuid,
    },
    /// Reject a suggestion: keep its two people apart for good.
    Reject {
        /// One side's person id.
        a: Uuid,
        /// The other's.
        b: Uuid,
    },
    /// The identifiers that merge nobody any more (a front desk number, `info@`).
    Shared(PageArgs),
}

/// Which page of a list to print.
#[derive(Debug, Clone, Copy, Args)]
pub struct PageArgs {
    /// Rows to print, 1 to 500.
    #[arg(long, default_value_t = tributary_proto::requests::etl::DEFAULT_PAGE)]
    pub limit: u32,
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

impl From<PageArgs> for Page {
    fn from(args: PageArgs) -> Self {
        Page {
            limit: args.limit,
            offset: args.offset,
        }
    }
}

/// Runs one `tributary people` command and returns the exit code.
pub async fn run(config: &Config, args: PeopleArgs) -> ExitCode {
    match execute(config, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

async fn execute(config: &Config, args: PeopleArgs) -> anyhow::Result<()> {
    let client = MeshClient::connect(config, client::actor_from_env()).await?;
    let json = args.json;
    match args.command {
        PeopleCommand::Show { id } => {
            let shown: PersonShown = client.call(&ShowPerson { id }).await?;
            match shown {
                PersonShown::Found(detail) if json => print_json(&detail)?,
                PersonShown::Found(detail) => out!("{}", person_details(&detail)),
                PersonShown::Merged { id, merged_into } => {
                    if json {
                        print_json(&PersonShown::Merged { id, merged_into })?;
                    } else {
                        outln!("{id} was merged into {merged_into}; showing that person.\n");
                        let shown: PersonShown =
                            client.call(&ShowPerson { id: merged_into }).await?;
                        match shown {
                            PersonShown::Found(detail) => out!("{}", person_details(&detail)),
                            PersonShown::Merged { merged_into, .. } => {
                                outln!("It was merged again, into {merged_into}.")
                            }
                        }
                    }
                }
            }
        }
        PeopleCommand::Unmerge { id, source } => {
            let change = UnmergePerson {
                caller: Some(Caller::Admin),
                on_behalf_of: None,
                id,
                source,
            };
            let outcome: DecisionOutcome = client.call(&change).await?;
            print_outcome(json, &outcome, "Split into")?;
        }
        PeopleCommand::Merge { a, b } => {
            let change = MergePeople {
                caller: Some(Caller::Admin),
                on_behalf_of: None,
                a,
                b,
            };
            let outcome: DecisionOutcome = client.call(&change).await?;
            print_outcome(json, &outcome, "Merged into")?;
        }
        PeopleCommand::Accept { a, b } => {
            let outcome = decide(&client, a, b, true).await?;
            print_outcome(json, &outcome, "Accepted: merged into")?;
        }
        PeopleCommand::Reject { a, b } => {
            let outcome = decide(&client, a, b, false).await?;
            print_outcome(json, &outcome, "Rejected: kept apart as")?;
        }
        PeopleCommand::Suggestions(page) => {
            let page: SuggestionPage = client.call(&ListSuggestions { page: page.into() }).await?;
            if json {
                print_json(&page)?;
            } else {
                out!("{}", suggestion_table(&page));
            }
        }
        PeopleCommand::Shared(page) => {
            let page: SharedPage = client.call(&ListShared { page: page.into() }).await?;
            if json {
                print_json(&page)?;
            } else {
                out!("{}", shared_table(&page));
            }
        }
    }
    Ok(())
}

/// `etl.people.decide.admin`: accepts or rejects the suggestion that `a` and `b` are one.
async fn decide(
    client: &MeshClient,
    a: Uuid,
    b: Uuid,
    accept: bool,
) -> anyhow::Result<DecisionOutcome> {
    let change = DecideSuggestion {
        caller: Some(Caller::Admin),
        on_behalf_of: None,
        a,
        b,
        accept,
    };
    Ok(client.call(&change).await?)
}

fn print_outcome(json: bool, outcome: &DecisionOutcome, done: &str) -> anyhow::Result<()> {
    if json {
        return print_json(outcome);
    }
    let people: Vec<String> = outcome.people.iter().map(Uuid::to_string).collect();
    outln!(
        "{done} {} ({} event{} announced).",
        people.join(", "),
        outcome.events,
        if outcome.events == 1 { "" } else { "s" }
    );
    Ok(())
}

fn record(r: &RecordRef) -> String {
    format!("{}/{}", r.instance_id, r.external_id)
}

fn records(rs: &[RecordRef]) -> String {
    rs.iter().map(record).collect::<Vec<_>>().join(", ")
}

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// One merge, as a line: when, the rule and its evidence, and who.
pub fn merge_line(merge: &MergeView) -> String {
    let why = match (merge.rule, &merge.identifier) {
        (MergeKind::SharedEmail, Some(address)) => format!("shared e-mail {address}"),
        (MergeKind::SharedPhone, Some(number)) => format!("shared phone {number}"),
        (MergeKind::Manual, _) => {
            format!("merged by {}", merge.actor.as_deref().unwrap_or("a person"))
        }
        (rule, None) => rule.as_str().to_owned(),
    };
    format!(
        "{}  {why}: {} ({}) into {} ({})",
        when(merge.merged_at),
        merge.merged_id,
        records(&merge.merged_sources),
        merge.kept_id,
        records(&merge.kept_sources)
    )
}

/// A person for a reader: her fields, then each section that has something in it.
pub fn person_details(detail: &PersonDetail) -> String {
    let person = &detail.person;
    let mut text = format!("{}  {}", person.id, person.fields.display_name);
    if person.deleted_at.is_some() {
        text.push_str("  (deleted)");
    }
    text.push('\n');
    if !person.fields.emails.is_empty() {
        text += &format!("  e-mail  {}\n", person.fields.emails.join(", "));
    }
    if !person.fields.phones.is_empty() {
        text += &format!("  phone   {}\n", person.fields.phones.join(", "));
    }
    text += &format!("\nSources ({}):\n", detail.sources.len());
    let mut sources = Table::new(&["SOURCE", "NAME", "E-MAIL", "PHONE", "CHANGED"]);
    for source in &detail.sources {
        let name = if source.deleted {
            format!("{} (deleted)", source.display_name)
        } else {
            source.display_name.clone()
        };
        sources.row(vec![
            format!("{}/{}", source.instance_id, source.external_id),
            name,
            source.emails.join(", "),
            source.phones.join(", "),
            when(source.version),
        ]);
    }
    text += &sources.render();
    if detail.merges.is_empty() {
        text += "\nMerges: none\n";
    } else {
        text += &format!("\nMerges ({}):\n", detail.merges.len());
        for merge in &detail.merges {
            text += &format!("  {}\n", merge_line(merge));
        }
    }
    if !detail.decisions.is_empty() {
        text += &format!("\nDecisions ({}):\n", detail.decisions.len());
        for decision in &detail.decisions {
            let verdict = match decision.verdict {
                Verdict::Apart => "kept apart",
                Verdict::Together => "kept together",
            };
            text += &format!(
                "  {}  {} and {} {verdict} by {}\n",
                when(decision.decided_at),
                record(&decision.a),
                record(&decision.b),
                decision.actor
            );
        }
    }
    if !detail.suggestions.is_empty() {
        text += &format!("\nSuggestions ({}):\n", detail.suggestions.len());
        for s in &detail.suggestions {
            text += &format!(
                "  {:.2}  {} {} and {} ({} {}) share {}\n",
                s.score,
                s.a.person_id,
                s.a.name,
                s.b.name,
                s.b.person_id,
                record(&s.b.record),
                s.identifier
            );
        }
    }
    text += &format!(
        "\nMessages: {}{}   Calendar events: {}{}\n",
        detail.messages.len(),
        if detail.messages.len() >= tributary_proto::requests::etl::LINKED_LIMIT {
            " (the newest)"
        } else {
            ""
        },
        detail.events.len(),
        if detail.events.len() >= tributary_proto::requests::etl::LINKED_LIMIT {
            " (the newest)"
        } else {
            ""
        },
    );
    for message in detail.messages.iter().take(5) {
        text += &format!(
            "  {}  {}  {}\n",
            when(message.sent_at),
            message.subject.as_deref().unwrap_or("(no subject)"),
            message.source
        );
    }
    for event in detail.events.iter().take(5) {
        text += &format!(
            "  {}  {}  {}\n",
            when(event.starts_at),
            event.title,
            event.source
        );
    }
    text
}

fn page_footer(shown: usize, total: u64, offset: u32, what: &str) -> String {
    if total == 0 {
        return format!("No {what}.\n");
    }
    format!(
        "{total} {what} ({}–{} shown)\n",
        u64::from(offset) + 1,
        u64::from(offset) + shown as u64
    )
}

/// The suggestions as a table, with the ids `people accept` and `people reject` take.
pub fn suggestion_table(page: &SuggestionPage) -> String {
    let mut text = page_footer(
        page.suggestions.len(),
        page.total,
        page.offset,
        "suggestions",
    );
    if page.suggestions.is_empty() {
        return text;
    }
    let mut table = Table::new(&["SCORE", "SHARED", "A", "B"]);
    for s in &page.suggestions {
        table.row(vec![
            format!("{:.2}", s.score),
            s.identifier.clone(),
            format!("{} {} ({})", s.a.person_id, s.a.name, record(&s.a.record)),
            format!("{} {} ({})", s.b.person_id, s.b.name, record(&s.b.record)),
        ]);
    }
    text += &table.render();
    text += "Accept with `tributary people accept <A> <B>`, reject with `… reject <A> <B>`.\n";
    text
}

/// The shared identifiers as a table.
pub fn shared_table(page: &SharedPage) -> String {
    let mut text = page_footer(
        page.shared.len(),
        page.total,
        page.offset,
        "shared identifiers",
    );
    if page.shared.is_empty() {
        return text;
    }
    let mut table = Table::new(&["IDENTIFIER", "PEOPLE", "NAMES"]);
    for shared in &page.shared {
        table.row(vec![
            shared.identifier.clone(),
            shared.carriers.to_string(),
            shared.names.join(", "),
        ]);
    }
    text += &table.render();
    text
}
