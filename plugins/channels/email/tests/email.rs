//! The e-mail channel against a real SMTP server: aiosmtpd, started per test from
//! `tests/smtp_sink.py` on a free port.

// Tests arrange what a plugin must not touch itself: files, local servers, programs. The
// lint that keeps plugin code off them (plugins/channels/clippy.toml) does not apply to the arranging.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tributary_channel_email::message::subject;
use tributary_channel_email::Email;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    ChannelPlugin, IncomingWebhook, OutboundMessage, Participant, PluginError,
};
use uuid::Uuid;

const FROM: &str = "Tributary Support <support@example.org>";

/// A running `smtp_sink.py`; killed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    output: PathBuf,
}

impl SmtpSink {
    fn start() -> Self {
        let import = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .expect("python3 must be installed to run the e-mail channel's tests");
        assert!(
            import.status.success(),
            "aiosmtpd is missing: run `python3 -m pip install aiosmtpd` (or scripts/services-up)\n{}",
            String::from_utf8_lossy(&import.stderr)
        );
        let port = free_port();
        let output = std::env::temp_dir().join(format!("smtp-sink-{}.jsonl", Uuid::new_v4()));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&output)
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start smtp_sink.py");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("smtp_sink.py exited with {status} before listening");
            }
            assert!(
                Instant::now() < deadline,
                "smtp_sink.py did not listen on {port} in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            child,
            port,
            output,
        }
    }

    fn server(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn mails(&self) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["event"] == "data")
            .collect()
    }

    fn rcpt_attempts(&self, address: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r["event"] == "rcpt" && r["address"] == address)
            .map(|r| r["reply"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.output);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn context(server: &str, permissions: &[&str]) -> TestContext {
    TestContext::new(
        permissions,
        json!({ "server": server, "from": FROM, "timeoutSecs": 5 }),
    )
}

/// A context whose grants name the server's host and port (`smtp://127.0.0.1:2525?…`
/// grants `network:outbound:127.0.0.1:2525`), as `${server}` resolves in a deployment.
fn granted(server: &str) -> TestContext {
    let host_port = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split(['?', '/'])
        .next()
        .unwrap_or_default();
    context(server, &[&format!("network:outbound:{host_port}")])
}

fn message(recipients: &[(&str, Option<&str>)]) -> OutboundMessage {
    OutboundMessage {
        id: Uuid::parse_str("0190f3c4-8a6b-7cde-9f01-23456789abcd").unwrap(),
        conversation_id: None,
        recipients: recipients
            .iter()
            .map(|(address, name)| Participant {
                address: (*address).to_owned(),
                display_name: name.map(str::to_owned),
            })
            .collect(),
        subject: Some("Your invoice".into()),
        text: "Hello Alice,\nyour invoice is fixed.\n\nRegards".into(),
        in_reply_to: Some("<CAF=abc123@mail.example.com>".into()),
        status_callback_url: None,
    }
}

/// The unfolded value of header `name` in a raw message.
fn header(content: &str, name: &str) -> Option<String> {
    let head = content.split("\r\n\r\n").next().unwrap();
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = unfolded.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            unfolded.push(line.to_owned());
        }
    }
    unfolded.into_iter().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn body(content: &str) -> String {
    content
        .split_once("\r\n\r\n")
        .unwrap()
        .1
        .replace("\r\n", "\n")
}

#[tokio::test]
async fn a_message_is_one_plain_text_email_to_all_recipients_with_threading_headers() {
    let sink = SmtpSink::start();
    let ctx = granted(&sink.server());
    let msg = message(&[
        ("alice@example.com", Some("Alice Doe")),
        ("bob@example.net", None),
    ]);

    let sent = Email.send_message(&ctx.ctx(), msg.clone()).await.unwrap();

    assert_eq!(sent.id, msg.id);
    assert_eq!(
        sent.provider_message_id,
        "<0190f3c4-8a6b-7cde-9f01-23456789abcd@example.org>"
    );
    assert_eq!(sent.status, "sent");
    assert_eq!(
        sent.sender,
        Some(Participant {
            address: "support@example.org".into(),
            display_name: Some("Tributary Support".into())
        })
    );
    assert!((Utc::now() - sent.sent_at).num_seconds().abs() < 60);

    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["mail_from"], "support@example.org");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["alice@example.com", "bob@example.net"])
    );
    let content = mail["content"].as_str().unwrap();
    assert_eq!(
        header(content, "From").as_deref(),
        Some("\"Tributary Support\" <support@example.org>")
    );
    let to = header(content, "To").unwrap();
    assert!(
        to.contains("\"Alice Doe\" <alice@example.com>") && to.contains("bob@example.net"),
        "{to}"
    );
    assert_eq!(header(content, "Subject").as_deref(), Some("Your invoice"));
    assert_eq!(
        header(content, "Message-ID").as_deref(),
        Some(sent.provider_message_id.as_str())
    );
    assert_eq!(
        header(content, "In-Reply-To").as_deref(),
        Some("<CAF=abc123@mail.example.com>")
    );
    assert_eq!(
        header(content, "References").as_deref(),
        Some("<CAF=abc123@mail.example.com>")
    );
    assert_eq!(
        header(content, "Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(header(content, "Date").is_some());
    assert_eq!(
        body(content).trim_end(),
        "Hello Alice,\nyour invoice is fixed.\n\nRegards"
    );
}

#[tokio::test]
async fn the_same_message_sent_twice_keeps_its_message_id_and_a_bare_parent_id_is_bracketed() {
    let sink = SmtpSink::start();
    let ctx = granted(&sink.server());
    let msg = OutboundMessage {
        subject: None,
        in_reply_to: Some("parent-1@mail.example.com".into()),
        ..message(&[("alice@example.com", None)])
    };

    let first = Email.send_message(&ctx.ctx(), msg.clone()).await.unwrap();
    let second = Email.send_message(&ctx.ctx(), msg).await.unwrap();

    assert_eq!(first.provider_message_id, second.provider_message_id);
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        let content = mail["content"].as_str().unwrap();
        assert_eq!(
            header(content, "Message-ID").as_deref(),
            Some(first.provider_message_id.as_str())
        );
        assert_eq!(
            header(content, "In-Reply-To").as_deref(),
            Some("<parent-1@mail.example.com>")
        );
        // Without a subject, the first line of the text is one.
        assert_eq!(header(content, "Subject").as_deref(), Some("Hello Alice,"));
    }
}

#[test]
fn a_missing_subject_is_derived_from_the_first_line_of_text() {
    let with = |subject: Option<&str>, text: &str| OutboundMessage {
        subject: subject.map(str::to_owned),
        text: text.to_owned(),
        ..message(&[("a@example.com", None)])
    };
    assert_eq!(subject(&with(Some("  Hi  "), "x")), "Hi");
    assert_eq!(
        subject(&with(Some(" "), "\n\n  Second line first\nmore")),
        "Second line first"
    );
    assert_eq!(subject(&with(None, "")), "(no subject)");
    let long = "word ".repeat(40);
    let derived = subject(&with(None, &long));
    assert!(derived.ends_with('…'), "{derived}");
    assert!(derived.chars().count() <= 78, "{derived}");
    assert!(long.starts_with(derived.trim_end_matches('…')), "{derived}");
}

#[tokio::test]
async fn a_non_ascii_subject_is_encoded() {
    let sink = SmtpSink::start();
    let ctx = granted(&sink.server());
    let msg = OutboundMessage {
        subject: Some("Grüße aus Köln".into()),
        ..message(&[("alice@example.com", None)])
    };
    Email.send_message(&ctx.ctx(), msg).await.unwrap();
    let content = sink.mails()[0]["content"].as_str().unwrap().to_owned();
    let subject = header(&content, "Subject").unwrap();
    assert!(
        subject.to_ascii_lowercase().starts_with("=?utf-8?"),
        "{subject}"
    );
}

#[tokio::test]
async fn a_recipient_refused_with_550_is_a_permanent_error_and_nothing_is_sent() {
    let sink = SmtpSink::start();
    let ctx = granted(&sink.server());
    let msg = message(&[("alice@example.com", None), ("reject-me@example.com", None)]);

    let err = Email.send_message(&ctx.ctx(), msg).await.unwrap_err();

    match &err {
        PluginError::Other(reason) => {
            assert!(reason.contains("550"), "{reason}");
            assert!(reason.contains("Recipient address rejected"), "{reason}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(
        sink.rcpt_attempts("reject-me@example.com").len(),
        1,
        "retried a 550"
    );
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn a_451_is_retried_and_the_message_goes_through() {
    let sink = SmtpSink::start();
    let ctx = granted(&sink.server());
    let msg = message(&[("flaky@example.com", None)]);

    let sent = Email.send_message(&ctx.ctx(), msg).await.unwrap();

    let attempts = sink.rcpt_attempts("flaky@example.com");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[0].starts_with("451"), "{attempts:?}");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        header(mails[0]["content"].as_str().unwrap(), "Message-ID").as_deref(),
        Some(sent.provider_message_id.as_str())
    );
}

#[tokio::test]
async fn nothing_listening_is_transient_after_retries() {
    let port = free_port();
    let ctx = granted(&format!("smtp://127.0.0.1:{port}?tls=none"));
    let started = Instant::now();

    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();

    assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // Two waits between three attempts: at least half of 500 ms and of 1 s.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_transient() {
    // Accepts connections and says nothing, so the SMTP greeting never comes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ctx = TestContext::new(
        &[&format!("network:outbound:127.0.0.1:{port}")],
        json!({ "server": format!("smtp://127.0.0.1:{port}?tls=none"), "from": FROM, "timeoutSecs": 1 }),
    );
    let started = Instant::now();
    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn starttls_required_refuses_a_server_without_it() {
    // aiosmtpd offers no STARTTLS here: the channel must not fall back to plain text.
    let sink = SmtpSink::start();
    let ctx = granted(&format!("smtp://127.0.0.1:{}", sink.port));
    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert!(
        err.to_string().to_ascii_lowercase().contains("starttls"),
        "{err}"
    );
    assert!(sink.records().is_empty(), "{:?}", sink.records());
}

#[tokio::test]
async fn a_host_not_granted_is_refused_before_connecting() {
    let sink = SmtpSink::start();
    let ctx = context(&sink.server(), &["network:outbound:smtp.example.com"]);
    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::PermissionDenied(_)), "{err:?}");
    assert!(
        err.to_string().contains("network:outbound:127.0.0.1"),
        "{err}"
    );
    assert!(sink.records().is_empty());
}

/// A context granted `permissions` whose client behaves as a default deployment's: no
/// private targets (`plugins.allow_private_network` unset).
fn deployed(server: &str, permissions: &[&str]) -> TestContext {
    context(server, permissions).with_http(|http| http.allow_private_network(false))
}

#[tokio::test]
async fn a_name_pointed_at_loopback_is_refused_before_connecting() {
    // `localhost` stands for any name an attacker points at 127.0.0.1 (or rebinds there
    // after a first, public answer) to reach a mail server inside the network. The grant
    // covers the name and port, as `${server}` grants them; the address is what is refused.
    let sink = SmtpSink::start();
    let server = format!("smtp://localhost:{}?tls=none", sink.port);
    let ctx = deployed(
        &server,
        &[&format!("network:outbound:localhost:{}", sink.port)],
    );

    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();

    let reason = match &err {
        PluginError::Other(reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        reason.contains(&format!("SMTP localhost:{}", sink.port))
            && reason.contains("localhost resolves to 127.0.0.1")
            && reason.contains("loopback")
            && reason.contains("plugins.allow_private_network"),
        "{reason}"
    );
    assert!(sink.records().is_empty(), "{:?}", sink.records());
    // The sink is still listening: its silence is the refusal's, not a server gone.
    assert!(TcpStream::connect(("127.0.0.1", sink.port)).is_ok());
}

#[tokio::test]
async fn a_granted_loopback_address_needs_the_operator_and_nothing_connects() {
    // A bare listener, so that any connection at all would show.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = format!("smtp://127.0.0.1:{port}?tls=none");
    let ctx = deployed(&server, &[&format!("network:outbound:127.0.0.1:{port}")]);

    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, PluginError::Other(r) if r.contains("127.0.0.1 resolves to 127.0.0.1, a loopback address")),
        "{err:?}"
    );
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection was made: {accepted:?}"
    );
}

#[tokio::test]
async fn the_cloud_metadata_address_is_refused_without_a_connection_even_when_granted() {
    // 169.254.169.254 answers a cloud host's own credentials. Refused before any connection
    // (which would time out here): one attempt, no retry, at once.
    let ctx = TestContext::new(
        &["network:outbound:169.254.169.254:25"],
        json!({ "server": "smtp://169.254.169.254:25?tls=none", "from": FROM, "timeoutSecs": 2 }),
    )
    .with_http(|http| http.allow_private_network(false));
    let started = Instant::now();

    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, PluginError::Other(r) if r.contains("169.254.169.254") && r.contains("metadata") && r.contains("plugins.allow_private_network")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_private_address_is_reached_only_through_a_grant_naming_the_host() {
    // Allowed by the operator, a name inside the network is reached when the grant names
    // it, as the SDK's HTTP client does: `localhost` granted is delivered to.
    let sink = SmtpSink::start();
    let server = format!("smtp://localhost:{}?tls=none", sink.port);
    let ctx = context(
        &server,
        &[&format!("network:outbound:localhost:{}", sink.port)],
    );
    Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap();
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn implicit_tls_to_the_checked_address_verifies_the_configured_name() {
    // The connection goes to the checked address, the TLS handshake names the host: the
    // server name (SNI) of the ClientHello is `localhost`, the certificate it must show.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hello = std::thread::spawn(move || {
        use std::io::Read;
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buffer = vec![0; 4096];
        let read = stream.read(&mut buffer).unwrap_or(0);
        buffer.truncate(read);
        buffer
    });
    let ctx = TestContext::new(
        &[&format!("network:outbound:localhost:{port}")],
        json!({ "server": format!("smtps://localhost:{port}"), "from": FROM, "timeoutSecs": 2 }),
    );

    let err = Email
        .send_message(&ctx.ctx(), message(&[("alice@example.com", None)]))
        .await
        .unwrap_err();

    let hello = hello.join().unwrap();
    // A TLS handshake record (22) carrying the name.
    assert_eq!(hello.first(), Some(&22), "{hello:?}");
    assert!(
        hello.windows(b"localhost".len()).any(|w| w == b"localhost"),
        "no server name in the ClientHello"
    );
    assert!(err.to_string().contains("(at 127.0.0.1)"), "{err}");
}

#[tokio::test]
async fn an_invalid_recipient_is_named_and_nothing_is_sent() {
    let sink = SmtpSink::start();
    let ctx = granted(&sink.server());
    let err = Email
        .send_message(
            &ctx.ctx(),
            message(&[("alice@example.com", None), ("not an address", None)]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Other(r) if r.contains("`not an address`")),
        "{err:?}"
    );

    let err = Email
        .send_message(&ctx.ctx(), message(&[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Other(r) if r.contains("no recipients")),
        "{err:?}"
    );
    assert!(sink.records().is_empty());
}

#[tokio::test]
async fn bad_config_names_the_field() {
    let cases = [
        (
            json!({ "server": "mail.example.com:587", "from": FROM }),
            "server",
        ),
        (
            json!({ "server": "http://mail.example.com", "from": FROM }),
            "server",
        ),
        (
            json!({ "server": "smtp://mail.example.com", "from": "not-an-address" }),
            "from",
        ),
        (json!({ "from": FROM }), "server"),
        (
            json!({ "server": "smtp://mail.example.com", "from": FROM, "password": "hunter2" }),
            "username",
        ),
        (
            json!({ "server": "smtp://relay.lan?tls=none", "from": FROM, "username": "u", "password": "hunter2" }),
            "server",
        ),
        (
            json!({ "server": "smtp://mail.example.com", "from": FROM, "timeoutSecs": 0 }),
            "timeoutSecs",
        ),
    ];
    for (config, expected) in cases {
        let ctx = TestContext::new(&["network:outbound:127.0.0.1"], config.clone());
        match Email
            .send_message(&ctx.ctx(), message(&[("a@example.com", None)]))
            .await
        {
            Err(PluginError::Config { field, message }) => {
                assert_eq!(field, expected, "{config}: {message}");
                assert!(!message.contains("hunter2"), "{message}");
            }
            other => panic!("{config}: expected a config error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_channel_takes_no_webhooks() {
    let ctx = granted("smtp://127.0.0.1:25?tls=none");
    let request = IncomingWebhook {
        method: "POST".into(),
        url: "https://hub.example.com/webhooks/email/mail-1".into(),
        query: None,
        headers: vec![],
        body: b"{}".to_vec(),
        received_at: Utc::now(),
    };
    let rejection = Email.verify_webhook(&ctx.ctx(), &request).unwrap_err();
    assert_eq!(rejection.status, 404);
    assert!(Email.handle_incoming(&ctx.ctx(), request).await.is_err());
}
