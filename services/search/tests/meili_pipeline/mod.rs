//! Batches in flight: several document tasks enqueued at once, each batch answered (so acked
//! by the indexer) only once its task and every one before it succeeded, in order; a failed
//! task in the middle taints the batches behind it, which are applied again, so nothing is lost
//! and no older version wins.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tributary_search::backend::meilisearch::MeilisearchBackend;
use tributary_search::backend::{ApplyReport, SearchBackend, SearchError};
use tributary_search::document::IndexChange;
use uuid::Uuid;

use super::meili_mock::MockMeili;
use super::{backend, micros, upsert, INDEX, KEY};

type Answers = mpsc::UnboundedReceiver<(usize, Result<ApplyReport, SearchError>)>;

/// Polls `check` every 5 ms for up to 5 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends each batch as the indexer's concurrent batches would, each once the one before it is
/// enqueued (so their order is known); every answer goes to the receiver with its batch number.
async fn send_all(
    mock: &MockMeili,
    backend: &Arc<MeilisearchBackend>,
    batches: Vec<Vec<IndexChange>>,
) -> Answers {
    let (tx, rx) = mpsc::unbounded_channel();
    let before = mock.held();
    for (i, batch) in batches.into_iter().enumerate() {
        let (backend, tx) = (backend.clone(), tx.clone());
        tokio::spawn(async move { tx.send((i, backend.apply(batch).await)).unwrap() });
        eventually("the batch's task is enqueued", || {
            mock.held() == before + i + 1
        })
        .await;
    }
    rx
}

/// Waits until the poller has asked about the tasks twice more, then asserts that nothing was
/// answered.
async fn still_unanswered(mock: &MockMeili, answers: &mut Answers) {
    let polls = mock.task_polls().len();
    eventually("the poller polls", || mock.task_polls().len() >= polls + 2).await;
    assert!(answers.try_recv().is_err(), "no batch is answered yet");
}

async fn prepared_and_held() -> (MockMeili, Arc<MeilisearchBackend>) {
    let mock = MockMeili::start(Some(KEY)).await;
    let backend = Arc::new(backend(&mock));
    backend.prepare().await.unwrap();
    mock.hold();
    (mock, backend)
}

#[tokio::test]
async fn batches_in_flight_are_answered_in_order_only_after_their_tasks_succeed() {
    // Six batches are enqueued before any task has run; each is answered only once its task
    // succeeded, in order; a later batch's plan already counts the earlier ones' writes.
    let (mock, backend) = prepared_and_held().await;
    let ids: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut batches: Vec<Vec<IndexChange>> = ids
        .iter()
        .map(|id| vec![upsert(*id, "2026-01-02T00:00:00Z", &["mail"])])
        .collect();
    batches[1].push(upsert(ids[0], "2026-01-01T00:00:00Z", &["older"]));

    let mut answers = send_all(&mock, &backend, batches).await;
    assert_eq!(mock.held(), 6, "six tasks in flight at once");
    still_unanswered(&mock, &mut answers).await;

    mock.process(2);
    for want in 0..2 {
        let (i, answer) = answers.recv().await.unwrap();
        assert_eq!(i, want);
        let stale = usize::from(i == 1);
        assert_eq!(answer.unwrap(), ApplyReport { applied: 1, stale });
    }
    still_unanswered(&mock, &mut answers).await;

    mock.process(4);
    let mut order = Vec::new();
    for _ in 0..4 {
        let (i, answer) = answers.recv().await.unwrap();
        answer.unwrap();
        order.push(i);
    }
    assert_eq!(order, [2, 3, 4, 5]);
    let held = mock.documents(INDEX);
    assert_eq!(held.len(), 6);
    assert_eq!(
        held[&ids[0].to_string()]["version"],
        micros("2026-01-02T00:00:00Z"),
        "the older change in flight behind the newer was stale"
    );
}

#[tokio::test]
async fn a_failed_task_holds_the_batches_behind_it_which_apply_again_in_the_right_order() {
    // The middle batch's task fails; the batch behind it planned an older change as stale
    // against the failed write, so it is answered with a transient error even though its own
    // task succeeded. Applied again (as the indexer retries it) and the failed one after it
    // (halved, then alone), every document ends at its newest version.
    let (mock, backend) = prepared_and_held().await;
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let first = vec![upsert(a, "2026-01-01T00:00:00Z", &["mail"])];
    let failing = vec![upsert(b, "2026-01-02T00:00:00Z", &["mail"])];
    let behind = vec![
        upsert(b, "2026-01-01T00:00:00Z", &["chat"]),
        upsert(c, "2026-01-01T00:00:00Z", &["chat"]),
    ];
    let mut answers = send_all(&mock, &backend, vec![first]).await;
    mock.fail_next(
        "documentAdditionOrUpdate",
        "internal",
        "No space left on device",
    );
    let mut rest = send_all(&mock, &backend, vec![failing.clone(), behind.clone()]).await;
    assert_eq!(mock.held(), 3);

    mock.process(3);
    assert!(answers.recv().await.unwrap().1.is_ok());
    let (_, failed) = rest.recv().await.unwrap();
    assert!(
        matches!(&failed, Err(SearchError::TaskFailed { code, .. }) if code == "internal"),
        "{failed:?}"
    );
    let (_, tainted) = rest.recv().await.unwrap();
    let err = tainted.unwrap_err();
    assert!(
        matches!(err, SearchError::EarlierTaskFailed { .. }),
        "{err:?}"
    );
    assert!(
        err.is_transient(),
        "the batch behind is tried again, never dead-lettered"
    );
    let held = mock.documents(INDEX);
    assert!(
        !held.contains_key(&b.to_string()),
        "neither version of b is written yet"
    );

    // Applied again: the batch behind first (its retry comes sooner), then the failed one.
    for batch in [behind, failing] {
        let mut answer = send_all(&mock, &backend, vec![batch]).await;
        mock.process(1);
        answer.recv().await.unwrap().1.unwrap();
    }
    let held = mock.documents(INDEX);
    assert_eq!(
        held[&b.to_string()]["version"],
        micros("2026-01-02T00:00:00Z")
    );
    assert_eq!(
        held[&b.to_string()]["sources"],
        serde_json::json!(["chat", "mail"])
    );
    assert_eq!(
        held[&c.to_string()]["version"],
        micros("2026-01-01T00:00:00Z")
    );
    assert!(held.contains_key(&a.to_string()));
}

#[tokio::test]
async fn a_batch_that_writes_nothing_waits_for_the_tasks_it_counted_on() {
    // Every change of the second batch is stale against the first batch's write in flight: it
    // enqueues nothing, and is answered only after the first batch's task succeeded.
    let (mock, backend) = prepared_and_held().await;
    let id = Uuid::now_v7();
    let mut answers = send_all(
        &mock,
        &backend,
        vec![vec![upsert(id, "2026-01-02T00:00:00Z", &["mail"])]],
    )
    .await;
    let (tx, mut stale) = mpsc::unbounded_channel();
    let behind = backend.clone();
    tokio::spawn(async move {
        let older = vec![upsert(id, "2026-01-01T00:00:00Z", &["mail"])];
        tx.send(behind.apply(older).await).unwrap()
    });
    still_unanswered(&mock, &mut answers).await;
    assert!(stale.try_recv().is_err(), "the stale batch waits too");
    assert_eq!(mock.held(), 1, "it enqueued nothing");

    mock.process(1);
    answers.recv().await.unwrap().1.unwrap();
    let report = stale.recv().await.unwrap().unwrap();
    assert_eq!(
        report,
        ApplyReport {
            applied: 0,
            stale: 1
        }
    );
}
