use serde_json::json;
use tributary_proto::model::EntityType;

use crate::support::*;

#[tokio::test]
async fn every_entity_type_becomes_a_row_and_an_event_that_matches_its_schema() {
    let Started { env, mesh, etl } = started().await;
    let v1 = "2026-03-01T10:00:00Z";
    let items = vec![
        item(
            "crm",
            "person",
            "p1",
            v1,
            json!({"display_name": "Ada Lovelace", "emails": [" ADA@Example.org "], "phones": ["(415) 555-0132"]}),
        ),
        item(
            "crm",
            "organization",
            "o1",
            v1,
            json!({"name": " Analytical  Engines ", "domains": ["WWW.Engines.example"]}),
        ),
        item(
            "mail",
            "conversation",
            "c1",
            v1,
            json!({"title": "Lunch", "channel": "Email", "participants": ["Bob@x.org"]}),
        ),
        item(
            "mail",
            "message",
            "m1",
            v1,
            json!({
                "conversation_external_id": "c1", "sender": "Bob <BOB@x.org>", "recipients": ["ada@example.org"],
                "subject": "Lunch?", "body_html": "<p>Noon at <b>the usual</b>?</p>", "sent_at": "2026-03-01T12:00:00+01:00"
            }),
        ),
        item(
            "cal",
            "calendar_event",
            "e1",
            v1,
            json!({
                "title": "Stand-up", "starts_at": "2026-07-01T09:00:00", "ends_at": "2026-07-01T09:15:00",
                "original_timezone": "Europe/Paris", "attendees": ["mailto:Ada@Example.org"]
            }),
        ),
        item(
            "files",
            "document",
            "d1",
            v1,
            json!({"title": "Plan", "path": "/plan.html", "mime_type": "text/html", "content": "<h1>Plan</h1>"}),
        ),
    ];
    mesh.publish_items(&items).await;
    let created = data_events(&mesh, 6).await;
    let mut types: Vec<String> = created.iter().map(Stored::event_type).collect();
    types.sort();
    assert_eq!(
        types,
        vec![
            "data.CalendarEventCreated",
            "data.ConversationCreated",
            "data.DocumentCreated",
            "data.MessageCreated",
            "data.OrganizationCreated",
            "data.PersonCreated",
        ]
    );
    for event in &created {
        let json = event.json();
        assert_matches_schema(&json);
        assert_eq!(
            event.subject,
            format!("{}.{}", env.prefix, event.event_type())
        );
        assert_eq!(
            event.headers.get("Nats-Msg-Id").unwrap().as_str(),
            json["id"].as_str().unwrap()
        );
        assert_eq!(json["source"]["service"], "etl");
        // The event carries the whole entity: what is in the row is in the event.
        let entity: EntityType = json["type"].as_str().unwrap()["data.".len()..]
            .trim_end_matches("Created")
            .to_lowercase()
            .replace("calendarevent", "calendar_event")
            .parse()
            .unwrap();
        let row: serde_json::Value = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) - 'merged_into' FROM {} t WHERE id = $1",
            entity.as_str()
        ))
        .bind(
            json["entity_id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .fetch_one(mesh.pool())
        .await
        .unwrap();
        for (k, v) in row.as_object().unwrap() {
            if k.ends_with("_at") && !v.is_null() {
                let a: chrono::DateTime<chrono::Utc> = serde_json::from_value(v.clone()).unwrap();
                let b: chrono::DateTime<chrono::Utc> =
                    serde_json::from_value(json["data"][k].clone()).unwrap();
                assert_eq!(a, b, "{k} of {entity}");
            } else {
                assert_eq!(&json["data"][k], v, "{k} of {entity}");
            }
        }
    }
    let data =
        |t: &str| created.iter().find(|e| e.event_type() == t).unwrap().json()["data"].clone();
    let person = data("data.PersonCreated");
    assert_eq!(person["emails"], json!(["ada@example.org"]));
    assert_eq!(person["phones"], json!(["+14155550132"]));
    assert_eq!(
        data("data.OrganizationCreated")["name"],
        "Analytical Engines"
    );
    assert_eq!(
        data("data.OrganizationCreated")["domains"],
        json!(["engines.example"])
    );
    let message = data("data.MessageCreated");
    assert_eq!(message["sent_at"], "2026-03-01T11:00:00Z");
    assert_eq!(message["original_timezone"], "+01:00");
    assert_eq!(message["body_text"], "Noon at the usual?");
    assert_eq!(
        message["conversation_id"],
        data("data.ConversationCreated")["id"]
    );
    let event = data("data.CalendarEventCreated");
    assert_eq!(event["starts_at"], "2026-07-01T07:00:00Z");
    assert_eq!(event["original_timezone"], "Europe/Paris");
    assert_eq!(event["attendees"], json!(["ada@example.org"]));
    assert_eq!(data("data.DocumentCreated")["content"], "Plan");
    let raw: serde_json::Value =
        sqlx::query_scalar("SELECT raw FROM source_record WHERE external_id = 'p1'")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(
        raw,
        json!({"source": "test", "id": "p1"}),
        "the raw payload is kept"
    );

    // And every type can be deleted.
    let v2 = "2026-03-02T10:00:00Z";
    let tombstones: Vec<_> = [
        ("crm", "person", "p1"),
        ("crm", "organization", "o1"),
        ("mail", "conversation", "c1"),
        ("mail", "message", "m1"),
        ("cal", "calendar_event", "e1"),
        ("files", "document", "d1"),
    ]
    .iter()
    .map(|(i, e, x)| tombstone(i, e, x, v2))
    .collect();
    mesh.publish_items(&tombstones).await;
    let all = data_events(&mesh, 12).await;
    for event in &all[6..] {
        let json = event.json();
        assert!(
            event.event_type().ends_with("Deleted"),
            "{}",
            event.event_type()
        );
        assert_matches_schema(&json);
    }
    for entity in EntityType::ALL {
        let live: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE deleted_at IS NULL",
            entity.as_str()
        ))
        .fetch_one(mesh.pool())
        .await
        .unwrap();
        assert_eq!(live, 0, "{entity} still live");
    }
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(mesh.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 0, "the outbox is drained");
    etl.stop().await;
}

#[tokio::test]
async fn the_tables_hold_every_field_of_the_model() {
    let env = env().await;
    let etl = RunningEtl::start(env.config.clone()).await;
    let pool = env.pool().await;
    for entity in EntityType::ALL {
        let mut columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 AND column_name <> 'merged_into'",
        )
        .bind(entity.as_str())
        .fetch_all(&pool).await.unwrap();
        columns.sort();
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../../proto/schemas/item-data/{}.json",
                env!("CARGO_MANIFEST_DIR"),
                entity.as_str()
            ))
            .unwrap(),
        )
        .unwrap();
        let mut fields: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.extend(["id", "created_at", "updated_at", "deleted_at"].map(String::from));
        fields.sort();
        assert_eq!(columns, fields, "columns of {entity}");
    }
    etl.stop().await;
}

/// New rows are written with COPY's text format, where a tab ends a column, a newline ends a
/// row and a backslash escapes: text that holds them must come back exactly as it went in.
#[tokio::test]
async fn text_with_tabs_newlines_backslashes_and_quotes_is_stored_exactly() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let v1 = "2026-03-01T10:00:00Z";
    let awkward = "tab\there, line\nbreak, back\\slash \\N, \"quoted\", {braces}, comma, é 🦀";
    let items = vec![
        item(
            "crm",
            "person",
            "p1",
            v1,
            json!({
                "display_name": "O'Brien \"Bob\"",
                "organization": awkward,
                "extra": {"note": awkward, "nested": {"path": "C:\\temp\\new"}},
            }),
        ),
        item(
            "docs",
            "document",
            "d1",
            v1,
            json!({"title": "Notes\\draft", "content": awkward, "path": "C:\\Users\\ada\\notes.txt"}),
        ),
        item(
            "crm",
            "organization",
            "o1",
            v1,
            json!({"name": "Tabs & Co", "domains": ["a.example", "b.example"], "extra": {"tags": ["x\"y", "back\\slash"]}}),
        ),
    ];
    mesh.publish_items(&items).await;
    let events = data_events(&mesh, 3).await;

    let (organization, extra): (Option<String>, serde_json::Value) =
        sqlx::query_as("SELECT organization, extra FROM person")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    // Names are normalised to single spaces; everything else is kept as it came.
    let collapsed = awkward.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(organization.as_deref(), Some(collapsed.as_str()));
    assert_eq!(extra["note"], awkward);
    assert_eq!(extra["nested"]["path"], "C:\\temp\\new");
    let (title, content, path): (String, String, Option<String>) =
        sqlx::query_as("SELECT title, content, path FROM document")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(title, "Notes\\draft");
    assert_eq!(content, awkward);
    assert_eq!(path.as_deref(), Some("C:\\Users\\ada\\notes.txt"));
    let (domains, org_extra): (Vec<String>, serde_json::Value) =
        sqlx::query_as("SELECT domains, extra FROM organization")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(domains, vec!["a.example", "b.example"]);
    assert_eq!(org_extra["tags"], json!(["x\"y", "back\\slash"]));
    let raw: serde_json::Value =
        sqlx::query_scalar("SELECT raw FROM source_record WHERE external_id = 'd1'")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(raw, json!({"source": "test", "id": "d1"}));

    // The events carry what was stored.
    let document = events
        .iter()
        .find(|e| e.event_type() == "data.DocumentCreated")
        .unwrap()
        .json();
    assert_eq!(document["data"]["content"], awkward);
    let person = events
        .iter()
        .find(|e| e.event_type() == "data.PersonCreated")
        .unwrap()
        .json();
    assert_eq!(person["data"]["display_name"], "O'Brien \"Bob\"");
    assert_eq!(person["data"]["extra"]["note"], awkward);
    etl.stop().await;
    mesh.pool().close().await;
}

/// While a table grows from empty faster than autovacuum analyses it, the planner has no
/// statistics; a batch's lookups must still use the address and key indexes, not read the
/// whole table.
#[tokio::test]
async fn lookups_use_the_indexes_on_a_table_never_analysed() {
    let env = env().await;
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO person (id, display_name, emails) \
         SELECT gen_random_uuid(), 'p' || i, ARRAY['p' || i || '@example.org'] \
         FROM generate_series(1, 20000) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let emails: Vec<String> = (0..1000).map(|i| format!("new{i}@example.org")).collect();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(tributary_etl::store::sql::KEYED_PLANS_ONLY)
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN {}",
        tributary_etl::store::sql::PEOPLE_WITH_ADDRESSES
    ))
    .bind(&emails)
    .bind(Vec::<String>::new())
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("Seq Scan on person"), "{plan}");
    assert!(plan.contains("person_emails_idx"), "{plan}");
    tx.rollback().await.unwrap();
    pool.close().await;
}
