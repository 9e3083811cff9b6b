//! The plugin instances each announced person still comes from. A person met through several
//! sources lives on when one of them deletes its record; her events say which remain, so a
//! subscriber (the search index) can forget a source she no longer has.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::StoreError;

/// The instances holding a live source record of each person of `ids`, in name order, as the
/// batch's own writes leave them.
const LIVE_SOURCES: &str = "\
    SELECT entity_id, array_agg(DISTINCT instance_id ORDER BY instance_id) AS sources \
    FROM source_record \
    WHERE entity_type = 'person' AND entity_id = ANY($1) AND NOT deleted \
    GROUP BY entity_id";

/// Sets `sources` on the row of each person of `people` in `rows` (the rows the batch's
/// events carry): the instances that hold a live record of her. One statement per batch.
pub(super) async fn set_person_sources(
    tx: &mut Transaction<'static, Postgres>,
    people: &[Uuid],
    rows: &mut HashMap<Uuid, Value>,
) -> Result<(), StoreError> {
    if people.is_empty() {
        return Ok(());
    }
    let mut live: HashMap<Uuid, Vec<String>> = HashMap::with_capacity(people.len());
    for row in sqlx::query(LIVE_SOURCES)
        .bind(people)
        .fetch_all(&mut **tx)
        .await?
    {
        live.insert(row.try_get("entity_id")?, row.try_get("sources")?);
    }
    for id in people {
        if let Some(Value::Object(row)) = rows.get_mut(id) {
            // A person can be in `people` twice (updated and merged): both events share her row.
            let sources = live.get(id).map(Vec::as_slice).unwrap_or_default();
            row.insert(
                "sources".into(),
                Value::Array(sources.iter().cloned().map(Value::String).collect()),
            );
        }
    }
    Ok(())
}
