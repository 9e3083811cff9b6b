//! Finding the collections from the server root, the principal, a home set or a collection.

use std::collections::BTreeSet;

use serde_json::json;
use tributary_connector_dav::DavConnector;
use tributary_plugin_sdk::{EntityType, SyncRequest};

use crate::fixtures::{self, CALENDAR, CONTACTS};
use crate::support::{context, final_cursor, items, sync, Radicale, LOCAL, PASSWORD, USER};

/// The collection keys in the final cursor, and the entity types yielded, of a sync from
/// `config`.
async fn synced(config: serde_json::Value) -> (BTreeSet<String>, BTreeSet<EntityType>) {
    let test = context(&[LOCAL], config);
    let steps = sync(DavConnector::new(), &test, None, SyncRequest::incremental())
        .await
        .unwrap();
    let collections = final_cursor(&steps).0["collections"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let types = items(&steps).iter().map(|i| i.entity_type).collect();
    (collections, types)
}

#[tokio::test]
async fn discovery_from_the_root_or_the_principal_finds_the_address_book_and_the_calendar() {
    // Proves: current-user-principal, then the home sets, then the collections in them.
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let both: BTreeSet<String> = [CALENDAR, CONTACTS].map(str::to_owned).into();
    let types: BTreeSet<EntityType> = [EntityType::Person, EntityType::CalendarEvent].into();

    assert_eq!(
        synced(server.config("/")).await,
        (both.clone(), types.clone())
    );
    assert_eq!(
        synced(server.config("/ada/")).await,
        (both.clone(), types.clone())
    );
    // Without a trailing slash, too.
    assert_eq!(synced(server.config("/ada")).await, (both, types));
}

#[tokio::test]
async fn a_collection_url_syncs_that_collection_alone() {
    let server = Radicale::start().await;
    fixtures::fill(&server).await;

    let (collections, types) = synced(server.config(CONTACTS)).await;
    assert_eq!(collections, [CONTACTS.to_owned()].into());
    assert_eq!(types, [EntityType::Person].into());
}

#[tokio::test]
async fn configured_collections_restrict_the_sync_by_name_or_href() {
    let server = Radicale::start().await;
    fixtures::fill(&server).await;
    let config = |collections: serde_json::Value| {
        json!({ "url": server.url("/"), "username": USER, "password": PASSWORD,
                "collections": collections })
    };

    let (collections, _) = synced(config(json!(["Work"]))).await;
    assert_eq!(collections, [CALENDAR.to_owned()].into());
    let (collections, _) = synced(config(json!([server.url(CONTACTS)]))).await;
    assert_eq!(collections, [CONTACTS.to_owned()].into());
}
