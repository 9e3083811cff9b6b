//! The built-in HubSpot connector, run by the engine against a local CRM API.

use tributary_declarative::testing::{HubSpotServer, TOKEN};
use tributary_declarative::DeclarativeConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{ConnectorItem, EntityType, ItemOperation, PluginError};

use crate::support::builtin;

fn connector(crm: &HubSpotServer) -> DeclarativeConnector {
    builtin("tributary.hubspot", &crm.base_url())
}

fn context(token: &str) -> TestContext {
    TestContext::new(
        &[
            "network:outbound:127.0.0.1",
            "data:write:persons",
            "data:write:organizations",
        ],
        serde_json::json!({"accessToken": token, "pageSize": 2}),
    )
    .with_http(|http| http.retry_policy(tributary_plugin_sdk::testing::fast_retry_policy()))
}

/// A sync to its end (no cursor is kept: every sync lists everything).
async fn run(
    connector: &DeclarativeConnector,
    test: &TestContext,
) -> Result<Vec<ConnectorItem>, PluginError> {
    crate::support::run(connector, test, None)
        .await
        .map(|(items, _)| items)
}

/// The external ids of the items of `entity` and `operation`, sorted.
fn ids(items: &[ConnectorItem], entity: EntityType, operation: ItemOperation) -> Vec<String> {
    let items: Vec<ConnectorItem> = items
        .iter()
        .filter(|i| i.entity_type == entity)
        .cloned()
        .collect();
    crate::support::ids(&items, operation)
}

async fn three_contacts_two_companies() -> HubSpotServer {
    let crm = HubSpotServer::start().await;
    crm.put(
        "contacts",
        101,
        &[
            ("firstname", "Ada"),
            ("lastname", "Lovelace"),
            ("email", "ada@example.com"),
            (
                "hs_additional_emails",
                "ada@analytical.example;countess@example.org",
            ),
            ("phone", "+44 20 7946 0101"),
            ("company", "Analytical Engines"),
            ("jobtitle", "Programmer"),
        ],
    );
    crm.put("contacts", 102, &[("email", "bob@example.com")]);
    crm.put("contacts", 103, &[("firstname", "Cy")]);
    crm.put(
        "companies",
        201,
        &[
            ("name", "Analytical Engines"),
            ("domain", "analytical.example"),
            ("city", "London"),
        ],
    );
    crm.put("companies", 202, &[("domain", "example.org")]);
    crm
}

#[tokio::test]
async fn contacts_and_companies_are_listed_across_pages_as_persons_and_organizations() {
    let crm = three_contacts_two_companies().await;
    let items = run(&connector(&crm), &context(TOKEN)).await.unwrap();

    assert_eq!(
        ids(&items, EntityType::Person, ItemOperation::Upsert),
        ["101", "102", "103"]
    );
    assert_eq!(
        ids(&items, EntityType::Organization, ItemOperation::Upsert),
        ["201", "202"]
    );
    let ada: tributary_proto::model::PersonFields = serde_json::from_value(items[0].data.clone())
        .unwrap_or_else(|e| panic!("{e}: {:?}", items[0]));
    assert_eq!(ada.display_name, "Ada Lovelace");
    assert_eq!(
        ada.emails,
        [
            "ada@example.com",
            "ada@analytical.example",
            "countess@example.org"
        ]
    );
    assert_eq!(ada.phones, ["+44 20 7946 0101"]);
    assert_eq!(ada.organization.as_deref(), Some("Analytical Engines"));
    assert_eq!(ada.title.as_deref(), Some("Programmer"));
    assert_eq!(items[1].data["display_name"], "bob@example.com");
    let company = items.iter().find(|i| i.external_id == "202").unwrap();
    let company: tributary_proto::model::OrganizationFields =
        serde_json::from_value(company.data.clone()).unwrap();
    assert_eq!(company.name, "example.org");
    assert_eq!(company.domains, ["example.org"]);
    assert_eq!(items[0].raw["properties"]["hs_object_id"], "101");

    // Contacts in two pages of two, then each of the other three lists in one; every request
    // with the token, the properties mapped, and the cursor HubSpot gave.
    let requests = crm.requests();
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert!(requests.iter().all(|(_, authorized)| *authorized));
    assert!(
        requests[0]
            .0
            .contains("properties=firstname,lastname,email"),
        "{requests:?}"
    );
    assert!(requests[1].0.contains("after=103"), "{requests:?}");
    assert!(requests[2].0.contains("archived=true"), "{requests:?}");
}

#[tokio::test]
async fn an_archived_contact_or_company_is_a_deletion_and_a_change_is_sent_again() {
    let crm = three_contacts_two_companies().await;
    let connector = connector(&crm);
    let test = context(TOKEN);
    run(&connector, &test).await.unwrap();

    crm.archive("contacts", 102);
    crm.archive("companies", 201);
    crm.put(
        "contacts",
        103,
        &[("firstname", "Cy"), ("lastname", "Changed")],
    );
    let items = run(&connector, &test).await.unwrap();
    assert_eq!(
        ids(&items, EntityType::Person, ItemOperation::Upsert),
        ["101", "103"]
    );
    assert_eq!(
        ids(&items, EntityType::Person, ItemOperation::Delete),
        ["102"]
    );
    assert_eq!(
        ids(&items, EntityType::Organization, ItemOperation::Delete),
        ["201"]
    );
    let cy = items.iter().find(|i| i.external_id == "103").unwrap();
    assert_eq!(cy.data["family_name"], "Changed");
    let deleted = items.iter().find(|i| i.external_id == "102").unwrap();
    assert_eq!(deleted.data, serde_json::Value::Null);
    assert_eq!(deleted.raw["archived"], true);
}

#[tokio::test]
async fn a_rate_limited_request_is_asked_again_and_a_bad_token_fails_with_hubspots_message() {
    let crm = three_contacts_two_companies().await;
    crm.throttle(2);
    let items = run(&connector(&crm), &context(TOKEN)).await.unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(crm.requests().len(), 7);

    let failure = run(&connector(&crm), &context("not-the-token"))
        .await
        .expect_err("a refused token fails the sync")
        .to_string();
    assert!(
        failure.contains("HubSpot refused the access token: Authentication credentials not found"),
        "{failure}"
    );
}

#[tokio::test]
async fn the_companies_flag_leaves_them_out() {
    let crm = three_contacts_two_companies().await;
    let test = TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:persons"],
        serde_json::json!({"accessToken": TOKEN, "companies": false}),
    );
    let items = run(&connector(&crm), &test).await.unwrap();
    assert!(items.iter().all(|i| i.entity_type == EntityType::Person));
    assert_eq!(items.len(), 3);
    assert_eq!(
        crm.requests().len(),
        2,
        "contacts and archived contacts only"
    );
}
