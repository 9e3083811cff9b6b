//! Syncs: first, incremental, deletions, resuming, full, backfill.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use serde_json::json;
use tributary_connector_dav::DavConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{EntityType, ItemOperation, SyncRequest, SyncStep};
use tributary_proto::model::{CalendarEventFields, PersonFields};

use crate::fixtures::{self, CALENDAR, CONTACTS};
use crate::support::{
    context, final_cursor, ids, items, sync, sync_until_first_checkpoint, upsert, Radicale, LOCAL,
};

/// A Radicale server holding the fixtures, a context on its root, and a first incremental
/// sync's steps.
async fn filled_and_synced_once() -> (Radicale, TestContext, Vec<SyncStep>) {
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let test = context(&[LOCAL], server.config("/"));
    let first = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap();
    (server, test, first)
}

fn person(item: &tributary_plugin_sdk::ConnectorItem) -> PersonFields {
    assert_eq!(item.entity_type, EntityType::Person);
    serde_json::from_value(item.data.clone()).unwrap()
}

fn event(item: &tributary_plugin_sdk::ConnectorItem) -> CalendarEventFields {
    assert_eq!(item.entity_type, EntityType::CalendarEvent);
    serde_json::from_value(item.data.clone()).unwrap()
}

#[tokio::test]
async fn a_first_sync_yields_every_contact_and_event_with_mapped_fields() {
    // Proves: discovery from the root, vCard 3 and 4, a zoned, an all-day and a recurring
    // event, each mapped, and a final checkpoint.
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let test = context(&[LOCAL], server.config("/"));

    let steps = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap();

    let items = items(&steps);
    assert_eq!(items.len(), 5, "{:#?}", ids(&items));
    assert!(items.iter().all(|i| i.operation == ItemOperation::Upsert));
    assert!(items.iter().all(|i| i.instance_id == "test-instance"));

    let lovelace = upsert(&items, "/lovelace.vcf");
    assert_eq!(lovelace.external_id, "/ada/contacts/lovelace.vcf");
    let p = person(lovelace);
    assert_eq!(p.display_name, "Augusta Ada King, Countess of Lovelace");
    assert_eq!(p.given_name.as_deref(), Some("Augusta Ada"));
    assert_eq!(p.family_name.as_deref(), Some("King"));
    assert_eq!(p.emails, ["ada@engines.example", "ada@home.example"]);
    assert_eq!(p.phones, ["+44 20 7946 0958"]);
    assert_eq!(p.organization.as_deref(), Some("Analytical Engines Ltd."));
    assert_eq!(p.title.as_deref(), Some("Mathematician"));
    assert_eq!(
        lovelace.source_modified_at,
        Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()
    );
    assert!(lovelace.raw["vcard"]
        .as_str()
        .unwrap()
        .contains("BEGIN:VCARD"));
    assert!(lovelace.raw["etag"].is_string());

    let hopper = upsert(&items, "/grace hopper.vcf");
    assert_eq!(hopper.external_id, "/ada/contacts/grace hopper.vcf");
    assert_eq!(hopper.raw["href"], "/ada/contacts/grace%20hopper.vcf");
    let p = person(hopper);
    assert_eq!(p.display_name, "Grace Hopper");
    assert_eq!(p.emails, ["grace@navy.example"]);
    assert_eq!(p.phones, ["+1-415-555-0132"]);
    assert_eq!(p.title.as_deref(), Some("Rear Admiral"));

    let meeting = upsert(&items, "/meeting.ics");
    let e = event(meeting);
    assert_eq!(e.title, "Engine review");
    assert_eq!(e.location.as_deref(), Some("Room 1, Babbage wing"));
    assert_eq!(e.description.as_deref(), Some("Bring the\nnotes."));
    assert_eq!(
        e.starts_at,
        Utc.with_ymd_and_hms(2024, 6, 15, 8, 0, 0).unwrap()
    );
    assert_eq!(
        e.ends_at,
        Some(Utc.with_ymd_and_hms(2024, 6, 15, 9, 30, 0).unwrap())
    );
    assert_eq!(e.original_timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(e.organizer.as_deref(), Some("ada@engines.example"));
    assert_eq!(e.attendees, ["charles@engines.example"]);
    assert_eq!(
        meeting.source_modified_at,
        Utc.with_ymd_and_hms(2024, 5, 2, 9, 0, 0).unwrap()
    );
    assert!(meeting.raw["icalendar"]
        .as_str()
        .unwrap()
        .contains("BEGIN:VEVENT"));

    let e = event(upsert(&items, "/holiday.ics"));
    assert!(e.all_day);
    assert_eq!(
        e.starts_at,
        Utc.with_ymd_and_hms(2023, 12, 25, 0, 0, 0).unwrap()
    );
    assert_eq!(
        e.ends_at,
        Some(Utc.with_ymd_and_hms(2023, 12, 27, 0, 0, 0).unwrap())
    );

    let e = event(upsert(&items, "/standup.ics"));
    assert_eq!(
        e.recurrence.as_deref(),
        Some("FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20241231T235959Z")
    );
    assert_eq!(e.extra["exdates"], json!(["2024-01-10T09:00:00Z"]));
    assert_eq!(
        e.ends_at,
        Some(Utc.with_ymd_and_hms(2024, 1, 8, 9, 15, 0).unwrap())
    );

    let cursor = final_cursor(&steps);
    let collections = cursor.0["collections"].as_object().unwrap();
    assert!(collections.contains_key(CONTACTS) && collections.contains_key(CALENDAR));
    assert!(collections[CONTACTS]["sync_token"].is_string());
}

#[tokio::test]
async fn an_incremental_sync_yields_only_what_changed() {
    // Proves: from the final cursor, only the changed contact and the added event come.
    let (server, test, first) = filled_and_synced_once().await;

    server
        .put_vcard(
            &format!("{CONTACTS}grace%20hopper.vcf"),
            fixtures::HOPPER_V4_CHANGED,
        )
        .await;
    server
        .put_icalendar(&format!("{CALENDAR}lunch.ics"), fixtures::LUNCH)
        .await;
    let second = sync(
        DavConnector::new(),
        &test,
        Some(final_cursor(&first)),
        SyncRequest::incremental(),
    )
    .await
    .unwrap();

    let changed = items(&second);
    assert_eq!(
        ids(&changed),
        [
            (ItemOperation::Upsert, "/ada/calendar/lunch.ics".to_owned()),
            (
                ItemOperation::Upsert,
                "/ada/contacts/grace hopper.vcf".to_owned()
            ),
        ]
    );
    let hopper = upsert(&changed, "/grace hopper.vcf");
    assert_eq!(person(hopper).title.as_deref(), Some("Computer Scientist"));
    assert_eq!(
        hopper.source_modified_at,
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    );
    assert_eq!(event(upsert(&changed, "/lunch.ics")).title, "Lunch");

    // Nothing changed since: nothing comes, and the sync still ends with a checkpoint.
    let third = sync(
        DavConnector::new(),
        &test,
        Some(final_cursor(&second)),
        SyncRequest::incremental(),
    )
    .await
    .unwrap();
    assert!(items(&third).is_empty(), "{:#?}", ids(&items(&third)));
    final_cursor(&third);
}

#[tokio::test]
async fn a_deleted_resource_becomes_a_tombstone_with_its_external_id() {
    // Proves: a 404 in the sync-collection answer is a Delete item keyed like the upsert.
    let (server, test, first) = filled_and_synced_once().await;
    let upserted = upsert(&items(&first), "/grace hopper.vcf")
        .external_id
        .clone();

    server
        .delete(&format!("{CONTACTS}grace%20hopper.vcf"))
        .await;
    let second = sync(
        DavConnector::new(),
        &test,
        Some(final_cursor(&first)),
        SyncRequest::incremental(),
    )
    .await
    .unwrap();

    let items = items(&second);
    assert_eq!(ids(&items), [(ItemOperation::Delete, upserted)]);
    assert_eq!(items[0].entity_type, EntityType::Person);
    let cursor = final_cursor(&second);
    assert!(cursor.0["collections"][CONTACTS]["members"]
        .get("grace hopper.vcf")
        .is_none());
}

#[tokio::test]
async fn a_sync_resumed_from_its_first_checkpoint_yields_each_item_once() {
    // Proves: a sync killed after its first checkpoint, resumed from it, yields the rest and
    // nothing twice.
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let test = context(&[LOCAL], server.config("/"));
    let connector = DavConnector::with_batch_size(2);

    let (before, checkpoint) =
        sync_until_first_checkpoint(connector, &test, SyncRequest::incremental()).await;
    let after = sync(
        connector,
        &test,
        Some(checkpoint),
        SyncRequest::incremental(),
    )
    .await
    .unwrap();

    let before_ids: Vec<String> = before.iter().map(|i| i.external_id.clone()).collect();
    let after_ids: Vec<String> = items(&after)
        .iter()
        .map(|i| i.external_id.clone())
        .collect();
    assert_eq!(before_ids.len(), 2, "a batch of two before the checkpoint");
    assert_eq!(after_ids.len(), 3, "{after_ids:?}");
    let all: BTreeSet<&String> = before_ids.iter().chain(&after_ids).collect();
    assert_eq!(
        all.len(),
        5,
        "no item twice: {before_ids:?} then {after_ids:?}"
    );
}

#[tokio::test]
async fn a_full_sync_yields_everything_and_finds_deletions_against_the_cursor() {
    // Proves: Full ignores the token, yields every member, and tombstones members the
    // cursor knows that are gone.
    let (server, test, first) = filled_and_synced_once().await;

    server.delete(&format!("{CALENDAR}holiday.ics")).await;
    let full = sync(
        DavConnector::new(),
        &test,
        Some(final_cursor(&first)),
        SyncRequest::full(),
    )
    .await
    .unwrap();

    let items = items(&full);
    let deletes: Vec<_> = items
        .iter()
        .filter(|i| i.operation == ItemOperation::Delete)
        .map(|i| i.external_id.as_str())
        .collect();
    assert_eq!(deletes, ["/ada/calendar/holiday.ics"]);
    assert_eq!(
        items.len(),
        5,
        "four upserts and a tombstone: {:#?}",
        ids(&items)
    );
}

#[tokio::test]
async fn a_token_the_server_refuses_falls_back_to_a_whole_listing() {
    // Proves: a 403 valid-sync-token answer lists the collection again; unchanged members
    // are not yielded again, and one deleted meanwhile is found.
    let (server, test, first) = filled_and_synced_once().await;
    let mut cursor = final_cursor(&first);
    cursor.0["collections"][CONTACTS]["sync_token"] =
        json!("http://radicale.org/ns/sync/0000000000000000");

    server.delete(&format!("{CONTACTS}lovelace.vcf")).await;
    let second = sync(
        DavConnector::new(),
        &test,
        Some(cursor),
        SyncRequest::incremental(),
    )
    .await
    .unwrap();

    assert_eq!(
        ids(&items(&second)),
        [(
            ItemOperation::Delete,
            "/ada/contacts/lovelace.vcf".to_owned()
        )]
    );
    let cursor = final_cursor(&second);
    assert_ne!(
        cursor.0["collections"][CONTACTS]["sync_token"],
        "http://radicale.org/ns/sync/0000000000000000"
    );
}

#[tokio::test]
async fn a_collection_that_disappears_takes_its_members_with_it() {
    // Proves: members of a collection no longer found are tombstoned and it leaves the cursor.
    let (server, test, first) = filled_and_synced_once().await;

    server.delete(CALENDAR).await;
    let second = sync(
        DavConnector::new(),
        &test,
        Some(final_cursor(&first)),
        SyncRequest::incremental(),
    )
    .await
    .unwrap();

    let items = items(&second);
    assert_eq!(items.len(), 3, "{:#?}", ids(&items));
    assert!(items.iter().all(
        |i| i.operation == ItemOperation::Delete && i.entity_type == EntityType::CalendarEvent
    ));
    assert!(final_cursor(&second).0["collections"]
        .get(CALENDAR)
        .is_none());
}

#[tokio::test]
async fn a_backfill_yields_what_changed_starts_or_recurs_since_its_date() {
    // Proves: Backfill{since} leaves out contacts last revised and events starting and last
    // modified before `since`, and keeps the cursor's tokens.
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let test = context(&[LOCAL], server.config("/"));
    let since = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();

    let steps = sync(
        DavConnector::new(),
        &test,
        None,
        SyncRequest::backfill(since),
    )
    .await
    .unwrap();

    let got: BTreeSet<String> = items(&steps).into_iter().map(|i| i.external_id).collect();
    let expected: BTreeSet<String> = [
        // No REV: taken as new.
        "/ada/contacts/grace hopper.vcf",
        // Starts after `since`.
        "/ada/calendar/meeting.ics",
        // Recurs.
        "/ada/calendar/standup.ics",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(got, expected);
    let cursor = final_cursor(&steps);
    assert!(cursor.0["collections"][CONTACTS]["sync_token"].is_null());
}
