//! A CardDAV/CalDAV account on a real Radicale server, synced by the `dav` connector running
//! in the connector process, written by the ETL process, announced on NATS and found through
//! the search process's `GET /search`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use serde_json::{json, Value};
use tributary_e2e::radicale::{event, vcard};
use tributary_e2e::{eventually, Stack};
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{DataChange, EventKind, SyncEvent, SyncMode};
use tributary_proto::model::EntityType;
use tributary_proto::requests::connector::SyncCommand;
use uuid::Uuid;

const INSTANCE: &str = "dav-ada";

const PERSONS_OF_INSTANCE: &str = "SELECT count(*) FROM person p JOIN source_record s \
     ON s.entity_id = p.id AND s.entity_type = 'person' WHERE s.instance_id = 'dav-ada'";

fn of_instance(event: &Envelope<Value>) -> bool {
    event.data["instance_id"] == INSTANCE
}

/// `connector.sync` of the instance; a sync that just ended may hold the instance a moment
/// longer than its event, so a conflict is asked again.
async fn sync_now(stack: &Stack) -> Value {
    eventually(10, "connector.sync to be accepted", || async {
        stack
            .ask(&SyncCommand {
                instance_id: INSTANCE.to_owned(),
                mode: SyncMode::Incremental,
                since: None,
            })
            .await
            .ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carddav_sync_becomes_persons_data_events_and_search_hits() {
    let dav = tributary_e2e::radicale::start().await;
    dav.create_address_book("/ada/contacts/", "Contacts").await;
    let people = [
        (
            "lovelace",
            "Ada Lovelace",
            "Lovelace",
            "Ada",
            "ada@engines.example",
        ),
        (
            "hopper",
            "Grace Hopper",
            "Hopper",
            "Grace",
            "grace@navy.example",
        ),
        (
            "babbage",
            "Charles Babbage",
            "Babbage",
            "Charles",
            "charles@engines.example",
        ),
    ];
    for (uid, full, family, given, email) in people {
        dav.put_vcard(
            &format!("/ada/contacts/{uid}.vcf"),
            &vcard(uid, full, family, given, email),
        )
        .await;
    }
    dav.create_calendar("/ada/calendar/", "Calendar").await;
    dav.put_icalendar(
        "/ada/calendar/review.ics",
        &event("review-1", "Difference engine review"),
    )
    .await;

    let mut stack = Stack::new().await;
    stack.start_all().await;
    let mut created = stack
        .watch(EventKind::Data {
            entity: EntityType::Person,
            change: DataChange::Created,
        })
        .await;
    let mut completed = stack.watch(EventKind::Sync(SyncEvent::Completed)).await;

    // Installed and enabled through the plugin manager's admin API; an instance that never
    // synced syncs at once.
    stack
        .admin_install("tributary.dav", INSTANCE, dav.config("/ada/"))
        .await;
    stack.admin_enable(INSTANCE).await;
    let done = completed
        .collect(1, Duration::from_secs(60), of_instance)
        .await;
    assert_eq!(done.len(), 1, "no SyncCompleted of {INSTANCE} within 60 s");
    assert_eq!(
        done[0].data["items"], 4,
        "three contacts and one event: {:?}",
        done[0]
    );

    // Persons in PostgreSQL, each from its vCard.
    stack
        .wait_for_rows(PERSONS_OF_INSTANCE, 3, Duration::from_secs(60))
        .await;
    let rows: Vec<(Uuid, String, Vec<String>, Option<String>)> = sqlx::query_as(
        "SELECT p.id, p.display_name, p.emails, p.organization FROM person p JOIN source_record s \
         ON s.entity_id = p.id AND s.entity_type = 'person' \
         WHERE s.instance_id = $1 ORDER BY p.display_name",
    )
    .bind(INSTANCE)
    .fetch_all(stack.pool())
    .await
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(names, ["Ada Lovelace", "Charles Babbage", "Grace Hopper"]);
    assert_eq!(rows[0].2, ["ada@engines.example"]);
    assert_eq!(rows[2].2, ["grace@navy.example"]);
    assert_eq!(rows[0].3.as_deref(), Some("Analytical Engines Ltd."));
    stack
        .wait_for_rows(
            "SELECT count(*) FROM calendar_event WHERE title = 'Difference engine review'",
            1,
            Duration::from_secs(30),
        )
        .await;

    // One data.PersonCreated per person, announcing exactly those rows.
    let events = created.collect(3, Duration::from_secs(30), |_| true).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    let mut announced: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e.event_type, "data.PersonCreated");
            assert_eq!(e.source.service, "etl");
            e.entity_id.unwrap().to_string()
        })
        .collect();
    announced.sort();
    let mut stored: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    stored.sort();
    assert_eq!(announced, stored);

    // Found through GET /search on the search process.
    let persons = stack.wait_search_total(&[("type", "person")], 3, 60).await;
    let mut titles: Vec<&str> = persons["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, names);
    assert_eq!(
        stack.stored_on("data.PersonCreated").await,
        3,
        "no person announced twice"
    );
    let found = stack.search(&[("q", "Lovelace")]).await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["hits"][0]["title"], "Ada Lovelace");
    assert_eq!(found["hits"][0]["entity_type"], "person");
    assert_eq!(found["hits"][0]["id"], rows[0].0.to_string());
    assert_eq!(found["hits"][0]["sources"], json!([INSTANCE]));
    let meeting = stack
        .wait_search_total(
            &[("q", "difference engine"), ("type", "calendar_event")],
            1,
            30,
        )
        .await;
    assert_eq!(meeting["hits"][0]["title"], "Difference engine review");

    // A contact added later comes with the next sync, asked for over NATS.
    dav.put_vcard(
        "/ada/contacts/somerville.vcf",
        &vcard(
            "somerville",
            "Mary Somerville",
            "Somerville",
            "Mary",
            "mary@science.example",
        ),
    )
    .await;
    let accepted = sync_now(&stack).await;
    assert_eq!(accepted["instance_id"], INSTANCE);
    let done = completed
        .collect(1, Duration::from_secs(60), of_instance)
        .await;
    assert_eq!(
        done.len(),
        1,
        "no SyncCompleted of the second sync within 60 s"
    );
    assert_eq!(
        done[0].data["items"], 1,
        "only the new contact: {:?}",
        done[0]
    );
    stack
        .wait_for_rows(PERSONS_OF_INSTANCE, 4, Duration::from_secs(30))
        .await;
    let more = created.collect(1, Duration::from_secs(30), |_| true).await;
    assert_eq!(more.len(), 1);
    let found = stack
        .wait_search_total(&[("q", "Somerville"), ("type", "person")], 1, 30)
        .await;
    assert_eq!(found["hits"][0]["title"], "Mary Somerville");
    assert_eq!(
        found["hits"][0]["id"],
        more[0].entity_id.unwrap().to_string()
    );
    stack.assert_all_running();
}
