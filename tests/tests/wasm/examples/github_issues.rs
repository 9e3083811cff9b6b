//! `com.example.github-issues` (`examples/plugins/github-issues`, Python) through the
//! connector, ETL and search processes, against a local server answering as GitHub's REST API
//! documents ([`GitHubApi`]): a repository's issues and pull requests become documents and
//! conversations, their comments messages in those conversations, their authors persons, as
//! the example's README says; its token, a secret, reaches GitHub as the bearer token the host
//! attached and nothing else sees it; both kinds of 403 rate limit are waited out as GitHub
//! asks; the next sync asks only for what changed `since`, and changes only that.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tributary_e2e::Stack;

use super::github_api::{comment, issue, user, ApiRequest, GitHubApi, List, RateLimit};
use super::{
    assert_secret_kept, data_event_counts, install_and_enable, stack_serving, wait_until_written,
};
use crate::support::{self, SyncEnds, FIRST_LOAD};

const PLUGIN: &str = "com.example.github-issues";
const OWNER: &str = "octo-org";
const REPO: &str = "orrery";
const REPOSITORY: &str = "octo-org/orrery";
const TOKEN: &str = "github_pat_e2e_11AbCdEf0123456789";
/// Issues and pull requests: more than GitHub's 100 a page, so two pages.
const ISSUES: u64 = 102;

fn users() -> [Value; 3] {
    [
        user("octocat", 1, "User"),
        user("hubot", 2, "Bot"),
        user("ada-l", 3, "User"),
    ]
}

fn hours(base: &str, h: i64) -> DateTime<Utc> {
    base.parse::<DateTime<Utc>>().unwrap() + chrono::Duration::hours(h)
}

/// Issue `number` as first synced: created `number` hours after 2026-02-01, updated half an
/// hour later, so the issues change in the order of their numbers; by the three users in turn.
/// #7 is closed, #12 is a pull request, #1 and #42 have words of their own.
fn first_issue(number: u64) -> Value {
    let all = users();
    let created = hours("2026-02-01T00:00:00Z", number as i64);
    let times = (created, created + chrono::Duration::minutes(30));
    let (title, body, author, closed, pull) = match number {
        1 => (
            "Orrery drifts a minute a day".to_owned(),
            "The orrery loses about a minute every day; the **escapement** needs a look."
                .to_owned(),
            0,
            false,
            false,
        ),
        7 => (
            "Catalogue the star charts".to_owned(),
            "Both hemispheres.".to_owned(),
            1,
            true,
            false,
        ),
        12 => (
            "Regulate the escapement".to_owned(),
            "Shortens the pendulum rod by 2 mm.".to_owned(),
            2,
            false,
            true,
        ),
        42 => (
            "Polish the astrolabe".to_owned(),
            "Brass only, no solvents.".to_owned(),
            0,
            false,
            false,
        ),
        n => (
            format!("Synthetic issue {n}"),
            format!("Synthetic issue number {n}."),
            (n as usize - 1) % 3,
            false,
            false,
        ),
    };
    let mut issue = issue(
        REPOSITORY,
        number,
        &title,
        &body,
        &all[author],
        times,
        closed,
        pull,
    );
    if number == 1 {
        issue["labels"] = json!([{"id": 208045946, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
            "url": "https://api.github.com/repos/octo-org/orrery/labels/bug", "name": "bug",
            "description": "Something isn't working", "color": "f29513", "default": true}]);
        issue["comments"] = json!(2);
    }
    issue
}

/// The comments as first synced: two on #1 (one by a deleted account), one on the pull
/// request #12, one on #7.
fn first_comments() -> Vec<Value> {
    let [octocat, hubot, ada] = users();
    let at = |h| hours("2026-03-01T10:00:00Z", h);
    vec![
        comment(
            REPOSITORY,
            9001,
            1,
            "Measured it: 58 seconds a day, the pendulum is too long.",
            ada,
            (at(0), at(0)),
        ),
        comment(
            REPOSITORY,
            9002,
            12,
            "Looks good; the tourbillon change too.",
            octocat,
            (at(1), at(1) + chrono::Duration::minutes(30)),
        ),
        comment(
            REPOSITORY,
            9003,
            1,
            "Have you tried winding it?",
            Value::Null,
            (at(2), at(2)),
        ),
        comment(
            REPOSITORY,
            9004,
            7,
            "Closed by the release workflow.",
            hubot,
            (at(3), at(3)),
        ),
    ]
}

/// How many items a sync hands over for `pages` of issues and of comments: per issue a
/// document and a conversation, per comment a message, and on each page each author once.
fn items_for(issue_pages: &[&[Value]], comment_pages: &[&[Value]]) -> usize {
    let authors = |page: &[Value]| {
        page.iter()
            .filter_map(|v| v["user"]["id"].as_u64())
            .collect::<BTreeSet<_>>()
            .len()
    };
    let issues: usize = issue_pages.iter().map(|p| 2 * p.len() + authors(p)).sum();
    let comments: usize = comment_pages.iter().map(|p| p.len() + authors(p)).sum();
    issues + comments
}

/// What the connector asked of the API, as (list, query, status).
fn asked(requests: &[ApiRequest]) -> Vec<(List, String, u16)> {
    requests
        .iter()
        .map(|r| {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&r.query)
                .finish();
            (r.list, query, r.status)
        })
        .collect()
}

/// The rows of `table` (`document`, `conversation`, `message`, `person`) of `instance`, each
/// as JSON, by external id.
async fn rows(stack: &Stack, instance: &str, table: &str) -> BTreeMap<String, Value> {
    let rows: Vec<(String, Value)> = sqlx::query_as(&format!(
        "SELECT s.external_id, to_jsonb(t) FROM {table} t JOIN source_record s \
         ON s.entity_id = t.id AND s.entity_type = '{table}' WHERE s.instance_id = $1"
    ))
    .bind(instance)
    .fetch_all(stack.pool())
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_example_syncs_issues_comments_and_authors_honouring_rate_limits() {
    let api = GitHubApi::start(OWNER, REPO, TOKEN).await;
    for number in 1..=ISSUES {
        api.put_issue(first_issue(number));
    }
    for c in first_comments() {
        api.put_comment(c);
    }
    // The first request of each list meets a rate limit: the primary one exhausted until a
    // moment from now, then a secondary one asking to retry after a second.
    api.limit_next(List::Issues, RateLimit::Primary(Duration::from_millis(500)));
    api.limit_next(List::Comments, RateLimit::Secondary(1));

    let mut stack = stack_serving("github-issues").await;
    let instance = "github-orrery";
    let mut ends = SyncEnds::watch(&stack).await;
    let enabled = install_and_enable(
        &stack,
        PLUGIN,
        &[
            "network:outbound:api.github.com",
            "network:outbound:${baseUrl}",
            "data:write:documents",
            "data:write:conversations",
            "data:write:messages",
            "data:write:persons",
        ],
        instance,
        json!({"repository": REPOSITORY, "token": TOKEN, "baseUrl": api.base_url()}),
    )
    .await;
    let done = ends.completed(instance, FIRST_LOAD).await;
    eprintln!(
        "{PLUGIN}: the first sync ended {:.1?} after the instance was enabled (component load and two rate-limit waits included)",
        enabled.elapsed()
    );

    // Asked as the README says: each list oldest change first, 100 a page, following `Link`;
    // each rate limit waited out as GitHub asked, then asked again.
    let requests = api.take_requests();
    let issues_query = "state=all&sort=updated&direction=asc&per_page=100";
    let comments_query = "sort=updated&direction=asc&per_page=100";
    assert_eq!(
        asked(&requests),
        [
            (List::Issues, issues_query.to_owned(), 403),
            (List::Issues, issues_query.to_owned(), 200),
            (List::Issues, format!("{issues_query}&page=2"), 200),
            (List::Comments, comments_query.to_owned(), 403),
            (List::Comments, comments_query.to_owned(), 200),
        ]
    );
    let reset = UNIX_EPOCH + Duration::from_secs(requests[0].reset.unwrap());
    assert!(
        requests[1].at >= reset,
        "asked again at {:?}, before x-ratelimit-reset {reset:?}",
        requests[1].at
    );
    let waited = requests[4].at.duration_since(requests[3].at).unwrap();
    assert!(
        waited >= Duration::from_secs(1),
        "retry-after: 1, asked again after {waited:?}"
    );
    // Every request carried the token as the host attached it, and GitHub's media type and
    // API version as the README says.
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{request:?}"
        );
        assert_eq!(
            request.headers.get("accept").map(String::as_str),
            Some("application/vnd.github+json")
        );
        assert_eq!(
            request
                .headers
                .get("x-github-api-version")
                .map(String::as_str),
            Some("2022-11-28")
        );
    }

    let all_issues: Vec<Value> = (1..=ISSUES).map(first_issue).collect();
    let comments = first_comments();
    let expected_items = items_for(&[&all_issues[..100], &all_issues[100..]], &[&comments]);
    assert_eq!(done.data["items"], expected_items, "{:?}", done.data);

    // In PostgreSQL as the README's table says.
    wait_until_written(&stack).await;
    let documents = rows(&stack, instance, "document").await;
    let conversations = rows(&stack, instance, "conversation").await;
    let messages = rows(&stack, instance, "message").await;
    let persons = rows(&stack, instance, "person").await;
    assert_eq!(
        (
            documents.len(),
            conversations.len(),
            messages.len(),
            persons.len()
        ),
        (ISSUES as usize, ISSUES as usize, 4, 3)
    );
    let first = &documents["octo-org/orrery#1"];
    assert_eq!(first["title"], "#1 Orrery drifts a minute a day", "{first}");
    assert_eq!(
        first["content"],
        "The orrery loses about a minute every day; the **escapement** needs a look.",
        "{first}"
    );
    assert_eq!(first["mime_type"], "text/markdown");
    assert_eq!(first["path"], "https://github.com/octo-org/orrery/issues/1");
    assert_eq!(
        first["modified_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        hours("2026-02-01T01:30:00Z", 0)
    );
    assert_eq!(first["extra"]["kind"], "issue");
    assert_eq!(first["extra"]["state"], "open");
    assert_eq!(first["extra"]["labels"], json!(["bug"]));
    assert_eq!(first["extra"]["author"], "octocat");
    let closed = &documents["octo-org/orrery#7"];
    assert_eq!(closed["extra"]["state"], "closed", "state=all: {closed}");
    assert_eq!(closed["extra"]["state_reason"], "completed");
    let pull = &documents["octo-org/orrery#12"];
    assert_eq!(pull["extra"]["kind"], "pull_request", "{pull}");
    assert_eq!(pull["path"], "https://github.com/octo-org/orrery/pull/12");
    let thread = &conversations["octo-org/orrery#1"];
    assert_eq!(thread["channel"], "github", "{thread}");
    assert_eq!(thread["title"], "#1 Orrery drifts a minute a day");
    assert_eq!(thread["participants"], json!(["octocat"]));

    let measured = &messages["comment:9001"];
    assert_eq!(measured["sender"], "ada-l", "{measured}");
    assert_eq!(
        measured["body_text"],
        "Measured it: 58 seconds a day, the pendulum is too long."
    );
    assert_eq!(measured["conversation_external_id"], "octo-org/orrery#1");
    assert_eq!(
        measured["conversation_id"], thread["id"],
        "in its issue's conversation"
    );
    assert_eq!(
        measured["sent_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        hours("2026-03-01T10:00:00Z", 0)
    );
    assert_eq!(
        messages["comment:9002"]["conversation_id"], conversations["octo-org/orrery#12"]["id"],
        "a pull request's comment in its conversation"
    );
    assert_eq!(
        messages["comment:9003"]["sender"], "ghost",
        "a deleted account"
    );

    let logins: BTreeMap<&str, &str> = persons
        .iter()
        .map(|(id, p)| (id.as_str(), p["display_name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logins,
        BTreeMap::from([
            ("user:1", "octocat"),
            ("user:2", "hubot"),
            ("user:3", "ada-l")
        ])
    );
    assert_eq!(persons["user:2"]["extra"]["type"], "Bot");
    assert_eq!(persons["user:3"]["extra"]["github_login"], "ada-l");

    // Each announced once: a creation per stored row, nothing else.
    let created = data_event_counts(&stack, instance).await;
    assert_eq!(
        created,
        BTreeMap::from([
            ("data.ConversationCreated".to_owned(), ISSUES as usize),
            ("data.DocumentCreated".to_owned(), ISSUES as usize),
            ("data.MessageCreated".to_owned(), 4),
            ("data.PersonCreated".to_owned(), 3),
        ])
    );

    // Searchable: the issue with its own word, the comment with its own.
    let found = stack
        .wait_search_total(&[("q", "astrolabe"), ("type", "document")], 1, 60)
        .await;
    assert_eq!(
        found["hits"][0]["id"], documents["octo-org/orrery#42"]["id"],
        "{found}"
    );
    let found = stack
        .wait_search_total(&[("q", "pendulum"), ("type", "message")], 1, 60)
        .await;
    assert_eq!(found["hits"][0]["id"], measured["id"], "{found}");

    // The token is a secret: GitHub saw it, nothing else does.
    assert_secret_kept(&stack, instance, "token", TOKEN).await;

    // GitHub changes: #5 gets a new title and is closed, and a comment is added to it. The
    // next sync asks each list `since` its newest change handed over, gets that one again
    // (unchanged) and the new changes, and only those are written and announced.
    let mut changed = first_issue(5);
    let edited = hours("2026-03-02T09:00:00Z", 0);
    changed["title"] = json!("Gear train slips under load");
    changed["state"] = json!("closed");
    changed["state_reason"] = json!("completed");
    changed["closed_at"] = json!(super::github_api::github_time(edited));
    changed["updated_at"] = json!(super::github_api::github_time(edited));
    changed["comments"] = json!(1);
    api.put_issue(changed.clone());
    let pinion = comment(
        REPOSITORY,
        9005,
        5,
        "Replaced the worn pinion; it holds now.",
        users()[2].clone(),
        (
            edited + chrono::Duration::minutes(15),
            edited + chrono::Duration::minutes(15),
        ),
    );
    api.put_comment(pinion.clone());
    let before: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::from([
        ("document", documents.clone()),
        ("conversation", conversations.clone()),
        ("message", messages.clone()),
        ("person", persons.clone()),
    ]);

    let started = Instant::now();
    support::sync_now(&stack, instance).await;
    let done = ends.completed(instance, Duration::from_secs(60)).await;
    eprintln!(
        "{PLUGIN}: the incremental sync took {:.1?}",
        started.elapsed()
    );
    assert_eq!(done.data["mode"], "incremental", "{:?}", done.data);
    let requests = api.take_requests();
    assert_eq!(
        asked(&requests),
        [
            (
                List::Issues,
                format!("{issues_query}&since=2026-02-05T06%3A30%3A00Z"),
                200
            ),
            (
                List::Comments,
                format!("{comments_query}&since=2026-03-01T13%3A00%3A00Z"),
                200
            ),
        ]
    );
    let again = [all_issues[101].clone(), changed.clone()];
    let comments_again = [comments[3].clone(), pinion.clone()];
    assert_eq!(
        done.data["items"],
        items_for(&[&again], &[&comments_again]),
        "{:?}",
        done.data
    );

    wait_until_written(&stack).await;
    let mut events = created.clone();
    for subject in [
        "data.DocumentUpdated",
        "data.ConversationUpdated",
        "data.MessageCreated",
    ] {
        *events.entry(subject.to_owned()).or_default() += 1;
    }
    assert_eq!(data_event_counts(&stack, instance).await, events);
    for (table, old) in &before {
        let now = rows(&stack, instance, table).await;
        for (external_id, row) in old {
            if external_id != "octo-org/orrery#5" {
                assert_eq!(&now[external_id], row, "{table} {external_id} is as it was");
            }
        }
        let added: Vec<&String> = now.keys().filter(|k| !old.contains_key(*k)).collect();
        let expected: Vec<&str> = if *table == "message" {
            vec!["comment:9005"]
        } else {
            vec![]
        };
        assert_eq!(added, expected, "{table}");
    }
    let documents = rows(&stack, instance, "document").await;
    let fifth = &documents["octo-org/orrery#5"];
    assert_eq!(fifth["title"], "#5 Gear train slips under load", "{fifth}");
    assert_eq!(fifth["extra"]["state"], "closed");
    assert_eq!(
        fifth["id"], before["document"]["octo-org/orrery#5"]["id"],
        "the same document, updated"
    );
    let conversations = rows(&stack, instance, "conversation").await;
    let pinion_message = &rows(&stack, instance, "message").await["comment:9005"];
    assert_eq!(
        pinion_message["conversation_id"], conversations["octo-org/orrery#5"]["id"],
        "{pinion_message}"
    );
    let found = stack
        .wait_search_total(&[("q", "pinion"), ("type", "message")], 1, 30)
        .await;
    assert_eq!(found["hits"][0]["id"], pinion_message["id"], "{found}");
    let found = stack
        .wait_search_total(&[("q", "gear train slips"), ("type", "document")], 1, 30)
        .await;
    assert_eq!(
        found["hits"][0]["id"], fifth["id"],
        "the index has the new title: {found}"
    );
    stack.assert_all_running();
}
