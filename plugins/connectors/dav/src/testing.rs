//! A real Radicale (CardDAV/CalDAV) server for tests (feature `testing`): the DAV
//! connector's own tests and the end-to-end tests run the same one. It needs
//! `pip install radicale` (`scripts/services-up` installs it).

// The Radicale server a test runs is the test's, not the plugin's: it starts a program, writes
// its files and asks it with a plain HTTP client, which the plugin's own code may not.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

/// The user every server knows.
pub const USER: &str = "ada";
/// Ada's password.
pub const PASSWORD: &str = "correct horse";

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
        Self::start_with(|program: &Path| Command::new(program)).await
    }

    /// [`Radicale::start`], with the server's process made by `command` from the path of
    /// `python3` (for example through `setpriv --pdeathsig KILL`, so that it dies with the
    /// test).
    ///
    /// # Panics
    ///
    /// As [`Radicale::start`].
    pub async fn start_with(command: impl FnOnce(&Path) -> Command) -> Radicale {
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
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{USER}:{PASSWORD}\n"))
            .unwrap_or_else(|e| panic!("the user file: {e}"));
        let log = std::fs::File::create(dir.path().join("radicale.log"))
            .unwrap_or_else(|e| panic!("the log file: {e}"));
        // Radicale cannot bind port 0 and report it: take a free port and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("a free port: {e}"))
            .port();
        let python = which("python3").unwrap_or_else(|| PathBuf::from("python3"));
        let child = command(&python)
            .args(["-m", "radicale", "--config"])
            .arg("--server-hosts")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage-filesystem-folder")
            .arg(dir.path().join("collections"))
            .args(["--auth-type", "htpasswd", "--auth-htpasswd-filename"])
            .arg(&users)
            .args(["--auth-htpasswd-encryption", "plain", "--auth-delay", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("python3 -m radicale does not start: {e}"));
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
        let method =
            Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("a method: {e}"));
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
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "----- Radicale (last 40 lines) -----\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}
