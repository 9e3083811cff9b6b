//! People across sources against the real ETL: merges that carry their evidence, shared
//! identifiers that merge nobody, unmerges and manual merges that later syncs respect, and the
//! same people whatever order the items come in.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tributary_etl::store::{BatchWriter, DecisionError, PeopleDecision};
use uuid::Uuid;

use crate::support::*;

fn writer(mesh: &Mesh) -> BatchWriter {
    BatchWriter::new(mesh.pool().clone(), mesh.subjects().clone())
}

/// Waits until `n` person source records are stored.
async fn people_records(mesh: &Mesh, n: i64) {
    eventually(30, &format!("{n} person records"), || async {
        let have: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM source_record WHERE entity_type = 'person' AND NOT deleted",
        )
        .fetch_one(mesh.pool())
        .await
        .unwrap();
        (have >= n).then_some(())
    })
    .await;
}

/// The person each record of `instance` belongs to.
async fn person_of(mesh: &Mesh, instance: &str, external_id: &str) -> Uuid {
    sqlx::query_scalar(
        "SELECT entity_id FROM source_record \
         WHERE entity_type = 'person' AND instance_id = $1 AND external_id = $2",
    )
    .bind(instance)
    .bind(external_id)
    .fetch_one(mesh.pool())
    .await
    .unwrap()
}

/// The live people, each as the sorted `instance/external id`s of its records.
async fn people(mesh: &Mesh, instance_prefix: &str) -> Vec<Vec<String>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT s.entity_id, s.instance_id || '/' || s.external_id FROM source_record s \
         JOIN person p ON p.id = s.entity_id \
         WHERE s.entity_type = 'person' AND NOT s.deleted AND p.deleted_at IS NULL \
           AND s.instance_id LIKE $1 || '%' ORDER BY 2",
    )
    .bind(instance_prefix)
    .fetch_all(mesh.pool())
    .await
    .unwrap();
    let mut by_person: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();
    for (person, key) in rows {
        by_person.entry(person).or_default().push(key);
    }
    let mut out: Vec<Vec<String>> = by_person.into_values().collect();
    out.sort();
    out
}

fn person(name: &str, emails: &[&str], phones: &[&str]) -> Value {
    json!({"display_name": name, "emails": emails, "phones": phones})
}

#[tokio::test]
async fn compatible_names_sharing_an_address_merge_with_their_evidence() {
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
        person("Ada Lovelace", &["ada@example.org"], &[]),
    )])
    .await;
    data_events(&mesh, 1).await;
    mesh.publish_items(&[item(
        "phone",
        "person",
        "ph-9",
        "2026-01-02T00:00:00Z",
        person("Ada", &["ADA@example.org"], &["+44 20 7946 0958"]),
    )])
    .await;
    let events = data_events(&mesh, 3).await;
    let merged = events
        .iter()
        .find(|e| e.event_type() == "data.PersonMerged")
        .expect("a merge")
        .json();
    assert_matches_schema(&merged);
    let evidence = &merged["data"]["evidence"];
    assert_eq!(evidence["rule"], "shared_email");
    assert_eq!(evidence["identifier"], "ada@example.org");
    assert_eq!(
        evidence["kept_sources"],
        json!([{"instance_id": "crm", "external_id": "c-1"}])
    );
    assert_eq!(
        evidence["merged_sources"],
        json!([{"instance_id": "phone", "external_id": "ph-9"}])
    );
    assert!(
        evidence.get("actor").is_none(),
        "an automatic merge has no actor"
    );

    // The merge is kept with its evidence, for `people show`.
    let (rule, identifier, kept): (String, Option<String>, Uuid) =
        sqlx::query_as("SELECT rule, identifier, kept_id FROM person_merge")
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(rule, "shared_email");
    assert_eq!(identifier.as_deref(), Some("ada@example.org"));
    assert_eq!(
        kept.to_string(),
        merged["data"]["kept_id"].as_str().unwrap()
    );
    etl.stop().await;
}

#[tokio::test]
async fn a_front_desk_phone_on_five_people_merges_none_and_is_reported_shared() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let names = [
        "Mary Jones",
        "Li Wei",
        "Omar Haddad",
        "Ana Souza",
        "Tom Brown",
    ];
    for (n, name) in names.iter().enumerate() {
        mesh.publish_items(&[item(
            &format!("book-{n}"),
            "person",
            "p",
            "2026-01-01T00:00:00Z",
            person(name, &[], &["+1 415 555 0100"]),
        )])
        .await;
        people_records(&mesh, n as i64 + 1).await;
    }
    let events = data_events(&mesh, 5).await;
    assert!(
        events
            .iter()
            .all(|e| e.event_type() == "data.PersonCreated"),
        "{:?}",
        events.iter().map(Stored::event_type).collect::<Vec<_>>()
    );
    assert_eq!(people(&mesh, "book-").await.len(), 5);
    let (carriers, shared_names): (i32, Vec<String>) = sqlx::query_as(
        "SELECT carriers, names FROM shared_identifier \
         WHERE kind = 'phone' AND identifier = '+14155550100'",
    )
    .fetch_one(mesh.pool())
    .await
    .unwrap();
    assert_eq!(carriers, 5);
    let mut sorted = names.map(String::from).to_vec();
    sorted.sort();
    assert_eq!(shared_names, sorted);
    assert_eq!(
        count(mesh.pool(), "person_suggestion").await,
        0,
        "a shared line suggests nobody"
    );
    etl.stop().await;
}

#[tokio::test]
async fn strangers_sharing_a_mailbox_are_a_suggestion_and_rejecting_it_is_remembered() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    mesh.publish_items(&[
        item(
            "crm",
            "person",
            "alice",
            "2026-01-01T00:00:00Z",
            person("Alice Smith", &["smiths@family.org"], &[]),
        ),
        item(
            "phone",
            "person",
            "bob",
            "2026-01-01T00:00:00Z",
            person("Bob Smith", &["smiths@family.org"], &[]),
        ),
    ])
    .await;
    people_records(&mesh, 2).await;
    data_events(&mesh, 2).await;
    let (a, b) = (
        person_of(&mesh, "crm", "alice").await,
        person_of(&mesh, "phone", "bob").await,
    );
    assert_ne!(a, b, "different names do not merge");
    let suggested: Vec<(String, String, String)> =
        sqlx::query_as("SELECT a_external_id, b_external_id, identifier FROM person_suggestion")
            .fetch_all(mesh.pool())
            .await
            .unwrap();
    assert_eq!(
        suggested,
        vec![("alice".into(), "bob".into(), "smiths@family.org".into())]
    );

    let report = writer(&mesh)
        .decide(&PeopleDecision::KeepApart { a, b }, "test")
        .await
        .unwrap();
    assert_eq!(report.events, 0, "nothing about the people changed");
    assert_eq!(count(mesh.pool(), "person_suggestion").await, 0);
    // The next sync of either brings no new suggestion.
    mesh.publish_items(&[item(
        "phone",
        "person",
        "bob",
        "2026-01-02T00:00:00Z",
        person("Bob Smith", &["smiths@family.org", "bob@family.org"], &[]),
    )])
    .await;
    data_events(&mesh, 3).await;
    assert_eq!(count(mesh.pool(), "person_suggestion").await, 0);
    etl.stop().await;
}

#[tokio::test]
async fn an_unmerge_restores_two_people_and_a_resync_keeps_them_apart() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    // Two Sams who share the family's mailbox; the names are compatible, so they merge.
    mesh.publish_items(&[item(
        "crm",
        "person",
        "sam-1",
        "2026-01-01T00:00:00Z",
        person("Sam", &["sam@work.org", "smiths@family.org"], &[]),
    )])
    .await;
    data_events(&mesh, 1).await;
    mesh.publish_items(&[item(
        "phone",
        "person",
        "sam-2",
        "2026-01-01T00:00:00Z",
        person("Sam Smith", &["smiths@family.org"], &["+1 415 555 0142"]),
    )])
    .await;
    let events = data_events(&mesh, 3).await;
    assert_eq!(events[2].event_type(), "data.PersonMerged");
    let merged = person_of(&mesh, "crm", "sam-1").await;
    assert_eq!(merged, person_of(&mesh, "phone", "sam-2").await);

    // Only persons that came from several records can be split; ids that are not people say so.
    let nobody = Uuid::now_v7();
    let refused = writer(&mesh)
        .decide(
            &PeopleDecision::Unmerge {
                person: nobody,
                instance: None,
            },
            "test",
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, DecisionError::UnknownPerson(id) if id == nobody));
    let refused = writer(&mesh)
        .decide(
            &PeopleDecision::Unmerge {
                person: merged,
                instance: Some("mail".into()),
            },
            "test",
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("no record from instance `mail`"),
        "{refused}"
    );

    let report = writer(&mesh)
        .decide(
            &PeopleDecision::Unmerge {
                person: merged,
                instance: Some("phone".into()),
            },
            "admin",
        )
        .await
        .unwrap();
    assert_eq!(report.people.len(), 2);
    let events = data_events(&mesh, 6).await;
    let types: BTreeSet<String> = events[3..].iter().map(Stored::event_type).collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "data.PersonUpdated".to_string(),
            "data.PersonCreated".into(),
            "data.PersonUnmerged".into()
        ])
    );
    let unmerged = events
        .iter()
        .find(|e| e.event_type() == "data.PersonUnmerged")
        .unwrap()
        .json();
    assert_matches_schema(&unmerged);
    assert_eq!(unmerged["data"]["person_id"], merged.to_string());
    assert_eq!(unmerged["data"]["reason"], "unmerged");
    assert_eq!(unmerged["data"]["actor"], "admin");
    assert_eq!(
        unmerged["data"]["moved_sources"],
        json!([{"instance_id": "phone", "external_id": "sam-2"}])
    );
    let split: Uuid = unmerged["data"]["split_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(person_of(&mesh, "crm", "sam-1").await, merged);
    assert_eq!(person_of(&mesh, "phone", "sam-2").await, split);
    // Each has what its own source says again.
    let (emails, phones): (Vec<String>, Vec<String>) =
        sqlx::query_as("SELECT emails, phones FROM person WHERE id = $1")
            .bind(merged)
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(emails, vec!["sam@work.org", "smiths@family.org"]);
    assert!(phones.is_empty());
    let undone: Option<String> =
        sqlx::query_scalar("SELECT undone_by FROM person_merge WHERE kept_id = $1")
            .bind(merged)
            .fetch_one(mesh.pool())
            .await
            .unwrap();
    assert_eq!(undone.as_deref(), Some("admin"));

    // Both sources sync again, with changes: they stay two people.
    mesh.publish_items(&[
        item(
            "crm",
            "person",
            "sam-1",
            "2026-02-01T00:00:00Z",
            person(
                "Sam",
                &["sam@work.org", "smiths@family.org"],
                &["+1 415 555 0199"],
            ),
        ),
        item(
            "phone",
            "person",
            "sam-2",
            "2026-02-01T00:00:00Z",
            person("Sam Smith", &["smiths@family.org"], &["+1 415 555 0142"]),
        ),
    ])
    .await;
    eventually(30, "the resync", || async {
        let phones: Vec<String> = sqlx::query_scalar("SELECT phones FROM person WHERE id = $1")
            .bind(merged)
            .fetch_one(mesh.pool())
            .await
            .unwrap();
        (!phones.is_empty()).then_some(())
    })
    .await;
    assert_eq!(person_of(&mesh, "crm", "sam-1").await, merged);
    assert_eq!(person_of(&mesh, "phone", "sam-2").await, split);
    assert!(
        read_stream(&mesh, tributary_proto::streams::StreamKey::DataEvents)
            .await
            .iter()
            .filter(|e| e.event_type() == "data.PersonMerged")
            .count()
            == 1,
        "no merge again"
    );
    etl.stop().await;
}

#[tokio::test]
async fn a_manual_merge_of_people_who_share_nothing_survives_a_resync() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    mesh.publish_items(&[
        item(
            "crm",
            "person",
            "ada",
            "2026-01-01T00:00:00Z",
            person("Ada Lovelace", &["ada@example.org"], &[]),
        ),
        item(
            "phone",
            "person",
            "countess",
            "2026-01-01T00:00:00Z",
            person("Countess of Lovelace", &[], &["+44 20 7946 0958"]),
        ),
    ])
    .await;
    data_events(&mesh, 2).await;
    let (a, b) = (
        person_of(&mesh, "crm", "ada").await,
        person_of(&mesh, "phone", "countess").await,
    );
    assert_ne!(a, b);
    let same = writer(&mesh)
        .decide(&PeopleDecision::Merge { a, b: a }, "admin")
        .await
        .unwrap_err();
    assert!(matches!(same, DecisionError::SamePerson(..)), "{same}");
    let report = writer(&mesh)
        .decide(&PeopleDecision::Merge { a, b }, "admin")
        .await
        .unwrap();
    let kept = a.min(b);
    assert_eq!(report.people, vec![kept]);
    let events = data_events(&mesh, 4).await;
    let merged = events
        .iter()
        .find(|e| e.event_type() == "data.PersonMerged")
        .unwrap()
        .json();
    assert_eq!(merged["data"]["evidence"]["rule"], "manual");
    assert_eq!(merged["data"]["evidence"]["actor"], "admin");
    let refused = writer(&mesh)
        .decide(
            &PeopleDecision::Merge {
                a: a.max(b),
                b: kept,
            },
            "admin",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DecisionError::MergedInto { into, .. } if into == kept),
        "{refused}"
    );

    mesh.publish_items(&[
        item(
            "crm",
            "person",
            "ada",
            "2026-02-01T00:00:00Z",
            person(
                "Ada Lovelace",
                &["ada@example.org", "ada@analytical.org"],
                &[],
            ),
        ),
        item(
            "phone",
            "person",
            "countess",
            "2026-02-01T00:00:00Z",
            person("Countess of Lovelace", &[], &["+44 20 7946 0000"]),
        ),
    ])
    .await;
    eventually(30, "the resync", || async {
        let phones: Vec<String> = sqlx::query_scalar("SELECT phones FROM person WHERE id = $1")
            .bind(kept)
            .fetch_one(mesh.pool())
            .await
            .unwrap();
        (phones == vec!["+442079460000".to_string()]).then_some(())
    })
    .await;
    assert_eq!(person_of(&mesh, "crm", "ada").await, kept);
    assert_eq!(person_of(&mesh, "phone", "countess").await, kept);
    etl.stop().await;
}

#[tokio::test]
async fn the_same_items_in_every_order_give_the_same_people() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    // John twice, the front desk three times over, Mary by her own address and a record
    // without a name.
    let records = [
        (
            "a",
            "John Smith",
            vec!["john@x.org"],
            vec!["+1 415 555 0100"],
        ),
        ("b", "J. Smith", vec!["john@x.org"], vec![]),
        (
            "c",
            "Mary Jones",
            vec!["mary@x.org"],
            vec!["+1 415 555 0100"],
        ),
        ("d", "", vec!["mary@x.org"], vec!["+1 415 555 0177"]),
        ("e", "Tom Brown", vec![], vec!["+1 415 555 0100"]),
    ];
    let orders: [[usize; 5]; 6] = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [0, 2, 4, 1, 3],
        [3, 1, 4, 0, 2],
        [2, 4, 0, 3, 1],
        [1, 0, 3, 4, 2],
    ];
    let mut outcomes = Vec::new();
    let mut stored = 0;
    for (n, order) in orders.iter().enumerate() {
        // Each order is its own world: its own instance and its own addresses.
        let instance = format!("order{n}-book");
        let own = |s: &str| {
            s.replace("@x.org", &format!("@{n}.x.org"))
                .replace("0100", &format!("01{n}0"))
        };
        for &r in order {
            let (id, name, emails, phones) = &records[r];
            let emails: Vec<String> = emails.iter().map(|e| own(e)).collect();
            let phones: Vec<String> = phones.iter().map(|p| own(p)).collect();
            mesh.publish_items(&[item(
                &instance,
                "person",
                id,
                "2026-01-01T00:00:00Z",
                json!({"display_name": name, "emails": emails, "phones": phones}),
            )])
            .await;
            stored += 1;
            people_records(&mesh, stored).await;
        }
        let people: Vec<Vec<String>> = people(&mesh, &instance)
            .await
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|k| k.replace(&format!("{instance}/"), ""))
                    .collect()
            })
            .collect();
        outcomes.push(people);
    }
    for (n, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome, &outcomes[0], "order {:?}", orders[n]);
    }
    assert_eq!(
        outcomes[0],
        vec![
            vec!["a".to_string(), "b".into()],
            vec!["c".into(), "d".into()],
            vec!["e".into()]
        ]
    );
    etl.stop().await;
}

#[tokio::test]
async fn a_record_renamed_to_someone_else_is_split_off_by_itself() {
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
        person("Ada Lovelace", &["ada@example.org"], &[]),
    )])
    .await;
    data_events(&mesh, 1).await;
    mesh.publish_items(&[item(
        "phone",
        "person",
        "ph-9",
        "2026-01-01T00:00:00Z",
        person("Ada", &["ada@example.org"], &["+44 20 7946 0958"]),
    )])
    .await;
    data_events(&mesh, 3).await;
    let kept = person_of(&mesh, "crm", "c-1").await;
    assert_eq!(person_of(&mesh, "phone", "ph-9").await, kept);
    // The phone book's entry now names someone else at the same address.
    mesh.publish_items(&[item(
        "phone",
        "person",
        "ph-9",
        "2026-01-02T00:00:00Z",
        person("Bob Smith", &["ada@example.org"], &["+44 20 7946 0958"]),
    )])
    .await;
    let events = data_events(&mesh, 6).await;
    let unmerged = events
        .iter()
        .find(|e| e.event_type() == "data.PersonUnmerged")
        .expect("a split")
        .json();
    assert_eq!(unmerged["data"]["reason"], "names_differ");
    assert!(unmerged["data"].get("actor").is_none());
    let split = person_of(&mesh, "phone", "ph-9").await;
    assert_ne!(split, kept);
    assert_eq!(unmerged["data"]["split_id"], split.to_string());
    assert_eq!(person_of(&mesh, "crm", "c-1").await, kept);
    // What joined them is now a suggestion, not a merge.
    assert_eq!(count(mesh.pool(), "person_suggestion").await, 1);
    etl.stop().await;
}
