//! Helpers for integration tests against the real NATS and PostgreSQL: every test gets its
//! own database, subject prefix and streams, and leaves nothing behind; [`Mesh`] is the one
//! typed handle a test drives the mesh through; [`guests`] finds the built WebAssembly guest
//! plugins; [`oauth`] runs local OAuth 2.0 providers (Microsoft, Google, GitHub, Slack);
//! [`plugins`] is the third-party plugin the tests that add one add.

pub mod guests;
mod mesh;
pub mod oauth;
pub mod plugins;
mod roles;

pub use mesh::{Accept, Events, ItemMessage, Mesh, TEST_ACTOR, TEST_REQUEST_TIMEOUT};
pub use roles::TestRoles;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use sqlx::{Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tributary_proto::{ServiceName, Subjects};

use crate::config::{Config, ConfigSources};

/// An isolated slice of the machine's NATS and PostgreSQL for one test: a fresh database and
/// a unique subject prefix (so unique streams, created small, [`TEST_STREAM_BYTES`]).
/// Dropping it deletes both.
#[derive(Debug)]
pub struct TestEnv {
    /// The configuration a service under test should start with.
    pub config: Config,
    /// The unique prefix of this test's subjects and streams.
    pub prefix: String,
    /// The name of this test's database.
    pub database: String,
    /// The configuration as created, for clean-up: a test may point `config` elsewhere (at a
    /// proxy it controls) and clean-up must still reach the real servers.
    original: Config,
}

impl TestEnv {
    /// A new environment with its database created (empty; services migrate it).
    pub async fn new() -> Self {
        crate::telemetry::init_for_tests();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &token[..12]);
        let database = format!("test_{token}");
        let mut env = HashMap::new();
        env.insert("TRIBUTARY__NATS__SUBJECT_PREFIX".to_owned(), prefix.clone());
        env.insert("TRIBUTARY__DATABASE__NAME".to_owned(), database.clone());
        env.insert(
            "TRIBUTARY__SHUTDOWN_TIMEOUT_SECS".to_owned(),
            "5".to_owned(),
        );
        // A fresh master key (32 random bytes, base64) and admin token for the plugin manager.
        let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        env.insert(
            "TRIBUTARY__PLUGIN_MANAGER__MASTER_KEY".to_owned(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key),
        );
        env.insert(
            "TRIBUTARY__PLUGIN_MANAGER__ADMIN_TOKEN".to_owned(),
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        );
        env.insert(
            "TRIBUTARY__SEARCH__API_TOKEN".to_owned(),
            format!("search-{}", uuid::Uuid::new_v4().simple()),
        );
        // Local state (the embedded search index) of its own, removed with the environment.
        env.insert(
            "TRIBUTARY__DATA_DIR".to_owned(),
            std::env::temp_dir()
                .join(format!("tributary-{prefix}"))
                .display()
                .to_string(),
        );
        // The APIs plugins reach in tests are mocks on loopback, which a deployment refuses;
        // the tests' `${field}` grants name each mock's address and port exactly.
        env.insert(
            "TRIBUTARY__PLUGINS__ALLOW_PRIVATE_NETWORK".to_owned(),
            "true".to_owned(),
        );
        // Most tests run the ETL with no plugin manager to ask for `data:write` grants; the
        // tests of that check, and those with a plugin manager, turn it on.
        env.insert(
            "TRIBUTARY__ETL__CHECK_DATA_WRITE".to_owned(),
            "false".to_owned(),
        );
        for service in ServiceName::ALL {
            env.insert(
                format!(
                    "TRIBUTARY__{}__HTTP_ADDR",
                    crate::config::config_section(service).to_uppercase()
                ),
                "127.0.0.1:0".to_owned(),
            );
        }
        let mut config = Config::load(&ConfigSources {
            file: None,
            env: Some(env),
        })
        .unwrap_or_else(|e| panic!("test configuration: {e}"));
        // nats-server reserves each stream's max_bytes against its store when the stream is
        // created, and dozens of tests share the machine's server, each with seven streams of
        // its own: at the deployment's sizes (GiBs) they would soon be refused for
        // insufficient storage. 32 MiB each is far more than any test publishes.
        config.nats.max_bytes = crate::provision::StreamSizes::uniform(TEST_STREAM_BYTES);
        crate::db::create_database(&config.database)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database: {e}"));
        // The streams, as a deployment's provisioning step makes them before any service
        // starts; the consumers, whose settings a test may still change, come with
        // [`RunningService::start`] or [`provision`].
        let nats = crate::nats::connect(&config.nats, "tributary-test")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        crate::nats::provision_streams(
            &async_nats::jetstream::new(nats),
            &config.subjects(),
            &config.nats.max_bytes,
        )
        .await
        .unwrap_or_else(|e| panic!("cannot create the test's streams: {e}"));
        Self {
            original: config.clone(),
            config,
            prefix,
            database,
        }
    }

    /// This test's subjects.
    pub fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone())
    }

    /// A fresh NATS client.
    pub async fn nats(&self) -> async_nats::Client {
        async_nats::connect(crate::nats::server_urls(&self.config.nats.url))
            .await
            .unwrap_or_else(|e| panic!("NATS must run at {}: {e}", self.config.nats.url))
    }

    /// A connection pool to this test's database.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect_with(crate::db::connect_options(
            &self.original.database,
            &self.database,
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"))
    }

    /// A connection to this test's database with the schema as an earlier version left it:
    /// the migrations up to `last_version` run, the later ones not, to test an upgrade.
    pub async fn migrated_up_to(&self, last_version: i64) -> PgConnection {
        let mut conn = PgConnection::connect_with(&crate::db::connect_options(
            &self.original.database,
            &self.database,
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
        let before = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                crate::db::MIGRATOR
                    .iter()
                    .filter(|m| m.version <= last_version)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before
            .run(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("migrations up to {last_version}: {e}"));
        conn
    }

    /// Waits up to `secs` until the database answers `count_sql` (one bigint) with `want`
    /// ([`Mesh::wait_for_rows`]).
    pub async fn wait_count(&self, count_sql: &str, want: i64, secs: u64) {
        Mesh::of(self)
            .await
            .wait_for_rows(count_sql, want, std::time::Duration::from_secs(secs))
            .await;
    }

    /// How many messages this test's streams hold on `subject` (unprefixed, such as
    /// `data.PersonCreated`; [`Mesh::stored_on`]).
    pub async fn stored_on(&self, subject: &str) -> u64 {
        Mesh::new(self.nats().await, self.subjects())
            .stored_on(subject)
            .await
    }

    async fn cleanup(config: Config, prefix: String, database: String) {
        if let Ok(client) = async_nats::connect(crate::nats::server_urls(&config.nats.url)).await {
            let js = async_nats::jetstream::new(client);
            let mut names = js.stream_names();
            let mut ours = Vec::new();
            while let Some(Ok(name)) = names.next().await {
                if name.starts_with(&format!("{prefix}_")) {
                    ours.push(name);
                }
            }
            for name in ours {
                let _ = js.delete_stream(&name).await;
            }
        }
        if let Ok(mut conn) =
            PgConnection::connect_with(&crate::db::connect_options(&config.database, "postgres"))
                .await
        {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Runs on its own thread and runtime, so it works from inside a test's runtime and
        // after a panic alike.
        let (config, prefix, database) = (
            self.original.clone(),
            self.prefix.clone(),
            self.database.clone(),
        );
        let cleaner = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let cleaning = Self::cleanup(config, prefix, database);
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(30), cleaning).await;
                });
            }
        });
        let _ = cleaner.join();
    }
}

/// The size of every stream of a test ([`crate::provision::StreamSizes::uniform`]).
pub const TEST_STREAM_BYTES: u64 = 32 * 1024 * 1024;

/// Creates the test's streams and consumers as `tributary nats provision` would, with
/// `config` (its subject prefix, stream sizes and consumer settings): services only check
/// that they are there.
pub async fn provision(config: &Config) {
    crate::provision::provision_all(config)
        .await
        .unwrap_or_else(|e| panic!("cannot provision the test's streams and consumers: {e}"));
}

/// A service started in the test's process, stopped (as by SIGTERM) on
/// [`RunningService::stop`] and aborted if dropped.
#[derive(Debug)]
pub struct RunningService {
    /// Where its HTTP listener is bound.
    pub http_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningService {
    /// Builds a service with its `build` function and `config`, and runs it. On a server
    /// without authorization (`nats.user` empty, as the tests' shared server) the streams and
    /// consumers are provisioned first with `config` ([`provision`]), as a deployment's
    /// provisioning step does before the services start; a test running a service as its
    /// own NATS user provisions as `provision` itself.
    pub async fn start<B, Fut>(build: B, config: Config) -> Self
    where
        B: FnOnce(Config) -> Fut,
        Fut: std::future::Future<Output = Result<crate::ServiceRuntime, crate::KitError>>,
    {
        if config.nats.user.is_empty() {
            provision(&config).await;
        }
        let runtime = build(config)
            .await
            .unwrap_or_else(|e| panic!("the service does not start: {e}"));
        let http_addr = runtime.http_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let outcome = runtime
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = outcome {
                panic!("the service does not stop cleanly: {e}");
            }
        });
        Self {
            http_addr,
            stop: Some(stop),
            task,
        }
    }

    /// Stops it and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP proxy in front of a real server that a test can cut and restore, to take a
/// dependency away from a service and give it back without touching the shared server.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy on a free local port that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let cut = cut.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let handle = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    if let Ok(mut list) = connections.lock() {
                        list.push(handle);
                    }
                }
            })
        };
        Ok(Self {
            addr,
            cut,
            connections,
            accept,
        })
    }

    /// The address to give the service instead of the real server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones, as if the server had gone away.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Ok(mut list) = self.connections.lock() {
            for handle in list.drain(..) {
                handle.abort();
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The next message on `subscriber` within `secs`, as JSON; panics when none comes.
pub async fn next_json(subscriber: &mut async_nats::Subscriber, secs: u64) -> serde_json::Value {
    let message = tokio::time::timeout(std::time::Duration::from_secs(secs), subscriber.next())
        .await
        .unwrap_or_else(|_| panic!("no message within {secs} s"))
        .unwrap_or_else(|| panic!("the subscription closed"));
    serde_json::from_slice(&message.payload)
        .unwrap_or_else(|e| panic!("a message that is not JSON: {e}"))
}

/// The first number on a benchmark's command line (`cargo bench … -- 20000`), else `default`:
/// how many items a benchmark runs with.
pub fn count_argument(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(default)
}
