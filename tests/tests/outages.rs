//! NATS, and then PostgreSQL, restarted in the middle of a stream of items, each on a server
//! private to the test (restarting the machine's shared servers would break every other test):
//! the services ride it out, and every item ends up exactly once in PostgreSQL, on the data
//! stream and in the search index.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::time::Duration;

use secrecy::ExposeSecret;
use tributary::local::{LocalNats, LocalPostgres};
use tributary_e2e::{items, Servers, ServiceName, Stack};

const N: usize = 2_000;
/// Items published before the restart; the rest only after it, so the restart is mid-stream.
const BEFORE_RESTART: usize = 1_500;
/// Rows committed when the server is restarted: at least this many.
const RESTART_AT: i64 = 200;

/// Starts the five services on `servers`, publishes `N` persons of `instance`, runs `outage`
/// once some of them are stored and before all are published, then asserts each person once.
async fn stream_through<F, Fut>(
    servers: Servers,
    instance: &'static str,
    outage: F,
    check: impl FnOnce(&Stack),
) where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut stack = Stack::on(servers).await;
    stack
        .tuned_for_tests()
        // The items are published as a connector would, for an instance never installed: the
        // ETL's data:write check would dead-letter them all.
        .set("etl.check_data_write", false)
        .set("etl.batch_size", 25)
        .set("etl.concurrent_batches", 2)
        .set("etl.ack_wait_secs", 3)
        .set("search.ack_wait_secs", 3);
    stack.start_all().await;

    let people = items::people(instance, "heron", N);
    let mesh = stack.mesh().clone();
    let (restarted, after_restart) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(async move {
        mesh.publish_items(&people[..BEFORE_RESTART]).await;
        let _ = after_restart.await;
        mesh.publish_items(&people[BEFORE_RESTART..]).await;
    });

    let persons = format!("SELECT count(*) FROM source_record WHERE instance_id = '{instance}'");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stack.count(&persons).await < RESTART_AT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {RESTART_AT} rows committed in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    outage().await;
    eprintln!(
        "Restarted with {} of {N} rows committed.",
        stack.count(&persons).await
    );
    let _ = restarted.send(());
    publisher.await.unwrap();

    stack.assert_persons_once(instance, N, 180).await;
    stack.assert_all_running();
    check(&stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = LocalNats::start(dir.path(), 0).await.unwrap();
    let servers = Servers {
        nats_url: nats.url(),
        ..Servers::shared()
    };
    let nats = &mut nats;
    stream_through(
        servers,
        "crm-nats",
        move || async move {
            nats.restart().await.unwrap();
        },
        |stack| {
            // Each process lived through the outage: it lost NATS and reconnected.
            for service in ServiceName::ALL {
                let log = stack.log_text(service);
                assert!(
                    log.contains("Disconnected from NATS; reconnecting."),
                    "{service} never noticed NATS go away"
                );
                assert_eq!(log.matches("\"Service started.\"").count(), 1);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut postgres = LocalPostgres::start(dir.path(), 0).await.unwrap();
    let servers = Servers {
        pg_host: postgres.host().to_owned(),
        pg_port: postgres.port(),
        pg_user: postgres.user().to_owned(),
        pg_password: postgres.password().expose_secret().to_owned(),
        ..Servers::shared()
    };
    let postgres = &mut postgres;
    stream_through(
        servers,
        "crm-pg",
        move || async move {
            postgres.restart().await.unwrap();
        },
        |stack| {
            let retries = stack
                .log_text(ServiceName::Etl)
                .matches("Cannot write a batch; retrying.")
                .count();
            eprintln!("The ETL retried {retries} batch writes while PostgreSQL restarted.");
        },
    )
    .await;
}
