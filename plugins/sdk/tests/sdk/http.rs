use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Value};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::testing::{Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::PluginError;

use crate::{fast_retries, LOCAL};

fn denied_permission(err: PluginError) -> String {
    match err {
        PluginError::PermissionDenied(denied) => denied.needed.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_host_outside_the_grants_is_refused_before_any_request_is_made() {
    // The fixture server is up and would answer, but only api.other.org is granted.
    let server = FixtureServer::start().await.unwrap();
    server.respond("/x", [Canned::json(200, json!({}))]);
    let test = TestContext::new(&["network:outbound:api.other.org"], json!({}));

    let err = test
        .ctx()
        .http()
        .get(&server.url("/x"))
        .send()
        .await
        .unwrap_err();

    assert_eq!(denied_permission(err), "network:outbound:127.0.0.1");
    assert!(server.requests().is_empty());

    let test = TestContext::new(&[LOCAL], json!({}));
    let err = test
        .ctx()
        .http()
        .get("http://api.other.org/x")
        .send()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(denied_permission(err), "network:outbound:api.other.org");
    assert!(
        message.contains("network:outbound:api.other.org"),
        "{message}"
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_outside_the_grants_is_refused() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/moved",
        [Canned::status(302).header("location", "http://api.other.org/steal")],
    );
    let test = TestContext::new(&[LOCAL], json!({}));

    let err = test
        .ctx()
        .http()
        .get(&server.url("/moved"))
        .send()
        .await
        .unwrap_err();

    assert_eq!(denied_permission(err), "network:outbound:api.other.org");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait_and_then_succeeds() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/limited",
        [
            Canned::status(429).header("retry-after", "1"),
            Canned::json(200, json!({ "ok": true })),
        ],
    );
    let test = TestContext::new(&[LOCAL], json!({})).with_http(|b| fast_retries(b, 3));

    let started = Instant::now();
    let body: Value = test
        .ctx()
        .http()
        .get(&server.url("/limited"))
        .send_json()
        .await
        .unwrap();

    assert_eq!(body, json!({ "ok": true }));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests_to("/limited").len(), 2);
}

#[tokio::test]
async fn a_503_is_retried_up_to_max_attempts_and_then_fails_with_the_status() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/down", [Canned::status(503).body("maintenance")]);
    let test = TestContext::new(&[LOCAL], json!({})).with_http(|b| fast_retries(b, 3));

    let err = test
        .ctx()
        .http()
        .get(&server.url("/down"))
        .send()
        .await
        .unwrap_err();

    assert!(
        matches!(&err, PluginError::Http { status: 503, message } if message.contains("maintenance")),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(server.requests_to("/down").len(), 3);
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let server = FixtureServer::start().await.unwrap();
    let test = TestContext::new(&[LOCAL], json!({})).with_http(|b| fast_retries(b, 3));

    let err = test
        .ctx()
        .http()
        .get(&server.url("/missing"))
        .send()
        .await
        .unwrap_err();

    assert!(
        matches!(err, PluginError::Http { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_not_retried() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/slow",
        [Canned::json(200, json!({})).delay(Duration::from_secs(3))],
    );
    let test = TestContext::new(&[LOCAL], json!({}))
        .with_http(|b| fast_retries(b, 3).timeout(Duration::from_millis(200)));

    let started = Instant::now();
    let err = test
        .ctx()
        .http()
        .get(&server.url("/slow"))
        .send()
        .await
        .unwrap_err();

    assert!(
        matches!(&err, PluginError::Transient(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_connection_failure_is_retried_and_then_reported_as_transient() {
    // A port that was free a moment ago: connecting to it is refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let test = TestContext::new(&[LOCAL], json!({})).with_http(|b| fast_retries(b, 3));

    let err = test
        .ctx()
        .http()
        .get(&format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap_err();

    assert!(matches!(err, PluginError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn the_rate_limit_spaces_requests_across_clones_of_the_client() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/r", [Canned::json(200, json!({}))]);
    let test = TestContext::new(&[LOCAL], json!({})).with_http(|b| b.rate_limit_per_second(5));
    let url = server.url("/r");

    // Six requests at once from six clones: at 5 per second the last goes out after ≥ 1 s.
    let started = Instant::now();
    let results = join_all((0..6).map(|_| {
        let http = test.ctx().http().clone();
        let url = url.clone();
        async move { http.get(&url).send().await }
    }))
    .await;

    assert!(results.iter().all(Result::is_ok));
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn auth_query_and_body_reach_the_server() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/send", [Canned::json(201, json!({ "id": "m1" }))]);
    let test = TestContext::new(&[LOCAL], json!({}));
    let token = SecretString::from("s3cret");

    let answer: Value = test
        .ctx()
        .http()
        .post(&server.url("/send"))
        .bearer_auth(&token)
        .query(&[("dry", "no")])
        .json(&json!({ "text": "hi" }))
        .send_json()
        .await
        .unwrap();

    assert_eq!(answer, json!({ "id": "m1" }));
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.query.as_deref(), Some("dry=no"));
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).unwrap(),
        json!({ "text": "hi" })
    );
}
