//! The console's lifecycle pages over plain HTTP: install through the form with every
//! permission ticked for consent, an upgrade's new permissions highlighted and granted, an
//! uninstall only once confirmed (keeping or purging), connecting an account, and the live
//! sync progress pushed as server-sent events.

use std::time::Duration;

use reqwest::header::COOKIE;
use serde_json::{json, Value};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{EventKind, SyncEvent, SyncLifecycle, SyncMode};
use tributary_proto::requests::plugins::{InstanceInfo, RescanPlugins};

use crate::console::{admin_token, state_of, Browser};
use crate::oauth::OAuthEnv;
use crate::support::*;

/// The console's audit actor for `env`'s admin token.
fn console_actor(env: &tributary_kit::testing::TestEnv) -> String {
    tributary_plugin_manager::console::console_actor(&env.config.plugin_manager.admin_token)
}

#[tokio::test]
async fn an_instance_is_installed_through_the_form_only_with_every_permission_granted() {
    let (env, _dir) = env_with_plugin().await;
    let pm = RunningPm::start(env.config.clone()).await;
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;

    let plugins = browser.get("/plugins").await;
    let install = format!("/plugins/{CONTACTS}/install");
    assert!(
        plugins.body.contains(&format!("href=\"{install}\"")),
        "{}",
        plugins.body
    );
    let page = browser.get(&install).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for permission in V1_PERMISSIONS {
        let consent = format!("name=\"accept\" value=\"{permission}\"");
        assert!(page.body.contains(&consent), "{consent} in {}", page.body);
    }
    for label in [
        "<label for=\"instance_id\">Instance id</label>",
        "<label for=\"field.server\">server <span class=\"required\">(required)</span></label>",
        "type=\"password\" id=\"field.password\"",
    ] {
        assert!(page.body.contains(label), "{label} in {}", page.body);
    }
    let csrf = page.csrf();
    let form = |accepted: &[&'static str]| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("instance_id", "home".to_owned()),
            ("enable", "true".to_owned()),
            ("field.server", "https://dav.example.com".to_owned()),
            ("field.password", "pw-home-0123".to_owned()),
        ];
        form.extend(accepted.iter().map(|p| ("accept", (*p).to_owned())));
        form
    };
    let post = |browser: &Browser, form: Vec<(&'static str, String)>| {
        browser
            .http
            .post(format!("{}{install}", browser.base))
            .form(&form)
    };

    // One permission left unticked: refused, saying which, the form filled in again (but for
    // the secret), and nothing installed.
    let request = post(&browser, form(&V1_PERMISSIONS[..1]));
    let refused = browser.send(request).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains(V1_PERMISSIONS[1]), "{}", refused.body);
    assert!(refused.body.contains("value=\"home\""), "{}", refused.body);
    assert!(
        !refused.body.contains("pw-home-0123"),
        "a secret is never shown"
    );
    let missing = ask::<InstanceInfo, Value>(&env, json!({ "instance_id": "home" })).await;
    assert!(missing.is_err(), "nothing installed: {missing:?}");

    // Every permission granted: installed, enabled, as the console's actor.
    let request = post(&browser, form(&V1_PERMISSIONS));
    let done = browser.send(request).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/instances/home"));
    let shown = browser.get("/instances/home").await;
    assert!(
        shown.body.contains("Installed and enabled home"),
        "{}",
        shown.body
    );
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "home" }))
        .await
        .unwrap();
    assert_eq!(view["state"], "enabled");
    assert_eq!(view["permissions"], json!(V1_PERMISSIONS));
    assert_eq!(view["config"]["server"], "https://dav.example.com");
    assert_eq!(view["secrets"]["/password"], "set");
    let (audit, actions) = audit_of(&env, "home").await;
    assert_eq!(actions, ["install", "accept_permissions", "enable"]);
    assert!(audit
        .iter()
        .all(|e| e["actor"] == console_actor(&env).as_str()));
    pm.stop().await;
}

#[tokio::test]
async fn an_upgrade_shows_its_new_permissions_and_waits_until_they_are_granted() {
    let (env, dir, pm) = started_with_work(true).await;
    let added = "network:outbound:api.other.org";
    let mut v2: Vec<&str> = V1_PERMISSIONS.to_vec();
    v2.push(added);
    dir.write("contacts", &contacts_manifest("2.0.0", &v2));
    let _: Value = ask::<RescanPlugins, _>(&env, json!({})).await.unwrap();

    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let page = browser.get("/instances/work").await;
    assert!(page.body.contains("Upgrade to 2.0.0"), "{}", page.body);
    let highlighted = format!("<code class=\"new-permission\">{added}</code>");
    assert!(page.body.contains(&highlighted), "{}", page.body);
    for old in V1_PERMISSIONS {
        assert!(
            !page
                .body
                .contains(&format!("<code class=\"new-permission\">{old}</code>")),
            "{old} is not new"
        );
    }
    let csrf = page.csrf();

    // Not granted: held, the page says so, still on 1.0.0.
    let held = browser
        .post("/instances/work/upgrade", &[("csrf", &csrf)])
        .await;
    assert_eq!(held.status, 303);
    let shown = browser.get("/instances/work").await;
    assert!(shown.body.contains(added), "{}", shown.body);
    assert!(shown.body.contains("Held upgrade"), "{}", shown.body);
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["version"], "1.0.0");

    // Granted: upgraded.
    browser
        .post(
            "/instances/work/upgrade",
            &[("csrf", &csrf), ("accept", added)],
        )
        .await;
    let shown = browser.get("/instances/work").await;
    assert!(shown.body.contains("Upgraded to 2.0.0."), "{}", shown.body);
    let view: Value = ask::<InstanceInfo, _>(&env, json!({ "instance_id": "work" }))
        .await
        .unwrap();
    assert_eq!(view["version"], "2.0.0");
    assert_eq!(view["permissions"], json!(v2));
    pm.stop().await;
}

#[tokio::test]
async fn uninstall_needs_its_box_ticked_and_keeps_or_purges_as_chosen() {
    let (env, _dir, pm) = started_with_work(true).await;
    install(&env, "spare", contacts_config()).await;
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let page = browser.get("/instances/work").await;
    assert!(
        page.body.contains("<label for=\"uninstall-confirm\">"),
        "{}",
        page.body
    );
    let csrf = page.csrf();

    for form in [
        vec![("csrf", csrf.as_str()), ("data", "keep")],
        vec![
            ("csrf", csrf.as_str()),
            ("data", "sideways"),
            ("confirm", "yes"),
        ],
    ] {
        let refused = browser.post("/instances/work/uninstall", &form).await;
        assert_eq!(refused.status, 303);
        assert_eq!(refused.location.as_deref(), Some("/instances/work"));
        let shown = browser.get("/instances/work").await;
        assert!(shown.body.contains("Not uninstalled"), "{}", shown.body);
        assert_eq!(state_of(&env, "work").await, "enabled", "{form:?}");
    }

    let kept = browser
        .post(
            "/instances/work/uninstall",
            &[("csrf", &csrf), ("data", "keep"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(kept.location.as_deref(), Some("/"));
    let overview = browser.get("/").await;
    assert!(
        overview
            .body
            .contains("Uninstalled work; its data is kept."),
        "{}",
        overview.body
    );
    assert_eq!(state_of(&env, "work").await, "uninstalled");

    browser
        .post(
            "/instances/spare/uninstall",
            &[("csrf", &csrf), ("data", "purge"), ("confirm", "yes")],
        )
        .await;
    let overview = browser.get("/").await;
    assert!(
        overview.body.contains("Uninstalled spare and purged"),
        "{}",
        overview.body
    );
    let (audit, actions) = audit_of(&env, "spare").await;
    assert_eq!(actions.last().map(String::as_str), Some("uninstall_purge"));
    assert_eq!(audit.last().unwrap()["actor"], console_actor(&env).as_str());
    let (_, kept) = audit_of(&env, "work").await;
    assert_eq!(kept.last().map(String::as_str), Some("uninstall"));
    pm.stop().await;
}

#[tokio::test]
async fn connect_leads_to_the_consent_link_and_shows_the_account_once_connected() {
    let t = OAuthEnv::microsoft(&["openid", "email", "Mail.Read"]).await;
    let mut browser = Browser::new(&t.pm);
    browser.sign_in(&admin_token(&t.env)).await;
    let page = browser.get("/instances/mail").await;
    assert!(
        page.body.contains("id=\"auth-status\">not_connected"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Connect</button>"), "{}", page.body);

    let started = browser
        .post("/instances/mail/connect", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let to = started.location.clone().unwrap();
    assert!(to.starts_with("/connect/"), "{to}");
    let pending = browser.get(&to).await;
    assert!(
        pending.body.contains("id=\"attempt-status\">pending"),
        "{}",
        pending.body
    );
    let marker = "id=\"consent-link\" href=\"";
    let start = pending
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("a consent link in {}", pending.body))
        + marker.len();
    let end = pending.body[start..].find('"').unwrap();
    let consent_url = pending.body[start..start + end].replace("&amp;", "&");
    assert!(
        consent_url.starts_with(t.provider.base_url()),
        "{consent_url}"
    );

    // The person consents at the provider; the hub's callback takes the code.
    let back = t.browser.get(&consent_url).send().await.unwrap();
    let callback = back.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, answer) = t.open(&callback).await;
    assert_eq!(status, 200, "{answer}");

    let ended = browser.get(&to).await;
    assert!(
        ended.body.contains("id=\"attempt-status\">connected"),
        "{}",
        ended.body
    );
    assert!(
        ended.body.contains("<code>Mail.Read</code>"),
        "{}",
        ended.body
    );
    let page = browser.get("/instances/mail").await;
    assert!(
        page.body.contains("id=\"auth-status\">connected"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Reconnect</button>"), "{}", page.body);
    t.pm.stop().await;
}

#[tokio::test]
async fn live_progress_is_pushed_as_server_sent_events_of_the_instance_followed() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut browser = Browser::new(&pm);
    assert_eq!(browser.get("/live/syncs").await.status, 303, "signed out");
    browser.sign_in(&admin_token(&env)).await;
    let response = browser
        .http
        .get(format!("{}/live/syncs?instance=work", browser.base))
        .header(COOKIE, browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut response = response;

    // The connector service's events: another instance's, then this one's progress.
    let nats = env.nats().await;
    let publish = |instance: &str, items: u64| {
        let event = Envelope::new(
            EventKind::Sync(SyncEvent::Progress),
            EventSource::new("connector", Some(instance.to_owned())),
            None,
            SyncLifecycle {
                instance_id: instance.to_owned(),
                sync_id: uuid::Uuid::new_v4(),
                mode: SyncMode::Full,
                items,
                rate: 12.5,
                errors: 0,
                error: None,
            },
        );
        (
            env.subjects().event(EventKind::Sync(SyncEvent::Progress)),
            event.to_bytes().unwrap(),
        )
    };
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.contains("\"items\":42") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing pushed: {received}"
        );
        for (instance, items) in [("other", 7), ("work", 42)] {
            let (subject, payload) = publish(instance, items);
            nats.publish(subject, payload.into()).await.unwrap();
        }
        nats.flush().await.unwrap();
        if let Ok(chunk) = tokio::time::timeout(Duration::from_millis(300), response.chunk()).await
        {
            let chunk = chunk.unwrap().expect("the stream stays open");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(received.contains("event: sync"), "{received}");
    assert!(received.contains("\"kind\":\"progress\""), "{received}");
    assert!(received.contains("\"status\":\"running\""), "{received}");
    assert!(received.contains("\"rate\":12.5"), "{received}");
    assert!(
        !received.contains("\"other\""),
        "only the instance followed: {received}"
    );
    pm.stop().await;
}

#[tokio::test]
async fn a_session_outlives_a_restart_of_the_plugin_manager_and_ends_when_it_expires() {
    let (env, _dir, pm) = started_with_work(true).await;
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    assert_eq!(browser.get("/").await.status, 200);
    pm.stop().await;

    // Another process on the same database: the same cookie is still signed in.
    let again = RunningPm::start(env.config.clone()).await;
    browser.base = format!("http://{}", again.http_addr);
    let page = browser.get("/instances/work").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = browser
        .post("/instances/work/disable", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(
        done.status, 303,
        "its CSRF token still holds: {}",
        done.body
    );
    assert_eq!(state_of(&env, "work").await, "disabled");

    // Its row holds no token, only its fingerprint; once past its expiry it is no session.
    let pool = env.pool().await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT data::text FROM console_session")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(!rows[0].0.contains(&admin_token(&env)), "{rows:?}");
    sqlx::query("UPDATE console_session SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let expired = browser.get("/").await;
    assert_eq!(expired.status, 303, "expired: signed out");
    assert_eq!(expired.location.as_deref(), Some("/sign-in"));
    again.stop().await;
}
