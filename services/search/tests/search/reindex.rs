//! `search.reindex` rebuilds the index from PostgreSQL: the same answers as the events gave,
//! with progress published as it goes, and a clear refusal when PostgreSQL is away.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tributary_kit::client::{CallError, MeshClient};
use tributary_kit::testing::RunningService;
use tributary_proto::requests::search::{StartReindex, StatsQuery};
use tributary_search::api::IndexStats;
use tributary_search::reindex::{progress_subject, ReindexPhase, ReindexProgress, ReindexStarted};
use uuid::Uuid;

use crate::support::*;

/// What a set of queries answers: for each, the total and every id found (on one page, since
/// hits of equal score may come in another order from another index layout).
async fn answers(mesh: &Harness) -> Vec<(usize, BTreeSet<Uuid>)> {
    let mut out = Vec::new();
    for mut params in [
        vec![("q", "")],
        vec![("q", "ada"), ("type", "person")],
        vec![("q", "engnie")],
        vec![("q", ""), ("type", "person")],
        vec![("q", ""), ("source", "files")],
        vec![("q", "notes"), ("from", "2026-02-01"), ("to", "2026-02-28")],
    ] {
        params.push(("limit", "100"));
        let results = mesh.search(&params).await;
        out.push((results.total, results.hits.iter().map(|h| h.id).collect()));
    }
    out
}

/// Stops the search service, removes its index and starts it again on an empty one.
async fn lose_the_index(mesh: &mut Harness) {
    mesh.stop_search().await;
    std::fs::remove_dir_all(mesh.env.config.data_dir.join("search")).unwrap();
    mesh.restart_search().await;
    assert_eq!(mesh.search(&[("q", "")]).await.total, 0);
}

/// Runs `search.reindex` on the embedded index to its end, which must be `Done`, and returns
/// every progress report it published.
async fn reindex(mesh: &Harness) -> Vec<ReindexProgress> {
    let client = mesh.client().clone();
    let mut progress = client
        .nats()
        .subscribe(progress_subject(mesh.subjects()))
        .await
        .unwrap();
    let started: ReindexStarted = client.call(&StartReindex {}).await.unwrap();
    assert_eq!(started.backend, "embedded");
    let mut seen = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), progress.next())
            .await
            .expect("progress within 30 s")
            .expect("a progress message");
        let report: ReindexProgress = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(report.job_id, started.job_id);
        seen.push(report.clone());
        if report.phase != ReindexPhase::Indexing {
            assert_eq!(report.phase, ReindexPhase::Done, "{seen:#?}");
            return seen;
        }
    }
}

/// A source whose records of a person are all deleted is not among her sources after a
/// reindex either.
#[tokio::test]
async fn reindex_gives_a_person_only_the_sources_that_still_hold_her() {
    let mut mesh = Harness::start().await;
    let v1 = "2026-03-01T10:00:00Z";
    let ada = |instance: &str, id: &str| {
        item(
            instance,
            "person",
            id,
            v1,
            json!({"display_name": "Ada", "emails": ["ada@example.org"]}),
        )
    };
    mesh.publish_items_one_by_one(&[ada("crm", "p1")]).await;
    mesh.wait_hits(&[("q", "ada"), ("source", "crm")], 1).await;
    mesh.publish_items_one_by_one(&[ada("phone", "x1")]).await;
    mesh.wait_hits(&[("q", "ada"), ("source", "phone")], 1)
        .await;
    mesh.publish_items_one_by_one(&[tombstone("phone", "person", "x1", "2026-03-02T00:00:00Z")])
        .await;
    mesh.wait_hits(&[("q", "ada"), ("source", "phone")], 0)
        .await;

    lose_the_index(&mut mesh).await;
    reindex(&mesh).await;

    let found = mesh.wait_hits(&[("q", "ada"), ("type", "person")], 1).await;
    assert_eq!(found.hits[0].sources, vec!["crm".to_owned()]);
    assert_eq!(
        mesh.search(&[("q", "ada"), ("source", "phone")])
            .await
            .total,
        0
    );
}

#[tokio::test]
async fn reindex_rebuilds_the_same_answers_from_postgresql_with_progress() {
    let mut mesh = Harness::start().await;
    let v1 = "2026-03-01T10:00:00Z";
    let mut items = vec![
        item(
            "crm",
            "person",
            "p1",
            v1,
            json!({"display_name": "Ada Lovelace", "emails": ["ada@example.org"]}),
        ),
        item(
            "phone",
            "person",
            "x1",
            v1,
            json!({"display_name": "Ada", "emails": ["ada@example.org"]}),
        ),
        item(
            "crm",
            "person",
            "p2",
            v1,
            json!({"display_name": "Charles Babbage"}),
        ),
        item(
            "files",
            "document",
            "gone",
            v1,
            json!({"title": "Deleted engine notes"}),
        ),
    ];
    for n in 0..40 {
        items.push(item(
            "files",
            "document",
            &format!("d{n}"),
            v1,
            json!({"title": format!("Engine notes {n}"), "content": "Notes on the difference engine",
                   "modified_at": format!("2026-02-{:02}T12:00:00Z", n % 28 + 1)}),
        ));
    }
    mesh.publish_items_one_by_one(&items).await;
    // Every item is in only at 43 hits; the tombstone comes after, so that 42 can only mean
    // it is applied too (with it in the same run, 42 also came and went before the last
    // document, when events come in as small batches as they arrive).
    mesh.wait_hits(&[("q", "")], 43).await;
    mesh.publish_items_one_by_one(&[tombstone(
        "files",
        "document",
        "gone",
        "2026-03-02T00:00:00Z",
    )])
    .await;
    mesh.wait_hits(&[("q", "")], 42).await;
    let before = answers(&mesh).await;
    assert_eq!(before[1].0, 1, "one merged Ada: {before:?}");

    // The index is lost; the events that built it were all acknowledged long ago.
    lose_the_index(&mut mesh).await;

    let seen = reindex(&mesh).await;
    let last = seen.last().expect("progress").clone();
    // Every row of the model, tombstones included (the deleted document, and the second Ada
    // when the ETL stored her before it merged the two).
    let pool = mesh.env.pool().await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM person) + (SELECT count(*) FROM document)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (last.indexed, last.total),
        (rows as u64, rows as u64),
        "{seen:#?}"
    );
    assert!(seen.iter().any(|p| p.entity_type.is_some()), "{seen:#?}");
    assert!(
        seen.windows(2).all(|w| w[0].indexed <= w[1].indexed),
        "{seen:#?}"
    );

    assert_eq!(answers(&mesh).await, before);
    // The merged person still carries both sources, read from the source table.
    let ada = mesh.search(&[("q", "ada"), ("type", "person")]).await;
    let mut sources = ada.hits[0].sources.clone();
    sources.sort();
    assert_eq!(sources, vec!["crm".to_owned(), "phone".to_owned()]);

    // Live events keep flowing into the rebuilt index.
    mesh.publish_items_one_by_one(&[item(
        "crm",
        "person",
        "p3",
        v1,
        json!({"display_name": "Grace Hopper"}),
    )])
    .await;
    mesh.wait_hits(&[("q", "hopper")], 1).await;
}

#[tokio::test]
async fn reindex_without_postgresql_is_refused_and_the_index_keeps_answering() {
    let mut env = env().await;
    // The search service runs without PostgreSQL; only a reindex needs it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    env.config.database.port = closed.local_addr().unwrap().port();
    drop(closed);
    env.config.database.acquire_timeout_secs = 1;
    let search = RunningService::start(tributary_search::build, env.config.clone()).await;
    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());
    let err = client.call(&StartReindex {}).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Api(e) if e.message.contains("PostgreSQL")),
        "{err}"
    );
    let stats: IndexStats = client.call(&StatsQuery {}).await.unwrap();
    assert_eq!((stats.documents, stats.reindexing), (0, false));
    search.stop().await;
}
