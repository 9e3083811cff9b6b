//! Disabling plugin instances through the plugin manager: a connector instance's scheduled
//! and on-demand syncs stop (a sync request is refused and nothing new arrives), and a
//! channel instance's webhook route answers 404. Enabled again, both come back.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use serde_json::Value;
use tributary_e2e::radicale::vcard;
use tributary_e2e::{eventually, twilio, Stack};
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{EventKind, SyncEvent, SyncMode};
use tributary_proto::requests::connector::{StateQuery, SyncCommand};
use tributary_proto::requests::ErrorCode;

const DAV: &str = "dav-sched";
const SMS: &str = "sms-off";
const TOKEN: &str = "twilio-auth-token-off";
/// Every two seconds (cron with seconds).
const EVERY_2S: &str = "*/2 * * * * *";

const PERSONS: &str = "SELECT count(*) FROM person p JOIN source_record s \
     ON s.entity_id = p.id AND s.entity_type = 'person' WHERE s.instance_id = 'dav-sched'";

fn of_dav(event: &Envelope<Value>) -> bool {
    event.data["instance_id"] == DAV
}

/// Posts a signed inbound SMS with `text`; the status.
async fn sms(stack: &Stack, url: &str, sid: &str, text: &str) -> u16 {
    let params = twilio::inbound_sms(&format!("SM{sid:0>32}"), "+15550002", text);
    let (headers, body) = twilio::signed(TOKEN, url, &params);
    stack.post(url, &headers, body).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_instances_stop_syncing_and_their_webhook_route_answers_404() {
    let dav = tributary_e2e::radicale::start().await;
    dav.create_address_book("/ada/contacts/", "Contacts").await;
    dav.put_vcard(
        "/ada/contacts/lovelace.vcf",
        &vcard(
            "lovelace",
            "Ada Lovelace",
            "Lovelace",
            "Ada",
            "ada@engines.example",
        ),
    )
    .await;
    let mut stack = Stack::new().await;
    stack.start_all().await;
    let mut started = stack.watch(EventKind::Sync(SyncEvent::Started)).await;
    let mut completed = stack.watch(EventKind::Sync(SyncEvent::Completed)).await;

    // A connector on a two-second schedule: it syncs again and again.
    stack
        .admin_install("tributary.dav", DAV, {
            let mut config = dav.config("/ada/contacts/");
            config["schedule"] = serde_json::json!(EVERY_2S);
            config
        })
        .await;
    stack.admin_enable(DAV).await;
    let runs = completed.collect(3, Duration::from_secs(60), of_dav).await;
    assert_eq!(
        runs.len(),
        3,
        "three syncs on schedule within 60 s: {runs:#?}"
    );
    stack
        .wait_for_rows(PERSONS, 1, Duration::from_secs(30))
        .await;

    // A channel whose route takes signed webhooks.
    stack
        .admin_install("tributary.twilio-sms", SMS, twilio::config(TOKEN))
        .await;
    stack.admin_enable(SMS).await;
    let url = stack.webhook_url(SMS).await;
    assert_eq!(sms(&stack, &url, "1", "Before the switch").await, 200);
    stack
        .wait_for_rows("SELECT count(*) FROM message", 1, Duration::from_secs(30))
        .await;

    // Both disabled through the plugin manager's admin API.
    stack.admin_disable(DAV).await;
    stack.admin_disable(SMS).await;

    // The connector stops the instance as soon as it hears: a sync request is refused.
    let refusal = eventually(15, "connector.sync to be refused as not found", || async {
        stack
            .ask(&SyncCommand {
                instance_id: DAV.to_owned(),
                mode: SyncMode::Incremental,
                since: None,
            })
            .await
            .err()
            .filter(|e| e.error == ErrorCode::NotFound)
    })
    .await;
    assert!(refusal.message.contains(DAV), "{}", refusal.message);
    let state = stack
        .ask(&StateQuery {
            instance_id: DAV.to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(state["scheduled"], false, "{state}");

    // The channel removes the route as soon as it hears. Watched with unsigned requests (401
    // while the route is there, so nothing is stored), then a correctly signed one: 404.
    eventually(15, "the webhook route to be removed", || async {
        let (status, _) = stack
            .post(&url, &twilio::headers(None), b"Body=probe".to_vec())
            .await;
        (status == 404).then_some(())
    })
    .await;
    assert_eq!(sms(&stack, &url, "2", "While disabled").await, 404);

    // Whatever sync started before the switch has been announced by now; from here on, with
    // a new contact waiting and three schedule periods passing, none starts.
    while started
        .collect(1, Duration::from_secs(1), of_dav)
        .await
        .len()
        == 1
    {}
    dav.put_vcard(
        "/ada/contacts/hopper.vcf",
        &vcard(
            "hopper",
            "Grace Hopper",
            "Hopper",
            "Grace",
            "grace@navy.example",
        ),
    )
    .await;
    let late = started.collect(1, Duration::from_secs(6), of_dav).await;
    assert!(
        late.is_empty(),
        "a sync started after the disable: {late:#?}"
    );
    assert_eq!(stack.count(PERSONS).await, 1);
    assert_eq!(stack.count("SELECT count(*) FROM message").await, 1);
    assert_eq!(
        stack
            .stored_on(&format!("channel.inbound.twilio-sms.{SMS}"))
            .await,
        1,
        "nothing was stored for the disabled route"
    );
    let persons = stack.search(&[("type", "person")]).await;
    assert_eq!(persons["total"], 1, "{persons}");

    // Enabled again: the schedule brings the new contact, and the route takes webhooks.
    stack.admin_enable(DAV).await;
    stack
        .wait_for_rows(PERSONS, 2, Duration::from_secs(30))
        .await;
    stack.wait_search_total(&[("type", "person")], 2, 30).await;
    stack.admin_enable(SMS).await;
    eventually(15, "the webhook route to be served again", || async {
        (sms(&stack, &url, "4", "After the switch").await == 200).then_some(())
    })
    .await;
    stack
        .wait_for_rows("SELECT count(*) FROM message", 2, Duration::from_secs(30))
        .await;
    stack.assert_all_running();
}
