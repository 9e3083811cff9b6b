//! Starting the real ETL against this test's NATS prefix and database, and reading back
//! rows, events and dead letters; items go out, and rows are waited for, through kit's one
//! mesh handle ([`Mesh`]).

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use serde_json::{json, Value};
pub use tributary_kit::testing::Mesh;
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_kit::Config;
use tributary_proto::streams::StreamKey;
use tributary_proto::Subjects;

/// A test environment with the ETL's knobs turned down for speed.
pub async fn env() -> TestEnv {
    let mut env = TestEnv::new().await;
    env.config.etl.batch_wait_ms = 20;
    env.config.etl.ack_wait_secs = 2;
    env.config.etl.retry_initial_ms = 50;
    env.config.etl.retry_max_ms = 500;
    env.config.database.acquire_timeout_secs = 1;
    env
}

/// A running ETL service.
pub struct RunningEtl;

impl RunningEtl {
    /// Starts the real service with `config`.
    pub async fn start(config: Config) -> RunningService {
        RunningService::start(tributary_etl::build, config).await
    }
}

/// A connector item as JSON.
pub fn item(instance: &str, entity: &str, external_id: &str, version: &str, data: Value) -> Value {
    json!({
        "instance_id": instance,
        "entity_type": entity,
        "external_id": external_id,
        "source_modified_at": version,
        "data": data,
        "raw": {"source": "test", "id": external_id},
    })
}

/// A tombstone item.
pub fn tombstone(instance: &str, entity: &str, external_id: &str, version: &str) -> Value {
    json!({
        "instance_id": instance,
        "entity_type": entity,
        "external_id": external_id,
        "operation": "delete",
        "source_modified_at": version,
    })
}

/// Publishes raw bytes on an instance's subject and waits for JetStream to store them.
pub async fn publish_bytes(mesh: &Mesh, instance: &str, bytes: &[u8]) {
    mesh.publish_raw(&mesh.subjects().connector_items(instance), bytes.to_vec())
        .await;
}

/// One stored message of a stream: subject, headers and payload.
pub struct Stored {
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: Vec<u8>,
}

impl Stored {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }

    /// The event type, without the test's prefix.
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

/// Every message of a stream, in order.
pub async fn read_stream(mesh: &Mesh, key: StreamKey) -> Vec<Stored> {
    let mut stream = mesh
        .jetstream()
        .get_stream(key.name(mesh.subjects()))
        .await
        .expect("stream");
    let state = stream.info().await.expect("stream info").state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(Stored {
                subject: m.subject.to_string(),
                headers: m.headers,
                payload: m.payload.to_vec(),
            });
        }
    }
    out
}

/// Polls `check` until it returns `Some`, or fails the test after `secs` seconds naming `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the data stream holds `n` events (not counting barrier markers), and returns
/// them; fails if more arrive within a short settling time.
pub async fn data_events(mesh: &Mesh, n: usize) -> Vec<Stored> {
    let read = || async {
        read_stream(mesh, StreamKey::DataEvents)
            .await
            .into_iter()
            .filter(|e| e.json()["source"]["instance"] != "barrier")
            .collect::<Vec<_>>()
    };
    eventually(30, &format!("{n} data events"), || async {
        (read().await.len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = read().await;
    let types: Vec<String> = events.iter().map(Stored::event_type).collect();
    assert_eq!(
        events.len(),
        n,
        "expected exactly {n} data events, got {types:?}"
    );
    events
}

/// Publishes a marker person and waits until it is stored and the ETL has acked every item it
/// was given: everything published before it has been processed by then. (The marker alone
/// would not say so: its batch may commit before an earlier batch in flight beside it.)
pub async fn barrier(mesh: &Mesh, marker: &str) {
    mesh.publish_items(&[item(
        "barrier",
        "person",
        marker,
        "2026-01-01T00:00:00Z",
        json!({"display_name": marker}),
    )])
    .await;
    eventually(30, &format!("marker {marker}"), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM person WHERE display_name = $1")
            .bind(marker)
            .fetch_one(mesh.pool())
            .await
            .ok()?;
        (n == 1).then_some(())
    })
    .await;
    items_settled(mesh, 0).await;
}

/// Validates an event against its JSON Schema in proto/schemas/events/.
pub fn assert_matches_schema(event: &Value) {
    let event_type = event["type"].as_str().expect("type");
    let path = format!(
        "{}/../../proto/schemas/events/{event_type}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{event_type} does not match its schema: {errors:?}\n{event:#}"
    );
}

/// Waits until the `etl-items` consumer has delivered at least `min_delivered` messages and
/// has nothing pending or unacked, and returns its state.
pub async fn items_settled(mesh: &Mesh, min_delivered: u64) -> jetstream::consumer::Info {
    eventually(30, "every item to be acked", || async {
        let consumer = mesh
            .jetstream()
            .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                "etl-items",
                StreamKey::ConnectorItems.name(mesh.subjects()),
            )
            .await
            .ok()?;
        let info = consumer.cached_info().clone();
        (info.num_ack_pending == 0
            && info.num_pending == 0
            && info.delivered.consumer_sequence >= min_delivered)
            .then_some(info)
    })
    .await
}

/// Rows in a table of this test's database.
pub async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Asserts that `n` people were each stored once and announced once, with nothing left in the
/// outbox.
pub async fn assert_people_stored_and_announced_once(mesh: &Mesh, n: usize) {
    let pool = mesh.pool();
    let events = data_events(mesh, n).await;
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e.json()["entity_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "one Created per person");
    assert_eq!(count(pool, "person").await, n as i64);
    assert_eq!(count(pool, "source_record").await, n as i64);
    assert_eq!(count(pool, "outbox").await, 0);
}

/// A test with the ETL running: its environment (dropped last: it removes the database and
/// streams), its handle on the mesh (subjects, JetStream, a pool on its database) and the
/// service.
pub struct Started {
    pub env: TestEnv,
    pub mesh: Mesh,
    pub etl: RunningService,
}

/// Starts the ETL in a fresh environment.
pub async fn started() -> Started {
    let env = env().await;
    let etl = RunningEtl::start(env.config.clone()).await;
    Started {
        mesh: Mesh::of(&env).await,
        env,
        etl,
    }
}

/// A connector item's message as the pipeline hands it to the writer: decoded and normalised.
pub fn pending_item(
    normaliser: &tributary_etl::normalise::Normaliser,
    subject: &str,
    payload: &[u8],
) -> tributary_etl::store::PendingItem {
    tributary_etl::store::PendingItem {
        item: normaliser
            .normalise(normaliser.decode(subject, payload).unwrap())
            .unwrap(),
        traceparent: None,
    }
}

/// Connector items as the pipeline hands them to the writer, each from its instance's
/// subject.
pub fn pending_items(
    normaliser: &tributary_etl::normalise::Normaliser,
    subjects: &Subjects,
    items: &[Value],
) -> Vec<tributary_etl::store::PendingItem> {
    items
        .iter()
        .map(|item| {
            let instance = item["instance_id"].as_str().unwrap_or("none");
            pending_item(
                normaliser,
                &subjects.connector_items(instance),
                &serde_json::to_vec(item).unwrap(),
            )
        })
        .collect()
}

/// A migrated database of its own, its subjects, and a normaliser, to drive the writer.
pub async fn migrated() -> (
    TestEnv,
    Subjects,
    sqlx::PgPool,
    tributary_etl::normalise::Normaliser,
) {
    let env = env().await;
    let subjects = env.subjects();
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database)
        .await
        .unwrap();
    let normaliser =
        tributary_etl::normalise::Normaliser::new(subjects.clone(), phonenumber::country::Id::US);
    (env, subjects, pool, normaliser)
}
