use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn people_from_two_sources_sharing_an_address_become_one() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;

    mesh.publish_items(&[item(
        "crm",
        "person",
        "c-1",
        "2026-01-01T00:00:00Z",
        json!({"display_name": "Ada", "emails": ["ada@example.org"], "title": "Countess"}),
    )])
    .await;
    let events = data_events(&mesh, 1).await;
    let kept = events[0].json()["entity_id"].as_str().unwrap().to_owned();

    // The phone book knows her by phone, and by the same address written differently.
    mesh.publish_items(&[item("phone", "person", "ph-9", "2026-01-02T00:00:00Z",
        json!({"display_name": "Ada Lovelace", "emails": [" ADA@example.org"], "phones": ["+44 20 7946 0958"]}))]).await;
    let events = data_events(&mesh, 3).await;
    let types: Vec<String> = events[1..].iter().map(Stored::event_type).collect();
    assert_eq!(types, vec!["data.PersonUpdated", "data.PersonMerged"]);
    let merged_event = events[2].json();
    assert_matches_schema(&merged_event);
    assert_eq!(merged_event["data"]["kept_id"], kept);
    let merged = merged_event["data"]["merged_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(merged, kept);
    // She was merged in the batch that brought her in: never announced as a person of her
    // own (the event catalog says so), and her id still says where she went.
    assert!(
        events[..2]
            .iter()
            .all(|e| e.json()["entity_id"] != merged.as_str()),
        "no event before the merge names {merged}"
    );
    let merged_into: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT merged_into FROM person WHERE id = $1::uuid")
            .bind(&merged)
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(merged_into.map(|id| id.to_string()), Some(kept.clone()));
    let person = &merged_event["data"]["person"];
    assert_eq!(
        person["display_name"], "Ada Lovelace",
        "the newer source names her"
    );
    assert_eq!(
        person["title"], "Countess",
        "what only the older source knows stays"
    );
    assert_eq!(person["phones"], json!(["+442079460958"]));
    assert_eq!(person["emails"], json!(["ada@example.org"]));

    let live: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM person WHERE deleted_at IS NULL")
            .fetch_all(mesh.pool())
            .await
            .unwrap();
    assert_eq!(live, vec![kept.parse::<uuid::Uuid>().unwrap()]);
    let pointer: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT merged_into FROM person WHERE id = $1")
            .bind(merged.parse::<uuid::Uuid>().unwrap())
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(
        pointer,
        Some(kept.parse::<uuid::Uuid>().unwrap()),
        "the merged id says where it went"
    );

    // Later items from either source land on the kept person.
    mesh.publish_items(&[item("phone", "person", "ph-9", "2026-01-03T00:00:00Z",
        json!({"display_name": "Ada Lovelace", "emails": ["ada@example.org"], "phones": ["+44 20 7946 0958", "+1 415 555 0132"]}))]).await;
    let events = data_events(&mesh, 4).await;
    assert_eq!(events[3].event_type(), "data.PersonUpdated");
    assert_eq!(events[3].json()["entity_id"], kept);
    assert_eq!(
        events[3].json()["data"]["phones"],
        json!(["+442079460958", "+14155550132"])
    );
    mesh.publish_items(&[item(
        "crm",
        "person",
        "c-1",
        "2026-01-04T00:00:00Z",
        json!({"display_name": "Ada Augusta Lovelace", "emails": ["ada@example.org"]}),
    )])
    .await;
    let events = data_events(&mesh, 5).await;
    assert_eq!(events[4].json()["entity_id"], kept);
    assert_eq!(
        events[4].json()["data"]["display_name"],
        "Ada Augusta Lovelace",
        "a middle name more is the same person"
    );

    // One source deleting her leaves the person the other source knows.
    mesh.publish_items(&[tombstone("crm", "person", "c-1", "2026-01-05T00:00:00Z")])
        .await;
    let events = data_events(&mesh, 6).await;
    assert_eq!(events[5].event_type(), "data.PersonUpdated");
    assert_eq!(events[5].json()["data"]["display_name"], "Ada Lovelace");
    mesh.publish_items(&[tombstone("phone", "person", "ph-9", "2026-01-05T00:00:00Z")])
        .await;
    let events = data_events(&mesh, 7).await;
    assert_eq!(events[6].event_type(), "data.PersonDeleted");
    etl.stop().await;
}

#[tokio::test]
async fn two_new_people_in_one_batch_who_share_a_phone_are_one() {
    let env = env().await;
    let (subjects, js) = (env.subjects(), async_nats::jetstream::new(env.nats().await));
    let mesh = Mesh::of(&env).await;
    let pool = env.pool().await;
    // Published before the ETL starts, so they arrive in one batch.
    tributary_kit::nats::provision_streams(&js, &subjects, &env.config.nats.max_bytes)
        .await
        .unwrap();
    mesh.publish_items(&[
        item(
            "a",
            "person",
            "1",
            "2026-01-01T00:00:00Z",
            json!({"display_name": "Grace", "phones": ["(415) 555-0132"]}),
        ),
        item(
            "b",
            "person",
            "2",
            "2026-01-01T00:00:00Z",
            json!({"display_name": "Grace Hopper", "phones": ["+14155550132"]}),
        ),
    ])
    .await;
    let etl = RunningEtl::start(env.config.clone()).await;
    let events = data_events(&mesh, 2).await;
    let types: Vec<String> = events.iter().map(Stored::event_type).collect();
    assert_eq!(types, vec!["data.PersonCreated", "data.PersonMerged"]);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM person WHERE deleted_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 1);
    etl.stop().await;
}

#[tokio::test]
async fn people_sharing_an_address_in_two_concurrent_batches_are_one() {
    // Proves that identity resolution does not depend on batches coming one at a time: two
    // batches written at once, each with a new person who shares an address with a new person
    // of the other, whichever commits first, end with one person per address.
    let (_env, subjects, pool, normaliser) = migrated().await;
    let writer = tributary_etl::store::BatchWriter::new(pool.clone(), subjects.clone());
    const ROUNDS: usize = 30;
    const VERSION: &str = "2026-01-01T00:00:00Z";
    for round in 0..ROUNDS {
        // The CRM and the phone book each know Ada by e-mail and Grace by phone, written
        // differently, under ids of their own.
        let crm = pending_items(
            &normaliser,
            &subjects,
            &[
                item(
                    "crm",
                    "person",
                    &format!("ada-{round}"),
                    VERSION,
                    json!({"display_name": "Ada", "emails": [format!("ada{round}@example.org")]}),
                ),
                item(
                    "crm",
                    "person",
                    &format!("grace-{round}"),
                    VERSION,
                    json!({"display_name": "Grace", "phones": [format!("(415) 555-01{round:02}")]}),
                ),
            ],
        );
        let phone_book = pending_items(
            &normaliser,
            &subjects,
            &[
                item(
                    "phone",
                    "person",
                    &format!("ada-{round}"),
                    VERSION,
                    json!({"display_name": "Ada Lovelace", "emails": [format!(" ADA{round}@Example.org")]}),
                ),
                item(
                    "phone",
                    "person",
                    &format!("grace-{round}"),
                    VERSION,
                    json!({"display_name": "Grace Hopper", "phones": [format!("+1 415 555 01{round:02}")]}),
                ),
            ],
        );
        let (a, b) = tokio::join!(writer.write(&crm), writer.write(&phone_book));
        a.unwrap();
        b.unwrap();
    }

    // Each external id names one person at both sources: its two source records point at one
    // live person.
    let split: Vec<String> = sqlx::query_scalar(
        "SELECT s.external_id FROM source_record s LEFT JOIN person p ON p.id = s.entity_id \
         GROUP BY s.external_id \
         HAVING count(DISTINCT s.entity_id) <> 1 \
             OR count(*) FILTER (WHERE p.merged_into IS NULL AND p.deleted_at IS NULL) <> 2 \
         ORDER BY s.external_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        split.is_empty(),
        "{} of {} people were left apart: {split:?}",
        split.len(),
        2 * ROUNDS
    );
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM person WHERE merged_into IS NULL AND deleted_at IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(live, 2 * ROUNDS as i64);
    assert_eq!(count(&pool, "source_record").await, 4 * ROUNDS as i64);
    pool.close().await;
}
