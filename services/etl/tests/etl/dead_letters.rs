use serde_json::json;
use tributary_proto::dead_letter::{ORIGINAL_SUBJECT_HEADER, REASON_HEADER};
use tributary_proto::streams::StreamKey;

use crate::support::*;

#[tokio::test]
async fn items_that_can_never_succeed_are_dead_lettered_and_the_rest_flow_on() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"instance_id\": \"crm\", oops".to_vec(),
            "malformed JSON",
        ),
        (
            serde_json::to_vec(&item(
                "crm",
                "people",
                "x",
                "2026-01-01T00:00:00Z",
                json!({}),
            ))
            .unwrap(),
            "unknown entity type `people`",
        ),
        (
            serde_json::to_vec(&item(
                "crm",
                "person",
                "y",
                "2026-01-01T00:00:00Z",
                json!({"display_name": "Y", "shoe_size": 9}),
            ))
            .unwrap(),
            "unknown field `shoe_size`",
        ),
        (
            serde_json::to_vec(&item(
                "crm",
                "calendar_event",
                "z",
                "2026-01-01T00:00:00Z",
                json!({"title": "T", "starts_at": "tomorrow"}),
            ))
            .unwrap(),
            "invalid `starts_at`",
        ),
    ];
    for (payload, _) in &bad {
        publish_bytes(&mesh, "crm", payload).await;
    }
    mesh.publish_items(&[item(
        "crm",
        "person",
        "ok",
        "2026-01-01T00:00:00Z",
        json!({"display_name": "Fine"}),
    )])
    .await;
    let events = data_events(&mesh, 1).await;
    assert_eq!(events[0].json()["data"]["display_name"], "Fine");

    let letters = eventually(10, "4 dead letters", || async {
        let letters = read_stream(&mesh, StreamKey::DeadLetters).await;
        (letters.len() >= 4).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 4);
    // Concurrent batches may dead-letter in any order; each letter keeps its payload byte for
    // byte, and names its reason.
    for (payload, reason) in &bad {
        let letter = letters
            .iter()
            .find(|l| &l.payload == payload)
            .unwrap_or_else(|| panic!("no dead letter keeps the item that fails with {reason}"));
        assert_eq!(letter.subject, mesh.subjects().dead_letter("etl-items"));
        let got = letter.headers.get(REASON_HEADER).unwrap().as_str();
        assert!(got.contains(reason), "{got} should name {reason}");
        assert_eq!(
            letter
                .headers
                .get(ORIGINAL_SUBJECT_HEADER)
                .unwrap()
                .as_str(),
            mesh.subjects().connector_items("crm")
        );
    }
    // Nothing of them was stored, and nothing is left pending.
    assert_eq!(count(mesh.pool(), "person").await, 1);
    let info = items_settled(&mesh, 5).await;
    assert_eq!(info.delivered.stream_sequence, 5);
    etl.stop().await;
}

#[tokio::test]
async fn an_item_on_another_instances_subject_is_refused() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let payload = serde_json::to_vec(&item(
        "victim",
        "person",
        "p",
        "2026-01-01T00:00:00Z",
        json!({"display_name": "X"}),
    ))
    .unwrap();
    publish_bytes(&mesh, "attacker", &payload).await;
    let letters = eventually(10, "a dead letter", || async {
        let letters = read_stream(&mesh, StreamKey::DeadLetters).await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert!(letters[0]
        .headers
        .get(REASON_HEADER)
        .unwrap()
        .as_str()
        .contains("instance `victim`"));
    etl.stop().await;
}

#[tokio::test]
async fn bad_etl_settings_stop_start_up_naming_the_key() {
    let mut env = env().await;
    env.config.etl.default_phone_region = "ZZ".into();
    let err = tributary_etl::build(env.config.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("etl.default_phone_region"), "{err}");
    for (key, value) in [
        ("BATCH_SIZE", "0"),
        ("MAX_ACK_PENDING", "10"),
        ("DEFAULT_PHONE_REGION", "gb"),
        ("RETRY_MAX_MS", "1"),
    ] {
        let env_vars =
            std::collections::HashMap::from([(format!("TRIBUTARY__ETL__{key}"), value.to_owned())]);
        let err = tributary_kit::Config::load(&tributary_kit::ConfigSources {
            file: None,
            env: Some(env_vars),
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("etl.{}", key.to_lowercase())),
            "{key}: {err}"
        );
    }
}
