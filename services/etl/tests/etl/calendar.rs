//! Calendar events' zones: an all-day event and a floating time are in no zone, whatever
//! offset their connector wrote them with.

use serde_json::json;

use crate::support::*;

/// What this test proves: `original_timezone` is NULL for an all-day event and a floating
/// time (as the DAV connector sends them: UTC instants, no zone), and records the offset of
/// a timed event in UTC or the zone an item names.
#[tokio::test]
async fn all_day_and_floating_events_are_stored_without_a_time_zone() {
    let Started {
        env: _env,
        mesh,
        etl,
    } = started().await;
    let v1 = "2026-03-01T10:00:00Z";
    let event = |id: &str, data: serde_json::Value| item("cal", "calendar_event", id, v1, data);
    mesh.publish_items(&[
        event(
            "all-day",
            json!({"title": "Holiday", "starts_at": "2026-03-02T00:00:00Z",
                       "ends_at": "2026-03-03T00:00:00Z", "all_day": true}),
        ),
        event(
            "floating",
            json!({"title": "Alarm", "starts_at": "2026-03-02T07:00:00Z",
                       "extra": {"floating_time": true}}),
        ),
        event(
            "utc",
            json!({"title": "Call", "starts_at": "2026-03-02T15:00:00Z"}),
        ),
        event(
            "named-all-day",
            json!({"title": "Fête", "starts_at": "2026-03-02", "ends_at": "2026-03-03",
                       "all_day": true, "original_timezone": "Europe/Paris"}),
        ),
    ])
    .await;
    data_events(&mesh, 4).await;

    let zones: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT s.external_id, e.original_timezone FROM calendar_event e
         JOIN source_record s ON s.entity_id = e.id ORDER BY s.external_id",
    )
    .fetch_all(mesh.pool())
    .await
    .unwrap();
    assert_eq!(
        zones,
        vec![
            ("all-day".to_owned(), None),
            ("floating".to_owned(), None),
            ("named-all-day".to_owned(), Some("Europe/Paris".to_owned())),
            ("utc".to_owned(), Some("UTC".to_owned())),
        ]
    );
    etl.stop().await;
    mesh.pool().close().await;
}
