//! The plugin manager process SIGKILLed while install requests over its admin API are in
//! flight, and started again: each instance is either installed whole (its row, its sealed
//! secret, its two audit entries and one `plugins.PluginInstalled` announced through the
//! outbox) or not at all; no install answered 201 is lost; installing each again answers 409
//! for those there and 201 for the others, and then every instance is there once, announced
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tributary_e2e::{twilio, ServiceName, Stack};
use tributary_kit::outbox::OutboxEvent;
use tributary_proto::events::InstanceState;
use tributary_proto::manifest::PluginType;
use tributary_proto::streams::StreamKey;

const PLUGIN: &str = "tributary.twilio-sms";
/// Instances asked for.
const M: usize = 100;
/// Install requests in flight at once.
const WORKERS: usize = 4;
/// Installs answered 201 when the plugin manager is killed: at least this many.
const KILL_AT: usize = 20;

fn instance(i: usize) -> String {
    format!("sms-kill-{i:03}")
}

/// The auth token (a secret) instance `i` is installed with, both times.
fn auth_token(i: usize) -> String {
    format!("token-{i:03}-of-the-drill")
}

/// How one install request ended before the kill.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The plugin manager answered with this status.
    Answered(u16),
    /// It never answered: killed with the request in flight.
    NoAnswer,
}

/// Per instance: rows, sealed secrets, audit entries by action, and `PluginInstalled` events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Footprint {
    rows: i64,
    secrets: i64,
    audit: BTreeMap<String, i64>,
    events: usize,
}

impl Footprint {
    /// Installed whole: one row, its secret, `install` and `accept_permissions` audited once
    /// each, announced once.
    fn whole() -> Self {
        Self {
            rows: 1,
            secrets: 1,
            audit: BTreeMap::from([
                ("accept_permissions".to_owned(), 1),
                ("install".to_owned(), 1),
            ]),
            events: 1,
        }
    }
}

/// What the database and the plugin events stream hold of each drill instance.
async fn footprints(stack: &Stack) -> BTreeMap<String, Footprint> {
    let mut out: BTreeMap<String, Footprint> = (0..M)
        .map(|i| (instance(i), Footprint::default()))
        .collect();
    let pool = stack.pool();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, count(*) FROM plugin_instance WHERE id LIKE 'sms-kill-%' GROUP BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, n) in rows {
        out.entry(id).or_default().rows = n;
    }
    let secrets: Vec<(String, i64)> = sqlx::query_as(
        "SELECT instance_id, count(*) FROM plugin_secret WHERE instance_id LIKE 'sms-kill-%' \
         GROUP BY instance_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, n) in secrets {
        out.entry(id).or_default().secrets = n;
    }
    let audit: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT instance_id, action, count(*) FROM plugin_audit \
         WHERE instance_id LIKE 'sms-kill-%' GROUP BY instance_id, action",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (id, action, n) in audit {
        out.entry(id).or_default().audit.insert(action, n);
    }
    for event in stack.stream_messages(StreamKey::PluginEvents).await {
        assert_eq!(
            event.subject, "plugins.PluginInstalled",
            "only installs: {:?}",
            event.json
        );
        let id = event.json["data"]["instance_id"]
            .as_str()
            .unwrap()
            .to_owned();
        out.entry(id).or_default().events += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_manager_killed_during_installs_leaves_each_instance_whole_or_absent() {
    let mut stack = Stack::new().await;
    stack.start_all().await;
    let api = stack.admin_api();
    let permissions = api.permissions(PLUGIN).await.unwrap();

    // WORKERS install requests in flight at a time, one instance each, until the process is
    // gone; the KILL_AT-th 201 wakes the test.
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let outcomes: Arc<Mutex<BTreeMap<usize, Outcome>>> = Arc::default();
    let enough = Arc::new(tokio::sync::Notify::new());
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (api, permissions) = (api.clone(), permissions.clone());
            let (next, created, outcomes, enough) = (
                next.clone(),
                created.clone(),
                outcomes.clone(),
                enough.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= M {
                        return;
                    }
                    let answer = api
                        .install(
                            PLUGIN,
                            &instance(i),
                            twilio::config(&auth_token(i)),
                            &permissions,
                        )
                        .await;
                    let outcome = match answer {
                        Ok((status, _)) => Outcome::Answered(status),
                        Err(_) => Outcome::NoAnswer,
                    };
                    outcomes.lock().unwrap().insert(i, outcome.clone());
                    match outcome {
                        Outcome::Answered(201) => {
                            if created.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AT {
                                enough.notify_one();
                            }
                        }
                        Outcome::Answered(_) => {}
                        // The process is gone: no more requests.
                        Outcome::NoAnswer => return,
                    }
                }
            })
        })
        .collect();

    tokio::time::timeout(std::time::Duration::from_secs(60), enough.notified())
        .await
        .unwrap_or_else(|_| panic!("fewer than {KILL_AT} installs answered in 60 s"));
    let pid = stack.process(ServiceName::PluginManager).pid();
    stack.kill(ServiceName::PluginManager);
    // What the killed process left in the outbox: events committed and not yet published,
    // and events published whose rows it had not deleted yet (published again on restart).
    let left: BTreeSet<String> = sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT events FROM outbox WHERE emitter = 'plugin-manager'",
    )
    .fetch_all(stack.pool())
    .await
    .unwrap()
    .iter()
    .flat_map(|row| serde_json::from_slice::<Vec<OutboxEvent>>(row).unwrap())
    .map(|event| event.event_id.to_string())
    .collect();
    let on_stream: BTreeSet<String> = stack
        .stream_messages(StreamKey::PluginEvents)
        .await
        .iter()
        .filter_map(|e| e.json["id"].as_str().map(str::to_owned))
        .collect();
    let republished = left.intersection(&on_stream).count();
    let unpublished = left.len() - republished;
    for worker in workers {
        worker.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let answered: BTreeSet<usize> = outcomes
        .iter()
        .filter(|(_, o)| **o == Outcome::Answered(201))
        .map(|(i, _)| *i)
        .collect();
    let in_flight: BTreeSet<usize> = outcomes
        .iter()
        .filter(|(_, o)| **o == Outcome::NoAnswer)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        answered.len() + in_flight.len(),
        outcomes.len(),
        "every install answered 201 or not at all: {outcomes:?}"
    );
    assert!(
        answered.len() < M && !in_flight.is_empty(),
        "killed with installs in flight: {} of {M} answered, {} in flight",
        answered.len(),
        in_flight.len()
    );
    eprintln!(
        "The plugin manager was killed with {} of {M} installs answered 201, {} in flight \
         (no answer) and {} never sent; {} PluginInstalled announced; in the outbox \
         {unpublished} events committed and not yet published, {republished} published and \
         not yet cleared.",
        answered.len(),
        in_flight.len(),
        M - outcomes.len(),
        on_stream.len()
    );

    // Another plugin manager process announces what the killed one committed and did not
    // publish, once.
    stack.start(ServiceName::PluginManager).await;
    assert_ne!(stack.process(ServiceName::PluginManager).pid(), pid);
    stack
        .wait_for_rows(
            "SELECT count(*) FROM outbox",
            0,
            std::time::Duration::from_secs(30),
        )
        .await;
    let after_restart = footprints(&stack).await;
    let mut installed = BTreeSet::new();
    for (i, id) in (0..M).map(|i| (i, instance(i))) {
        let footprint = &after_restart[&id];
        if *footprint == Footprint::whole() {
            installed.insert(i);
        } else {
            assert_eq!(
                *footprint,
                Footprint::default(),
                "{id} is neither installed whole nor absent"
            );
        }
    }
    assert!(
        answered.is_subset(&installed),
        "an install answered 201 is lost: {:?}",
        answered.difference(&installed).collect::<Vec<_>>()
    );
    let sent: BTreeSet<usize> = outcomes.keys().copied().collect();
    assert!(
        installed.is_subset(&sent),
        "an instance never asked for is installed"
    );
    let in_flight_installed = in_flight.intersection(&installed).count();
    eprintln!(
        "After the restart: {} installed whole ({} of the {} in flight), {} absent; {} \
         PluginInstalled on the stream.",
        installed.len(),
        in_flight_installed,
        in_flight.len(),
        M - installed.len(),
        stack.stream_len(StreamKey::PluginEvents).await
    );

    // Installing every instance again: 409 where it is, 201 where it is not.
    let api = stack.admin_api();
    let (mut conflicts, mut created_again) = (0, 0);
    for i in 0..M {
        let (status, body) = api
            .install(
                PLUGIN,
                &instance(i),
                twilio::config(&auth_token(i)),
                &permissions,
            )
            .await
            .unwrap();
        if installed.contains(&i) {
            assert_eq!(status, 409, "{} exists: {body}", instance(i));
            conflicts += 1;
        } else {
            assert_eq!(status, 201, "{} is absent: {body}", instance(i));
            created_again += 1;
        }
    }
    stack
        .wait_for_rows(
            "SELECT count(*) FROM outbox",
            0,
            std::time::Duration::from_secs(30),
        )
        .await;

    // Now every instance once, whole, announced once, its secret the one it was sent.
    let end = footprints(&stack).await;
    assert_eq!(end.len(), M, "no other instance: {:?}", end.keys());
    for (id, footprint) in &end {
        assert_eq!(*footprint, Footprint::whole(), "{id}");
    }
    let events = stack.stream_messages(StreamKey::PluginEvents).await;
    let event_ids: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e.json["id"].as_str())
        .collect();
    assert_eq!(
        (events.len(), event_ids.len()),
        (M, M),
        "one event per instance"
    );
    for i in 0..M {
        let runtime = stack
            .client()
            .runtime(PluginType::Channel, &instance(i))
            .await
            .unwrap();
        assert_eq!(
            runtime.config["authToken"],
            auth_token(i),
            "{}'s sealed secret",
            instance(i)
        );
        assert_eq!(runtime.state, InstanceState::Installed);
    }
    eprintln!(
        "Installed again: {conflicts} answered 409 (there), {created_again} answered 201; {M} \
         instances, {M} rows, {M} secrets, {} audit entries, {} PluginInstalled events.",
        end.values()
            .map(|f| f.audit.values().sum::<i64>())
            .sum::<i64>(),
        events.len()
    );
    stack.assert_all_running();
}
