//! `tributary plugins connect` and the Auth section of `plugins info`, as a person runs them:
//! the real binary against the real plugin manager, whose plugin connects to a local server
//! answering as the Microsoft identity platform documents ([`tributary_kit::testing::oauth`]).
//! What the command prints, waits for and exits with is proved here; the consent flow's own
//! cases (PKCE, refusals of a bad state, refresh) are the plugin manager's tests.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tributary_kit::testing::oauth::{Consent, Provider, ProviderServer};
use tributary_kit::Config;

use super::{Harness, Run};

const MAIL: &str = "com.example.mail";

const MAIL_READ: &str = "https://graph.microsoft.com/Mail.Read";
const CALENDARS_READ: &str = "https://graph.microsoft.com/Calendars.Read";

/// A connector plugin that connects to a Microsoft account, asking for mail and calendars
/// (and `openid email`, for which the provider says whose account it is).
fn mail_manifest() -> String {
    json!({
        "id": MAIL, "name": "Example Mail", "version": "1.0.0", "type": "connector",
        "entrypoint": "builtin:example",
        "permissions": ["network:outbound:graph.microsoft.com"],
        "auth": {"grant": "authorization_code", "provider": "microsoft",
                 "scopes": ["openid", "email", MAIL_READ, CALENDARS_READ]},
        "configSchema": {"type": "object", "properties": {}}
    })
    .to_string()
}

/// A plugin manager whose deployment client is `provider`'s (`tweak` may change more of its
/// configuration), with the mail plugin installed as `mail`.
async fn with_mail(provider: &ProviderServer, tweak: impl FnOnce(&mut Config)) -> Harness {
    let mut h = Harness::without_service().await;
    h.dir.write("mail", &mail_manifest());
    provider.configure(&mut h.env.config);
    tweak(&mut h.env.config);
    h.start_service().await;
    h.cli(&["plugins", "install", MAIL, "--id", "mail", "--yes"])
        .await
        .ok();
    h
}

/// A running `tributary plugins connect mail …`, read as it prints.
struct Waiting {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdout: String,
    consent_url: String,
}

impl Waiting {
    /// Starts the command and reads its output until it has printed the consent URL.
    async fn start(h: &Harness, extra: &[&str]) -> Self {
        let mut args = vec!["plugins", "connect", "mail"];
        args.extend_from_slice(extra);
        let mut child = h
            .command(&args, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = String::new();
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                stdout.push_str(&line);
                stdout.push('\n');
                // The URL stands on a line of its own, indented.
                if line.starts_with("    http") {
                    return line.trim().to_owned();
                }
            }
            panic!("the command ended without a consent URL:\n{stdout}");
        };
        let consent_url = tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("no consent URL within 20 s");
        Self {
            child,
            lines,
            stdout,
            consent_url,
        }
    }

    /// The person opens the URL: the provider redirects the browser to the hub's callback,
    /// which the browser follows.
    async fn consent(&self) {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let at_provider = browser.get(&self.consent_url).send().await.unwrap();
        assert!(
            at_provider.status().is_redirection(),
            "the provider answered {}",
            at_provider.status()
        );
        let back = at_provider.headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(back.contains("/oauth/callback?"), "{back}");
        browser.get(&back).send().await.unwrap();
    }

    /// Waits for the command to end (20 s at most) and collects what it printed.
    async fn finish(mut self) -> Run {
        let mut stderr = String::new();
        let mut pipe = self.child.stderr.take().unwrap();
        let ended = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.stdout.push_str(&line);
                self.stdout.push('\n');
            }
            pipe.read_to_string(&mut stderr).await.unwrap();
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(Duration::from_secs(20), ended)
            .await
            .expect("the command did not end within 20 s");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout,
            stderr,
        }
    }
}

#[tokio::test]
async fn connect_says_an_instance_whose_plugin_has_no_auth_section_connects_to_no_account() {
    // Proves `connect` on an instance of a plugin without `auth` fails, saying why.
    let h = Harness::start().await;
    h.install_contacts().await;

    let run = h.cli(&["plugins", "connect", "contacts"]).await;

    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("does not connect to an account")
            && run.stderr.contains("no `auth` section"),
        "{run:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn info_shows_an_instance_not_yet_connected_and_what_to_run() {
    // Proves `info` shows the Auth section of an instance whose plugin connects to an
    // account, in the text and in --json, before it was ever connected.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let h = with_mail(&provider, |_| {}).await;

    let text = h.cli(&["plugins", "info", "mail"]).await.ok().stdout;
    let auth = h.instance_json("mail").await["auth"].clone();

    assert!(text.contains("\nAuth:\n"), "{text}");
    assert!(
        text.contains("  provider:           microsoft (authorization_code)\n"),
        "{text}"
    );
    assert!(
        text.contains("Not connected yet: run `tributary plugins connect mail`."),
        "{text}"
    );
    assert_eq!(auth["status"], "not_connected", "{auth}");
    assert_eq!(auth["provider"], "microsoft", "{auth}");
    h.finish().await;
}

#[tokio::test]
async fn connect_no_wait_prints_the_consent_url_and_the_redirect_uri_to_register() {
    // Proves `--no-wait` gives a person what they need to consent from any machine, and
    // returns at once; with --json, the pending attempt alone is on standard output.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let h = with_mail(&provider, |_| {}).await;

    let text = h
        .cli(&["plugins", "connect", "mail", "--no-wait"])
        .await
        .ok()
        .stdout;
    let json = h
        .cli(&["plugins", "connect", "mail", "--no-wait", "--json"])
        .await
        .ok()
        .json();

    assert!(
        text.contains(
            "Open this URL in a browser, on this machine or any other:\n\n    http://127.0.0.1:"
        ),
        "{text}"
    );
    let url = text
        .lines()
        .find(|l| l.starts_with("    http"))
        .unwrap()
        .trim();
    assert!(url.starts_with(provider.base_url()), "{url}");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(
        text.contains("/oauth/callback: it must be registered as a redirect URI"),
        "{text}"
    );
    assert!(text.contains("`tributary plugins info mail` shows when it is connected."));
    assert_eq!(json["status"], "pending", "{json}");
    assert_eq!(json["instance_id"], "mail", "{json}");
    assert!(json["consent_url"]
        .as_str()
        .unwrap()
        .starts_with(provider.base_url()));
    h.finish().await;
}

#[tokio::test]
async fn connect_waits_for_consent_and_names_who_and_the_scopes_granted_and_missing() {
    // Proves the command follows the attempt to its end once the person consents, and
    // tells them who it is connected as, what was granted and what was asked for but not.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    provider.set_consent(Consent::ApproveOnly(
        ["openid", "email", MAIL_READ].map(String::from).to_vec(),
    ));
    let h = with_mail(&provider, |_| {}).await;

    let waiting = Waiting::start(&h, &[]).await;
    waiting.consent().await;
    let run = waiting.finish().await.ok();

    assert!(
        run.stdout
            .contains("Connected mail to microsoft as ada@contoso.onmicrosoft.com.\n"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("Scopes granted: "), "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("Asked for but not granted: {CALENDARS_READ} (")),
        "{run:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn info_after_connecting_shows_who_the_scopes_and_the_expiry() {
    // Proves `info` reads the connection back as a person needs it: connected as whom, with
    // which scopes, expiring when; --json has the same, and never a token.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let h = with_mail(&provider, |_| {}).await;
    let waiting = Waiting::start(&h, &[]).await;
    waiting.consent().await;
    let connected = waiting.finish().await.ok();

    let text = h.cli(&["plugins", "info", "mail"]).await.ok().stdout;
    let info = h.cli(&["plugins", "info", "mail", "--json"]).await.ok();
    let auth = info.json()["instance"]["auth"].clone();

    assert!(text.contains("  status:             connected\n"), "{text}");
    assert!(
        text.contains("  connected as:       ada@contoso.onmicrosoft.com\n"),
        "{text}"
    );
    assert!(text.contains("  expires:            in 59 min ("), "{text}");
    assert!(
        text.contains(MAIL_READ) || text.contains("Mail.Read"),
        "{text}"
    );
    assert_eq!(auth["status"], "connected", "{auth}");
    assert_eq!(
        auth["connected_as"], "ada@contoso.onmicrosoft.com",
        "{auth}"
    );
    for secret in provider.secrets() {
        for run in [&connected, &info] {
            assert!(
                !run.everything().contains(&secret),
                "a secret leaked: {run:#?}"
            );
        }
        assert!(!text.contains(&secret), "a secret leaked: {text}");
    }
    h.finish().await;
}

#[tokio::test]
async fn a_denied_consent_ends_the_wait_with_the_refusal_in_plain_words() {
    // Proves a person who declines sees why it failed, and the command exits non-zero.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    provider.set_consent(Consent::Deny);
    let h = with_mail(&provider, |_| {}).await;

    let waiting = Waiting::start(&h, &[]).await;
    waiting.consent().await;
    let run = waiting.finish().await;

    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .starts_with("error: `mail` was not connected to microsoft: access denied"),
        "{run:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn an_expired_consent_url_ends_the_wait_and_says_how_to_retry() {
    // Proves nobody consenting in time is reported as expiry, with the command to run again.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let h = with_mail(&provider, |config| config.oauth.consent_ttl_secs = 1).await;

    let run = Waiting::start(&h, &[]).await.finish().await;

    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(
            "expired before anyone consented; run `tributary plugins connect mail` again"
        ),
        "{run:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn connect_gives_up_at_its_timeout_and_says_the_url_still_works() {
    // Proves --timeout bounds the wait, and the person learns the URL is still good.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let h = with_mail(&provider, |_| {}).await;

    let run = Waiting::start(&h, &["--timeout", "1"]).await.finish().await;

    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("stopped waiting after 1 s; the consent URL works until "),
        "{run:#?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn ctrl_c_stops_the_wait_cleanly() {
    // Proves ctrl-c ends the wait with a sentence and exit code 130, not a dead process.
    let provider = ProviderServer::start(Provider::Microsoft).await.unwrap();
    let h = with_mail(&provider, |_| {}).await;
    let waiting = Waiting::start(&h, &[]).await;

    let pid = nix::unistd::Pid::from_raw(waiting.child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let run = waiting.finish().await;

    assert_eq!(run.code, 130, "{run:#?}");
    assert!(
        run.stderr
            .starts_with("error: stopped waiting; the consent URL works until "),
        "{run:#?}"
    );
    h.finish().await;
}
