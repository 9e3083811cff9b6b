//! Purging an instance and installing it again under the same id, as a new user does: a
//! connector instance gets back everything its source holds, and a channel instance's next
//! message in a conversation it had before files that conversation again. Nothing the purged
//! instance left (source records and their versions, item message ids, sync cursors) may hide
//! what the new one brings in.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use serde_json::json;
use tributary_e2e::{twilio, Stack};

const FOLDER: &str = "notes";
const SMS: &str = "sms-again";
const TOKEN: &str = "twilio-auth-token-again";

const LIVE_DOCUMENTS: &str = "SELECT count(*) FROM document d JOIN source_record s \
     ON s.entity_id = d.id AND s.entity_type = 'document' \
     WHERE s.instance_id = 'notes' AND d.deleted_at IS NULL";

/// Uninstalls `instance` with `--purge` through the admin API.
async fn purge(stack: &Stack, instance: &str) {
    let (status, body) = stack
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/instances/{instance}?purge=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "purge {instance}: {body}");
    assert_eq!(body["purged"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_instance_purged_and_installed_again_gets_everything_back() {
    let folder = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("a.md", "# Alpha\nfirst"),
        ("b.md", "# Beta\nsecond"),
        ("c.txt", "gamma"),
        ("d.md", "# Delta\nfourth"),
        ("e.txt", "epsilon"),
    ] {
        std::fs::write(folder.path().join(name), text).unwrap();
    }
    let config = json!({ "path": folder.path() });
    let mut stack = Stack::new().await;
    stack.start_all().await;
    stack
        .admin_install("tributary.folder", FOLDER, config.clone())
        .await;
    stack.admin_enable(FOLDER).await;
    stack
        .wait_for_rows(LIVE_DOCUMENTS, 5, Duration::from_secs(60))
        .await;

    purge(&stack, FOLDER).await;
    stack
        .wait_for_rows(
            "SELECT count(*) FROM document WHERE deleted_at IS NULL",
            0,
            Duration::from_secs(30),
        )
        .await;

    // The same files, unchanged (older than the purge), under the same instance id.
    stack
        .admin_install("tributary.folder", FOLDER, config)
        .await;
    stack.admin_enable(FOLDER).await;
    stack
        .wait_for_rows(LIVE_DOCUMENTS, 5, Duration::from_secs(60))
        .await;
    stack.wait_search_total(&[("source", FOLDER)], 5, 30).await;
}

/// Installs and enables the Twilio SMS instance [`SMS`], then posts to its route a signed
/// inbound SMS `sid` with `text` from the same number each time, which must be answered 200.
async fn install_and_text(stack: &Stack, sid: u32, text: &str) {
    stack
        .admin_install("tributary.twilio-sms", SMS, twilio::config(TOKEN))
        .await;
    stack.admin_enable(SMS).await;
    let url = stack.webhook_url(SMS).await;
    let params = twilio::inbound_sms(&format!("SM{sid:0>32}"), "+15550002", text);
    let (headers, body) = twilio::signed(TOKEN, &url, &params);
    let (status, answer) = stack.post(&url, &headers, body).await;
    assert_eq!(status, 200, "{text}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_instance_purged_and_installed_again_files_its_conversations_again() {
    let mut stack = Stack::new().await;
    stack.start_all().await;
    install_and_text(&stack, 1, "Before the purge").await;
    // Both stored before the purge: the message alone may be, its conversation's item being
    // written in another batch in flight beside it.
    stack
        .wait_for_rows(
            "SELECT count(*) FROM message m JOIN conversation c ON c.id = m.conversation_id \
             WHERE m.deleted_at IS NULL AND c.deleted_at IS NULL",
            1,
            Duration::from_secs(30),
        )
        .await;

    purge(&stack, SMS).await;
    stack
        .wait_for_rows(
            "SELECT count(*) FROM conversation WHERE deleted_at IS NULL",
            0,
            Duration::from_secs(30),
        )
        .await;

    install_and_text(&stack, 2, "After the purge").await;
    // The same conversation (the same two numbers) is live again, with the new message in it.
    stack
        .wait_for_rows(
            "SELECT count(*) FROM message m JOIN conversation c ON c.id = m.conversation_id \
             WHERE m.body_text = 'After the purge' AND m.deleted_at IS NULL \
             AND c.deleted_at IS NULL",
            1,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        stack
            .count("SELECT count(*) FROM message WHERE deleted_at IS NULL")
            .await,
        1,
        "the purged message stays deleted"
    );
}
