//! Connector items as a connector publishes them.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use tributary_proto::item::ItemOperation;
use tributary_proto::model::EntityType;
use tributary_proto::ConnectorItem;

/// The version every generated item carries.
pub fn version() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Person number `i` of `instance`: external id `p<i>`, display name `<name> <i>`, an e-mail
/// address of its own (so no two are merged), and the word `<marker>` in its title, to find
/// exactly these in the index.
pub fn person(instance: &str, marker: &str, i: usize) -> ConnectorItem {
    ConnectorItem {
        instance_id: instance.to_owned(),
        entity_type: EntityType::Person,
        external_id: format!("p{i}"),
        operation: ItemOperation::Upsert,
        source_modified_at: version(),
        data: json!({
            "display_name": format!("Person {i} {marker}"),
            "emails": [format!("{instance}.{i}@example.org")],
            "title": marker,
        }),
        raw: json!({ "id": i }),
    }
}

/// Persons `0..n` of `instance`, see [`person`].
pub fn people(instance: &str, marker: &str, n: usize) -> Vec<ConnectorItem> {
    (0..n).map(|i| person(instance, marker, i)).collect()
}
