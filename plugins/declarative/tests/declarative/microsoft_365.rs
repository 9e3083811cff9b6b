//! The built-in Microsoft 365 connector (contacts, calendar events, mail), run by the engine
//! against a local Graph.

use std::sync::Arc;

use futures::StreamExt;
use tributary_declarative::testing::GraphServer;
use tributary_declarative::DeclarativeConnector;
use tributary_plugin_sdk::testing::TestContext;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, EntityType, ItemOperation, PluginError, SyncRequest, SyncStep,
};

use crate::support::{builtin, ids, killed, oauth_context, sync, times_sent, FixedToken};

/// The built-in spec, pointed at `graph`.
fn connector(graph: &GraphServer) -> DeclarativeConnector {
    builtin("tributary.microsoft-365", &graph.base_url())
}

fn context() -> TestContext {
    oauth_context(
        &[
            "network:outbound:127.0.0.1",
            "data:write:persons",
            "data:write:calendar_events",
            "data:write:messages",
            "data:write:conversations",
        ],
        serde_json::json!({"tenantId": "common", "pageSize": 2}),
    )
}

async fn graph_with_five_contacts() -> GraphServer {
    let graph = GraphServer::start().await;
    for (id, given) in ["ada", "bob", "cy", "dee", "eve"].iter().enumerate() {
        graph.put(
            &format!("AAMk-{id}"),
            given,
            "Example",
            &format!("{given}@contoso.example"),
        );
    }
    graph
}

#[tokio::test]
async fn a_first_sync_lists_every_contact_across_pages_as_persons_with_the_raw_record() {
    let graph = graph_with_five_contacts().await;
    let (items, cursor) = sync(&connector(&graph), &context(), None).await;

    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["AAMk-0", "AAMk-1", "AAMk-2", "AAMk-3", "AAMk-4"]
    );
    let ada = &items[0];
    assert_eq!(ada.entity_type, EntityType::Person);
    assert_eq!(ada.instance_id, "test-instance");
    let fields: tributary_proto::model::PersonFields =
        serde_json::from_value(ada.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", ada.data));
    assert_eq!(fields.display_name, "ada Example");
    assert_eq!(fields.emails, ["ada@contoso.example"]);
    assert_eq!(fields.phones, ["+1 425 555 0000"]);
    assert_eq!(fields.organization.as_deref(), Some("Contoso"));
    assert_eq!(ada.raw["id"], "AAMk-0");
    assert_eq!(
        ada.source_modified_at.to_rfc3339(),
        "2026-11-01T10:00:00+00:00"
    );
    // Three pages of two, each with the broker's token; the cursor keeps the delta link.
    let requests = graph.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests.iter().all(|(_, authorized)| *authorized));
    assert!(
        requests[0].0.contains("$select=id,displayName"),
        "{requests:?}"
    );
    let cursor = cursor.unwrap().0.to_string();
    assert!(cursor.contains("$deltatoken=5"), "{cursor}");
}

#[tokio::test]
async fn a_later_sync_sends_only_the_changes_and_removed_contacts_as_deletions() {
    let graph = graph_with_five_contacts().await;
    let connector = connector(&graph);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;

    // Nothing changed: nothing sent, and the same delta link is kept.
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert!(items.is_empty(), "{items:?}");

    graph.put("AAMk-1", "bob", "Changed", "bob@contoso.example");
    graph.put("AAMk-9", "new", "Person", "new@contoso.example");
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Upsert), ["AAMk-1", "AAMk-9"]);
    assert_eq!(items[0].data["family_name"], "Changed");

    graph.delete("AAMk-3");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Delete), ["AAMk-3"]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].data, serde_json::Value::Null);
    assert!(items[0].raw["@removed"].is_object());
}

#[tokio::test]
async fn an_expired_delta_token_makes_a_full_resync_that_sends_each_contact_once() {
    let graph = graph_with_five_contacts().await;
    let connector = connector(&graph);
    let test = context();
    let (_, cursor) = sync(&connector, &test, None).await;
    graph.delete("AAMk-0");
    graph.expire_tokens();

    let (items, cursor) = sync(&connector, &test, cursor).await;

    // Everything Graph holds now, once each; the removed contact is simply not listed.
    assert_eq!(
        ids(&items, ItemOperation::Upsert),
        ["AAMk-1", "AAMk-2", "AAMk-3", "AAMk-4"]
    );
    assert_eq!(items.len(), 4);
    let requests = graph.requests();
    assert!(requests[3].0.starts_with("$deltatoken="), "{requests:?}");
    assert!(
        requests[4].0.contains("$select="),
        "a fresh listing: {requests:?}"
    );
    // And the new delta link works.
    graph.put("AAMk-2", "cy", "Again", "cy@contoso.example");
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Upsert), ["AAMk-2"]);
}

#[tokio::test]
async fn a_throttled_request_is_sent_again_after_retry_after() {
    let graph = graph_with_five_contacts().await;
    graph.throttle(1);
    let started = std::time::Instant::now();
    let (items, _) = sync(&connector(&graph), &context(), None).await;
    assert_eq!(items.len(), 5);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(graph.requests().len(), 4);
}

#[tokio::test]
async fn a_sync_stopped_after_a_checkpoint_resumes_there_and_sends_every_contact_once() {
    let graph = graph_with_five_contacts().await;
    let connector = connector(&graph);
    let test = context();
    // The first page, then the sync is dropped, as a kill or a cancel does.
    let (first, checkpoint) = killed(&connector, &test, None, |step| {
        matches!(step, SyncStep::Checkpoint(_))
    })
    .await;
    assert_eq!(first.len(), 2);

    let (rest, _) = sync(&connector, &test, checkpoint).await;
    let seen = times_sent([&first[..], &rest[..]]);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    // The resumed sync went on from the second page's skip token.
    assert!(graph.requests()[1].0.starts_with("$skiptoken="));
}

#[tokio::test]
async fn a_next_link_to_a_host_no_permission_grants_is_refused_by_the_client() {
    let graph = graph_with_five_contacts().await;
    graph.send_next_links_to("https://exfiltrate.example/v1.0");
    let mut steps = connector(&graph).sync(context().ctx(), None, SyncRequest::incremental());
    let mut failure = None;
    while let Some(step) = steps.next().await {
        if let Err(e) = step {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("the sync must fail");
    assert!(
        matches!(failure, PluginError::PermissionDenied(_)),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains("exfiltrate.example"),
        "{failure}"
    );
    assert_eq!(graph.requests().len(), 1);
}

fn of(items: &[ConnectorItem], entity: EntityType) -> Vec<ConnectorItem> {
    items
        .iter()
        .filter(|i| i.entity_type == entity)
        .cloned()
        .collect()
}

/// Three events of the default calendar: a meeting, an all-day event, and an occurrence of
/// a weekly series; and one far in the past, outside the window a sync asks for.
fn put_events(graph: &GraphServer) {
    graph.put_event(
        "AAMkEv-0",
        serde_json::json!({
            "subject": "Launch review",
            "bodyPreview": "Bring the numbers",
            "start": {"dateTime": "2026-12-03T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-03T10:30:00.0000000", "timeZone": "UTC"},
            "location": {"displayName": "Room 4", "locationType": "default"},
            "attendees": [
                {"type": "required", "status": {"response": "accepted", "time": "2026-11-02T10:00:00Z"},
                 "emailAddress": {"name": "Bob", "address": "bob@contoso.example"}},
                {"type": "optional", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                 "emailAddress": {"name": "Cy", "address": "cy@contoso.example"}}
            ],
        }),
    );
    graph.put_event(
        "AAMkEv-1",
        serde_json::json!({
            "subject": "Holiday", "isAllDay": true, "showAs": "oof",
            "start": {"dateTime": "2026-12-24T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-27T00:00:00.0000000", "timeZone": "UTC"},
        }),
    );
    graph.put_event(
        "AAMkEv-2",
        serde_json::json!({
            "subject": "Standup", "type": "occurrence", "seriesMasterId": "AAMkSeries-1",
            "start": {"dateTime": "2026-12-07T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-07T08:15:00.0000000", "timeZone": "UTC"},
        }),
    );
    graph.put_event(
        "AAMkEv-old",
        serde_json::json!({
            "subject": "Long ago",
            "start": {"dateTime": "2001-01-01T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2001-01-01T09:00:00.0000000", "timeZone": "UTC"},
        }),
    );
}

#[tokio::test]
async fn calendar_events_sync_from_the_calendar_view_delta_then_changes_then_a_deletion() {
    let graph = GraphServer::start().await;
    put_events(&graph);
    let connector = connector(&graph);
    let test = context();
    let (items, cursor) = sync(&connector, &test, None).await;

    let events = of(&items, EntityType::CalendarEvent);
    assert_eq!(
        ids(&events, ItemOperation::Upsert),
        ["AAMkEv-0", "AAMkEv-1", "AAMkEv-2"],
        "the event outside the window is not listed"
    );
    let fields = |id: &str| -> tributary_proto::model::CalendarEventFields {
        let item = events.iter().find(|i| i.external_id == id).unwrap();
        serde_json::from_value(item.data.clone()).unwrap_or_else(|e| panic!("{e}: {}", item.data))
    };
    let launch = fields("AAMkEv-0");
    assert_eq!(launch.title, "Launch review");
    assert_eq!(launch.description.as_deref(), Some("Bring the numbers"));
    assert_eq!(launch.location.as_deref(), Some("Room 4"));
    assert_eq!(launch.starts_at.to_rfc3339(), "2026-12-03T09:00:00+00:00");
    assert_eq!(
        launch.ends_at.unwrap().to_rfc3339(),
        "2026-12-03T10:30:00+00:00"
    );
    assert_eq!(launch.organizer.as_deref(), Some("ada@contoso.example"));
    assert_eq!(
        launch.attendees,
        ["bob@contoso.example", "cy@contoso.example"]
    );
    assert_eq!(
        launch.extra["original_start_time_zone"],
        "W. Europe Standard Time"
    );
    assert!(!launch.all_day);
    let holiday = fields("AAMkEv-1");
    assert!(holiday.all_day);
    assert_eq!(holiday.starts_at.to_rfc3339(), "2026-12-24T00:00:00+00:00");
    let standup = fields("AAMkEv-2");
    assert_eq!(standup.extra["event_type"], "occurrence");
    assert_eq!(standup.extra["series_master_id"], "AAMkSeries-1");

    // Two pages of two; the first asked the window, the link after it kept it.
    let requests = graph.requests_of("events");
    assert_eq!(requests.len(), 2, "{requests:?}");
    let today = chrono::Utc::now().date_naive();
    let start = today - chrono::Duration::days(365);
    assert!(
        requests[0]
            .0
            .contains(&format!("startDateTime={start}T00:00:00Z")),
        "{requests:?}"
    );
    assert!(requests[0].0.contains("endDateTime="), "{requests:?}");
    assert!(requests[1].0.starts_with("$skiptoken="), "{requests:?}");

    // Only the changes; a removed event is a deletion.
    graph.put_event(
        "AAMkEv-0",
        serde_json::json!({"subject": "Launch review (moved)",
            "start": {"dateTime": "2026-12-04T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-04T10:00:00.0000000", "timeZone": "UTC"}}),
    );
    let (items, cursor) = sync(&connector, &test, cursor).await;
    let events = of(&items, EntityType::CalendarEvent);
    assert_eq!(ids(&events, ItemOperation::Upsert), ["AAMkEv-0"]);
    assert_eq!(events[0].data["title"], "Launch review (moved)");
    assert_eq!(items.len(), 1, "nothing else changed: {items:?}");

    graph.delete_event("AAMkEv-2");
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(ids(&items, ItemOperation::Delete), ["AAMkEv-2"]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].entity_type, EntityType::CalendarEvent);

    // An expired token: the events again, once each, in the same window.
    graph.expire_tokens();
    let (items, _) = sync(&connector, &test, cursor).await;
    let events = of(&items, EntityType::CalendarEvent);
    assert_eq!(
        ids(&events, ItemOperation::Upsert),
        ["AAMkEv-0", "AAMkEv-1"]
    );
    assert_eq!(events.len(), 2);
    let requests = graph.requests_of("events");
    assert!(
        requests.last().unwrap().0.contains("startDateTime="),
        "a fresh listing asks the window again: {requests:?}"
    );
}

/// Three messages of one conversation across the inbox and sent items, a draft, and a
/// message of another conversation.
fn put_mail(graph: &GraphServer) {
    let who = |name: &str| serde_json::json!({"emailAddress": {"name": name, "address": format!("{}@contoso.example", name.to_lowercase())}});
    for (folder, id, from, to, subject, conversation, body) in [
        (
            "inbox",
            "AAMkMsg-0",
            "Bob",
            "Ada",
            "Launch",
            "AAQkConv-1",
            "<p>Shall we launch?</p>",
        ),
        (
            "sentitems",
            "AAMkMsg-1",
            "Ada",
            "Bob",
            "RE: Launch",
            "AAQkConv-1",
            "<p>Yes.</p>",
        ),
        (
            "inbox",
            "AAMkMsg-2",
            "Bob",
            "Ada",
            "RE: Launch",
            "AAQkConv-1",
            "<p>Done.</p>",
        ),
        (
            "inbox",
            "AAMkMsg-3",
            "Cy",
            "Ada",
            "Lunch?",
            "AAQkConv-2",
            "<p>Noon?</p>",
        ),
    ] {
        graph.put_message(
            folder,
            id,
            serde_json::json!({
                "subject": subject, "conversationId": conversation,
                "from": who(from), "sender": who(from), "toRecipients": [who(to)],
                "ccRecipients": if id == "AAMkMsg-0" { serde_json::json!([who("Cy")]) } else { serde_json::json!([]) },
                "body": {"contentType": "html", "content": body},
                "bodyPreview": body.trim_start_matches("<p>").trim_end_matches("</p>"),
            }),
        );
    }
    graph.put_message(
        "inbox",
        "AAMkDraft",
        serde_json::json!({"subject": "unfinished", "isDraft": true, "conversationId": "AAQkConv-3"}),
    );
}

#[tokio::test]
async fn mail_syncs_per_folder_as_messages_and_their_conversations_then_changes_then_a_deletion() {
    let graph = GraphServer::start().await;
    put_mail(&graph);
    let connector = connector(&graph);
    let test = context();
    let (items, cursor) = sync(&connector, &test, None).await;

    let messages = of(&items, EntityType::Message);
    assert_eq!(
        ids(&messages, ItemOperation::Upsert),
        ["AAMkMsg-0", "AAMkMsg-1", "AAMkMsg-2", "AAMkMsg-3"],
        "the draft makes no message"
    );
    let first = messages
        .iter()
        .find(|m| m.external_id == "AAMkMsg-0")
        .unwrap();
    let fields: tributary_proto::model::MessageFields = serde_json::from_value(first.data.clone())
        .unwrap_or_else(|e| panic!("{e}: {}", first.data));
    assert_eq!(fields.sender, "bob@contoso.example");
    assert_eq!(
        fields.recipients,
        ["ada@contoso.example", "cy@contoso.example"]
    );
    assert_eq!(fields.subject.as_deref(), Some("Launch"));
    assert_eq!(fields.body_html.as_deref(), Some("<p>Shall we launch?</p>"));
    assert_eq!(
        fields.conversation_external_id.as_deref(),
        Some("AAQkConv-1")
    );
    assert_eq!(fields.sent_at.to_rfc3339(), "2026-11-01T07:59:58+00:00");
    assert_eq!(fields.extra["folder"], "inbox");

    // A conversation item with each message, just before it; one per message, the last
    // one's fields winning by version.
    let conversations = of(&items, EntityType::Conversation);
    let mut conversation_ids = ids(&conversations, ItemOperation::Upsert);
    conversation_ids.dedup();
    assert_eq!(conversation_ids, ["AAQkConv-1", "AAQkConv-2"]);
    assert_eq!(conversations.len(), 4);
    let position = |id: &str| items.iter().position(|i| i.external_id == id).unwrap();
    assert_eq!(items[position("AAMkMsg-3") - 1].external_id, "AAQkConv-2");
    let conversation: tributary_proto::model::ConversationFields =
        serde_json::from_value(conversations[0].data.clone()).unwrap();
    assert_eq!(conversation.channel, "email");
    assert_eq!(
        conversation.participants,
        [
            "bob@contoso.example",
            "ada@contoso.example",
            "cy@contoso.example"
        ]
    );
    // Each folder its own delta query, with the $select of the fields mapped.
    let inbox = graph.requests_of("mail/inbox");
    assert_eq!(
        inbox.len(),
        2,
        "three messages and the draft, two to a page: {inbox:?}"
    );
    assert!(inbox[0].0.contains("$select=id,subject,from"), "{inbox:?}");
    assert_eq!(graph.requests_of("mail/sentitems").len(), 1);

    // Only the changes.
    graph.put_message(
        "inbox",
        "AAMkMsg-4",
        serde_json::json!({"subject": "RE: Lunch?", "conversationId": "AAQkConv-2",
            "from": {"emailAddress": {"address": "cy@contoso.example"}},
            "toRecipients": [{"emailAddress": {"address": "ada@contoso.example"}}],
            "body": {"contentType": "text", "content": "12:30 then"}}),
    );
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&of(&items, EntityType::Message), ItemOperation::Upsert),
        ["AAMkMsg-4"]
    );
    assert_eq!(
        ids(&of(&items, EntityType::Conversation), ItemOperation::Upsert),
        ["AAQkConv-2"]
    );
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].data["body_text"], "12:30 then");

    // A removed message is a deletion of the message only.
    graph.delete_message("sentitems", "AAMkMsg-1");
    let (items, cursor) = sync(&connector, &test, cursor).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].entity_type, EntityType::Message);
    assert_eq!(items[0].operation, ItemOperation::Delete);
    assert_eq!(items[0].external_id, "AAMkMsg-1");

    // An expired token: every message again, once each.
    graph.expire_tokens();
    let (items, _) = sync(&connector, &test, cursor).await;
    assert_eq!(
        ids(&of(&items, EntityType::Message), ItemOperation::Upsert),
        ["AAMkMsg-0", "AAMkMsg-2", "AAMkMsg-3", "AAMkMsg-4"]
    );
}

#[tokio::test]
async fn the_mail_folders_config_picks_the_folders_and_an_unknown_one_fails_naming_it() {
    let graph = GraphServer::start().await;
    put_mail(&graph);
    let test = oauth_context(
        &[
            "network:outbound:127.0.0.1",
            "data:write:messages",
            "data:write:conversations",
        ],
        serde_json::json!({"pageSize": 10, "mailFolders": ["sentitems"]}),
    );
    let (items, _) = sync(&connector(&graph), &test, None).await;
    assert_eq!(
        ids(&of(&items, EntityType::Message), ItemOperation::Upsert),
        ["AAMkMsg-1"]
    );
    assert!(graph.requests_of("mail/inbox").is_empty());

    let test = TestContext::new(
        &["network:outbound:127.0.0.1"],
        serde_json::json!({"mailFolders": ["nosuchfolder"]}),
    )
    .with_http(|http| http.access_tokens(Arc::new(FixedToken)));
    let mut steps = connector(&graph).sync(test.ctx(), None, SyncRequest::incremental());
    let mut failure = None;
    while let Some(step) = steps.next().await {
        if let Err(e) = step {
            failure = Some(e);
            break;
        }
    }
    let failure = failure
        .expect("an unknown folder fails the sync")
        .to_string();
    assert!(
        failure.contains("no such mail folder") && failure.contains("mailFolders"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_throttled_mail_request_is_sent_again_after_retry_after() {
    let graph = GraphServer::start().await;
    put_mail(&graph);
    let connector = connector(&graph);
    let test = context();
    // Contacts and events are empty: one request each; then the inbox is throttled.
    let (_, cursor) = sync(&connector, &test, None).await;
    graph.put_message(
        "inbox",
        "AAMkMsg-9",
        serde_json::json!({"subject": "Hi", "conversationId": "AAQkConv-9",
            "from": {"emailAddress": {"address": "eve@contoso.example"}}}),
    );
    let before = graph.request_count();
    graph.throttle(1);
    let started = std::time::Instant::now();
    let (items, _) = sync(&connector, &test, cursor).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(
        ids(&of(&items, EntityType::Message), ItemOperation::Upsert),
        ["AAMkMsg-9"]
    );
    // Contacts (throttled, then again), events, inbox, sent items.
    assert_eq!(graph.request_count() - before, 5);
}

#[tokio::test]
async fn config_flags_turn_the_calendar_and_mail_streams_off() {
    let graph = graph_with_five_contacts().await;
    put_events(&graph);
    put_mail(&graph);
    let test = TestContext::new(
        &["network:outbound:127.0.0.1", "data:write:persons"],
        serde_json::json!({"pageSize": 10, "calendar": false, "mail": false}),
    )
    .with_http(|http| http.access_tokens(Arc::new(FixedToken)));
    let (items, _) = sync(&connector(&graph), &test, None).await;
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i.entity_type == EntityType::Person));
    assert_eq!(graph.request_count(), 1, "only the contacts were asked");

    let test = TestContext::new(
        &[
            "network:outbound:127.0.0.1",
            "data:write:messages",
            "data:write:conversations",
        ],
        serde_json::json!({"pageSize": 10, "contacts": false, "calendar": false}),
    )
    .with_http(|http| http.access_tokens(Arc::new(FixedToken)));
    let (items, _) = sync(&connector(&graph), &test, None).await;
    assert!(items.iter().all(|i| matches!(
        i.entity_type,
        EntityType::Message | EntityType::Conversation
    )));
    assert_eq!(
        graph.requests().len(),
        1,
        "the contacts were not asked again"
    );
}
