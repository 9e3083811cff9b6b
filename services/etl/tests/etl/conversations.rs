//! Messages that arrive before their conversation are linked to it when it comes.

use serde_json::json;
use tributary_etl::store::BatchWriter;

use crate::support::*;

fn message(instance: &str, id: &str, conversation: &str) -> serde_json::Value {
    item(
        instance,
        "message",
        id,
        "2026-03-01T10:00:00Z",
        json!({
            "conversation_external_id": conversation, "sender": "bob@x.org",
            "body_text": format!("message {id}"), "sent_at": "2026-03-01T12:00:00Z"
        }),
    )
}

fn conversation(instance: &str, id: &str) -> serde_json::Value {
    item(
        instance,
        "conversation",
        id,
        "2026-03-01T10:00:00Z",
        json!({"title": format!("thread {id}"), "channel": "Email"}),
    )
}

async fn unlinked_messages(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM message WHERE conversation_id IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_message_stored_before_its_conversation_is_linked_and_announced_when_it_comes() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    // Two messages of thread c1 at "mail", and one of a thread c1 at another instance.
    mesh.publish_items(&[
        message("mail", "m1", "c1"),
        message("mail", "m2", "c1"),
        message("chat", "m3", "c1"),
    ])
    .await;
    data_events(&mesh, 3).await;
    let unlinked = unlinked_messages(mesh.pool()).await;
    assert_eq!(unlinked, 3, "no conversation is known yet");

    mesh.publish_items(&[conversation("mail", "c1")]).await;
    let events = data_events(&mesh, 6).await;
    let created = events
        .iter()
        .find(|e| e.event_type() == "data.ConversationCreated")
        .expect("the conversation is announced")
        .json();
    let thread = created["data"]["id"].as_str().unwrap().to_owned();
    let updated: Vec<_> = events
        .iter()
        .filter(|e| e.event_type() == "data.MessageUpdated")
        .map(Stored::json)
        .collect();
    assert_eq!(
        updated.len(),
        2,
        "the two messages of mail's c1 are updated"
    );
    for event in &updated {
        assert_matches_schema(event);
        assert_eq!(event["data"]["conversation_id"], thread.as_str());
        assert_eq!(event["data"]["sender"], "bob@x.org");
        assert_eq!(event["source"]["instance"], "mail");
        assert_eq!(event["entity_id"], event["data"]["id"]);
    }

    let rows: Vec<(String, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT s.external_id, m.conversation_id FROM message m \
         JOIN source_record s ON s.entity_type = 'message' AND s.entity_id = m.id \
         ORDER BY s.external_id",
    )
    .fetch_all(mesh.pool())
    .await
    .unwrap();
    let thread: uuid::Uuid = thread.parse().unwrap();
    assert_eq!(
        rows,
        vec![
            ("m1".to_owned(), Some(thread)),
            ("m2".to_owned(), Some(thread)),
            ("m3".to_owned(), None),
        ],
        "chat's m3 belongs to chat's c1, which has not come"
    );

    // Written again unchanged, the conversation links nothing more and announces nothing.
    mesh.publish_items(&[conversation("mail", "c1")]).await;
    barrier(&mesh, "after-c1").await;
    data_events(&mesh, 6).await;
    etl.stop().await;
}

#[tokio::test]
async fn a_conversation_that_comes_after_its_own_tombstone_links_the_messages_waiting_for_it() {
    let (_env, subjects, pool, normaliser) = migrated().await;
    let writer = BatchWriter::new(pool.clone(), subjects.clone());
    let write = |items: Vec<serde_json::Value>| {
        let batch = pending_items(&normaliser, &subjects, &items);
        let writer = writer.clone();
        async move { writer.write(&batch).await.unwrap() }
    };
    // The source deleted thread c9 before anything of it was stored; a message of it comes.
    write(vec![tombstone(
        "mail",
        "conversation",
        "c9",
        "2026-03-01T09:00:00Z",
    )])
    .await;
    let report = write(vec![message("mail", "m9", "c9")]).await;
    assert_eq!(report.events, 1);
    assert_eq!(
        unlinked_messages(&pool).await,
        1,
        "a deleted thread is no thread"
    );
    // Then the thread comes back, newer than its tombstone.
    let mut thread = conversation("mail", "c9");
    thread["source_modified_at"] = json!("2026-03-01T11:00:00Z");
    let report = write(vec![thread]).await;
    assert_eq!(report.events, 2, "ConversationCreated and MessageUpdated");
    assert_eq!(unlinked_messages(&pool).await, 0);
    pool.close().await;
}

#[tokio::test]
async fn concurrent_batches_of_messages_and_their_conversations_always_link_them() {
    let (_env, subjects, pool, normaliser) = migrated().await;
    let pending = |items: Vec<serde_json::Value>| pending_items(&normaliser, &subjects, &items);
    let writer = BatchWriter::new(pool.clone(), subjects.clone());
    // Each round writes 20 messages in one batch and their 20 conversations in another,
    // at the same time: whichever commits first, the other must see it.
    for round in 0..25 {
        let ids: Vec<String> = (0..20).map(|i| format!("r{round}c{i}")).collect();
        let messages = pending(
            ids.iter()
                .map(|c| message("mail", &format!("{c}-m"), c))
                .collect(),
        );
        let conversations = pending(ids.iter().map(|c| conversation("mail", c)).collect());
        let (a, b) = tokio::join!(writer.write(&messages), writer.write(&conversations));
        a.unwrap();
        b.unwrap();
    }
    let unlinked = unlinked_messages(&pool).await;
    assert_eq!(unlinked, 0, "every message found its conversation");
    assert_eq!(count(&pool, "message").await, 500);
    pool.close().await;
}

#[tokio::test]
async fn upgrading_links_the_messages_an_earlier_version_left_without_their_conversation() {
    use sqlx::Connection;

    let env = env().await;
    // The schema as the version before left it: migrations up to 0007.
    let mut conn = env.migrated_up_to(7).await;
    // Thread c1 came after its message m1 at "mail"; chat's m2 waits for a thread never seen.
    let (thread, m1, m2) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    sqlx::query("INSERT INTO conversation (id, title, channel) VALUES ($1, 'thread', 'Email')")
        .bind(thread)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO message (id, conversation_external_id, sender, sent_at) \
         VALUES ($1, 'c1', 'a@x.org', now()), ($2, 'c1', 'b@x.org', now())",
    )
    .bind(m1)
    .bind(m2)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO source_record (instance_id, entity_type, external_id, entity_id, \
             source_modified_at, content_hash) VALUES \
         ('mail', 'conversation', 'c1', $1, now(), 'h'), \
         ('mail', 'message', 'm1', $2, now(), 'h'), \
         ('chat', 'message', 'm2', $3, now(), 'h')",
    )
    .bind(thread)
    .bind(m1)
    .bind(m2)
    .execute(&mut conn)
    .await
    .unwrap();
    tributary_kit::db::MIGRATOR.run(&mut conn).await.unwrap();
    let linked: Vec<(uuid::Uuid, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT id, conversation_id FROM message ORDER BY sender")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(linked, vec![(m1, Some(thread)), (m2, None)]);
    conn.close().await.unwrap();
}
