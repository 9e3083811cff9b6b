//! deploy/nats-server.conf held against the real services. Each test starts its own
//! `nats-server -c deploy/nats-server.conf -a 127.0.0.1 -p <free port> -m -1` with the
//! password variables and `NATS_STORE_DIR` (a temporary directory) in its environment, and
//! runs the services in this process, each as its own NATS user, with a database of its own.
//!
//! - Everything the five services do in a real flow is allowed: a connector instance
//!   installed and enabled with the `tributary` CLI as `admin` syncs a folder, the ETL writes
//!   it and announces `data.DocumentCreated`, the search service indexes it; a person item, a
//!   signed webhook and a send go the same way; every micro-service endpoint answers; and
//!   nats-server logged no violation.
//! - What belongs to another is refused, each with a message naming the user and the subject:
//!   publishing another service's events or items, asking for `plugins.runtime`'s secrets
//!   or `plugins.token`'s access tokens (even the connector service, about channels, and the
//!   reverse),
//!   answering another's requests, reading another's inbox, touching the search service's
//!   consumer; an unknown user or a wrong password is refused at connect.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};
use tributary_kit::client::MeshClient;
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_kit::{Config, KitError, ServiceRuntime};
use tributary_plugin_sdk::signatures::standard_webhooks;
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::events::EventKind;
use tributary_proto::requests::channel::{RoutesQuery, SendMessage};
use tributary_proto::requests::plugins::InstallRequest;
use tributary_proto::requests::search::SearchQuery;
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::{ServiceName, Subjects};

/// Every user deploy/nats-server.conf defines.
const USERS: [&str; 8] = [
    "plugin-manager",
    "connector",
    "etl",
    "channel",
    "search",
    "admin",
    "subscriber",
    "provision",
];

/// The users that run in a deployment and may be compromised: every one but `provision`,
/// which runs once before them.
const RUNNING_USERS: [&str; 7] = [
    "plugin-manager",
    "connector",
    "etl",
    "channel",
    "search",
    "admin",
    "subscriber",
];

/// The consumer the operator provisions for their own program ([[nats.consumers]]).
const OWN_CONSUMER: &str = "my-program";

/// Where the account APPS (the subscriber's) imports TRIBUTARY's JetStream API.
const APPS_JS_API: &str = "JS.TRIBUTARY.API";

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The requests only the services running instances (the connector and channel users) may
/// send: secrets, access tokens and health, as the connector asks them.
const SERVICE_ONLY_REQUESTS: [&str; 3] = [
    "plugins.runtime.connector",
    "plugins.token.connector",
    "plugins.heartbeat.connector",
];

/// The health reports each service running instances sends about the instances of its own
/// plugin type only: a connector service marking a channel instance failed (or keeping it
/// looking alive) is refused by nats-server, and by the plugin manager should it get there.
const HEALTH_REQUESTS: [(&str, &str); 2] = [
    ("plugins.heartbeat.connector", "connector"),
    ("plugins.heartbeat.channel", "channel"),
];

/// The requests that answer with what a plugin must never be seen to hold outside its
/// service: `plugins.runtime`'s decrypted secrets, `plugins.token`'s access tokens, each
/// asked by the service running that type of plugin only.
const SECRET_REQUESTS: [(&str, &str); 4] = [
    ("plugins.runtime.connector", "connector"),
    ("plugins.token.connector", "connector"),
    ("plugins.runtime.channel", "channel"),
    ("plugins.token.channel", "channel"),
];

/// The ETL's people requests: what the endpoint listens on, and who may ask on which subject.
/// A change ends in the NATS user asking, which the ETL records as who decided, so each may
/// be sent by that user alone: `admin` sending one as `plugin-manager` (or the reverse) would
/// put a decision under another's name.
const PEOPLE_REQUESTS: [(&str, &str, &str); 9] = [
    ("etl.people.show", "etl.people.show", "admin"),
    (
        "etl.people.suggestions",
        "etl.people.suggestions",
        "plugin-manager",
    ),
    ("etl.people.shared", "etl.people.shared", "admin"),
    ("etl.people.unmerge.*", "etl.people.unmerge.admin", "admin"),
    ("etl.people.merge.*", "etl.people.merge.admin", "admin"),
    ("etl.people.decide.*", "etl.people.decide.admin", "admin"),
    (
        "etl.people.unmerge.*",
        "etl.people.unmerge.plugin-manager",
        "plugin-manager",
    ),
    (
        "etl.people.merge.*",
        "etl.people.merge.plugin-manager",
        "plugin-manager",
    ),
    (
        "etl.people.decide.*",
        "etl.people.decide.plugin-manager",
        "plugin-manager",
    ),
];

/// The variable deploy/nats-server.conf reads a user's password from.
fn password_var(user: &str) -> String {
    format!("NATS_{}_PASSWORD", user.to_uppercase().replace('-', "_"))
}

/// A nats-server running deploy/nats-server.conf, killed (and its store removed) on drop.
struct NatsServer {
    child: Child,
    dir: PathBuf,
    url: String,
    passwords: HashMap<&'static str, String>,
}

impl NatsServer {
    async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("tributary-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("store")).unwrap();
        let port = tributary::local::free_port().unwrap();
        let log = std::fs::File::create(dir.join("nats-server.log")).unwrap();
        // Letters and digits, starting with a letter, as the file's header asks.
        let passwords: HashMap<&'static str, String> = USERS
            .iter()
            .map(|u| (*u, format!("p{}", uuid::Uuid::new_v4().simple())))
            .collect();
        let mut command = Command::new("nats-server");
        command
            .arg("-c")
            .arg(repo_path("deploy/nats-server.conf"))
            // The file's port and monitoring port are a deployment's; these are ours.
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-m", "-1"])
            .env("NATS_STORE_DIR", dir.join("store"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (user, password) in &passwords {
            command.env(password_var(user), password);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nats-server (is it on the PATH?): {e}"));
        let mut server = NatsServer {
            child,
            dir,
            url: format!("nats://127.0.0.1:{port}"),
            passwords,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "nats-server -c deploy/nats-server.conf stopped at start-up ({status}):\n{}",
                    self.log()
                );
            }
            if self.connect("admin").await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server does not accept `admin` within 15 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn password(&self, user: &str) -> String {
        self.passwords[user].clone()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats-server.log")).unwrap_or_default()
    }

    /// The permission violations nats-server has logged.
    fn violations(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("Violation"))
            .map(str::to_owned)
            .collect()
    }

    /// A client as `user`, with its own inbox as the services have.
    async fn connect(&self, user: &str) -> Result<User, async_nats::ConnectError> {
        self.connect_with(user, &self.password(user)).await
    }

    async fn connect_with(
        &self,
        user: &str,
        password: &str,
    ) -> Result<User, async_nats::ConnectError> {
        let refusals: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = refusals.clone();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(user.to_owned(), password.to_owned())
            .custom_inbox_prefix(tributary_kit::nats::inbox_prefix(user))
            .connection_timeout(Duration::from_secs(2))
            .event_callback(move |event| {
                let recorded = recorded.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        recorded.lock().unwrap().push(e.to_string());
                    }
                }
            })
            .connect(self.url.as_str())
            .await?;
        Ok(User {
            name: user.to_owned(),
            client,
            refusals,
        })
    }

    /// `env`'s configuration, on this server with no subject prefix (the server is this
    /// test's alone), as `user`.
    fn config(&self, env: &TestEnv, user: &str) -> Config {
        let mut config = env.config.clone();
        config.nats.url = self.url.clone();
        config.nats.subject_prefix = String::new();
        config.nats.user = user.to_owned();
        config.nats.password = SecretString::from(self.password(user));
        config.etl.batch_wait_ms = 20;
        config.search.batch_wait_ms = 20;
        config.connector.reconcile_interval_secs = 1;
        config.channel.reconcile_interval_secs = 1;
        config
    }

    /// Provisions the streams and consumers as `provision`, with `env`'s settings (and a
    /// consumer of the data events for your own program), as compose's nats-provision
    /// service and `tributary up` do before any service starts.
    async fn provision(&self, env: &TestEnv) -> Config {
        let mut config = self.config(env, "provision");
        config.nats.consumers = vec![tributary_kit::provision::AppConsumer {
            name: OWN_CONSUMER.into(),
            stream: tributary_kit::provision::AppStream::DataEvents,
            filter_subject: None,
        }];
        tributary_kit::provision::provision_all(&config)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "provisioning as `provision` fails: {e}\nnats-server refused: {:#?}",
                    self.violations()
                )
            });
        config
    }

    /// Starts a service as its own user; a service that cannot start fails the test with
    /// what nats-server refused it.
    async fn start_service<B, Fut>(&self, env: &TestEnv, user: &str, build: B) -> RunningService
    where
        B: FnOnce(Config) -> Fut,
        Fut: std::future::Future<Output = Result<ServiceRuntime, KitError>>,
    {
        let build = |config| async move {
            Ok(build(config).await.unwrap_or_else(|e| {
                panic!(
                    "the {user} service does not start as NATS user `{user}`: {e}\nnats-server refused: {:#?}",
                    self.violations()
                )
            }))
        };
        RunningService::start(build, self.config(env, user)).await
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client connected as one user, with the refusals the server sent it.
struct User {
    name: String,
    client: async_nats::Client,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl User {
    fn jetstream(&self) -> jetstream::Context {
        jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .build(self.client.clone())
    }

    /// JetStream as the subscriber reaches it, through APPS's imports.
    fn apps_jetstream(&self) -> jetstream::Context {
        jetstream::context::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .api_prefix(APPS_JS_API)
            .build(self.client.clone())
    }

    /// A subscription, in place on the server before it returns.
    async fn watch(&self, subject: &str) -> async_nats::Subscriber {
        let subscriber = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.client.flush().await.unwrap();
        subscriber
    }

    /// Waits up to 3 s for the server to refuse `what` on `subject` (a permission violation
    /// for "Publish" or "Subscription"); fails naming the user when it does not.
    async fn expect_refused(&self, what: &str, subject: &str) {
        let needle = format!("{what} to \"{subject}\"");
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if self
                .refusals
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.contains("Permissions Violation") && r.contains(&needle))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "NATS user `{}` was not refused {} `{subject}`; deploy/nats-server.conf must not allow it (refusals it got: {:?})",
                self.name,
                if what == "Publish" { "publishing to" } else { "subscribing to" },
                self.refusals.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes to `subject` and expects the server to refuse it.
    async fn publish_refused(&self, subject: &str) {
        self.client
            .publish(subject.to_owned(), "{}".into())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        self.expect_refused("Publish", subject).await;
    }

    /// Subscribes to `subject` and expects the server to refuse it; returns the subscription
    /// to show it stays empty.
    async fn subscribe_refused(&self, subject: &str) -> async_nats::Subscriber {
        let subscriber = self.watch(subject).await;
        self.expect_refused("Subscription", subject).await;
        subscriber
    }
}

/// Fails when any of `subscribers` gets a message within half a second, naming what it was
/// watching for; one wait covers them all.
async fn assert_nothing_on(subscribers: Vec<(&mut async_nats::Subscriber, &str)>) {
    let deadline = Instant::now() + Duration::from_millis(500);
    let received = futures::future::join_all(subscribers.into_iter().map(
        |(subscriber, what)| async move {
            let message = tokio::time::timeout_at(deadline, subscriber.next()).await;
            (what, message)
        },
    ))
    .await;
    for (what, message) in received {
        if let Ok(Some(message)) = message {
            panic!("{what}: a message on `{}` got through", message.subject);
        }
    }
}

/// The next message on `subscriber` whose subject is `subject`, within `secs`.
/// Publishes `subject` as `publisher` until `subscriber` sees it (a new subscription's interest
/// may reach the server's other accounts and routes a moment after its flush, and this
/// machine is loaded), for up to 15 s; fails naming `who` when it never arrives.
async fn delivered(
    publisher: &User,
    subject: &str,
    subscriber: &mut async_nats::Subscriber,
    who: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        publisher
            .client
            .publish(subject.to_owned(), "{}".into())
            .await
            .unwrap();
        publisher.client.flush().await.unwrap();
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(Some(message)) = timeout(
            until.saturating_duration_since(Instant::now()),
            subscriber.next(),
        )
        .await
        {
            if message.subject.as_str() == subject {
                return;
            }
        }
    }
    panic!("{who} did not see `{subject}` within 15 s");
}

async fn next_on(subscriber: &mut async_nats::Subscriber, subject: &str, secs: u64, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, subscriber.next()).await {
            Ok(Some(message)) if message.subject.as_str() == subject => return,
            Ok(Some(_)) => continue,
            _ => panic!("{who} did not see `{subject}` within {secs} s"),
        }
    }
}

/// Messages a stream holds, asked as `admin`.
async fn stored(admin: &User, stream: StreamKey) -> u64 {
    let mut stream = admin
        .jetstream()
        .get_stream(stream.base_name())
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

/// The `tributary` binary, as `admin` on this server and `env`'s database.
async fn cli(server: &NatsServer, env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TRIBUTARY__NATS__URL", &server.url)
        .env("TRIBUTARY__NATS__USER", "admin")
        .env("TRIBUTARY__NATS__PASSWORD", server.password("admin"))
        .env("TRIBUTARY__DATABASE__NAME", &env.database)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn cli_ok(server: &NatsServer, env: &TestEnv, args: &[&str]) -> String {
    let (code, stdout, stderr) = cli(server, env, args).await;
    assert_eq!(
        code,
        0,
        "`tributary {}` as admin failed:\n{stdout}\n{stderr}\nnats-server refused: {:#?}",
        args.join(" "),
        server.violations()
    );
    stdout
}

/// Asks `search.query` as `admin` until `q` finds an entity of `entity_type`.
async fn wait_found(server: &NatsServer, admin: &MeshClient, q: &str, entity_type: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    loop {
        let query = SearchQuery {
            q: q.to_owned(),
            ..SearchQuery::default()
        };
        if let Ok(results) = admin.call(&query).await {
            let results = serde_json::to_value(results).unwrap_or(Value::Null);
            let found = results["hits"]
                .as_array()
                .is_some_and(|hits| hits.iter().any(|h| h["entity_type"] == entity_type));
            if found {
                return;
            }
            last = results;
        }
        assert!(
            Instant::now() < deadline,
            "search.query for {q:?} found no {entity_type} within 30 s (last answer {last}); nats-server refused: {:#?}",
            server.violations()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The plugin manager's `/api/v1/dead-letters`, with the admin token.
struct DeadLetterApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl DeadLetterApi {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// The first page once `done` holds of it; fails after 10 s.
    async fn listed_when(&self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let mut page = json!(null);
        for _ in 0..100 {
            page = self
                .request(reqwest::Method::GET, "")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if done(&page) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the dead letters never became what was waited for: {page}");
    }
}

#[tokio::test]
async fn every_service_does_its_work_as_its_own_nats_user() {
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    server.provision(&env).await;
    let plugin_manager = server
        .start_service(&env, "plugin-manager", tributary_plugin_manager::build)
        .await;
    let connector = server
        .start_service(&env, "connector", tributary_connector::build)
        .await;
    let etl = server
        .start_service(&env, "etl", tributary_etl::build)
        .await;
    let channel = server
        .start_service(&env, "channel", tributary_channel::build)
        .await;
    let search = server
        .start_service(&env, "search", tributary_search::build)
        .await;
    let admin_user = server.connect("admin").await.unwrap();
    let admin = MeshClient::new(
        admin_user.client.clone(),
        Subjects::default(),
        "test".into(),
    )
    .with_timeout(Duration::from_secs(10));

    // Your own program, as `subscriber`, sees every data and communication event.
    let subscriber = server.connect("subscriber").await.unwrap();
    let mut data_events = subscriber.watch("data.>").await;
    let mut communication = subscriber.watch("communication.>").await;

    // Every service answers discovery, and every endpoint it registered answers a request
    // (a body that does not parse: an error reply, and nothing changes). `plugins.runtime`,
    // `plugins.token` and `plugins.heartbeat` are asked by the connector on its own plugin
    // type's subject, the only kind of caller they have.
    let connector_user = server.connect("connector").await.unwrap();
    for name in ServiceName::ALL {
        let info = admin_user
            .client
            .request(format!("$SRV.INFO.{name}"), "".into())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{name} does not answer $SRV.INFO.{name} to admin: {e}; nats-server refused: {:#?}",
                    server.violations()
                )
            });
        let info: Value = serde_json::from_slice(&info.payload).unwrap();
        let endpoints = info["endpoints"].as_array().unwrap();
        assert!(!endpoints.is_empty(), "{name} registered no endpoint");
        for endpoint in endpoints {
            // Secrets and tokens are asked on the asker's plugin type; other wildcards get a
            // token nothing answers to.
            let subject = endpoint["subject"].as_str().unwrap();
            let subject = if subject.starts_with("plugins.runtime.")
                || subject.starts_with("plugins.token.")
                || subject.starts_with("plugins.heartbeat.")
            {
                subject.replace('*', "connector")
            } else if subject.starts_with("etl.people.") {
                // The CLI's changes about people, on its own user's subject.
                subject.replace('*', "admin")
            } else {
                subject.replace('*', "none")
            };
            let asker = if SERVICE_ONLY_REQUESTS.contains(&subject.as_str()) {
                &connector_user
            } else {
                &admin_user
            };
            let reply = timeout(
                Duration::from_secs(5),
                asker.client.request(subject.clone(), "not json".into()),
            )
            .await;
            assert!(
                matches!(reply, Ok(Ok(_))),
                "`{}` got no answer from `{subject}` ({name}): {reply:?}. Either `{name}` may not subscribe to it or `{}` may not publish it; nats-server refused: {:#?}",
                asker.name,
                asker.name,
                server.violations()
            );
        }
    }

    // A folder connector, installed and enabled with the CLI as admin: the plugin manager
    // announces it, the connector asks for its runtime and syncs, the ETL writes the document
    // and announces it, the search service indexes it.
    // Outside the data directory, which the folder connector never reads.
    let folder = tempfile::tempdir().unwrap();
    let notes = folder.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("launch.md"),
        "# Zeppelin launch\n\nThe zeppelin leaves from hangar nine.\n",
    )
    .unwrap();
    let listed = cli_ok(&server, &env, &["plugins", "list"]).await;
    assert!(listed.contains("tributary.folder"), "{listed}");
    let path = format!("path={}", notes.display());
    cli_ok(
        &server,
        &env,
        &[
            "plugins",
            "install",
            "tributary.folder",
            "--id",
            "notes",
            "--set",
            &path,
            "--yes",
        ],
    )
    .await;
    cli_ok(&server, &env, &["plugins", "enable", "notes"]).await;
    wait_found(&server, &admin, "zeppelin", "document").await;
    next_on(
        &mut data_events,
        "data.DocumentCreated",
        10,
        "the subscriber",
    )
    .await;
    // `tributary sync` follows the connector.Sync* events as admin; the console's live
    // progress follows them as the plugin manager.
    let console_mesh = tributary_plugin_manager::mesh::Mesh::new(
        server
            .connect("plugin-manager")
            .await
            .unwrap()
            .client
            .clone(),
        Subjects::default(),
    );
    let mut live = console_mesh.sync_events().await.unwrap();
    cli_ok(&server, &env, &["sync", "notes", "--full"]).await;
    let pushed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut kinds = Vec::new();
        while let Some((event, sync)) = futures::StreamExt::next(&mut live).await {
            assert_eq!(sync.instance_id, "notes");
            kinds.push(event);
            if event == tributary_proto::events::SyncEvent::Completed {
                break;
            }
        }
        kinds
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the plugin manager saw no sync end; nats-server refused: {:#?}",
            server.violations()
        )
    });
    assert_eq!(
        pushed.first(),
        Some(&tributary_proto::events::SyncEvent::Started),
        "{pushed:?}"
    );

    // An item published as the connector, through JetStream, ends up searchable too.
    let item = json!({
        "instance_id": "people", "entity_type": "person", "external_id": "p1",
        "source_modified_at": "2026-03-01T10:00:00Z",
        "data": {"display_name": "Grace Hopper", "emails": ["grace@navy.example"]}, "raw": {},
    });
    connector_user
        .jetstream()
        .publish(
            "connector.items.people",
            serde_json::to_vec(&item).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap_or_else(|e| panic!("JetStream did not take the connector's item: {e}"));
    wait_found(&server, &admin, "hopper", "person").await;
    next_on(&mut data_events, "data.PersonCreated", 10, "the subscriber").await;

    // A malformed item is dead-lettered by the ETL; the plugin manager lists it, replays it
    // onto its subject (where the ETL dead-letters it again) and discards what is left, over
    // the admin API, with its own NATS rights alone.
    connector_user
        .jetstream()
        .publish("connector.items.people", "{\"not\": \"an item\"}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let api = DeadLetterApi {
        http: reqwest::Client::new(),
        base: format!("http://{}/api/v1/dead-letters", plugin_manager.http_addr),
        token: env
            .config
            .plugin_manager
            .admin_token
            .expose_secret()
            .to_owned(),
    };
    let listed = api.listed_when(|page| page["total"] == 1).await;
    let first = listed["dead_letters"][0]["sequence"].as_u64().unwrap();
    let replay = api
        .request(reqwest::Method::POST, &format!("/{first}/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        200,
        "{}\nnats-server refused: {:#?}",
        replay.text().await.unwrap(),
        server.violations()
    );
    api.listed_when(|page| page["total"] == 1 && page["dead_letters"][0]["sequence"] != first)
        .await;
    let discarded: serde_json::Value = api
        .request(reqwest::Method::POST, "/discard")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discarded["done"].as_array().unwrap().len(),
        1,
        "{discarded}"
    );

    // A webhook channel: a signed delivery is made durable, handled, announced and indexed;
    // a send goes out to the counterpart and is announced.
    let counterpart = FixtureServer::start().await.unwrap();
    counterpart.respond("/inbox", [Canned::json(200, json!({"id": "out-1"}))]);
    let key = b"a signing key of thirty-two bytes";
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
    );
    let webhook = admin.plugin("tributary.webhook").await.unwrap();
    admin
        .install(InstallRequest {
            plugin_id: "tributary.webhook".into(),
            instance_id: Some("helpdesk".into()),
            config: Some(json!({"secret": secret, "outboundUrl": counterpart.url("/inbox")})),
            accept_permissions: webhook.permissions,
        })
        .await
        .unwrap();
    // The console's page of a channel instance shows its webhook URL, asked as the plugin
    // manager.
    let shown = console_mesh.webhook("helpdesk").await.unwrap_or_else(|e| {
        panic!(
            "channel.webhook as plugin-manager: {e}; nats-server refused: {:#?}",
            server.violations()
        )
    });
    assert!(
        shown
            .webhook_url
            .as_deref()
            .is_some_and(|u| u.ends_with("/helpdesk")),
        "{shown:?}"
    );
    admin.enable("helpdesk").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let routes = serde_json::to_value(admin.call(&RoutesQuery {}).await.unwrap()).unwrap();
        if routes["routes"].to_string().contains("helpdesk") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the channel service does not serve helpdesk within 15 s; nats-server refused: {:#?}",
            server.violations()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = serde_json::to_vec(&json!({
        "type": "message.received",
        "timestamp": "2026-03-01T12:00:00Z",
        "data": {
            "id": "m-1", "from": {"address": "alice@example.com", "name": "Alice"},
            "text": "My quokka invoice is wrong.", "conversation_id": "ticket-1"
        }
    }))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let signature = standard_webhooks::sign(key, "delivery-1", now, &body);
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/webhooks/webhook/helpdesk",
            channel.http_addr
        ))
        .header("content-type", "application/json")
        .header("webhook-id", "delivery-1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "the webhook was answered {}: {}; nats-server refused: {:#?}",
        response.status(),
        response.text().await.unwrap_or_default(),
        server.violations()
    );
    next_on(
        &mut communication,
        "communication.MessageReceived",
        10,
        "the subscriber",
    )
    .await;
    wait_found(&server, &admin, "quokka", "message").await;
    let sent = admin
        .call(&SendMessage {
            instance_id: "helpdesk".into(),
            message: serde_json::from_value(
                json!({"to": ["alice@example.com"], "text": "We fixed the invoice."}),
            )
            .unwrap(),
        })
        .await
        .unwrap();
    let sent = serde_json::to_value(sent).unwrap();
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(counterpart.requests_to("/inbox").len(), 1);
    next_on(
        &mut communication,
        "communication.MessageSent",
        10,
        "the subscriber",
    )
    .await;

    // A reindex, followed by the CLI on search.reindex.progress.
    let reindexed = cli_ok(&server, &env, &["search", "reindex"]).await;
    assert!(reindexed.contains("Reindexed"), "{reindexed}");

    let refused = server.violations();
    assert!(
        refused.is_empty(),
        "deploy/nats-server.conf refused what the services do:\n{}",
        refused.join("\n")
    );

    for service in [search, channel, etl, connector, plugin_manager] {
        service.stop().await;
    }
}

#[tokio::test]
async fn what_belongs_to_another_service_is_refused() {
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    server.provision(&env).await;
    let admin = server.connect("admin").await.unwrap();
    let mut users = HashMap::new();
    for user in USERS {
        users.insert(user, server.connect(user).await.unwrap());
    }
    let user = |name: &str| &users[name];

    // What each may do, first, so that the refusals below are refusals and not a witness
    // that never works. The ETL's data event and the connector's item are stored.
    let mut runtime_requests = user("plugin-manager").watch("plugins.runtime.*").await;
    let mut token_requests = user("plugin-manager").watch("plugins.token.*").await;
    let mut health_reports = user("plugin-manager").watch("plugins.heartbeat.*").await;
    let mut installs = user("plugin-manager").watch("plugins.install").await;
    let mut sends = user("channel").watch("channel.send.*").await;
    user("etl")
        .jetstream()
        .publish("data.PersonCreated", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    user("connector")
        .jetstream()
        .publish("connector.items.x", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    for asker in ["connector", "channel"] {
        for (requests, verb) in [
            (&mut runtime_requests, "runtime"),
            (&mut token_requests, "token"),
        ] {
            let subject = format!("plugins.{verb}.{asker}");
            delivered(user(asker), &subject, requests, "the plugin manager").await;
        }
    }
    for (subject, reporter) in HEALTH_REQUESTS {
        delivered(
            user(reporter),
            subject,
            &mut health_reports,
            "the plugin manager",
        )
        .await;
    }
    // A plugin's events, each service in the namespace of the type of plugin it runs; your
    // own program reads them.
    let mut plugin_events = user("subscriber").watch("plugin.>").await;
    for runner in ["connector", "channel"] {
        let subject = format!("plugin.{runner}.inst-1.crm.Exported");
        delivered(user(runner), &subject, &mut plugin_events, "the subscriber").await;
    }
    // The ETL asks an item's instance's accepted permissions, to enforce data:write.
    let mut instance_requests = user("plugin-manager").watch("plugins.instance").await;
    delivered(
        user("etl"),
        "plugins.instance",
        &mut instance_requests,
        "the plugin manager",
    )
    .await;
    delivered(
        user("admin"),
        "plugins.install",
        &mut installs,
        "the plugin manager",
    )
    .await;
    delivered(
        user("admin"),
        "channel.send.helpdesk",
        &mut sends,
        "the channel service",
    )
    .await;
    // The operator (the CLI) and the plugin manager (the admin API) ask the ETL about people,
    // each its changes under its own name; reads are open to both.
    for (pattern, subject, asker) in PEOPLE_REQUESTS {
        let mut askers = vec![asker];
        if !subject.ends_with(asker) {
            askers.push(if asker == "admin" {
                "plugin-manager"
            } else {
                "admin"
            });
        }
        for asker in askers {
            let mut requests = user("etl").watch(pattern).await;
            delivered(user(asker), subject, &mut requests, "the ETL").await;
        }
    }
    // Your own program pulls from the durable consumer the operator provisioned for it.
    let own = user("subscriber");
    let consumer: jetstream::consumer::PullConsumer = own
        .apps_jetstream()
        .get_consumer_from_stream(OWN_CONSUMER, StreamKey::DataEvents.base_name())
        .await
        .unwrap_or_else(|e| panic!("the subscriber cannot read its own consumer: {e}"));
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = timeout(Duration::from_secs(5), batch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(message.subject.as_str(), "data.PersonCreated");
    message.ack().await.unwrap();
    own.client.flush().await.unwrap();
    let refused = server.violations();
    assert!(
        refused.is_empty(),
        "deploy/nats-server.conf refused what its users may do:\n{}",
        refused.join("\n")
    );

    // Every event type: the one service that emits it may publish it, nobody else.
    for kind in EventKind::all() {
        let subject = kind.subject();
        let emitter = kind.emitter().as_str();
        user(emitter)
            .jetstream()
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap_or_else(|e| {
                panic!("NATS user `{emitter}` cannot publish its own event `{subject}`: {e}")
            });
        for other in USERS.into_iter().filter(|u| *u != emitter) {
            user(other).publish_refused(&subject).await;
        }
    }
    for stream in [
        StreamKey::DataEvents,
        StreamKey::PluginEvents,
        StreamKey::ConnectorEvents,
        StreamKey::Communication,
    ] {
        let mut published = EventKind::all()
            .into_iter()
            .filter(|k| k.stream() == stream)
            .count() as u64;
        if stream == StreamKey::DataEvents {
            published += 1;
        }
        assert_eq!(
            stored(&admin, stream).await,
            published,
            "{} holds an event from a user that does not emit it",
            stream.base_name()
        );
    }
    // Items come from the services that sync (and the plugin manager's purge tombstones).
    for who in ["etl", "search", "admin", "subscriber"] {
        user(who).publish_refused("connector.items.x").await;
    }
    assert_eq!(
        stored(&admin, StreamKey::ConnectorItems).await,
        1,
        "an item from a service that does not sync reached CONNECTOR_ITEMS"
    );

    // A plugin's events: only the service running that type of plugin publishes them.
    for (who, subject) in [
        ("connector", "plugin.channel.inst-1.crm.Exported"),
        ("channel", "plugin.connector.inst-1.crm.Exported"),
        ("etl", "plugin.connector.inst-1.crm.Exported"),
        ("search", "plugin.channel.inst-1.crm.Exported"),
        ("plugin-manager", "plugin.connector.inst-1.crm.Exported"),
        ("admin", "plugin.connector.inst-1.crm.Exported"),
        ("subscriber", "plugin.channel.inst-1.crm.Exported"),
    ] {
        user(who).publish_refused(subject).await;
    }
    assert_nothing_on(vec![(
        &mut plugin_events,
        "a plugin event published by a service not running that type of plugin",
    )])
    .await;

    // Requests: the secrets of plugins.runtime, the access tokens of plugins.token (asked
    // by anyone but the service running that type of plugin: the connector service may not
    // read a channel's secrets, nor the reverse), installing plugins, sending messages.
    for (subject, runner) in SECRET_REQUESTS {
        for who in [
            "connector",
            "channel",
            "etl",
            "search",
            "admin",
            "subscriber",
            "plugin-manager",
            "provision",
        ] {
            if who != runner {
                user(who).publish_refused(subject).await;
            }
        }
    }
    // Health: a service reports on its own plugin type's instances only (the connector service
    // may not mark a channel instance failed, nor the reverse), and nobody else reports.
    for (subject, reporter) in HEALTH_REQUESTS {
        for who in USERS.into_iter().filter(|u| *u != reporter) {
            user(who).publish_refused(subject).await;
        }
    }
    for who in ["connector", "channel", "etl", "search", "subscriber"] {
        user(who).publish_refused("plugins.install").await;
    }
    for who in ["connector", "search", "subscriber"] {
        user(who).publish_refused("channel.send.helpdesk").await;
    }
    // People: no service but the plugin manager asks; a change under another caller's name
    // is an impersonation (the ETL would record the wrong one as who decided).
    let mut people_requests = Vec::new();
    for (pattern, _, _) in PEOPLE_REQUESTS {
        people_requests.push(user("etl").watch(pattern).await);
    }
    for (_, subject, asker) in PEOPLE_REQUESTS {
        let changes_as = subject.rsplit('.').next().filter(|t| *t == asker);
        for who in RUNNING_USERS.into_iter().chain(["provision"]) {
            let allowed =
                who == asker || (changes_as.is_none() && matches!(who, "admin" | "plugin-manager"));
            if !allowed {
                user(who).publish_refused(subject).await;
            }
        }
    }
    for forged in ["etl.people.merge.etl", "etl.people.unmerge.none"] {
        for who in ["admin", "plugin-manager"] {
            user(who).publish_refused(forged).await;
        }
    }
    assert_nothing_on(
        people_requests
            .iter_mut()
            .map(|s| (s, "an etl.people request by a user that may not ask it"))
            .collect(),
    )
    .await;
    assert_nothing_on(vec![
        (
            &mut runtime_requests,
            "plugins.runtime asked by a service not running that type of plugin",
        ),
        (
            &mut token_requests,
            "plugins.token asked by a service not running that type of plugin",
        ),
        (
            &mut health_reports,
            "plugins.heartbeat sent by a service not running that type of plugin",
        ),
        (&mut installs, "plugins.install asked by a service"),
        (&mut sends, "channel.send asked by a service"),
    ])
    .await;

    // Answering another's requests, or reading another's replies.
    for (who, subject) in [
        ("search", "plugins.runtime.connector"),
        ("search", "plugins.token.channel"),
        ("admin", "plugins.token.*"),
        ("connector", "plugins.runtime.channel"),
        ("connector", "plugins.install"),
        ("etl", "search.query"),
        ("connector", "channel.send.*"),
        ("search", "$SRV.INFO.plugin-manager"),
        ("etl", "connector.items.>"),
        ("subscriber", "connector.items.>"),
    ] {
        user(who).subscribe_refused(subject).await;
    }
    let mut snooped = Vec::new();
    for (who, inbox) in [
        ("subscriber", "_INBOX_connector.>"),
        ("admin", "_INBOX_channel.>"),
        ("search", "_INBOX_connector.>"),
        ("connector", "_INBOX_channel.>"),
        ("etl", "_INBOX.>"),
    ] {
        snooped.push(user(who).subscribe_refused(inbox).await);
    }
    // The plugin manager answers the connector's request for secrets; nobody else sees it.
    let plugin_manager = user("plugin-manager").client.clone();
    let answer = tokio::spawn(async move {
        let request = runtime_requests.next().await.unwrap();
        plugin_manager
            .publish(request.reply.unwrap(), "secret".into())
            .await
            .unwrap();
        plugin_manager.flush().await.unwrap();
    });
    let reply = user("connector")
        .client
        .request("plugins.runtime.connector", "{}".into())
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"secret");
    answer.await.unwrap();
    assert_nothing_on(
        snooped
            .iter_mut()
            .map(|subscription| {
                (
                    subscription,
                    "a reply to the connector read by another user",
                )
            })
            .collect(),
    )
    .await;

    // The search service's consumer: nobody else pulls from it, deletes or redefines it.
    let name = ConsumerKey::SearchIndexer.durable_name();
    assert!(
        own.jetstream()
            .delete_consumer_from_stream(name, StreamKey::DataEvents.base_name())
            .await
            .is_err(),
        "the subscriber deleted {name}"
    );
    own.expect_refused(
        "Publish",
        &format!("$JS.API.CONSUMER.DELETE.DATA_EVENTS.{name}"),
    )
    .await;
    for who in ["subscriber", "etl", "channel"] {
        user(who)
            .publish_refused(&format!("$JS.API.CONSUMER.MSG.NEXT.DATA_EVENTS.{name}"))
            .await;
    }
    own.publish_refused(&format!(
        "{APPS_JS_API}.CONSUMER.MSG.NEXT.DATA_EVENTS.{name}"
    ))
    .await;
    for who in ["subscriber", "connector"] {
        user(who)
            .publish_refused(&format!("$JS.API.CONSUMER.CREATE.DATA_EVENTS.{name}"))
            .await;
    }
    assert!(admin
        .jetstream()
        .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
            name,
            StreamKey::DataEvents.base_name()
        )
        .await
        .is_ok());
    // Nor does a service read a stream that is not its own.
    for (who, stream) in [
        ("search", "CONNECTOR_ITEMS"),
        ("etl", "CHANNEL_INBOUND"),
        ("connector", "DATA_EVENTS"),
        ("plugin-manager", "DATA_EVENTS"),
    ] {
        user(who)
            .publish_refused(&format!("$JS.API.CONSUMER.CREATE.{stream}.mine"))
            .await;
    }
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_are_refused_at_connect() {
    let server = NatsServer::start().await;
    for (user, password) in [
        ("nobody", "p0"),
        ("etl", "wrong"),
        ("etl", server.password("search").as_str()),
    ] {
        assert!(
            server.connect_with(user, password).await.is_err(),
            "NATS let `{user}` in with password {password:?}"
        );
    }
    assert!(
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(server.url.as_str())
            .await
            .is_err(),
        "NATS let a client in without a user"
    );
    // A service with the wrong password stops at start-up and says it was refused, naming
    // its user and the keys to check, not that NATS cannot be reached.
    let env = TestEnv::new().await;
    let mut config = server.config(&env, "etl");
    config.nats.password = SecretString::from("wrong".to_owned());
    let err = tributary_etl::build(config).await.unwrap_err().to_string();
    assert!(
        err.contains("refused user `etl`")
            && err.contains("nats.password")
            && !err.contains("cannot reach"),
        "{err}"
    );
}

/// The subjects, seal and size of every stream, as `admin` reads them.
async fn stream_configs(admin: &User) -> Vec<(Vec<String>, bool, i64)> {
    let mut configs = Vec::new();
    for key in StreamKey::ALL {
        let mut stream = admin.jetstream().get_stream(key.base_name()).await.unwrap();
        let info = stream.info().await.unwrap();
        configs.push((
            info.config.subjects.clone(),
            info.config.sealed,
            info.config.max_bytes,
        ));
    }
    configs
}

/// Messages held by every stream, as `admin` reads them.
async fn stored_everywhere(admin: &User) -> Vec<u64> {
    let mut counts = Vec::new();
    for key in StreamKey::ALL {
        counts.push(stored(admin, key).await);
    }
    counts
}

#[tokio::test]
async fn no_running_user_can_create_change_or_delete_a_stream() {
    // Issue 27, finding 2: a service (or admin) allowed to update a stream adds another
    // user's inbox to it (`_INBOX_connector.>`, where plugins.runtime answers with secrets)
    // and reads the replies through its consumer, or seals and shrinks CHANNEL_INBOUND. Only
    // `provision` may; every user that runs is refused, by the client call and by subject.
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    server.provision(&env).await;
    let admin = server.connect("admin").await.unwrap();
    let before = stream_configs(&admin).await;

    let attacks = RUNNING_USERS.map(|who| {
        let server = &server;
        async move {
            let user = server.connect(who).await.unwrap();
            let js = user.jetstream();
            for key in [StreamKey::ConnectorItems, StreamKey::ChannelInbound] {
                let mut config = key.config(&Subjects::default());
                config.subjects.push("_INBOX_connector.>".into());
                config.max_bytes = 1024;
                assert!(
                    js.update_stream(config.clone()).await.is_err(),
                    "NATS user `{who}` redefined {}",
                    key.base_name()
                );
            }
            let stolen = jetstream::stream::Config {
                name: "STOLEN".into(),
                subjects: vec!["_INBOX_connector.>".into()],
                ..Default::default()
            };
            assert!(
                js.create_stream(stolen).await.is_err(),
                "NATS user `{who}` made a stream of the connector's inbox"
            );
            for key in StreamKey::ALL {
                for verb in ["CREATE", "UPDATE", "DELETE", "PURGE"] {
                    user.publish_refused(&format!("$JS.API.STREAM.{verb}.{}", key.base_name()))
                        .await;
                }
            }
            user.expect_refused("Publish", "$JS.API.STREAM.CREATE.STOLEN")
                .await;
        }
    });
    futures::future::join_all(attacks).await;

    assert_eq!(
        stream_configs(&admin).await,
        before,
        "a stream is not as provisioning left it"
    );
    for (key, (subjects, sealed, max_bytes)) in StreamKey::ALL.into_iter().zip(before) {
        assert_eq!(subjects, key.config(&Subjects::default()).subjects);
        assert!(!sealed);
        assert_eq!(max_bytes, env.config.nats.max_bytes.max_bytes(key));
    }
    assert!(admin.jetstream().get_stream("STOLEN").await.is_err());
}

#[tokio::test]
async fn no_user_but_the_connector_receives_its_plugins_runtime_reply_by_any_path() {
    // Issue 27, findings 2 and 11: the reply to plugins.runtime.connector (decrypted
    // secrets) goes to the connector's inbox. Every other user tries each way to it: reading
    // the inbox, a stream capturing it, a consumer of its own on any stream (pull, or push
    // delivering to its own inbox, or to another service's subject); then the connector asks,
    // and the reply reaches the connector alone and no stream keeps it.
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    server.provision(&env).await;
    let admin = server.connect("admin").await.unwrap();
    let attackers = [
        "plugin-manager",
        "etl",
        "channel",
        "search",
        "admin",
        "subscriber",
    ];
    let mut users = HashMap::new();
    for who in attackers.into_iter().chain(["connector"]) {
        users.insert(who, server.connect(who).await.unwrap());
    }
    let before = stored_everywhere(&admin).await;

    let mut own_inboxes = Vec::new();
    for who in attackers {
        let user = &users[who];
        own_inboxes.push((user.watch(&format!("_INBOX_{who}.>")).await, who.to_owned()));
        let mut snooped = user.subscribe_refused("_INBOX_connector.>").await;
        assert_nothing_on(vec![(&mut snooped, "the connector's inbox")]).await;
        let js = user.jetstream();
        let mut config = StreamKey::DataEvents.config(&Subjects::default());
        config.subjects.push("_INBOX_connector.>".into());
        assert!(
            js.update_stream(config).await.is_err(),
            "{who} widened DATA_EVENTS"
        );
        for stream in StreamKey::ALL.map(StreamKey::base_name) {
            let push = jetstream::consumer::push::Config {
                durable_name: Some("steal".into()),
                deliver_subject: format!("_INBOX_{who}.steal"),
                ..Default::default()
            };
            let pull = jetstream::consumer::pull::Config {
                durable_name: Some("steal".into()),
                ..Default::default()
            };
            assert!(
                js.create_consumer_on_stream(push, stream).await.is_err(),
                "{who} made a push consumer on {stream}"
            );
            assert!(
                js.create_consumer_on_stream(pull, stream).await.is_err(),
                "{who} made a pull consumer on {stream}"
            );
            user.expect_refused(
                "Publish",
                &format!("$JS.API.CONSUMER.CREATE.{stream}.steal"),
            )
            .await;
            user.publish_refused(&format!("$JS.API.CONSUMER.CREATE.{stream}"))
                .await;
            user.publish_refused(&format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.steal"))
                .await;
        }
    }

    let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
    let mut requests = users["plugin-manager"]
        .watch("plugins.runtime.connector")
        .await;
    let answering = users["plugin-manager"].client.clone();
    let answer = secret.clone();
    let answered = tokio::spawn(async move {
        let request = requests.next().await.unwrap();
        answering
            .publish(request.reply.unwrap(), answer.into())
            .await
            .unwrap();
        answering.flush().await.unwrap();
    });
    // Asked again while the answering subscription's interest is not yet known (no
    // responders), for up to 15 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reply = loop {
        match users["connector"]
            .client
            .request("plugins.runtime.connector", "{}".into())
            .await
        {
            Ok(reply) => break reply,
            Err(e)
                if e.kind() == async_nats::RequestErrorKind::NoResponders
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the connector was not answered: {e}"),
        }
    };
    assert_eq!(reply.payload, secret.as_bytes());
    answered.await.unwrap();

    assert_nothing_on(
        own_inboxes
            .iter_mut()
            .map(|(inbox, _)| (inbox, "the plugins.runtime reply, in another user's inbox"))
            .collect(),
    )
    .await;
    assert_eq!(
        stored_everywhere(&admin).await,
        before,
        "a stream kept the plugins.runtime reply"
    );
}

#[tokio::test]
async fn the_subscriber_pulls_its_named_consumer_and_injects_nothing() {
    // Issue 27, finding 11: nats-server checks a consumer creation's subject, not the
    // deliver subject in its body, so a subscriber allowed to create consumers makes a push
    // consumer that delivers data events into connector.items.> (the ETL's input) or any
    // service's requests. It may create none; it pulls the consumer the operator provisioned,
    // and a pull whose reply subject is another service's puts nothing there.
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    server.provision(&env).await;
    let admin = server.connect("admin").await.unwrap();
    let subscriber = server.connect("subscriber").await.unwrap();
    let etl = server.connect("etl").await.unwrap();
    let js = subscriber.jetstream();

    let inject = jetstream::consumer::push::Config {
        durable_name: Some("inject".into()),
        deliver_subject: "connector.items.injected".into(),
        ..Default::default()
    };
    assert!(
        js.create_consumer_on_stream(inject, StreamKey::DataEvents.base_name())
            .await
            .is_err(),
        "the subscriber made a push consumer delivering into connector.items"
    );
    subscriber
        .expect_refused("Publish", "$JS.API.CONSUMER.CREATE.DATA_EVENTS.inject")
        .await;
    for subject in [
        "$JS.API.CONSUMER.CREATE.DATA_EVENTS",
        "$JS.API.CONSUMER.CREATE.COMMUNICATION",
        "$JS.API.CONSUMER.DURABLE.CREATE.DATA_EVENTS.inject",
        "$JS.API.CONSUMER.CREATE.COMMUNICATION.inject.communication.>",
    ] {
        subscriber.publish_refused(subject).await;
    }
    subscriber
        .publish_refused(&format!(
            "$JS.API.CONSUMER.DELETE.DATA_EVENTS.{OWN_CONSUMER}"
        ))
        .await;
    subscriber
        .publish_refused(&format!(
            "$JS.API.CONSUMER.CREATE.DATA_EVENTS.{OWN_CONSUMER}"
        ))
        .await;

    etl.jetstream()
        .publish("data.PersonCreated", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    // A pull of its own consumer, its messages asked to go to the ETL's input: nats-server
    // delivers them to the reply subject unchecked, but that subject is in APPS.
    subscriber
        .client
        .publish_with_reply(
            format!("{APPS_JS_API}.CONSUMER.MSG.NEXT.DATA_EVENTS.{OWN_CONSUMER}"),
            "connector.items.injected",
            r#"{"batch":1}"#.into(),
        )
        .await
        .unwrap();
    subscriber.client.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored(&admin, StreamKey::ConnectorItems).await,
        0,
        "a data event reached CONNECTOR_ITEMS through the subscriber"
    );
    // Its own consumer still serves it: a data event (the first again when its delivery to
    // APPS's connector.items.injected was not taken, or the next).
    etl.jetstream()
        .publish("data.PersonUpdated", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let consumer: jetstream::consumer::PullConsumer = subscriber
        .apps_jetstream()
        .get_consumer_from_stream(OWN_CONSUMER, StreamKey::DataEvents.base_name())
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = timeout(Duration::from_secs(5), batch.next())
        .await
        .expect("the subscriber's consumer delivers")
        .unwrap()
        .unwrap();
    assert!(
        message.subject.starts_with("data.Person"),
        "{}",
        message.subject
    );
}

#[tokio::test]
async fn streams_beyond_the_servers_store_limit_are_refused() {
    // Issue 27, finding 11: without a JetStream store limit in deploy/nats-server.conf and a
    // size on every stream, one publisher fills the disk. A stream sized past the server's
    // max_file_store (8 GB) cannot even be created, as nats-server reserves its size.
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    let mut config = server.config(&env, "provision");
    config.nats.max_bytes.connector_items = 9 * 1024 * 1024 * 1024;
    let err = tributary_kit::provision::provision_all(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CONNECTOR_ITEMS") && err.contains("insufficient"),
        "{err}"
    );
}

#[tokio::test]
async fn a_service_whose_consumer_is_not_provisioned_stops_at_start_up_naming_the_step() {
    // Services create nothing: the ETL on a server nobody provisioned says what to run.
    let server = NatsServer::start().await;
    let env = TestEnv::new().await;
    let err = tributary_etl::build(server.config(&env, "etl"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("tributary nats provision"), "{err}");
}
