//! An instance's timeline: lines the services publish on `timeline.<service>.<instance>`,
//! stored once by the `timeline` consumer and read with the audit entries, newest first,
//! filtered and paged, over the admin API and on the console; a line that is not what its
//! subject says is dead-lettered and stored nowhere.

use std::time::Duration;

use serde_json::Value;
use tributary_kit::testing::TestEnv;
use tributary_kit::timeline::TimelineRecorder;
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use tributary_proto::ServiceName;

use crate::console::{admin_token, Browser};
use crate::support::*;

/// Every line of `instance`'s timeline the API answers, page by page of `limit`, with `filter`
/// (`&kind=…`), newest first.
async fn every_line(admin: &Admin, instance: &str, filter: &str, limit: u32) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut before = String::new();
    loop {
        let path = format!("/api/v1/instances/{instance}/timeline?limit={limit}{filter}{before}");
        let (status, page) = admin.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= limit as usize, "{page}");
        lines.extend(entries.iter().cloned());
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => return lines,
        }
    }
}

/// Waits until `instance`'s timeline holds `want` lines of `kind`.
async fn wait_for_lines(admin: &Admin, instance: &str, kind: &str, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let lines = every_line(admin, instance, &format!("&kind={kind}"), 200).await;
        if lines.len() >= want {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{instance}'s timeline never held {want} {kind} lines");
}

fn summaries(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["summary"].as_str().unwrap())
        .collect()
}

async fn recorder(env: &TestEnv, service: ServiceName) -> TimelineRecorder {
    TimelineRecorder::new(env.nats().await, env.subjects(), service)
}

#[tokio::test]
async fn the_timeline_holds_the_services_lines_and_the_audit_newest_first_filtered_and_paged() {
    let (env, _dir, pm) = started_with_work(true).await;
    let admin = Admin::new(&env, &pm);
    let channel = recorder(&env, ServiceName::Channel).await;
    let connector = recorder(&env, ServiceName::Connector).await;

    let sync = TimelineEntry::now(
        "work",
        TimelineKind::Sync,
        TimelineStatus::Ok,
        "incremental sync completed: 7 items in 1.2 s",
    )
    .with("items", 7);
    assert!(connector.record(sync.clone()).await);
    // The same line delivered twice (an outbox publishing again after a crash) is one line.
    assert!(connector.record(sync).await);
    for (status, summary) in [
        (TimelineStatus::Ok, "accepted"),
        (TimelineStatus::Error, "refused (401): bad signature"),
        (
            TimelineStatus::Ok,
            "accepted: a repeat of one received before, kept once",
        ),
    ] {
        let line = TimelineEntry::now("work", TimelineKind::Webhook, status, summary);
        assert!(channel.record(line).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let webhooks = wait_for_lines(&admin, "work", "webhook", 3).await;
    assert_eq!(
        summaries(&webhooks),
        [
            "accepted: a repeat of one received before, kept once",
            "refused (401): bad signature",
            "accepted"
        ],
        "newest first"
    );
    assert!(
        webhooks.iter().all(|l| l["service"] == "channel"),
        "{webhooks:?}"
    );
    let syncs = wait_for_lines(&admin, "work", "sync", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let syncs_again = every_line(&admin, "work", "&kind=sync", 200).await;
    assert_eq!(syncs_again.len(), 1, "stored once: {syncs_again:?}");
    assert_eq!(syncs[0]["detail"]["items"], 7);
    assert_eq!(syncs[0]["service"], "connector");

    // The audit log's entries of the instance are lines too: install and enable.
    let audit = every_line(&admin, "work", "&kind=audit", 200).await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|l| l["detail"]["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"install"), "{audit:?}");
    assert!(actions.contains(&"enable"), "{audit:?}");

    // Filtered by status: only the refusal.
    let errors = every_line(&admin, "work", "&status=error", 200).await;
    assert_eq!(summaries(&errors), ["refused (401): bad signature"]);

    // Paged two at a time, the pages add up to the whole timeline, in the same order, once.
    let whole = every_line(&admin, "work", "", 200).await;
    assert_eq!(whole.len(), 4 + audit.len(), "{whole:?}");
    let paged = every_line(&admin, "work", "", 2).await;
    assert_eq!(paged, whole);
    let times: Vec<&str> = whole.iter().map(|l| l["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    // Bad asks are refused, naming what is wrong.
    for (path, status, words) in [
        (
            "/api/v1/instances/work/timeline?limit=0",
            400,
            "`limit` must be from 1 to 200",
        ),
        (
            "/api/v1/instances/work/timeline?before=yesterday",
            400,
            "`before` must be",
        ),
        (
            "/api/v1/instances/work/timeline?before=9000000000000000000-t1",
            400,
            "`before` must be",
        ),
        (
            "/api/v1/instances/ghost/timeline",
            404,
            "no instance `ghost`",
        ),
    ] {
        let (got, body) = admin.call("GET", path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.to_string().contains(words), "{path}: {body}");
    }
    let (got, _) = admin
        .call("GET", "/api/v1/instances/work/timeline?kind=gossip", None)
        .await;
    assert_eq!(got, 400, "an unknown kind");
    let (got, _) = Admin::with_token(&pm, None)
        .call("GET", "/api/v1/instances/work/timeline", None)
        .await;
    assert_eq!(got, 401, "the admin token is needed");

    // The console: the instance page shows the newest lines, the timeline page filters.
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let page = browser.get("/instances/work").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("refused (401): bad signature"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/instances/work/timeline\""),
        "{}",
        page.body
    );
    let page = browser
        .get("/instances/work/timeline?kind=webhook&status=error")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("refused (401): bad signature"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("7 items"), "{}", page.body);
    for label in [
        "<label for=\"timeline-kind\">Kind</label>",
        "<label for=\"timeline-status\">Status</label>",
    ] {
        assert!(page.body.contains(label), "{label} in {}", page.body);
    }
    let page = browser.get("/instances/work/timeline?kind=gossip").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("`kind` must be one of"), "{}", page.body);
    pm.stop().await;
}

#[tokio::test]
async fn a_line_not_about_its_subjects_instance_is_dead_lettered_and_stored_nowhere() {
    let (env, _dir, pm) = started_with_work(true).await;
    install(&env, "home", contacts_config()).await;
    let admin = Admin::new(&env, &pm);
    let nats = env.nats().await;
    // A line about `home` published on `work`'s subject: a service writing into another
    // instance's timeline. And one on a service's subject that records none.
    let forged = TimelineEntry::now(
        "home",
        TimelineKind::Webhook,
        TimelineStatus::Error,
        "forged",
    );
    let subjects = env.subjects();
    nats.publish(
        subjects.timeline(ServiceName::Channel, "work"),
        serde_json::to_vec(&forged).unwrap().into(),
    )
    .await
    .unwrap();
    let from_etl = TimelineEntry::now("work", TimelineKind::Log, TimelineStatus::Ok, "from etl");
    nats.publish(
        subjects.timeline(ServiceName::Etl, "work"),
        serde_json::to_vec(&from_etl).unwrap().into(),
    )
    .await
    .unwrap();
    nats.flush().await.unwrap();

    let mut reasons = Vec::new();
    for _ in 0..100 {
        let (_, page) = admin
            .call("GET", "/api/v1/dead-letters?consumer=timeline", None)
            .await;
        reasons = page["dead_letters"]
            .as_array()
            .map(|d| d.iter().map(|l| l["reason"].to_string()).collect())
            .unwrap_or_default();
        if reasons.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("about `home`")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("`etl` records no")),
        "{reasons:?}"
    );
    for instance in ["work", "home"] {
        let lines = every_line(&admin, instance, "&kind=webhook", 200).await;
        assert!(lines.is_empty(), "{instance}: {lines:?}");
        let logs = every_line(&admin, instance, "&kind=log", 200).await;
        assert!(logs.is_empty(), "{instance}: {logs:?}");
    }
    pm.stop().await;
}

#[tokio::test]
async fn lines_past_the_retention_are_deleted_and_the_audit_stays() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    let connector = recorder(&env, ServiceName::Connector).await;
    let mut old = TimelineEntry::now("work", TimelineKind::Sync, TimelineStatus::Ok, "long ago");
    old.at -= chrono::Duration::days(31);
    let new = TimelineEntry::now("work", TimelineKind::Sync, TimelineStatus::Ok, "just now");
    assert!(connector.record(old).await);
    assert!(connector.record(new).await);
    wait_for_lines(&admin, "work", "sync", 2).await;

    let pool = env.pool().await;
    let retention = env.config.plugin_manager.timeline_retention();
    let deleted = tributary_plugin_manager::timeline::trim(&pool, retention)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let lines = every_line(&admin, "work", "&kind=sync", 200).await;
    assert_eq!(summaries(&lines), ["just now"]);
    let audit = every_line(&admin, "work", "&kind=audit", 200).await;
    assert!(!audit.is_empty(), "the audit log keeps everything");
    pm.stop().await;
}
