//! The access token a host attaches for a plugin with an `auth` section: only to granted
//! hosts, never over the plugin's own `Authorization`, refreshed once after a 401, and a
//! token source's refusal failing the request before anything is sent.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::testing::{Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::{AccessTokens, PluginError};
use tributary_proto::requests::plugins::token_fingerprint;

use crate::LOCAL;

/// A token source answering from a script, recording each `rejected` it is asked with.
#[derive(Default)]
struct ScriptedTokens {
    answers: Mutex<VecDeque<Result<String, String>>>,
    asked: Mutex<Vec<Option<String>>>,
}

impl ScriptedTokens {
    fn answering(
        answers: impl IntoIterator<Item = Result<&'static str, &'static str>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(
                answers
                    .into_iter()
                    .map(|a| a.map(str::to_owned).map_err(str::to_owned))
                    .collect(),
            ),
            asked: Mutex::default(),
        })
    }

    fn asked(&self) -> Vec<Option<String>> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl AccessTokens for ScriptedTokens {
    async fn access_token(&self, rejected: Option<&str>) -> Result<SecretString, PluginError> {
        self.asked.lock().unwrap().push(rejected.map(str::to_owned));
        match self.answers.lock().unwrap().pop_front() {
            Some(Ok(token)) => Ok(SecretString::from(token)),
            Some(Err(message)) => Err(PluginError::Other(message)),
            None => panic!("the token source was asked more often than scripted"),
        }
    }
}

fn with_tokens(permissions: &[&str], tokens: &Arc<ScriptedTokens>) -> TestContext {
    let tokens: Arc<dyn AccessTokens> = tokens.clone();
    TestContext::new(permissions, json!({})).with_http(|http| http.access_tokens(tokens))
}

fn authorizations(server: &FixtureServer, path: &str) -> Vec<Option<String>> {
    server
        .requests_to(path)
        .iter()
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_access_token_is_attached_to_a_request_to_a_granted_host() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/me", [Canned::json(200, json!({ "id": "me" }))]);
    let tokens = ScriptedTokens::answering([Ok("token-1")]);
    let test = with_tokens(&[LOCAL], &tokens);

    let me: Value = test
        .ctx()
        .http()
        .get(&server.url("/me"))
        .send_json()
        .await
        .unwrap();

    assert_eq!(me, json!({ "id": "me" }));
    assert_eq!(
        authorizations(&server, "/me"),
        [Some("Bearer token-1".to_owned())]
    );
    assert_eq!(tokens.asked(), [None]);
}

#[tokio::test]
async fn no_token_is_asked_for_a_host_outside_the_grants() {
    let tokens = ScriptedTokens::answering([]);
    let test = with_tokens(&["network:outbound:api.example.com"], &tokens);

    let err = test
        .ctx()
        .http()
        .get("http://127.0.0.1:9/me")
        .send()
        .await
        .unwrap_err();

    assert!(matches!(err, PluginError::PermissionDenied(_)), "{err:?}");
    assert!(tokens.asked().is_empty());
}

#[tokio::test]
async fn a_request_with_its_own_authorization_keeps_it_and_gets_no_token() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/me", [Canned::json(200, json!({}))]);
    let tokens = ScriptedTokens::answering([]);
    let test = with_tokens(&[LOCAL], &tokens);

    test.ctx()
        .http()
        .get(&server.url("/me"))
        .bearer_auth(&SecretString::from("the-plugins-own"))
        .send()
        .await
        .unwrap();

    assert_eq!(
        authorizations(&server, "/me"),
        [Some("Bearer the-plugins-own".to_owned())]
    );
    assert!(tokens.asked().is_empty());
}

#[tokio::test]
async fn a_401_asks_for_a_fresh_token_once_naming_the_refused_one_and_retries_with_it() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/me",
        [
            Canned::status(401),
            Canned::json(200, json!({ "ok": true })),
        ],
    );
    let tokens = ScriptedTokens::answering([Ok("stale"), Ok("fresh")]);
    let test = with_tokens(&[LOCAL], &tokens);

    let body: Value = test
        .ctx()
        .http()
        .post(&server.url("/me"))
        .json(&json!({ "hello": 1 }))
        .send_json()
        .await
        .unwrap();

    assert_eq!(body, json!({ "ok": true }));
    assert_eq!(tokens.asked(), [None, Some(token_fingerprint("stale"))]);
    assert_eq!(
        authorizations(&server, "/me"),
        [
            Some("Bearer stale".to_owned()),
            Some("Bearer fresh".to_owned())
        ]
    );
    let sent = server.requests_to("/me");
    assert_eq!(
        sent[1].body, sent[0].body,
        "the retry carries the same body"
    );
}

#[tokio::test]
async fn a_second_401_is_the_callers_and_asks_for_no_more_tokens() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/me", [Canned::status(401).body("invalid token")]);
    let tokens = ScriptedTokens::answering([Ok("stale"), Ok("fresh")]);
    let test = with_tokens(&[LOCAL], &tokens);

    let err = test
        .ctx()
        .http()
        .get(&server.url("/me"))
        .send()
        .await
        .unwrap_err();

    assert!(
        matches!(&err, PluginError::Http { status: 401, message } if message.contains("invalid token")),
        "{err:?}"
    );
    assert_eq!(tokens.asked().len(), 2);
    assert_eq!(server.requests_to("/me").len(), 2);
}

#[tokio::test]
async fn a_fetch_reads_the_second_401_as_its_answer() {
    // A WebAssembly guest's fetch reads error answers itself: the 401 after the one refresh
    // is its answer, not an error.
    let server = FixtureServer::start().await.unwrap();
    server.respond("/me", [Canned::status(401)]);
    let tokens = ScriptedTokens::answering([Ok("stale"), Ok("fresh")]);
    let test = with_tokens(&[LOCAL], &tokens);

    let response = test
        .ctx()
        .http()
        .get(&server.url("/me"))
        .fetch()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(tokens.asked().len(), 2);
    assert_eq!(server.requests_to("/me").len(), 2);
}

#[tokio::test]
async fn a_token_source_that_says_reconnect_needed_fails_the_request_before_it_is_sent() {
    let server = FixtureServer::start().await.unwrap();
    server.respond("/me", [Canned::json(200, json!({}))]);
    let tokens = ScriptedTokens::answering([Err(
        "reconnect needed: google refused the refresh: invalid_grant; run `tributary plugins connect mail`",
    )]);
    let test = with_tokens(&[LOCAL], &tokens);

    let err = test
        .ctx()
        .http()
        .get(&server.url("/me"))
        .send()
        .await
        .unwrap_err();

    let message = err.to_string();
    assert!(
        message.starts_with("reconnect needed: google refused"),
        "{message}"
    );
    assert!(
        message.contains("tributary plugins connect mail"),
        "{message}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_redirect_to_another_host_drops_the_token_and_its_401_asks_for_no_fresh_one() {
    // 127.0.0.1 and localhost are the same server but two hosts to the client: the token
    // given for the first is not sent to the second, and the second's 401 is not about it.
    let server = FixtureServer::start().await.unwrap();
    let elsewhere = server.url("/landing").replace("127.0.0.1", "localhost");
    server.respond(
        "/moved",
        [Canned::status(302).header("location", &elsewhere)],
    );
    server.respond("/landing", [Canned::status(401)]);
    let tokens = ScriptedTokens::answering([Ok("token-1")]);
    let test = with_tokens(&[LOCAL, "network:outbound:localhost"], &tokens);

    let err = test
        .ctx()
        .http()
        .get(&server.url("/moved"))
        .send()
        .await
        .unwrap_err();

    assert!(
        matches!(err, PluginError::Http { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(
        authorizations(&server, "/moved"),
        [Some("Bearer token-1".to_owned())]
    );
    assert_eq!(authorizations(&server, "/landing"), [None]);
    assert_eq!(tokens.asked(), [None]);
}
