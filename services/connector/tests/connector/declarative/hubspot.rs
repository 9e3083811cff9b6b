//! The built-in HubSpot spec against a local CRM API v3: contacts and companies, archived
//! records as deletions. HubSpot's object lists have no changes-since filter or sync token,
//! so every sync lists every record and the ETL stores only what changed; the full resync
//! is the service's own (`mode: full`).

use std::time::Duration;

use serde_json::json;
use tributary_declarative::testing::{HubSpotServer, TOKEN};

use super::{start_enabled, write_builtin, PERSONS};
use crate::support::TempDir;

const LIVE: &str =
    "SELECT count(*) FROM source_record WHERE instance_id = 'hubspot' AND NOT deleted";
const SOURCES: &str = "SELECT count(*) FROM source_record WHERE instance_id = 'hubspot'";
const ORGANIZATIONS: &str = "SELECT count(*) FROM organization WHERE deleted_at IS NULL";

/// HubSpot contact `id` with a name, e-mail address and phone number of its own (the ETL
/// merges persons who share one).
fn put_contact(hubspot: &HubSpotServer, id: u64, first: &str, last: &str) {
    let email = format!("{first}@example.com");
    let phone = format!("+1 617 555 {id:04}");
    hubspot.put(
        "contacts",
        id,
        &[
            ("firstname", first),
            ("lastname", last),
            ("email", &email),
            ("phone", &phone),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_contacts_and_companies_sync_then_changes_then_a_deletion_then_a_full_resync() {
    let hubspot = HubSpotServer::start().await;
    put_contact(&hubspot, 101, "ada", "Example");
    put_contact(&hubspot, 102, "bob", "Example");
    put_contact(&hubspot, 103, "cy", "Example");
    hubspot.put(
        "companies",
        201,
        &[("name", "Contoso"), ("domain", "contoso.example")],
    );
    hubspot.put(
        "companies",
        202,
        &[("name", "Fabrikam"), ("domain", "fabrikam.example")],
    );
    let plugins = TempDir::new("declarative-plugins");
    write_builtin(
        &plugins.0.join("hubspot"),
        "tributary.hubspot",
        "com.example.hubspot",
        "https://api.hubapi.com",
        &hubspot.base_url(),
        &["data:write:persons", "data:write:organizations"],
    );
    let (mesh, mut completed) = start_enabled(
        &plugins,
        "com.example.hubspot",
        "hubspot",
        json!({"accessToken": TOKEN, "pageSize": 2}),
    )
    .await;

    // The first sync: three contacts over two pages, two companies.
    let done = completed.next_of("hubspot", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    mesh.wait_for_rows(PERSONS, 3, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(ORGANIZATIONS, 2, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(
        "SELECT count(*) FROM organization WHERE name = 'Contoso' AND domains = '{contoso.example}'",
        1,
        Duration::from_secs(5),
    )
    .await;

    // Every record is listed again, and only the changed one changes the model.
    put_contact(&hubspot, 102, "bob", "Changed");
    mesh.sync_now(json!({ "instance_id": "hubspot" })).await;
    let done = completed.next_of("hubspot", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    mesh.wait_for_rows(
        "SELECT count(*) FROM person WHERE family_name = 'Changed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mesh.stored_on("data.PersonUpdated").await, 1);
    assert_eq!(mesh.stored_on("data.OrganizationUpdated").await, 0);

    // An archived contact is a deletion; so is an archived company.
    hubspot.archive("contacts", 103);
    hubspot.archive("companies", 202);
    mesh.sync_now(json!({ "instance_id": "hubspot" })).await;
    let done = completed.next_of("hubspot", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    mesh.wait_for_rows(PERSONS, 2, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(ORGANIZATIONS, 1, Duration::from_secs(30))
        .await;
    mesh.wait_for_rows(LIVE, 3, Duration::from_secs(5)).await;

    // A full resync: everything again, nothing twice, the deletions kept.
    mesh.sync_now(json!({ "instance_id": "hubspot", "mode": "full" }))
        .await;
    let done = completed.next_of("hubspot", Duration::from_secs(30)).await;
    assert_eq!(done.data["items"], 5, "{done:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    mesh.wait_for_rows(SOURCES, 5, Duration::from_secs(5)).await;
    mesh.wait_for_rows(LIVE, 3, Duration::from_secs(5)).await;
    mesh.wait_for_rows(PERSONS, 2, Duration::from_secs(5)).await;
    mesh.wait_for_rows(ORGANIZATIONS, 1, Duration::from_secs(5))
        .await;
    mesh.wait_for_rows("SELECT count(*) FROM person", 3, Duration::from_secs(5))
        .await;
    assert_eq!(mesh.stored_on("data.PersonCreated").await, 3);
    assert_eq!(mesh.stored_on("data.PersonUpdated").await, 1);
    assert!(
        hubspot.requests().iter().all(|(_, authorized)| *authorized),
        "every request carried the configured access token"
    );
    mesh.stop().await;
}
