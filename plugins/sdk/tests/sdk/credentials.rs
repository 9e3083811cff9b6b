//! Credentials a URL carries (`https://user:password@host/`, `?token=…`) never reach an
//! error message (issue 27, Low), whatever failed: the server's answer, the connection, the
//! grants, the URL itself, a redirect.

use serde_json::json;
use tributary_plugin_sdk::testing::{Canned, FixtureServer, TestContext};

use crate::LOCAL;

#[tokio::test]
async fn no_error_repeats_the_credentials_of_a_url() {
    let server = FixtureServer::start().await.unwrap();
    let with_credentials = |path: &str| server.url(path).replace("http://", "http://ada:hunter2@");
    // A server echoing the URL it was asked, as many error pages do.
    server.respond(
        "/500",
        [Canned::status(500).body(format!(
            "no such page: {}",
            with_credentials("/500?access_token=hunter2")
        ))],
    );
    server.respond(
        "/redirect",
        [Canned::status(302).header("location", "http://ada:hunter2@elsewhere.example/x")],
    );
    let test = TestContext::new(&[LOCAL], json!({})).with_http(|http| http.max_attempts(1));
    for url in [
        with_credentials("/500?access_token=hunter2"),
        "http://ada:hunter2@127.0.0.1:1/x?token=hunter2".to_owned(),
        "http://ada:hunter2@not-granted.example/x".to_owned(),
        "http://ada:hunter2@[bad/x".to_owned(),
        "ftp://ada:hunter2@127.0.0.1/x".to_owned(),
        with_credentials("/redirect"),
    ] {
        let error = test.ctx().http().get(&url).send().await.unwrap_err();
        let message = error.to_string();
        assert!(
            !message.contains("hunter2") && !format!("{error:?}").contains("hunter2"),
            "{url}: {message}"
        );
    }
}
