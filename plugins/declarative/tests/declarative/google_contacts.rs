//! The built-in Google Contacts connector, run by the engine against a local People API.

use tributary_declarative::testing::PeopleServer;
use tributary_declarative::DeclarativeConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{EntityType, ItemOperation};

use crate::support::{builtin, ids, oauth_context, sync};

fn connector(people: &PeopleServer) -> DeclarativeConnector {
    builtin("tributary.google-contacts", &people.base_url())
}

fn context() -> TestContext {
    oauth_context(
        &["network:outbound:127.0.0.1", "data:write:persons"],
        serde_json::json!({"pageSize": 2}),
    )
}

async fn five_people() -> PeopleServer {
    let people = PeopleServer::start().await;
    for (id, given) in ["ada", "bob", "cy", "dee", "eve"].iter().enumerate() {
        people.put(
            &format!("c{id}"),
            given,
            "Example",
            &format!("{given}@gmail.example"),
        );
    }
    people
}

#[tokio::test]
async fn a_first_sync_lists_every_person_across_pages_with_the_raw_record() {
    let people = five_people().await;
    let (items, cursor) = sync(&connector(&people), &context(), None).await;
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        [
            "people/c0",
            "people/c1",
            "people/c2",
            "people/c3",
            "people/c4"
        ]
    );
    let ada = &items[0];
    assert_eq!(ada.entity_type, EntityType::Person);
    let fields: tributary_proto::model::PersonFields =
        serde_json::from_value(ada.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", ada.data));
    assert_eq!(fields.display_name, "ada Example");
    assert_eq!(fields.emails, ["ada@gmail.example"]);
    assert_eq!(fields.phones, ["+1 650 555 0000"]);
    assert_eq!(ada.raw["resourceName"], "people/c0");
    assert_eq!(
        ada.source_modified_at.to_rfc3339(),
        "2026-11-01T10:00:00+00:00"
    );
    let requests = people.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests.iter().all(|(q, authorized)| *authorized
        && q.contains("requestSyncToken=true")
        && q.contains("personFields=names")));
    assert!(requests[1].0.contains("pageToken="), "{requests:?}");
    let cursor = cursor.unwrap().0.to_string();
    assert!(cursor.contains("s5"), "{cursor}");
}

#[tokio::test]
async fn later_syncs_send_only_the_changes_then_a_deletion() {
    let people = five_people().await;
    let connector = connector(&people);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;

    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");

    people.put("c1", "bob", "Changed", "bob@gmail.example");
    people.put("c9", "new", "Person", "new@gmail.example");
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["people/c1", "people/c9"]
    );
    assert_eq!(items[0].data["family_name"], "Changed");
    assert!(people.requests().last().unwrap().0.contains("syncToken=s5"));

    people.delete("c3");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Delete), ["people/c3"]);
    assert_eq!(items.len(), 1);
}

#[tokio::test]
async fn an_expired_sync_token_answered_400_failed_precondition_makes_a_full_resync() {
    let people = five_people().await;
    let connector = connector(&people);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;
    people.delete("c0");
    people.expire_tokens();

    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["people/c1", "people/c2", "people/c3", "people/c4"]
    );
    assert_eq!(items.len(), 4, "nothing duplicated: {items:?}");
    let requests = people.requests();
    assert!(requests[3].0.contains("syncToken="), "{requests:?}");
    assert!(!requests[4].0.contains("syncToken="), "{requests:?}");

    people.put("c2", "cy", "Again", "cy@gmail.example");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Upsert), ["people/c2"]);
}

#[tokio::test]
async fn a_throttled_request_is_sent_again_after_retry_after() {
    let people = five_people().await;
    people.throttle(1);
    let started = std::time::Instant::now();
    let (items, _) = sync(&connector(&people), &context(), None).await;
    assert_eq!(items.len(), 5);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(people.requests().len(), 4);
}
