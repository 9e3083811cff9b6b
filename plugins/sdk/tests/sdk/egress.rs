//! Attacks on the egress checks (issue 27, finding 6): a plugin aiming its requests at
//! addresses inside the network, at ports its grants do not name, or at more body than a
//! deployment holds. Each is refused before the server sees a request, or before the body
//! is held.

use std::time::Duration;

use serde_json::{json, Value};
use tributary_plugin_sdk::testing::{Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::PluginError;

use crate::LOCAL;

/// A test context granted `permissions` whose client behaves as a default deployment's:
/// no private targets, only 80, 443 and the ports grants name.
fn deployed(permissions: &[&str]) -> TestContext {
    TestContext::new(permissions, json!({})).with_http(|http| {
        http.allow_private_network(false)
            .any_port_for_tests(false)
            .max_attempts(1)
            .timeout(Duration::from_secs(2))
    })
}

/// A test context as [`deployed`], but whose operator allows private targets.
fn deployed_allowing_private(permissions: &[&str]) -> TestContext {
    deployed(permissions).with_http(|http| {
        http.allow_private_network(true)
            .any_port_for_tests(false)
            .max_attempts(1)
    })
}

async fn get(test: &TestContext, url: &str) -> Result<Value, PluginError> {
    test.ctx().http().get(url).send_json().await
}

#[tokio::test]
async fn a_granted_loopback_address_is_refused_unless_the_operator_allows_private_targets() {
    // The plugin asks for its own loopback address, say to reach an admin port.
    let server = FixtureServer::start().await.unwrap();
    server.respond("/admin", [Canned::json(200, json!({"secrets": true}))]);
    let port = server.base_url().rsplit(':').next().unwrap().to_owned();
    let grant = format!("network:outbound:127.0.0.1:{port}");
    let test = deployed(&[&grant]);

    let err = get(&test, &server.url("/admin")).await.unwrap_err();

    let message = err.to_string();
    assert!(
        message.contains("loopback") && message.contains("plugins.allow_private_network"),
        "{message}"
    );
    assert!(!err.is_transient(), "{err:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_loopback_address_is_reached_when_the_operator_allows_it_and_the_grant_names_it() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/x", [Canned::json(200, json!({"ok": true}))]);
    let port = server.base_url().rsplit(':').next().unwrap().to_owned();
    let grant = format!("network:outbound:127.0.0.1:{port}");
    let test = deployed_allowing_private(&[&grant]);

    let answer = get(&test, &server.url("/x")).await.unwrap();

    assert_eq!(answer, json!({"ok": true}));
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_resolution() {
    // `localhost` stands for any name an attacker points at 127.0.0.1 (or rebinds there
    // after a first, public answer): the address is checked as the client resolves it.
    let server = FixtureServer::start().await.unwrap();
    server.respond("/x", [Canned::json(200, json!({}))]);
    let port = server.base_url().rsplit(':').next().unwrap().to_owned();
    let grant = format!("network:outbound:localhost:{port}");
    let test = deployed(&[&grant]);

    let err = get(&test, &format!("http://localhost:{port}/x"))
        .await
        .unwrap_err();

    let message = err.to_string();
    assert!(
        message.contains("localhost resolves to") && message.contains("loopback"),
        "{message}"
    );
    assert!(!err.is_transient(), "{err:?}");
    assert!(server.requests().is_empty());

    // Allowed by the operator, the grant naming `localhost` itself reaches it.
    let test = deployed_allowing_private(&[&grant]);
    get(&test, &format!("http://localhost:{port}/x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_cloud_metadata_address_is_refused_without_a_connection_even_when_granted() {
    // 169.254.169.254 answers a cloud host's own credentials; no listener is needed to show
    // the refusal comes before any connection (which would time out or be refused).
    let test = deployed(&["network:outbound:169.254.169.254"]);

    let err = get(&test, "http://169.254.169.254/latest/meta-data/iam/")
        .await
        .unwrap_err();

    let message = err.to_string();
    assert!(
        message.contains("169.254.169.254") && message.contains("link-local"),
        "{message}"
    );
    assert!(!err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn loopback_spelled_as_a_number_or_an_ipv6_form_is_refused() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/x", [Canned::json(200, json!({}))]);
    let port = server.base_url().rsplit(':').next().unwrap().to_owned();
    let grant = format!("network:outbound:127.0.0.1:{port}");
    let test = deployed(&[&grant]);

    for url in [
        // 2130706433 is 127.0.0.1; the URL parser reads it as that address.
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f.1:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://[::1]:{port}/x"),
    ] {
        let err = get(&test, &url).await.unwrap_err();
        assert!(!err.is_transient(), "{url}: {err:?}");
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_port_the_grants_do_not_name_is_refused_and_the_refusal_names_the_grant() {
    // The operator allows private targets and the plugin is granted the address, but not
    // the port: it must not reach, say, a database or the NATS port next to its API.
    let server = FixtureServer::start().await.unwrap();
    server.respond("/x", [Canned::json(200, json!({}))]);
    let port = server.base_url().rsplit(':').next().unwrap().to_owned();
    let test = deployed_allowing_private(&[LOCAL]);

    let err = get(&test, &server.url("/x")).await.unwrap_err();

    match err {
        PluginError::PermissionDenied(denied) => {
            assert_eq!(
                denied.needed.to_string(),
                format!("network:outbound:127.0.0.1:{port}")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_an_error_naming_the_limit() {
    let server = FixtureServer::start().await.unwrap();
    let big = vec![b'a'; 64 * 1024];
    server.respond(
        "/big",
        [
            Canned::status(200).body(big.clone()),
            Canned::status(200).body(big.clone()),
            Canned::status(200).body(big),
        ],
    );
    let test = TestContext::new(&[LOCAL], json!({}))
        .with_http(|http| http.max_response_bytes(16 * 1024).max_attempts(1));
    let http = test.ctx().http().clone();

    let bytes = http
        .get(&server.url("/big"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    let text = http
        .get(&server.url("/big"))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    let json = http.get(&server.url("/big")).send_json::<Value>().await;

    for outcome in [bytes.map(|_| ()), text.map(|_| ()), json.map(|_| ())] {
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("16384 bytes") && message.contains("plugins.max_response_bytes"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_body_within_the_limit_is_read_whole() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/small", [Canned::status(200).body(vec![b'a'; 16 * 1024])]);
    let test =
        TestContext::new(&[LOCAL], json!({})).with_http(|http| http.max_response_bytes(16 * 1024));

    let bytes = test
        .ctx()
        .http()
        .get(&server.url("/small"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    assert_eq!(bytes.len(), 16 * 1024);
}

/// What `resolve_checked` answers `test`'s instance for `host` on `port`.
async fn resolve(
    test: &TestContext,
    host: &str,
    port: u16,
) -> Result<Vec<std::net::SocketAddr>, PluginError> {
    test.ctx().http().resolve_checked(host, port).await
}

#[tokio::test]
async fn a_plugin_connecting_itself_is_handed_only_the_addresses_it_may_reach() {
    // What the e-mail channel asks before it opens its SMTP connection: the same rules as the
    // client's own connections, for a name pointed at loopback and for the metadata address.
    let test = deployed(&["network:outbound:localhost:2525"]);
    let err = resolve(&test, "localhost", 2525).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("localhost resolves to 127.0.0.1")
            && message.contains("loopback")
            && message.contains("plugins.allow_private_network"),
        "{message}"
    );
    assert!(matches!(err, PluginError::Other(_)), "{err:?}");

    let err = resolve(&test, "169.254.169.254", 25).await.unwrap_err();
    assert!(
        err.to_string().contains("169.254.169.254") && err.to_string().contains("metadata"),
        "{err}"
    );

    // Allowed by the operator, a private address still needs a grant naming the host itself.
    let other = deployed_allowing_private(&["network:outbound:mail.example.com"]);
    let err = resolve(&other, "localhost", 2525).await.unwrap_err();
    assert!(err.to_string().contains("exactly"), "{err}");

    // A name that does not resolve may resolve later: transient, naming it.
    let err = resolve(&test, "no-such-host.invalid", 25)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(r) if r.contains("cannot resolve no-such-host.invalid")),
        "{err:?}"
    );

    let allowed = deployed_allowing_private(&["network:outbound:localhost:2525"]);
    let addresses = resolve(&allowed, "localhost", 2525).await.unwrap();
    assert!(!addresses.is_empty());
    assert!(
        addresses
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 2525),
        "{addresses:?}"
    );
}
