//! The `etl.people.*` requests through the real ETL responder, over rows seeded directly in a
//! migrated test database: a person's view (her sources, the merges that built her, the
//! decisions and suggestions about her records, her messages and events), a merged id's
//! pointer, the suggestions and shared identifiers, and the refusals.

use serde_json::{json, Value};
use sqlx::PgPool;
use tributary_kit::client::{CallError, MeshClient};
use tributary_proto::requests::etl::{
    Caller, ListShared, ListSuggestions, MergePeople, Page, PersonShown, ShowPerson, UnmergePerson,
};
use tributary_proto::requests::ErrorCode;
use uuid::Uuid;

use crate::support::*;

async fn person(pool: &PgPool, name: &str, emails: &[&str], phones: &[&str]) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO person (id, display_name, emails, phones) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(emails)
        .bind(phones)
        .execute(pool)
        .await
        .unwrap();
    id
}

async fn record(
    pool: &PgPool,
    instance: &str,
    entity: &str,
    external: &str,
    id: Uuid,
    data: Value,
) {
    sqlx::query(
        "INSERT INTO source_record (instance_id, entity_type, external_id, entity_id, \
         source_modified_at, content_hash, data) VALUES ($1, $2, $3, $4, '2026-03-01T00:00:00Z', 'h', $5)",
    )
    .bind(instance)
    .bind(entity)
    .bind(external)
    .bind(id)
    .bind(data)
    .execute(pool)
    .await
    .unwrap();
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

async fn message(
    pool: &PgPool,
    instance: &str,
    sender: &str,
    recipients: &[&str],
    sent_at: &str,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO message (id, sender, recipients, subject, sent_at) VALUES ($1, $2, $3, $4, $5::timestamptz)",
    )
    .bind(id)
    .bind(sender)
    .bind(recipients)
    .bind(format!("from {sender}"))
    .bind(sent_at)
    .execute(pool)
    .await
    .unwrap();
    record(pool, instance, "message", &id.to_string(), id, json!(null)).await;
    id
}

fn refusal<T: std::fmt::Debug>(result: Result<T, CallError>) -> (ErrorCode, String) {
    match result {
        Err(CallError::Api(e)) => (e.error, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_person_shows_her_sources_merges_decisions_suggestions_messages_and_events() {
    let Started { env, mesh, etl } = started().await;
    let pool = mesh.pool().clone();
    let ada = person(
        &pool,
        "Ada Lovelace",
        &["ada@x.org", "family@x.org"],
        &["+15550001"],
    )
    .await;
    let other = person(&pool, "Byron", &["family@x.org"], &[]).await;
    record(
        &pool,
        "crm",
        "person",
        "c1",
        ada,
        json!({"display_name": "Ada Lovelace", "given_name": "Ada", "emails": ["ada@x.org"]}),
    )
    .await;
    record(&pool, "mail", "person", "m1", ada,
        json!({"display_name": "A. Lovelace", "emails": ["ada@x.org", "family@x.org"], "phones": ["+15550001"]})).await;
    record(
        &pool,
        "crm",
        "person",
        "o1",
        other,
        json!({"display_name": "Byron", "emails": ["family@x.org"]}),
    )
    .await;

    // Merged into her: `mid` by a shared address, and `old` into `mid` by hand; one merge
    // undone, one of somebody else.
    let mid = Uuid::now_v7();
    let old = Uuid::now_v7();
    let undone = Uuid::now_v7();
    for id in [mid, old, undone] {
        sqlx::query("INSERT INTO person (id, display_name, merged_into) VALUES ($1, 'x', NULL)")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE person SET merged_into = $1 WHERE id = $2")
        .bind(ada)
        .bind(mid)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE person SET merged_into = $1 WHERE id = $2")
        .bind(mid)
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
    let merge = |kept: Uuid,
                 merged: Uuid,
                 rule: &'static str,
                 identifier: Option<&'static str>,
                 actor: Option<&'static str>,
                 at: &'static str,
                 undone: bool| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO person_merge (id, kept_id, merged_id, rule, identifier, evidence, actor, merged_at, undone_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz, CASE WHEN $9 THEN now() END)",
            )
            .bind(Uuid::now_v7()).bind(kept).bind(merged).bind(rule).bind(identifier)
            .bind(json!({"kept_sources": [{"instance_id": "crm", "external_id": "c1"}],
                         "merged_sources": [{"instance_id": "mail", "external_id": "m1"}]}))
            .bind(actor).bind(at).bind(undone)
            .execute(&pool).await.unwrap();
        }
    };
    merge(
        ada,
        mid,
        "shared_email",
        Some("ada@x.org"),
        None,
        "2026-03-02T00:00:00Z",
        false,
    )
    .await;
    merge(
        mid,
        old,
        "manual",
        None,
        Some("admin-api:1a2b3c4d"),
        "2026-03-01T00:00:00Z",
        false,
    )
    .await;
    merge(
        ada,
        undone,
        "shared_phone",
        Some("+15550001"),
        None,
        "2026-03-03T00:00:00Z",
        true,
    )
    .await;
    merge(
        other,
        Uuid::now_v7(),
        "manual",
        None,
        Some("cli"),
        "2026-03-04T00:00:00Z",
        false,
    )
    .await;

    exec(&pool, "INSERT INTO person_decision VALUES ('crm', 'c1', 'crm', 'o1', 'apart', 'nats:admin', '2026-03-05T00:00:00Z'), \
        ('x', 'a', 'x', 'b', 'together', 'cli', '2026-03-06T00:00:00Z')").await;
    // A suggestion between her and Byron, and one between two of her own records (one person
    // by now: left out).
    exec(&pool, "INSERT INTO person_suggestion VALUES \
        ('crm', 'c1', 'crm', 'o1', 'email', 'family@x.org', 0.25, 'Ada Lovelace', 'Byron', '2026-03-05T00:00:00Z'), \
        ('crm', 'c1', 'mail', 'm1', 'email', 'ada@x.org', 0.5, 'Ada Lovelace', 'A. Lovelace', '2026-03-05T00:00:00Z')").await;

    // Her messages: one from her own address; one to the family address from an instance one
    // of her records comes from; one to the family address from elsewhere (Byron's); one not
    // hers at all.
    let own = message(
        &pool,
        "gmail",
        "ada@x.org",
        &["bob@x.org"],
        "2026-03-10T00:00:00Z",
    )
    .await;
    let family_mail = message(
        &pool,
        "mail",
        "bob@x.org",
        &["family@x.org"],
        "2026-03-11T00:00:00Z",
    )
    .await;
    message(
        &pool,
        "gmail",
        "bob@x.org",
        &["family@x.org"],
        "2026-03-12T00:00:00Z",
    )
    .await;
    message(
        &pool,
        "gmail",
        "bob@x.org",
        &["carol@x.org"],
        "2026-03-13T00:00:00Z",
    )
    .await;
    let event = Uuid::now_v7();
    sqlx::query("INSERT INTO calendar_event (id, title, starts_at, organizer, attendees) VALUES ($1, 'Tea', '2026-03-20T15:00:00Z', 'bob@x.org', $2)")
        .bind(event).bind(vec!["+15550001"]).execute(&pool).await.unwrap();
    record(&pool, "cal", "calendar_event", "e1", event, json!(null)).await;

    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());
    let shown = client.call(&ShowPerson { id: ada }).await.unwrap();
    let PersonShown::Found(detail) = shown else {
        panic!("{ada} is a live person: {shown:?}")
    };
    assert_eq!(detail.person.id, ada);
    assert_eq!(detail.person.fields.display_name, "Ada Lovelace");
    let keys: Vec<(&str, &str)> = detail
        .sources
        .iter()
        .map(|s| (s.instance_id.as_str(), s.external_id.as_str()))
        .collect();
    assert_eq!(keys, vec![("crm", "c1"), ("mail", "m1")]);
    assert_eq!(detail.sources[0].given_name.as_deref(), Some("Ada"));
    assert_eq!(detail.sources[1].phones, vec!["+15550001"]);
    assert!(!detail.sources[1].deleted);

    let merges: Vec<(Uuid, Uuid, &str)> = detail
        .merges
        .iter()
        .map(|m| (m.kept_id, m.merged_id, m.rule.as_str()))
        .collect();
    assert_eq!(
        merges,
        vec![(mid, old, "manual"), (ada, mid, "shared_email")],
        "oldest first, the undone and the unrelated left out"
    );
    assert_eq!(
        detail.merges[0].actor.as_deref(),
        Some("admin-api:1a2b3c4d")
    );
    assert_eq!(detail.merges[1].identifier.as_deref(), Some("ada@x.org"));
    assert_eq!(detail.merges[1].kept_sources[0].external_id, "c1");
    assert_eq!(detail.merges[1].merged_sources[0].instance_id, "mail");

    assert_eq!(detail.decisions.len(), 1, "{:?}", detail.decisions);
    assert_eq!(detail.decisions[0].b.external_id, "o1");
    assert_eq!(detail.decisions[0].actor, "nats:admin");

    assert_eq!(detail.suggestions.len(), 1, "{:?}", detail.suggestions);
    let suggestion = &detail.suggestions[0];
    assert_eq!(
        (suggestion.a.person_id, suggestion.b.person_id),
        (ada, other)
    );
    assert_eq!(suggestion.identifier, "family@x.org");

    let messages: Vec<Uuid> = detail.messages.iter().map(|m| m.id).collect();
    assert_eq!(
        messages,
        vec![family_mail, own],
        "newest first; Byron's mail from gmail to the family address is not hers"
    );
    assert_eq!(detail.messages[0].source, "mail");
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.events[0].id, event);
    assert_eq!(detail.events[0].title, "Tea");

    // An id merged into her (twice over) points at her.
    for id in [mid, old] {
        let shown = client.call(&ShowPerson { id }).await.unwrap();
        assert_eq!(
            shown,
            PersonShown::Merged {
                id,
                merged_into: ada
            }
        );
    }
    // Over the wire, as the CLI and the admin API read it.
    let raw: Value = client
        .call_with_body::<ShowPerson, Value>(&json!({"id": old}))
        .await
        .unwrap();
    assert_eq!(
        raw,
        json!({"status": "merged", "id": old, "merged_into": ada})
    );

    let (code, message) = refusal(client.call(&ShowPerson { id: Uuid::nil() }).await);
    assert_eq!(code, ErrorCode::NotFound);
    assert!(message.contains(&Uuid::nil().to_string()), "{message}");
    etl.stop().await;
}

#[tokio::test]
async fn suggestions_and_shared_identifiers_come_in_pages() {
    let Started { env, mesh, etl } = started().await;
    let pool = mesh.pool().clone();
    let ann = person(&pool, "Ann", &["a@x.org"], &[]).await;
    let bea = person(&pool, "Bea", &["a@x.org"], &[]).await;
    let cid = person(&pool, "Cid", &[], &["+15550002"]).await;
    for (instance, external, id) in [
        ("crm", "ann", ann),
        ("crm", "bea", bea),
        ("mail", "cid", cid),
        ("mail", "ann2", ann),
    ] {
        record(
            &pool,
            instance,
            "person",
            external,
            id,
            json!({"display_name": external}),
        )
        .await;
    }
    exec(&pool, "INSERT INTO person_suggestion VALUES \
        ('crm', 'ann', 'crm', 'bea', 'email', 'a@x.org', 0.3, 'Ann', 'Bea', '2026-03-01T00:00:00Z'), \
        ('crm', 'bea', 'mail', 'cid', 'phone', '+15550002', 0.7, 'Bea', 'Cid', '2026-03-02T00:00:00Z'), \
        ('crm', 'ann', 'mail', 'ann2', 'email', 'a@x.org', 0.9, 'Ann', 'Ann', '2026-03-03T00:00:00Z'), \
        ('crm', 'ann', 'gone', 'g1', 'email', 'a@x.org', 0.8, 'Ann', 'Gone', '2026-03-03T00:00:00Z')").await;
    exec(
        &pool,
        "INSERT INTO shared_identifier VALUES \
        ('phone', '+15550100', 5, '{Ann,Bea,Cid,Dee,Eve}', '2026-03-01T00:00:00Z'), \
        ('email', 'info@x.org', 3, '{Ann,Bea,Cid}', '2026-03-02T00:00:00Z')",
    )
    .await;

    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());
    let page = client.call(&ListSuggestions::default()).await.unwrap();
    assert_eq!(
        page.total, 2,
        "one person by now, and a record gone, are left out: {page:?}"
    );
    let pairs: Vec<(Uuid, Uuid, f32)> = page
        .suggestions
        .iter()
        .map(|s| (s.a.person_id, s.b.person_id, s.score))
        .collect();
    assert_eq!(pairs, vec![(bea, cid, 0.7), (ann, bea, 0.3)], "best first");
    assert_eq!(page.suggestions[0].a.name, "Bea");
    assert_eq!(page.suggestions[0].b.record.external_id, "cid");
    let second = client
        .call(&ListSuggestions {
            page: Page {
                limit: 1,
                offset: 1,
            },
        })
        .await
        .unwrap();
    assert_eq!((second.total, second.suggestions.len()), (2, 1));
    assert_eq!(second.suggestions[0].a.person_id, ann);

    let shared = client.call(&ListShared::default()).await.unwrap();
    let identifiers: Vec<(&str, u32)> = shared
        .shared
        .iter()
        .map(|s| (s.identifier.as_str(), s.carriers))
        .collect();
    assert_eq!(
        identifiers,
        vec![("+15550100", 5), ("info@x.org", 3)],
        "most carriers first"
    );
    assert_eq!(shared.shared[1].names, vec!["Ann", "Bea", "Cid"]);
    let past = client
        .call(&ListShared {
            page: Page {
                limit: 10,
                offset: 5,
            },
        })
        .await
        .unwrap();
    assert_eq!((past.total, past.shared.len()), (2, 0));

    let (code, message) = refusal(
        client
            .call(&ListShared {
                page: Page {
                    limit: 0,
                    offset: 0,
                },
            })
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(message.contains("`limit`"), "{message}");
    etl.stop().await;
}

#[tokio::test]
async fn a_change_from_no_known_caller_or_claiming_to_speak_for_someone_is_refused() {
    let Started { env, mesh, etl } = started().await;
    let pool = mesh.pool().clone();
    let ada = person(&pool, "Ada", &["ada@x.org"], &[]).await;
    let client = MeshClient::new(env.nats().await, env.subjects(), "test".into());

    let body = json!({"id": ada});
    let (code, message) = refusal(
        client
            .call_with_body_on::<UnmergePerson, Value>("search", &body)
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(message.contains("caller"), "{message}");
    let forged = UnmergePerson {
        caller: Some(Caller::Admin),
        on_behalf_of: Some("admin-api:forged".into()),
        id: ada,
        source: None,
    };
    let (code, message) = refusal(client.call(&forged).await);
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(message.contains("on_behalf_of"), "{message}");
    let misspelt = json!({"id": ada, "sources": "crm"});
    let (code, _) = refusal(
        client
            .call_with_body_on::<UnmergePerson, Value>("admin", &misspelt)
            .await,
    );
    assert_eq!(
        code,
        ErrorCode::BadRequest,
        "a misspelt field is not an unmerge of everything"
    );
    let unknown = MergePeople {
        caller: Some(Caller::Admin),
        on_behalf_of: None,
        a: ada,
        b: Uuid::nil(),
    };
    let (code, message) = refusal(client.call(&unknown).await);
    assert_eq!(code, ErrorCode::NotFound, "{message}");
    assert!(message.contains(&Uuid::nil().to_string()), "{message}");
    // Nothing was decided.
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM person_decision")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(decisions, 0);
    etl.stop().await;
}
