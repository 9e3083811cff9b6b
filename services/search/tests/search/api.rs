//! The query API: `GET /search` and `search.query` give the same answers; filters, pages,
//! bad parameters and the bearer token.

use serde_json::json;
use tributary_kit::client::CallError;
use tributary_proto::events::{DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_search::query::SearchQuery;
use uuid::Uuid;

use crate::support::*;

/// Thirty messages on thirty days of April (ten per source), plus a calendar event.
async fn april(mesh: &Harness) {
    let kind = EventKind::Data {
        entity: EntityType::Message,
        change: DataChange::Created,
    };
    for day in 1..=30u32 {
        let source = ["mail", "slack", "sms"][(day % 3) as usize];
        mesh.publish_event(
            kind,
            source,
            json!({
                "id": Uuid::now_v7(), "sender": "ada@example.org", "subject": format!("Report {day}"),
                "body_text": format!("Status report for April {day}"),
                "sent_at": format!("2026-04-{day:02}T09:30:00Z"),
                "created_at": "2026-05-01T00:00:00Z", "updated_at": "2026-05-01T00:00:00Z",
            }),
        )
        .await;
    }
    let event = EventKind::Data {
        entity: EntityType::CalendarEvent,
        change: DataChange::Created,
    };
    mesh.publish_event(
        event,
        "cal",
        json!({
            "id": Uuid::now_v7(), "title": "Report review", "starts_at": "2026-04-15T14:00:00Z",
            "created_at": "2026-05-01T00:00:00Z", "updated_at": "2026-05-01T00:00:00Z",
        }),
    )
    .await;
    mesh.wait_hits(&[("q", "")], 31).await;
}

#[tokio::test]
async fn filters_and_pages_over_http_and_nats_give_the_same_answers() {
    let mesh = Harness::start().await;
    april(&mesh).await;

    assert_eq!(mesh.search(&[("q", "report")]).await.total, 31);
    let messages = mesh.search(&[("q", "report"), ("type", "message")]).await;
    assert_eq!(messages.total, 30);
    assert!(messages
        .hits
        .iter()
        .all(|h| h.entity_type == EntityType::Message));
    let from_slack = mesh.search(&[("q", "report"), ("source", "slack")]).await;
    assert_eq!(from_slack.total, 10);
    assert!(from_slack
        .hits
        .iter()
        .all(|h| h.sources == vec!["slack".to_owned()]));
    // Days are whole days: from the first moment of `from` to the last of `to`.
    let week = mesh
        .search(&[
            ("q", "report"),
            ("from", "2026-04-10"),
            ("to", "2026-04-16"),
        ])
        .await;
    assert_eq!(week.total, 8, "seven messages and the review: {week:#?}");
    let precise = mesh
        .search(&[
            ("q", ""),
            ("from", "2026-04-15T09:30:00Z"),
            ("to", "2026-04-15T09:30:00Z"),
        ])
        .await;
    assert_eq!(
        precise
            .hits
            .iter()
            .map(|h| h.title.as_str())
            .collect::<Vec<_>>(),
        vec!["Report 15"]
    );

    // Pages: no hit twice, none missing, the same total on each.
    let mut ids = std::collections::HashSet::new();
    for offset in ["0", "7", "14", "21", "28"] {
        let page = mesh
            .search(&[("q", "status"), ("limit", "7"), ("offset", offset)])
            .await;
        assert_eq!((page.total, page.limit), (30, 7));
        ids.extend(page.hits.iter().map(|h| h.id));
    }
    assert_eq!(ids.len(), 30);

    // search.query over NATS answers exactly as GET /search does.
    let query = SearchQuery {
        q: "reprot".into(),
        types: vec![EntityType::Message],
        source: Some("mail".into()),
        limit: 5,
        offset: 2,
        ..SearchQuery::default()
    };
    let over_nats = mesh.nats_query(&query).await;
    let over_http = mesh
        .search(&[
            ("q", "reprot"),
            ("type", "message"),
            ("source", "mail"),
            ("limit", "5"),
            ("offset", "2"),
        ])
        .await;
    assert_eq!(over_nats, over_http);
    assert_eq!((over_nats.total, over_nats.hits.len()), (10, 5));
    assert_eq!(over_nats.backend, "embedded");
}

#[tokio::test]
async fn bad_parameters_get_400_naming_the_parameter() {
    let mesh = Harness::start().await;
    for (params, named) in [
        (vec![("limit", "0")], "`limit`"),
        (vec![("limit", "many")], "`limit`"),
        (vec![("offset", "-3")], "`offset`"),
        (vec![("type", "people")], "`type`"),
        (vec![("from", "last tuesday")], "`from`"),
        (vec![("from", "2026-05-02"), ("to", "2026-05-01")], "`from`"),
        (vec![("sort", "date")], "`sort`"),
    ] {
        let response = mesh.http(&params).await;
        assert_eq!(response.status(), 400, "{params:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{params:?}: {body}");
    }
    // The same over NATS.
    let query = SearchQuery {
        limit: 5000,
        ..SearchQuery::default()
    };
    let err = mesh.client().call(&query).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Api(e) if e.message.contains("`limit`")),
        "{err}"
    );
}

#[tokio::test]
async fn the_search_route_needs_the_bearer_token_and_readyz_checks_the_index() {
    let mesh = Harness::start().await;
    let url = format!("http://{}/search?q=x", mesh.search_addr());
    let client = reqwest::Client::new();
    let none = client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = client
        .get(&url)
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(mesh.http(&[("q", "x")]).await.status(), 200);

    let ready: serde_json::Value = client
        .get(format!("http://{}/readyz", mesh.search_addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checks = ready.to_string();
    assert!(
        checks.contains("\"index\"") && checks.contains("\"nats\""),
        "{ready}"
    );
}

#[tokio::test]
async fn a_page_far_past_every_result_is_refused_and_the_service_keeps_answering() {
    // Under `tributary up`, `offset=100000000000000000` made the embedded index reserve room
    // for that many hits and aborted the process, and all five services with it.
    let mesh = Harness::start().await;
    let response = mesh.http(&[("offset", "100000000000000000")]).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`offset`"),
        "{body}"
    );
    let response = mesh.http(&[("q", "anything")]).await;
    assert_eq!(response.status(), 200, "still answering");
}
