//! The embedded index on its own: typos, filters, pages, snippets, versions, rebuilds and
//! restarts, without a service around it.

use chrono::{DateTime, Utc};
use tributary_proto::model::EntityType;
use tributary_search::backend::embedded::EmbeddedBackend;
use tributary_search::backend::SearchBackend;
use tributary_search::document::{IndexChange, SearchDocument};
use tributary_search::query::SearchQuery;
use uuid::Uuid;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn doc(
    entity_type: EntityType,
    title: &str,
    text: &str,
    date: &str,
    source: &str,
) -> SearchDocument {
    SearchDocument {
        id: Uuid::now_v7(),
        entity_type,
        title: title.into(),
        text: text.into(),
        sources: vec![source.into()],
        sources_complete: false,
        date: at(date),
        version: at("2026-01-01T00:00:00Z"),
    }
}

fn query(q: &str) -> SearchQuery {
    SearchQuery {
        q: q.into(),
        ..SearchQuery::default()
    }
}

async fn titles(backend: &EmbeddedBackend, query: &SearchQuery) -> Vec<String> {
    backend
        .search(query)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.title)
        .collect()
}

fn open(dir: &std::path::Path) -> EmbeddedBackend {
    EmbeddedBackend::open(&dir.join("index"), 32).unwrap()
}

fn sample() -> Vec<SearchDocument> {
    vec![
        doc(
            EntityType::Message,
            "Quarterly budget",
            "The <draft> budget for Q3 & Q4 is attached.",
            "2026-03-01T09:00:00Z",
            "mail",
        ),
        doc(
            EntityType::CalendarEvent,
            "Budget review",
            "Room 4, with Ada and Grace",
            "2026-03-05T14:00:00Z",
            "calendar",
        ),
        doc(
            EntityType::Document,
            "Analytical engine notes",
            "Notes on the analytical engine by Ada Lovelace",
            "2026-02-01T00:00:00Z",
            "files",
        ),
        doc(
            EntityType::Person,
            "Ada Lovelace",
            "ada@example.com +441234567890",
            "2026-01-01T00:00:00Z",
            "contacts",
        ),
    ]
}

#[tokio::test]
async fn typos_are_tolerated_as_meilisearch_tolerates_them() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    backend
        .apply(sample().into_iter().map(IndexChange::Upsert).collect())
        .await
        .unwrap();
    // One typo in a word of 5 to 8 letters, two from 9, none below 5.
    assert_eq!(
        titles(&backend, &query("budgte review")).await,
        vec!["Budget review"]
    );
    assert_eq!(
        titles(&backend, &query("analitycal")).await,
        vec!["Analytical engine notes"]
    );
    assert_eq!(titles(&backend, &query("lovelace")).await.len(), 2);
    assert!(
        titles(&backend, &query("adx")).await.is_empty(),
        "no typo below five letters"
    );
    // The last word is also a prefix, for search as you type; accents fold.
    assert_eq!(
        titles(&backend, &query("quarter")).await,
        vec!["Quarterly budget"]
    );
    assert_eq!(titles(&backend, &query("Lovelacé")).await.len(), 2);
    // Every word must match.
    assert!(titles(&backend, &query("budget lovelace")).await.is_empty());
}

#[tokio::test]
async fn a_title_match_ranks_first_and_snippets_mark_the_words_found() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    backend
        .apply(sample().into_iter().map(IndexChange::Upsert).collect())
        .await
        .unwrap();
    let results = backend.search(&query("budget")).await.unwrap();
    assert_eq!(results.total, 2);
    assert_eq!(results.hits[0].title, "Quarterly budget");
    assert!(results.hits[0].score >= results.hits[1].score);
    assert_eq!(
        results.hits[0].snippet,
        "The &lt;draft&gt; <mark>budget</mark> for Q3 &amp; Q4 is attached."
    );
    // A typo is marked where it matched; a hit on the title alone shows its text's start.
    let results = backend.search(&query("attachd")).await.unwrap();
    assert!(
        results.hits[0].snippet.contains("<mark>attached</mark>"),
        "{:?}",
        results.hits[0]
    );
    let results = backend.search(&query("review")).await.unwrap();
    assert_eq!(results.hits[0].snippet, "Room 4, with Ada and Grace");
    // A long text shows the part around the match, cut with an ellipsis.
    let long = format!(
        "{} the hidden needle sits here {}",
        "filler ".repeat(60),
        "padding ".repeat(60)
    );
    backend
        .apply(vec![IndexChange::Upsert(doc(
            EntityType::Document,
            "Haystack",
            &long,
            "2026-01-01T00:00:00Z",
            "files",
        ))])
        .await
        .unwrap();
    let snippet = &backend.search(&query("needle")).await.unwrap().hits[0].snippet;
    assert!(snippet.contains("<mark>needle</mark>"), "{snippet}");
    assert!(
        snippet.starts_with('…') && snippet.ends_with('…'),
        "{snippet}"
    );
    assert!(snippet.chars().count() < 260, "{snippet}");
}

#[tokio::test]
async fn filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let mut docs = sample();
    for day in 1..=25 {
        docs.push(doc(
            EntityType::Message,
            &format!("Standup {day}"),
            "daily standup notes",
            &format!("2026-04-{day:02}T08:00:00Z"),
            "chat",
        ));
    }
    backend
        .apply(docs.into_iter().map(IndexChange::Upsert).collect())
        .await
        .unwrap();
    let by_type = SearchQuery {
        types: vec![EntityType::CalendarEvent, EntityType::Person],
        ..query("")
    };
    let mut found = titles(&backend, &by_type).await;
    found.sort();
    assert_eq!(found, vec!["Ada Lovelace", "Budget review"]);
    let by_source = SearchQuery {
        source: Some("files".into()),
        ..query("ada")
    };
    assert_eq!(
        titles(&backend, &by_source).await,
        vec!["Analytical engine notes"]
    );
    let by_date = SearchQuery {
        from: Some(at("2026-04-10T00:00:00Z")),
        to: Some(at("2026-04-12T23:59:59Z")),
        ..query("standup")
    };
    let mut found = titles(&backend, &by_date).await;
    found.sort();
    assert_eq!(found, vec!["Standup 10", "Standup 11", "Standup 12"]);

    // Browsing (no words) pages newest first; the total counts every page.
    let mut seen = Vec::new();
    for page in 0..3 {
        let results = backend
            .search(&SearchQuery {
                types: vec![EntityType::Message],
                limit: 10,
                offset: page * 10,
                ..query("")
            })
            .await
            .unwrap();
        assert_eq!(results.total, 26);
        seen.extend(results.hits.into_iter().map(|h| (h.date, h.title)));
    }
    assert_eq!(seen.len(), 26);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    assert_eq!(seen[0].1, "Standup 25");
    let unique: std::collections::HashSet<_> = seen.iter().map(|s| &s.1).collect();
    assert_eq!(unique.len(), 26, "pages do not overlap");
}

#[tokio::test]
async fn older_changes_never_win_and_deletions_stay() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let mut v2 = doc(
        EntityType::Document,
        "Plan v2",
        "second draft",
        "2026-01-02T00:00:00Z",
        "files",
    );
    v2.version = at("2026-01-02T00:00:00Z");
    let mut v1 = SearchDocument {
        title: "Plan v1".into(),
        text: "first draft".into(),
        version: at("2026-01-01T00:00:00Z"),
        ..v2.clone()
    };
    let report = backend
        .apply(vec![IndexChange::Upsert(v2.clone())])
        .await
        .unwrap();
    assert_eq!((report.applied, report.stale), (1, 0));
    let report = backend
        .apply(vec![IndexChange::Upsert(v1.clone())])
        .await
        .unwrap();
    assert_eq!((report.applied, report.stale), (0, 1));
    assert_eq!(titles(&backend, &query("plan")).await, vec!["Plan v2"]);
    // The same change again is harmless.
    backend
        .apply(vec![IndexChange::Upsert(v2.clone())])
        .await
        .unwrap();
    assert_eq!(backend.search(&query("plan")).await.unwrap().total, 1);
    // A second source adds itself to the document's sources.
    let mut other_source = v2.clone();
    other_source.sources = vec!["drive".into()];
    backend
        .apply(vec![IndexChange::Upsert(other_source)])
        .await
        .unwrap();
    let hit = &backend.search(&query("plan")).await.unwrap().hits[0];
    assert_eq!(hit.sources, vec!["files".to_owned(), "drive".to_owned()]);

    let delete = IndexChange::Delete {
        id: v2.id,
        entity_type: EntityType::Document,
        version: at("2026-01-03T00:00:00Z"),
    };
    backend.apply(vec![delete]).await.unwrap();
    assert!(titles(&backend, &query("plan")).await.is_empty());
    assert_eq!(backend.document_count().await.unwrap(), 0);
    // An update older than the deletion does not bring it back; a newer one does.
    v1.version = at("2026-01-02T12:00:00Z");
    let report = backend
        .apply(vec![IndexChange::Upsert(v1.clone())])
        .await
        .unwrap();
    assert_eq!(report.stale, 1);
    assert!(titles(&backend, &query("plan")).await.is_empty());
    v1.version = at("2026-01-04T00:00:00Z");
    backend.apply(vec![IndexChange::Upsert(v1)]).await.unwrap();
    assert_eq!(titles(&backend, &query("plan")).await, vec!["Plan v1"]);
}

#[tokio::test]
async fn the_index_survives_a_reopen_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    backend
        .apply(sample().into_iter().map(IndexChange::Upsert).collect())
        .await
        .unwrap();
    let err = EmbeddedBackend::open(&dir.path().join("index"), 32).unwrap_err();
    assert!(err.to_string().contains("another search service"), "{err}");
    drop(backend);
    let reopened = open(dir.path());
    assert_eq!(reopened.document_count().await.unwrap(), 4);
    assert_eq!(
        titles(&reopened, &query("analytical")).await,
        vec!["Analytical engine notes"]
    );
}

#[tokio::test]
async fn a_rebuild_answers_from_the_old_index_until_it_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let docs = sample();
    backend
        .apply(docs.iter().cloned().map(IndexChange::Upsert).collect())
        .await
        .unwrap();
    let old_path = backend.live_path().unwrap();
    backend.begin_rebuild().await.unwrap();
    assert!(
        backend.begin_rebuild().await.is_err(),
        "one rebuild at a time"
    );
    backend
        .rebuild_apply(docs[..2].iter().cloned().map(IndexChange::Upsert).collect())
        .await
        .unwrap();
    // Meanwhile the old index answers in full, and a live change reaches both.
    assert_eq!(backend.document_count().await.unwrap(), 4);
    let live = doc(
        EntityType::Message,
        "Arrived during the rebuild",
        "",
        "2026-05-01T00:00:00Z",
        "mail",
    );
    backend
        .apply(vec![IndexChange::Upsert(live)])
        .await
        .unwrap();
    assert_eq!(backend.document_count().await.unwrap(), 5);
    backend.finish_rebuild().await.unwrap();
    assert_eq!(backend.document_count().await.unwrap(), 3);
    assert_eq!(titles(&backend, &query("arrived")).await.len(), 1);
    assert!(!old_path.exists(), "the old generation is removed");
    // The swap survives a restart.
    drop(backend);
    assert_eq!(open(dir.path()).document_count().await.unwrap(), 3);

    // An abandoned rebuild leaves the live index as it was.
    let backend = open(dir.path());
    backend.begin_rebuild().await.unwrap();
    backend.abandon_rebuild().await;
    assert_eq!(backend.document_count().await.unwrap(), 3);
}
