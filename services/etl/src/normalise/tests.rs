use serde_json::json;

use super::*;

fn normaliser() -> Normaliser {
    Normaliser::new(Subjects::new("t1"), phonenumber::country::Id::US)
}

fn item(entity: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "instance_id": "src-1",
        "entity_type": entity,
        "external_id": "ext-1",
        "source_modified_at": "2026-01-01T00:00:00Z",
        "data": data,
    }))
    .unwrap()
}

fn normalise(entity: &str, data: Value) -> Result<NormalisedItem, Rejection> {
    let n = normaliser();
    let item = n.decode("t1.connector.items.src-1", &item(entity, data))?;
    n.normalise(item)
}

#[test]
fn bad_items_are_rejected_with_a_reason_that_names_the_problem() {
    let n = normaliser();
    let subject = "t1.connector.items.src-1";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed JSON"),
        (b"[1, 2]".to_vec(), "must be a JSON object"),
        (br#"{"instance_id": "src-1"}"#.to_vec(), "missing field `entity_type`"),
        (item("people", json!({})), "unknown entity type `people`"),
        (
            br#"{"instance_id": "src-1", "entity_type": "person", "source_modified_at": "2026-01-01T00:00:00Z"}"#.to_vec(),
            "missing field `external_id`",
        ),
    ];
    for (payload, expected) in cases {
        let err = n.decode(subject, &payload).unwrap_err();
        assert!(err.0.contains(expected), "{err} should contain {expected}");
    }
    let err = n
        .decode("t1.connector.items.other", &item("person", json!({})))
        .unwrap_err();
    assert!(
        err.0
            .contains("instance `src-1` arrived on `t1.connector.items.other`"),
        "{err}"
    );

    let invalid = [
        (
            "person",
            json!({"display_name": "Ada", "nickname": "A"}),
            "unknown field `nickname`",
        ),
        ("person", json!({}), "no display_name"),
        ("person", json!("Ada"), "`data` must be a JSON object"),
        (
            "organization",
            json!({"name": "  "}),
            "`name` must not be empty",
        ),
        (
            "message",
            json!({"sender": "a@x.org"}),
            "missing field `sent_at`",
        ),
        (
            "message",
            json!({"sender": "a@x.org", "sent_at": "2026-01-01T10:00:00"}),
            "invalid `sent_at`",
        ),
        (
            "calendar_event",
            json!({"title": "x", "starts_at": "2026-01-02T10:00:00Z", "ends_at": "2026-01-01T10:00:00Z"}),
            "`ends_at`",
        ),
        ("document", json!({"title": ""}), "no `title` and no `path`"),
    ];
    for (entity, data, expected) in invalid {
        let err = normalise(entity, data).unwrap_err();
        assert!(
            err.0.contains(expected),
            "{entity}: {err} should contain {expected}"
        );
    }
}

#[test]
fn a_person_is_normalised_and_nothing_is_lost() {
    let item = normalise(
        "person",
        json!({
            "display_name": "  ",
            "given_name": " Ada ",
            "family_name": "Lovelace",
            "emails": [" Ada@Example.ORG", "ada@example.org", "not-an-address", ""],
            "phones": ["(415) 555-0132", "+1 415 555 0132", "12"],
        }),
    )
    .unwrap();
    let Some(EntityFields::Person(p)) = item.fields else {
        panic!("not a person")
    };
    assert_eq!(p.display_name, "Ada Lovelace");
    assert_eq!(p.given_name.as_deref(), Some("Ada"));
    assert_eq!(p.emails, vec!["ada@example.org"]);
    assert_eq!(p.phones, vec!["+14155550132"]);
    assert_eq!(p.extra["unrecognised_emails"], json!(["not-an-address"]));
    assert_eq!(p.extra["unrecognised_phones"], json!(["12"]));
    assert_eq!(item.json["emails"], json!(["ada@example.org"]));
}

#[test]
fn the_same_content_has_the_same_hash_and_a_change_does_not() {
    let a = normalise(
        "person",
        json!({"display_name": "Ada", "emails": ["ADA@x.org"]}),
    )
    .unwrap();
    let b = normalise(
        "person",
        json!({"emails": ["ada@x.org "], "display_name": " Ada"}),
    )
    .unwrap();
    let c = normalise(
        "person",
        json!({"display_name": "Ada L", "emails": ["ada@x.org"]}),
    )
    .unwrap();
    assert_eq!(a.content_hash, b.content_hash);
    assert_ne!(a.content_hash, c.content_hash);
}

#[test]
fn a_message_gets_utc_its_zone_and_text_from_html() {
    let item = normalise(
        "message",
        json!({
            "sender": "Bob <BOB@x.org>",
            "recipients": ["ada@x.org", "ADA@x.org"],
            "body_html": "<p>Hi <i>Ada</i>,</p><p>lunch?</p>",
            "sent_at": "2026-03-02T09:30:00+01:00",
            "conversation_id": "0190a0a0-0000-7000-8000-000000000000",
        }),
    )
    .unwrap();
    let Some(EntityFields::Message(m)) = item.fields else {
        panic!("not a message")
    };
    assert_eq!(m.sender, "bob@x.org");
    assert_eq!(m.recipients, vec!["ada@x.org"]);
    assert_eq!(
        m.sent_at,
        "2026-03-02T08:30:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(m.original_timezone.as_deref(), Some("+01:00"));
    assert!(
        m.body_text.contains("Hi Ada,") && m.body_text.contains("lunch?"),
        "{}",
        m.body_text
    );
    assert_eq!(
        m.conversation_id, None,
        "a connector cannot choose the conversation id"
    );
}

#[test]
fn a_calendar_event_in_a_named_zone_is_stored_in_utc() {
    let item = normalise(
        "calendar_event",
        json!({
            "title": " Stand-up ",
            "starts_at": "2026-07-01T09:00:00",
            "ends_at": "2026-07-01T09:15:00",
            "original_timezone": "Europe/Paris",
            "organizer": "mailto:Lead@X.org",
        }),
    )
    .unwrap();
    let Some(EntityFields::CalendarEvent(e)) = item.fields else {
        panic!("not an event")
    };
    assert_eq!(e.title, "Stand-up");
    assert_eq!(
        e.starts_at,
        "2026-07-01T07:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(e.original_timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(e.organizer.as_deref(), Some("lead@x.org"));
}

#[test]
fn an_html_document_is_indexed_as_text_and_hashed() {
    let item = normalise(
        "document",
        json!({"title": "", "path": "/notes/plan.html", "mime_type": "Text/HTML", "content": "<h1>Plan</h1><p>Ship &amp; tell</p>"}),
    )
    .unwrap();
    let Some(EntityFields::Document(d)) = item.fields else {
        panic!("not a document")
    };
    assert_eq!(d.title, "plan.html");
    assert!(
        d.content.contains("Ship & tell") && !d.content.contains("<p>"),
        "{}",
        d.content
    );
    assert!(d.content_hash.is_some());
}

#[test]
fn a_tombstone_needs_no_data() {
    let n = normaliser();
    let payload = serde_json::to_vec(&json!({
        "instance_id": "src-1", "entity_type": "document", "external_id": "d1",
        "operation": "delete", "source_modified_at": "2026-01-01T00:00:00Z",
    }))
    .unwrap();
    let item = n
        .normalise(n.decode("t1.connector.items.src-1", &payload).unwrap())
        .unwrap();
    assert_eq!(item.fields, None);
    assert_eq!(item.content_hash, TOMBSTONE_HASH);
}

#[test]
fn an_item_that_repeats_a_key_is_read_as_json_reads_it_the_last_one_winning() {
    // Read straight into its type, a repeated key is an error; read as JSON first, the last
    // value wins. The item must be accepted, the same as one without the repeat.
    let payload = br#"{"instance_id": "src-1", "entity_type": "person", "external_id": "old",
        "external_id": "ext-1", "source_modified_at": "2026-01-01T00:00:00Z",
        "data": {"display_name": "Ada"}}"#;
    let item = normaliser()
        .decode("t1.connector.items.src-1", payload)
        .unwrap();
    assert_eq!(item.external_id, "ext-1");
    assert_eq!(item.data, json!({"display_name": "Ada"}));
}
