//! `com.example.rss-feed` (`examples/plugins/rss-feed`, TypeScript) through the connector,
//! ETL and search processes, reading two feeds of a local site: an RSS 2.0 feed (`feedUrl`) and
//! an Atom 1.0 feed (`moreFeeds`), each answering conditional GETs as RFC 9110 says. Every
//! entry becomes a document in PostgreSQL, announced once and found through `GET /search`; a
//! sync of feeds answering 304 Not Modified changes nothing; a feed with one entry changed and
//! one new hands over exactly those two, announced as one update and one creation.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tributary_e2e::Stack;
use uuid::Uuid;

use super::feed_site::{Feed, FeedRequest, FeedSite};
use super::{
    data_event_counts, data_events, install_and_enable, stack_serving, wait_until_written,
};
use crate::support::{self, SyncEnds, FIRST_LOAD};

const PLUGIN: &str = "com.example.rss-feed";
const RSS_PATH: &str = "/notes/feed.xml";
const ATOM_PATH: &str = "/orrery/releases.atom";

const RSS_LAST_MODIFIED: &str = "Tue, 05 May 2026 08:00:00 GMT";

/// The RSS 2.0 feed: three items, as a blog writes them (CDATA, escaped HTML, a permalink
/// guid, RFC 822 dates with an offset).
fn rss_feed() -> Feed {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Field Notes</title>
    <link>https://notes.example.com/</link>
    <description>Notes from the field</description>
    <item>
      <title>Estuaries &amp;amp; their tides</title>
      <link>https://notes.example.com/2026/05/estuary</link>
      <guid isPermaLink="false">field-notes-2026-05-estuary</guid>
      <pubDate>Tue, 05 May 2026 09:30:00 +0200</pubDate>
      <dc:creator>Ada Okafor</dc:creator>
      <description>Where the river meets the sea.</description>
      <content:encoded><![CDATA[<p>Where the river meets the sea, <em>brackish</em> water mixes.</p>]]></content:encoded>
    </item>
    <item>
      <title>Keeping the lighthouse</title>
      <link>https://notes.example.com/2026/04/lighthouse</link>
      <guid>https://notes.example.com/2026/04/lighthouse</guid>
      <pubDate>Thu, 30 Apr 2026 18:00:00 GMT</pubDate>
      <description>&lt;p&gt;The keeper trims the wick at dusk.&lt;/p&gt;</description>
    </item>
    <item>
      <title>Cartography for walkers</title>
      <link>https://notes.example.com/2026/04/cartography</link>
      <guid isPermaLink="false">field-notes-2026-04-cartography</guid>
      <pubDate>Mon, 20 Apr 2026 06:00:00 GMT</pubDate>
      <description>Contour lines, scale and the compass rose.</description>
    </item>
  </channel>
</rss>
"#;
    Feed {
        content_type: "application/rss+xml; charset=utf-8",
        body: body.to_owned(),
        etag: "\"rss-v1\"".to_owned(),
        last_modified: Some(RSS_LAST_MODIFIED.to_owned()),
    }
}

/// An Atom entry of the releases feed.
fn atom_entry(version: &str, updated: &str, content: &str) -> String {
    format!(
        r#"  <entry>
    <title>Orrery {version}</title>
    <link rel="alternate" type="text/html" href="https://orrery.example.org/releases/{version}"/>
    <id>tag:orrery.example.org,2026:{version}</id>
    <updated>{updated}</updated>
    {content}
  </entry>
"#
    )
}

/// The Atom 1.0 feed of `entries` (newest first), with entity tag `etag` and no
/// `Last-Modified`.
fn atom_feed(etag: &str, updated: &str, entries: &[String]) -> Feed {
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Orrery releases</title>
  <link href="https://orrery.example.org/"/>
  <id>tag:orrery.example.org,2026:releases</id>
  <updated>{updated}</updated>
  <author><name>Release Bot</name></author>
{}</feed>
"#,
        entries.concat()
    );
    Feed {
        content_type: "application/atom+xml; charset=utf-8",
        body,
        etag: format!("\"{etag}\""),
        last_modified: None,
    }
}

fn release_1_9() -> String {
    atom_entry(
        "1.9.0",
        "2026-05-01T09:00:00+02:00",
        r#"<content type="text">Fixed: the moon's phase no longer drifts.</content>"#,
    )
}

fn release_2_0() -> String {
    atom_entry(
        "2.0.0",
        "2026-05-08T10:00:00Z",
        r#"<content type="html">&lt;p&gt;New: planetary gears.&lt;/p&gt;</content>"#,
    )
}

/// 2.0.0 as edited: a later `updated` and more text.
fn release_2_0_edited() -> String {
    atom_entry(
        "2.0.0",
        "2026-05-09T16:30:00Z",
        r#"<content type="html">&lt;p&gt;New: planetary gears. Also new: an armillary sphere.&lt;/p&gt;</content>"#,
    )
}

fn release_2_1() -> String {
    atom_entry(
        "2.1.0",
        "2026-05-10T12:00:00Z",
        r#"<content type="text">New: eclipse prediction tables.</content>"#,
    )
}

/// One stored document of an instance, with what a sync that changes nothing keeps as it is.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct StoredDocument {
    id: Uuid,
    external_id: String,
    title: String,
    content: String,
    mime_type: Option<String>,
    path: Option<String>,
    modified_at: Option<DateTime<Utc>>,
    extra: Value,
    content_hash: String,
    updated_at: DateTime<Utc>,
}

/// The documents of `instance`, by external id.
async fn documents(stack: &Stack, instance: &str) -> BTreeMap<String, StoredDocument> {
    let rows: Vec<StoredDocument> = sqlx::query_as(
        "SELECT d.id, s.external_id, d.title, d.content, d.mime_type, d.path, d.modified_at, \
         d.extra, s.content_hash, d.updated_at \
         FROM document d JOIN source_record s ON s.entity_id = d.id AND s.entity_type = 'document' \
         WHERE s.instance_id = $1",
    )
    .bind(instance)
    .fetch_all(stack.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|d| (d.external_id.clone(), d))
        .collect()
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(text.parse().unwrap())
}

/// Asserts what one document holds.
fn assert_document(
    stored: &BTreeMap<String, StoredDocument>,
    external_id: &str,
    (title, path, mime_type, content, modified_at): (&str, &str, &str, &str, &str),
) {
    let doc = stored
        .get(external_id)
        .unwrap_or_else(|| panic!("no document {external_id}: {stored:#?}"));
    assert_eq!(doc.title, title, "{doc:?}");
    assert_eq!(doc.path.as_deref(), Some(path), "{doc:?}");
    assert_eq!(doc.mime_type.as_deref(), Some(mime_type), "{doc:?}");
    assert_eq!(doc.content, content, "{doc:?}");
    assert_eq!(doc.modified_at, at(modified_at), "{doc:?}");
    assert_eq!(doc.extra["entry_id"], external_id, "{doc:?}");
}

/// The search hit ids for `q` among documents, once there is exactly one.
async fn the_one_hit(stack: &Stack, q: &str) -> String {
    let found = stack
        .wait_search_total(&[("q", q), ("type", "document")], 1, 30)
        .await;
    found["hits"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rss_feed_example_syncs_rss_and_atom_entries_into_documents_conditionally() {
    let site = FeedSite::start().await;
    site.publish(RSS_PATH, rss_feed());
    site.publish(
        ATOM_PATH,
        atom_feed(
            "atom-r1",
            "2026-05-08T10:00:00Z",
            &[release_2_0(), release_1_9()],
        ),
    );
    let mut stack = stack_serving("rss-feed").await;
    let instance = "rss-feed-e2e";
    let mut ends = SyncEnds::watch(&stack).await;

    // Enabled, it syncs at once: both feeds fetched unconditionally, five entries.
    let enabled = install_and_enable(
        &stack,
        PLUGIN,
        &["network:outbound:${feedUrl}", "data:write:documents"],
        instance,
        json!({"feedUrl": site.url(RSS_PATH), "moreFeeds": [ATOM_PATH]}),
    )
    .await;
    let done = ends.completed(instance, FIRST_LOAD).await;
    eprintln!(
        "{PLUGIN}: the first sync ended {:.1?} after the instance was enabled (component load included)",
        enabled.elapsed()
    );
    assert_eq!(done.data["items"], 5, "{:?}", done.data);
    let unconditional = |path: &str| FeedRequest {
        path: path.to_owned(),
        if_none_match: None,
        if_modified_since: None,
        status: 200,
    };
    assert_eq!(
        site.take_requests(),
        [unconditional(RSS_PATH), unconditional(ATOM_PATH)]
    );

    // Each entry a document, as the README's table says; an HTML body (`text/html`) is stored
    // as its text, which the ETL renders for search, and the entry's XML, markup and all, is
    // kept as the item's raw payload.
    wait_until_written(&stack).await;
    let stored = documents(&stack, instance).await;
    assert_eq!(stored.len(), 5, "{stored:#?}");
    assert_document(
        &stored,
        "field-notes-2026-05-estuary",
        (
            "Estuaries & their tides",
            "https://notes.example.com/2026/05/estuary",
            "text/html",
            "Where the river meets the sea, brackish water mixes.",
            "2026-05-05T07:30:00Z",
        ),
    );
    assert_document(
        &stored,
        "https://notes.example.com/2026/04/lighthouse",
        (
            "Keeping the lighthouse",
            "https://notes.example.com/2026/04/lighthouse",
            "text/html",
            "The keeper trims the wick at dusk.",
            "2026-04-30T18:00:00Z",
        ),
    );
    assert_document(
        &stored,
        "field-notes-2026-04-cartography",
        (
            "Cartography for walkers",
            "https://notes.example.com/2026/04/cartography",
            "text/html",
            "Contour lines, scale and the compass rose.",
            "2026-04-20T06:00:00Z",
        ),
    );
    assert_document(
        &stored,
        "tag:orrery.example.org,2026:2.0.0",
        (
            "Orrery 2.0.0",
            "https://orrery.example.org/releases/2.0.0",
            "text/html",
            "New: planetary gears.",
            "2026-05-08T10:00:00Z",
        ),
    );
    assert_document(
        &stored,
        "tag:orrery.example.org,2026:1.9.0",
        (
            "Orrery 1.9.0",
            "https://orrery.example.org/releases/1.9.0",
            "text/plain",
            "Fixed: the moon's phase no longer drifts.",
            "2026-05-01T07:00:00Z",
        ),
    );
    let estuary = &stored["field-notes-2026-05-estuary"];
    assert_eq!(estuary.extra["feed"]["format"], "rss", "{estuary:?}");
    assert_eq!(
        estuary.extra["authors"],
        json!([{"name": "Ada Okafor"}]),
        "{estuary:?}"
    );
    let raw: Value = sqlx::query_scalar(
        "SELECT raw FROM source_record WHERE instance_id = $1 AND external_id = $2",
    )
    .bind(instance)
    .bind("field-notes-2026-05-estuary")
    .fetch_one(stack.pool())
    .await
    .unwrap();
    assert_eq!(raw["format"], "rss", "{raw}");
    let xml = raw["xml"].as_str().unwrap_or_default();
    assert!(
        xml.starts_with("<item>")
            && xml.contains("<![CDATA[<p>Where the river meets the sea, <em>brackish</em>"),
        "{raw}"
    );
    let release = &stored["tag:orrery.example.org,2026:2.0.0"];
    assert_eq!(release.extra["feed"]["format"], "atom", "{release:?}");
    assert_eq!(
        release.extra["authors"],
        json!([{"name": "Release Bot"}]),
        "the feed's author, inherited: {release:?}"
    );

    // Announced once each, by the ETL.
    let mut announced = data_events(&stack, instance).await;
    announced.sort();
    let mut expected: Vec<(String, String)> = stored
        .values()
        .map(|d| ("data.DocumentCreated".to_owned(), d.id.to_string()))
        .collect();
    expected.sort();
    assert_eq!(announced, expected, "one DocumentCreated per document");

    // Found through the search process: all five, and each by a word of its own, the HTML
    // read as text.
    stack
        .wait_search_total(&[("source", instance), ("type", "document")], 5, 60)
        .await;
    assert_eq!(
        the_one_hit(&stack, "brackish").await,
        estuary.id.to_string()
    );
    assert_eq!(
        the_one_hit(&stack, "wick").await,
        stored["https://notes.example.com/2026/04/lighthouse"]
            .id
            .to_string()
    );

    // Unchanged feeds: each asked with its validators and answered 304; nothing handed over,
    // nothing written, nothing announced.
    let events = data_event_counts(&stack, instance).await;
    support::sync_now(&stack, instance).await;
    let done = ends.completed(instance, Duration::from_secs(60)).await;
    assert_eq!(done.data["mode"], "incremental", "{:?}", done.data);
    assert_eq!(done.data["items"], 0, "{:?}", done.data);
    assert_eq!(
        site.take_requests(),
        [
            FeedRequest {
                path: RSS_PATH.to_owned(),
                if_none_match: Some("\"rss-v1\"".to_owned()),
                if_modified_since: Some(RSS_LAST_MODIFIED.to_owned()),
                status: 304,
            },
            FeedRequest {
                path: ATOM_PATH.to_owned(),
                if_none_match: Some("\"atom-r1\"".to_owned()),
                if_modified_since: None,
                status: 304,
            },
        ]
    );
    wait_until_written(&stack).await;
    assert_eq!(documents(&stack, instance).await, stored);
    assert_eq!(data_event_counts(&stack, instance).await, events);

    // The Atom feed changes: 2.0.0 edited, 2.1.0 new, 1.9.0 byte for byte as it was. Exactly
    // the edited and the new entry are handed over: one update, one creation.
    site.publish(
        ATOM_PATH,
        atom_feed(
            "atom-r2",
            "2026-05-10T12:00:00Z",
            &[release_2_1(), release_2_0_edited(), release_1_9()],
        ),
    );
    support::sync_now(&stack, instance).await;
    let done = ends.completed(instance, Duration::from_secs(60)).await;
    assert_eq!(done.data["items"], 2, "{:?}", done.data);
    let requests = site.take_requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.path.as_str(), r.status))
            .collect::<Vec<_>>(),
        [(RSS_PATH, 304), (ATOM_PATH, 200)],
        "{requests:?}"
    );
    wait_until_written(&stack).await;
    let after = documents(&stack, instance).await;
    assert_eq!(after.len(), 6, "{after:#?}");
    assert_document(
        &after,
        "tag:orrery.example.org,2026:2.0.0",
        (
            "Orrery 2.0.0",
            "https://orrery.example.org/releases/2.0.0",
            "text/html",
            "New: planetary gears. Also new: an armillary sphere.",
            "2026-05-09T16:30:00Z",
        ),
    );
    assert_eq!(
        after["tag:orrery.example.org,2026:2.0.0"].id, release.id,
        "the same document, updated"
    );
    assert_document(
        &after,
        "tag:orrery.example.org,2026:2.1.0",
        (
            "Orrery 2.1.0",
            "https://orrery.example.org/releases/2.1.0",
            "text/plain",
            "New: eclipse prediction tables.",
            "2026-05-10T12:00:00Z",
        ),
    );
    for (external_id, before) in &stored {
        if external_id != "tag:orrery.example.org,2026:2.0.0" {
            assert_eq!(&after[external_id], before, "untouched");
        }
    }
    // Announced: 2.0.0's update and 2.1.0's creation, and nothing else.
    let new_release = &after["tag:orrery.example.org,2026:2.1.0"];
    let mut changes = data_events(&stack, instance).await.split_off(5);
    changes.sort();
    assert_eq!(
        changes,
        [
            (
                "data.DocumentCreated".to_owned(),
                new_release.id.to_string()
            ),
            ("data.DocumentUpdated".to_owned(), release.id.to_string()),
        ]
    );

    // The index follows: the edited text and the new entry are found, six in all.
    assert_eq!(
        the_one_hit(&stack, "armillary").await,
        release.id.to_string()
    );
    assert_eq!(
        the_one_hit(&stack, "eclipse").await,
        new_release.id.to_string()
    );
    stack
        .wait_search_total(&[("source", instance), ("type", "document")], 6, 30)
        .await;
    stack.assert_all_running();
}
