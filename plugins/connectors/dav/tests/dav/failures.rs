//! What a sync that cannot run says.

use serde_json::json;
use tributary_connector_dav::DavConnector;
use tributary_plugin_sdk::{PluginError, SyncRequest};

use crate::fixtures;
use crate::support::{context, sync, Radicale, LOCAL, USER};

#[tokio::test]
async fn a_wrong_password_is_an_authentication_failure() {
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let test = context(
        &[LOCAL],
        json!({ "url": server.url("/"), "username": USER, "password": "wrong" }),
    );

    let error = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap_err();

    match &error {
        PluginError::Http {
            status: 401,
            message,
        } => {
            assert!(message.contains("authentication failed"), "{message}");
            assert!(
                message.contains("`ada`") && !message.contains("wrong"),
                "{message}"
            );
        }
        other => panic!("expected an authentication failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_host_not_granted_is_refused_naming_the_permission() {
    let server = Radicale::start().await;
    // The same server, under a name the grants do not cover.
    let url = server.url("/").replace("127.0.0.1", "localhost");
    let test = context(
        &[LOCAL],
        json!({ "url": url, "username": USER, "password": "p" }),
    );

    let error = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, PluginError::PermissionDenied(denied)
            if denied.needed.to_string() == "network:outbound:localhost"),
        "{error:?}"
    );
    assert!(error.to_string().contains("network:outbound:localhost"));
}

#[tokio::test]
async fn a_collection_that_is_not_there_is_a_config_error_naming_the_field() {
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let test = context(
        &[LOCAL],
        json!({ "url": server.url("/"), "username": USER, "password": crate::support::PASSWORD,
                "collections": ["Personal"] }),
    );

    let error = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap_err();

    match error {
        PluginError::Config { field, message } => {
            assert_eq!(field, "collections");
            assert!(
                message.contains("`Personal`") && message.contains("(Work)"),
                "{message}"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failure_never_shows_the_credentials_of_a_url() {
    // The attack: a sync's failure message (stored, logged, shown by the admin API, sent in
    // connector.SyncFailed) carrying `user:password@` because the server echoes the URL it
    // was asked, credentials included, in its error page.
    let server = tributary_plugin_sdk::testing::FixtureServer::start()
        .await
        .unwrap();
    let echoed = server
        .url("/dav/?token=hunter2")
        .replace("http://", "http://ada:hunter2@");
    server.respond(
        "/dav/",
        [
            tributary_plugin_sdk::testing::Canned::status(500)
                .body(format!("cannot serve {echoed}")),
        ],
    );
    let test = context(
        &[LOCAL],
        json!({ "url": server.url("/dav/"), "username": USER, "password": "hunter2" }),
    )
    .with_http(|http| http.max_attempts(1));

    let error = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.contains("http://***@127.0.0.1"), "{message}");
    assert!(!message.contains("ada:hunter2"), "{message}");
    assert!(!message.contains("token=hunter2"), "{message}");
}
