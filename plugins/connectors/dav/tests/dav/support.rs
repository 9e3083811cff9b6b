//! A real Radicale server per test, and helpers to fill it and to run the connector.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tributary_connector_dav::DavConnector;
use tributary_plugin_sdk::reqwest::{self, Method};
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, ItemOperation, PluginError, RetryPolicy, SyncRequest,
    SyncStep,
};

/// The user every test server knows.
pub const USER: &str = "ada";
/// Ada's password.
pub const PASSWORD: &str = "correct horse";
/// The grant that lets the connector reach a test server.
pub const LOCAL: &str = "network:outbound:127.0.0.1";

/// A Radicale server on a free port of 127.0.0.1, with its storage and users in a temporary
/// directory; killed when dropped.
pub struct Radicale {
    child: Child,
    port: u16,
    /// Holds the storage, the user file and the server's log.
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Radicale {
    /// Starts a server with user [`USER`] and waits until it answers.
    ///
    /// # Panics
    ///
    /// When Radicale is not installed (`pip install radicale`) or does not start.
    pub async fn start() -> Radicale {
        let importable = Command::new("python3")
            .args(["-c", "import radicale"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            importable,
            "these tests run a real Radicale server, and `python3 -c 'import radicale'` fails: \
             install it with `pip install radicale`"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{USER}:{PASSWORD}\n")).expect("the user file");
        let log = std::fs::File::create(dir.path().join("radicale.log")).expect("the log file");
        // Radicale cannot bind port 0 and report it: take a free port and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("python3")
            .args(["-m", "radicale", "--config"])
            .arg("--server-hosts")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage-filesystem-folder")
            .arg(dir.path().join("collections"))
            .args(["--auth-type", "htpasswd", "--auth-htpasswd-filename"])
            .arg(&users)
            .args(["--auth-htpasswd-encryption", "plain", "--auth-delay", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 -m radicale starts");
        let mut server = Radicale {
            child,
            port,
            dir,
            http: reqwest::Client::new(),
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Radicale exited with {status}:\n{}", self.log());
            }
            if self.http.get(self.url("/")).send().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Radicale did not answer within 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("radicale.log")
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The connector config for [`USER`] starting at `path`.
    pub fn config(&self, path: &str) -> Value {
        json!({ "url": self.url(path), "username": USER, "password": PASSWORD })
    }

    async fn send(&self, method: &str, path: &str, content_type: &str, body: String) -> u16 {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let response = self
            .http
            .request(method.clone(), self.url(path))
            .basic_auth(USER, Some(PASSWORD))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        assert!(
            status < 300,
            "{method} {path} answered {status}: {}\n{}",
            response.text().await.unwrap_or_default(),
            self.log()
        );
        status
    }

    /// Creates an address book at `path` (extended MKCOL, RFC 5689).
    pub async fn create_address_book(&self, path: &str, name: &str) {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" xmlns:cr="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype><d:displayname>{name}</d:displayname></d:prop></d:set></d:mkcol>"#
        );
        self.send("MKCOL", path, "application/xml", body).await;
    }

    /// Creates an event calendar at `path` (MKCALENDAR, RFC 4791).
    pub async fn create_calendar(&self, path: &str, name: &str) {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>{name}</d:displayname><c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"#
        );
        self.send("MKCALENDAR", path, "application/xml", body).await;
    }

    /// Stores a vCard at `path`.
    pub async fn put_vcard(&self, path: &str, vcard: &str) {
        self.send("PUT", path, "text/vcard; charset=utf-8", vcard.to_owned())
            .await;
    }

    /// Stores an iCalendar object at `path`.
    pub async fn put_icalendar(&self, path: &str, icalendar: &str) {
        self.send(
            "PUT",
            path,
            "text/calendar; charset=utf-8",
            icalendar.to_owned(),
        )
        .await;
    }

    /// Deletes the resource at `path`.
    pub async fn delete(&self, path: &str) {
        self.send("DELETE", path, "text/plain", String::new()).await;
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A context for the connector with `permissions` and `config`, retrying fast.
pub fn context(permissions: &[&str], config: Value) -> TestContext {
    TestContext::new(permissions, config).with_http(|http| {
        http.retry_policy(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(1),
        })
        .timeout(Duration::from_secs(20))
    })
}

/// Runs a sync to its end.
pub async fn sync(
    connector: DavConnector,
    test: &TestContext,
    cursor: Option<Cursor>,
    request: SyncRequest,
) -> Result<Vec<SyncStep>, PluginError> {
    let mut stream = connector.sync(test.ctx(), cursor, request);
    let mut steps = Vec::new();
    while let Some(step) = stream.next().await {
        steps.push(step?);
    }
    Ok(steps)
}

/// Runs a sync until its first checkpoint, and drops it there, as a crash would.
pub async fn sync_until_first_checkpoint(
    connector: DavConnector,
    test: &TestContext,
    request: SyncRequest,
) -> (Vec<ConnectorItem>, Cursor) {
    let mut stream = connector.sync(test.ctx(), None, request);
    let mut items = Vec::new();
    while let Some(step) = stream.next().await {
        match step.expect("a step") {
            SyncStep::Item(item) => items.push(item),
            SyncStep::Checkpoint(cursor) => return (items, cursor),
        }
    }
    panic!("the sync ended without a checkpoint")
}

/// The items of `steps`.
pub fn items(steps: &[SyncStep]) -> Vec<ConnectorItem> {
    steps
        .iter()
        .filter_map(|s| match s {
            SyncStep::Item(item) => Some(item.clone()),
            SyncStep::Checkpoint(_) => None,
        })
        .collect()
}

/// The cursor of the last step, which must be a checkpoint.
pub fn final_cursor(steps: &[SyncStep]) -> Cursor {
    match steps.last() {
        Some(SyncStep::Checkpoint(cursor)) => cursor.clone(),
        other => panic!("the last step is not a checkpoint: {other:?}"),
    }
}

/// The upsert with external id ending in `suffix`.
pub fn upsert<'a>(items: &'a [ConnectorItem], suffix: &str) -> &'a ConnectorItem {
    items
        .iter()
        .find(|i| i.operation == ItemOperation::Upsert && i.external_id.ends_with(suffix))
        .unwrap_or_else(|| panic!("no upsert of `{suffix}` among {:#?}", ids(items)))
}

/// `(operation, external id)` of each item, sorted.
pub fn ids(items: &[ConnectorItem]) -> Vec<(ItemOperation, String)> {
    let mut ids: Vec<_> = items
        .iter()
        .map(|i| (i.operation, i.external_id.clone()))
        .collect();
    ids.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then(format!("{:?}", a.0).cmp(&format!("{:?}", b.0)))
    });
    ids
}
