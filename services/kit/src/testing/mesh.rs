//! [`Mesh`]: the one typed handle every test suite drives the mesh through, whether its
//! services run in the test's process ([`super::RunningService`]) or as processes of their
//! own (the end-to-end stack): install and enable plugin instances with the catalog's typed
//! requests, watch an event, publish connector items, and wait for rows in PostgreSQL.
//!
//! A suite's own harness keeps only what is its own (which services it starts, how it posts
//! a webhook or asks the search API) and hands the rest to this handle.

use std::marker::PhantomData;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::PgPool;
use tributary_proto::envelope::Envelope;
use tributary_proto::events::EventKind;
use tributary_proto::requests::plugins::{InstallRequest, InstanceView};
use tributary_proto::streams::StreamKey;
use tributary_proto::{ConnectorItem, Subjects};

use super::TestEnv;
use crate::client::MeshClient;

/// Who the handle's requests say they come from, in the plugin manager's audit log; also the
/// run named in the message id of the items it publishes.
pub const TEST_ACTOR: &str = "test";

/// How long a request of the handle waits for its answer: long enough for a loaded machine
/// running several suites at once.
pub const TEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Mesh::publish_items`] keeps trying when JetStream does not take the items (a
/// test restarting NATS under the services).
const PUBLISH_PATIENCE: Duration = Duration::from_secs(120);

/// How many items go out before their acknowledgements are awaited.
const PUBLISH_CHUNK: usize = 200;

/// How often a wait polls.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Which permissions [`Mesh::install`] accepts for the new instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accept {
    /// Every permission the plugin asks for (read from `plugins.info` first), as a user who
    /// accepts the install prompt does.
    Requested,
    /// Exactly these, as a user who grants less than the plugin asks for.
    Only(Vec<String>),
}

/// One test's handle on the mesh: its NATS connection, its subject prefix, the typed request
/// client over them, and (when the suite has one) a pool on its database.
///
/// Cloning is cheap (the connection and the pool are shared), so a test can hand a clone to a
/// task that publishes while the test watches.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// The test's own connection: every subscription, publish and request goes through it.
    nats: async_nats::Client,
    /// The test's subjects, under its own prefix, so nothing it does meets another test's
    /// traffic.
    subjects: Subjects,
    /// The typed requests of the catalog (`plugins.*`, `connector.*`, …) over `nats`.
    client: MeshClient,
    /// The test's database, for [`Mesh::count`] and [`Mesh::wait_for_rows`]; `None` for a
    /// suite that has none.
    pool: Option<PgPool>,
}

impl Mesh {
    /// A handle over `nats` on `subjects`, asking as [`TEST_ACTOR`] and waiting
    /// [`TEST_REQUEST_TIMEOUT`] for each answer; no database.
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        let client = MeshClient::new(nats.clone(), subjects.clone(), TEST_ACTOR.to_owned())
            .with_timeout(TEST_REQUEST_TIMEOUT);
        Self {
            nats,
            subjects,
            client,
            pool: None,
        }
    }

    /// A handle on `env`: a fresh connection to its NATS, its prefix, and a pool on its
    /// database.
    pub async fn of(env: &TestEnv) -> Self {
        Self::new(env.nats().await, env.subjects()).with_pool(env.pool().await)
    }

    /// The same handle, reading rows from `pool`.
    pub fn with_pool(mut self, pool: PgPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The same handle, its requests waiting `timeout` for each answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// The test's NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// JetStream on that connection.
    pub fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.nats.clone())
    }

    /// The test's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The typed request client: `client().call(&request)` for any request of the catalog,
    /// or its `plugins.*` conveniences.
    pub fn client(&self) -> &MeshClient {
        &self.client
    }

    /// The test's database; panics for a handle made without one.
    pub fn pool(&self) -> &PgPool {
        self.pool
            .as_ref()
            .unwrap_or_else(|| panic!("this test's mesh handle has no database (with_pool)"))
    }

    /// Installs `plugin` as `instance` with `config` (`plugins.install`), accepting the
    /// permissions `accept` says; not enabled. Panics, naming the instance, when the plugin
    /// manager refuses.
    pub async fn install(
        &self,
        plugin: &str,
        instance: &str,
        config: Value,
        accept: Accept,
    ) -> InstanceView {
        let accept_permissions = match accept {
            Accept::Requested => {
                self.client
                    .plugin(plugin)
                    .await
                    .unwrap_or_else(|e| panic!("plugins.info {plugin}: {e}"))
                    .permissions
            }
            Accept::Only(permissions) => permissions,
        };
        self.client
            .install(InstallRequest {
                plugin_id: plugin.to_owned(),
                instance_id: Some(instance.to_owned()),
                config: Some(config),
                accept_permissions,
            })
            .await
            .unwrap_or_else(|e| panic!("install {instance}: {e}"))
    }

    /// Enables `instance` (`plugins.enable`); panics when the plugin manager refuses.
    pub async fn enable(&self, instance: &str) -> InstanceView {
        self.client
            .enable(instance)
            .await
            .unwrap_or_else(|e| panic!("enable {instance}: {e}"))
    }

    /// Disables `instance` (`plugins.disable`); panics when the plugin manager refuses.
    pub async fn disable(&self, instance: &str) -> InstanceView {
        self.client
            .disable(instance)
            .await
            .unwrap_or_else(|e| panic!("disable {instance}: {e}"))
    }

    /// The events of one kind from now on, their data read as JSON; the subscription is in
    /// place on the server before this returns, so nothing published after it is missed.
    pub async fn watch(&self, kind: EventKind) -> Events {
        self.watch_as(kind).await
    }

    /// [`Mesh::watch`], each event's data read as `T`.
    pub async fn watch_as<T: DeserializeOwned>(&self, kind: EventKind) -> Events<T> {
        let subject = self.subjects.event(kind);
        let subscriber = self
            .nats
            .subscribe(subject.clone())
            .await
            .unwrap_or_else(|e| panic!("subscribe {subject}: {e}"));
        self.nats
            .flush()
            .await
            .unwrap_or_else(|e| panic!("flush the subscription to {subject}: {e}"));
        Events {
            subject,
            subscriber,
            data: PhantomData,
        }
    }

    /// Publishes connector items on their instances' subjects (`connector.items.<instance>`),
    /// as a connector does, and waits until JetStream has stored each.
    ///
    /// A publish JetStream does not take (NATS restarting) is tried again for up to two
    /// minutes; a typed [`ConnectorItem`] carries its `Nats-Msg-Id`, which makes the repeat
    /// harmless, JSON sent as it is carries no header.
    pub async fn publish_items<I: ItemMessage>(&self, items: &[I]) {
        let js = self.jetstream();
        let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
        for chunk in items.chunks(PUBLISH_CHUNK) {
            loop {
                match self.publish_chunk(&js, chunk).await {
                    Ok(()) => break,
                    Err(e) => {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "JetStream did not take the items within {PUBLISH_PATIENCE:?}: {e}"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }

    /// [`Mesh::publish_items`] one item at a time, each stored before the next goes out, so
    /// the services take them in one after another, as from a slow source, rather than as
    /// one burst they may split into concurrent batches.
    pub async fn publish_items_one_by_one<I: ItemMessage>(&self, items: &[I]) {
        for item in items {
            self.publish_items(std::slice::from_ref(item)).await;
        }
    }

    async fn publish_chunk<I: ItemMessage>(
        &self,
        js: &jetstream::Context,
        items: &[I],
    ) -> Result<(), String> {
        let mut acks = Vec::with_capacity(items.len());
        for item in items {
            let subject = self.subjects.connector_items(item.instance_id());
            let payload = item.payload().into();
            let published = match item.headers() {
                Some(headers) => js.publish_with_headers(subject, headers, payload).await,
                None => js.publish(subject, payload).await,
            };
            acks.push(published.map_err(|e| e.to_string())?);
        }
        for ack in acks {
            ack.await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Publishes `payload` as it is on `subject` (already prefixed) and waits until
    /// JetStream has stored it: for what no connector would send.
    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>) {
        self.jetstream()
            .publish(subject.to_owned(), payload.into())
            .await
            .unwrap_or_else(|e| panic!("publish on {subject}: {e}"))
            .await
            .unwrap_or_else(|e| panic!("JetStream does not store the message on {subject}: {e}"));
    }

    /// The bigint `sql` answers on the test's database; -1 when it fails (the server may be
    /// restarting).
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .unwrap_or(-1)
    }

    /// Waits up to `timeout` until `sql` (a query answering one bigint, such as a
    /// `count(*)`) answers `rows`; fails the test naming the query and its last answer.
    pub async fn wait_for_rows(&self, sql: &str, rows: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.count(sql).await;
            if got == rows {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{sql}` gave {got}, not {rows}, within {timeout:?}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// How many messages the test's streams hold on `subject` (unprefixed, such as
    /// `data.PersonCreated`).
    pub async fn stored_on(&self, subject: &str) -> u64 {
        let js = self.jetstream();
        let qualified = self.subjects.qualify(subject);
        for key in StreamKey::ALL {
            let Ok(stream) = js.get_stream(key.name(&self.subjects)).await else {
                continue;
            };
            let Ok(mut subjects) = stream.info_with_subjects(qualified.clone()).await else {
                continue;
            };
            if let Some(Ok((_, count))) = subjects.next().await {
                return count as u64;
            }
        }
        0
    }

    /// The payloads `stream` holds on `subject` (unprefixed), oldest first, once it holds at
    /// least `at_least` of them (waiting up to 10 s: a core-NATS publish is stored a moment
    /// after it is sent).
    pub async fn payloads_on(
        &self,
        stream: StreamKey,
        subject: &str,
        at_least: u64,
    ) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut stored = self.stored_on(subject).await;
        while stored < at_least && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stored = self.stored_on(subject).await;
        }
        let js = self.jetstream();
        let Ok(stream) = js.get_stream(stream.name(&self.subjects)).await else {
            return Vec::new();
        };
        let config = jetstream::consumer::pull::OrderedConfig {
            filter_subject: self.subjects.qualify(subject),
            ..Default::default()
        };
        let Ok(consumer) = stream.create_consumer(config).await else {
            return Vec::new();
        };
        let Ok(messages) = consumer.messages().await else {
            return Vec::new();
        };
        let taken = messages
            .take(stored as usize)
            .filter_map(|m| async move { m.ok().map(|m| m.payload.to_vec()) });
        tokio::time::timeout(Duration::from_secs(10), taken.collect())
            .await
            .unwrap_or_default()
    }
}

/// A connector item [`Mesh::publish_items`] can publish: a typed [`ConnectorItem`], as a
/// connector sends it, or any JSON value, as a test that sends what no connector would does.
pub trait ItemMessage {
    /// The instance on whose items subject it goes.
    fn instance_id(&self) -> &str;
    /// The headers it is published with; `None` for none at all.
    fn headers(&self) -> Option<HeaderMap>;
    /// The message body.
    fn payload(&self) -> Vec<u8>;
}

impl ItemMessage for ConnectorItem {
    fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Its `Nats-Msg-Id` (published as part of the run [`TEST_ACTOR`]) and `traceparent`.
    fn headers(&self) -> Option<HeaderMap> {
        Some(ConnectorItem::headers(self, TEST_ACTOR))
    }

    fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self)
            .unwrap_or_else(|e| panic!("cannot encode item {}: {e}", self.external_id))
    }
}

impl ItemMessage for Value {
    /// Its `instance_id` field, `none` when it has none.
    fn instance_id(&self) -> &str {
        self["instance_id"].as_str().unwrap_or("none")
    }

    fn headers(&self) -> Option<HeaderMap> {
        None
    }

    fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|e| panic!("cannot encode an item: {e}"))
    }
}

/// The events of one kind a test watches ([`Mesh::watch`]), each read as an [`Envelope`]
/// whose data is a `T` (JSON unless asked otherwise).
#[derive(Debug)]
pub struct Events<T = Value> {
    /// The prefixed subject, to name it when an event does not come.
    subject: String,
    subscriber: async_nats::Subscriber,
    data: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Events<T> {
    /// The next event within `within`; `None` when none comes. Panics on a message that is
    /// no envelope of `T`: on an event subject that is a bug to see, not to skip.
    pub async fn try_next(&mut self, within: Duration) -> Option<Envelope<T>> {
        let message = tokio::time::timeout(within, self.subscriber.next())
            .await
            .ok()??;
        Some(Envelope::from_slice(&message.payload).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: {}",
                self.subject,
                String::from_utf8_lossy(&message.payload)
            )
        }))
    }

    /// The next event within `within`; fails the test naming the subject when none comes.
    pub async fn next(&mut self, within: Duration) -> Envelope<T> {
        match self.try_next(within).await {
            Some(event) => event,
            None => panic!("no {} within {within:?}", self.subject),
        }
    }

    /// The next event within `within` whose source is `instance`, passing over the others'.
    pub async fn next_of(&mut self, instance: &str, within: Duration) -> Envelope<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next(left).await {
                Some(event) if event.source.instance.as_deref() == Some(instance) => {
                    return event;
                }
                Some(_) => continue,
                None => panic!("no {} of {instance} within {within:?}", self.subject),
            }
        }
    }

    /// The events that satisfy `keep`, until there are `want` of them or `within` has passed;
    /// what was collected (fewer when the time ran out).
    pub async fn collect(
        &mut self,
        want: usize,
        within: Duration,
        keep: impl Fn(&Envelope<T>) -> bool,
    ) -> Vec<Envelope<T>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut found = Vec::new();
        while found.len() < want {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match self.try_next(left).await {
                Some(event) if keep(&event) => found.push(event),
                Some(_) => {}
                None => break,
            }
        }
        found
    }
}
