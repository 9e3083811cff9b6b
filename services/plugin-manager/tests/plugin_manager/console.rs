//! The admin console over plain HTTP (the browser tests drive it in Chromium:
//! tests/tests/console.rs): sign-in with the admin token, the session cookie's attributes,
//! pages redirecting without a session, the CSRF check of every form, sign-out, and actions
//! changing what the admin API would.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_plugin_manager::console::auth::{CSRF_REFUSED, SIGN_IN_COOKIE, WRONG_TOKEN};
use tributary_plugin_manager::console::SESSION_COOKIE;
use tributary_proto::requests::plugins::InstanceInfo;

use crate::support::*;

/// A browser without JavaScript: follows no redirect, keeps the cookies it is given.
pub(crate) struct Browser {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

/// An answer: its status, its `Location`, its `Set-Cookie` lines and its body.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    set_cookies: Vec<String>,
    pub(crate) body: String,
}

impl Page {
    /// The value of the first `csrf` hidden field.
    pub(crate) fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_owned()
    }

    /// The `Set-Cookie` line of cookie `name`.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

impl Browser {
    pub(crate) fn new(pm: &RunningService) -> Self {
        Self {
            base: format!("http://{}", pm.http_addr),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, page: &Page) {
        for line in &page.set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            let expired = line.contains("Max-Age=0") || value.is_empty();
            if !expired {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// The `Cookie` header this browser sends.
    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookie_header();
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(COOKIE, cookie)
        };
        let response = request.send().await.unwrap();
        let page = Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookies: response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect(),
            // minijinja escapes `/` in attributes; a browser reads both the same.
            body: response.text().await.unwrap().replace("&#x2f;", "/"),
        };
        self.keep(&page);
        page
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Opens the sign-in form and signs in with `token`.
    pub(crate) async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post("/sign-in", &[("csrf", &csrf), ("token", token)])
            .await
    }
}

pub(crate) fn admin_token(env: &TestEnv) -> String {
    env.config
        .plugin_manager
        .admin_token
        .expose_secret()
        .to_owned()
}

pub(crate) async fn state_of(env: &TestEnv, instance: &str) -> String {
    let view: Value = ask::<InstanceInfo, _>(env, json!({ "instance_id": instance }))
        .await
        .unwrap();
    view["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn pages_without_a_session_go_to_sign_in_and_a_wrong_token_is_told_only_that() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut browser = Browser::new(&pm);
    for path in ["/", "/plugins", "/instances/work"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location.as_deref(), Some("/sign-in"), "{path}");
    }

    let form = browser.get("/sign-in").await;
    let cookie = form.set_cookie(SIGN_IN_COOKIE).expect("the sign-in cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/sign-in"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(form.body.contains("<label for=\"token\">"), "{}", form.body);

    let wrong = format!("{}x", admin_token(&env));
    let refused = browser.sign_in(&wrong).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains(WRONG_TOKEN), "{}", refused.body);
    assert!(
        !refused.body.contains(&admin_token(&env)),
        "the token is never shown"
    );
    assert!(
        refused.set_cookie(SESSION_COOKIE).is_none(),
        "no session for a wrong token: {:?}",
        refused.set_cookies
    );
    assert_eq!(browser.get("/").await.status, 303, "still signed out");
    pm.stop().await;
}

#[tokio::test]
async fn the_right_token_starts_an_expiring_http_only_strict_session_and_sign_out_ends_it() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut browser = Browser::new(&pm);
    let signed_in = browser.sign_in(&admin_token(&env)).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/"));
    let cookie = signed_in
        .set_cookie(SESSION_COOKIE)
        .expect("the session cookie");
    // It expires: two hours after sign-in or the last change.
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=7200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http here, so not Secure: {cookie}"
    );

    let overview = browser.get("/").await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(overview.body.contains("<h1>Overview</h1>"));
    assert!(
        overview.body.contains("data-service=\"plugin-manager\""),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("href=\"/instances/work\""));
    let csp = "default-src 'self'";
    let headers = browser
        .http
        .get(format!("{}/", browser.base))
        .send()
        .await
        .unwrap();
    let policy = headers.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains(csp) && policy.contains("frame-ancestors 'none'"));

    let plugins = browser.get("/plugins").await;
    assert_eq!(plugins.status, 200);
    assert!(plugins.body.contains(CONTACTS), "{}", plugins.body);
    assert!(
        plugins.body.contains("built-in"),
        "the built-in plugins are listed too"
    );

    let csrf = overview.csrf();
    let out = browser.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    assert_eq!(browser.get("/").await.status, 303, "the session is over");
    pm.stop().await;
}

#[tokio::test]
async fn a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let page = browser.get("/instances/work").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/instances/work/disable\""));
    let csrf = page.csrf();

    // A forged post (another site's form, the session cookie sent along): no token, an
    // empty one, another one, and a token in the query string instead of the body.
    let forged: [&[(&str, &str)]; 3] = [&[], &[("csrf", "")], &[("csrf", "0123456789abcdef")]];
    for form in forged {
        let refused = browser.post("/instances/work/disable", form).await;
        assert_eq!(refused.status, 403, "{form:?}");
        assert!(refused.body.contains(CSRF_REFUSED), "{}", refused.body);
    }
    let in_query = browser
        .post(&format!("/instances/work/disable?csrf={csrf}"), &[])
        .await;
    assert_eq!(in_query.status, 403);
    let config = browser
        .post(
            "/instances/work/config",
            &[("field.server", "https://evil.example.com")],
        )
        .await;
    assert_eq!(config.status, 403);
    assert_eq!(state_of(&env, "work").await, "enabled", "nothing changed");
    let (_, actions) = audit_of(&env, "work").await;
    assert_eq!(actions, ["install", "accept_permissions", "enable"]);

    // Without a session, the sign-in form's token does not pass either.
    let mut stranger = Browser::new(&pm);
    let forged_sign_in = stranger
        .post("/sign-in", &[("csrf", "x"), ("token", &admin_token(&env))])
        .await;
    assert_eq!(forged_sign_in.status, 403);
    assert!(forged_sign_in.set_cookie(SESSION_COOKIE).is_none());

    // With the token, the same action goes through, as the console's actor.
    let done = browser
        .post("/instances/work/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/instances/work"));
    assert_eq!(state_of(&env, "work").await, "disabled");
    let shown = browser.get("/instances/work").await;
    assert!(
        shown.body.contains("Disabled: its service stops it."),
        "{}",
        shown.body
    );
    let (audit, actions) = audit_of(&env, "work").await;
    assert_eq!(actions.last().map(String::as_str), Some("disable"));
    let expected =
        tributary_plugin_manager::console::console_actor(&env.config.plugin_manager.admin_token);
    assert_eq!(audit.last().unwrap()["actor"], expected.as_str());
    pm.stop().await;
}

#[tokio::test]
async fn the_configuration_form_follows_the_schema_and_saves_through_configure() {
    let (env, _dir, pm) = started_with_work(false).await;
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let page = browser.get("/instances/work").await;
    for expected in [
        "<label for=\"field.server\">server <span class=\"required\">(required)</span></label>",
        "type=\"password\" id=\"field.password\"",
        "id=\"field.pageSize\" name=\"field.pageSize\" value=\"\">",
        "<span id=\"field.password-state\" class=\"secret-state\">set</span>",
        "value=\"https://dav.example.com\"",
    ] {
        assert!(page.body.contains(expected), "{expected} in {}", page.body);
    }
    assert!(
        !page.body.contains("pw-0123456789"),
        "a secret is never shown"
    );
    let csrf = page.csrf();

    // A field that does not parse: named, nothing stored.
    let refused = browser
        .post(
            "/instances/work/config",
            &[
                ("csrf", &csrf),
                ("field.server", "https://dav.example.com"),
                ("field.pageSize", "many"),
            ],
        )
        .await;
    assert_eq!(refused.status, 303);
    let shown = browser.get("/instances/work").await;
    assert!(
        shown
            .body
            .contains("<code>/pageSize</code> must be a whole number"),
        "{}",
        shown.body
    );

    // A valid one: saved through configure, the secret kept since it was left empty.
    browser
        .post(
            "/instances/work/config",
            &[
                ("csrf", &csrf),
                ("field.server", "https://dav2.example.com"),
                ("field.pageSize", "50"),
                ("field.password", ""),
            ],
        )
        .await;
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["config"]["server"], "https://dav2.example.com");
    assert_eq!(view["config"]["pageSize"], 50);
    assert_eq!(view["secrets"]["/password"], "set");
    let (_, actions) = audit_of(&env, "work").await;
    assert_eq!(actions.last().map(String::as_str), Some("configure"));
    pm.stop().await;
}

#[tokio::test]
async fn discard_all_on_the_dead_letters_page_needs_its_box_ticked() {
    use async_nats::jetstream;
    use tributary_kit::dead_letter::DeadLetters;
    use tributary_proto::streams::{ConsumerKey, StreamKey};

    let (env, _dir, pm) = started_with_work(false).await;
    let subjects = env.subjects();
    let js = jetstream::new(env.nats().await);
    let item = json!({ "instance_id": "work", "external_id": "c1" });
    crate::dead_letters::publish(&js, subjects.connector_items("work"), &item).await;
    let pulled = crate::dead_letters::pull_from(
        &js,
        StreamKey::ConnectorItems.name(&subjects),
        ConsumerKey::EtlItems.durable_name(),
        1,
    )
    .await;
    DeadLetters::for_consumer(js.clone(), &subjects, ConsumerKey::EtlItems)
        .send(&pulled[0], "instance `work` lacks `data:write:person`")
        .await;

    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let page = browser.get("/dead-letters").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<span id=\"dead-total\">1</span>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("lacks `data:write:person`"),
        "{}",
        page.body
    );
    let csrf = page.csrf();

    // Not ticked: refused, saying so, and the dead letter stays.
    let unconfirmed = browser
        .post(
            "/dead-letters/discard",
            &[("csrf", &csrf), ("consumer", "")],
        )
        .await;
    assert_eq!(unconfirmed.status, 303, "{}", unconfirmed.body);
    let after = browser.get("/dead-letters").await;
    assert!(
        after.body.contains("Nothing was discarded"),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("<span id=\"dead-total\">1</span>"),
        "{}",
        after.body
    );

    // Ticked: discarded.
    let confirmed = browser
        .post(
            "/dead-letters/discard",
            &[("csrf", &csrf), ("consumer", ""), ("confirm", "yes")],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let after = browser.get("/dead-letters").await;
    assert!(
        after.body.contains("1 dead letters discarded"),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("<span id=\"dead-total\">0</span>"),
        "{}",
        after.body
    );
    pm.stop().await;
}
