//! A real Radicale (CardDAV/CalDAV) server on a free port, as the DAV connector's own tests
//! run it (`pip install radicale`; `scripts/services-up` installs it).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::process::{command_dying_with_parent, log_file, tail};

/// The user every server knows.
pub const USER: &str = "ada";
/// Ada's password.
pub const PASSWORD: &str = "correct horse";

/// A Radicale server with user [`USER`], its storage, users and log in a temporary
/// directory; killed when dropped (its log's tail printed when the test is failing).
#[derive(Debug)]
pub struct Radicale {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Radicale {
    /// Starts a server and waits until it answers.
    ///
    /// # Panics
    ///
    /// When Radicale is not installed or does not start.
    pub async fn start() -> Radicale {
        let python = PathBuf::from("python3");
        let importable = std::process::Command::new(&python)
            .args(["-c", "import radicale"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            importable,
            "these tests run a real Radicale server, and `python3 -c 'import radicale'` fails: \
             run scripts/services-up or `pip install radicale`"
        );
        let dir = tempfile::Builder::new()
            .prefix("tributary-e2e-radicale-")
            .tempdir()
            .unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{USER}:{PASSWORD}\n"))
            .unwrap_or_else(|e| panic!("the user file: {e}"));
        let (stdout, stderr) = log_file(&dir.path().join("radicale.log"));
        // Radicale cannot bind port 0 and report it: take a free port and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("a free port: {e}"))
            .port();
        let python = which("python3").unwrap_or(python);
        let child = command_dying_with_parent(&python)
            .args(["-m", "radicale", "--config"])
            .arg("--server-hosts")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage-filesystem-folder")
            .arg(dir.path().join("collections"))
            .args(["--auth-type", "htpasswd", "--auth-htpasswd-filename"])
            .arg(&users)
            .args(["--auth-htpasswd-encryption", "plain", "--auth-delay", "0"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Radicale exited with {status}:\n{}", self.log());
            }
            if self.http.get(self.url("/")).send().await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Radicale did not answer within 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The tail of what the server logged.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("radicale.log"), 40)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The DAV connector's configuration for [`USER`] starting at `path`, with `schedule`
    /// when given.
    pub fn connector_config(&self, path: &str, schedule: Option<&str>) -> Value {
        let mut config = json!({ "url": self.url(path), "username": USER, "password": PASSWORD });
        if let Some(schedule) = schedule {
            config["schedule"] = json!(schedule);
        }
        config
    }

    async fn send(&self, method: &str, path: &str, content_type: &str, body: String) {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("a method: {e}"));
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
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- Radicale (last 40 lines) -----\n{}", self.log());
        }
    }
}

/// A vCard 3.0 for `uid` with a full name, an e-mail address and an organization.
pub fn vcard(uid: &str, full_name: &str, family: &str, given: &str, email: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{full_name}\r\nN:{family};{given};;;\r\n\
         EMAIL;TYPE=INTERNET:{email}\r\nORG:Analytical Engines Ltd.\r\nREV:2024-01-02T03:04:05Z\r\nEND:VCARD\r\n"
    )
}

/// An event `uid` with `summary` on 15 June 2024, 10:00–11:30 UTC.
pub fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tributary//e2e//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20240501T080000Z\r\nLAST-MODIFIED:20240502T090000Z\r\nDTSTART:20240615T100000Z\r\n\
         DTEND:20240615T113000Z\r\nSUMMARY:{summary}\r\nLOCATION:Babbage wing\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}
