//! The built-in demo connector (`tributary.demo`): a bundled sample set, so that a new
//! installation has something to search.
//!
//! The sample set (`sample.json`, compiled in) is the small world of a fictional design
//! studio building a loyalty app for a coffee roaster: organisations, people,
//! conversations with their messages (e-mail, chat, SMS), calendar events and documents,
//! 28 items in all. Every item carries the sample set's version as its source
//! modification time, so a second sync changes nothing.
//!
//! A full sync (or the first) sends every item, then a checkpoint holding the version; an
//! incremental sync from that checkpoint sends nothing. `tributary up --demo` installs and
//! enables it as the instance `demo`.

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
use tributary_plugin_sdk::{
    ConnectorItem, ConnectorPlugin, Cursor, EntityType, ItemOperation, PluginContext, PluginError,
    SyncMode, SyncRequest, SyncStep,
};

/// The plugin's manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The manifest's entrypoint, by which the connector service finds this connector.
pub const ENTRYPOINT: &str = "builtin:demo";

/// The plugin id.
pub const PLUGIN_ID: &str = "tributary.demo";

/// The bundled sample set.
const SAMPLE: &str = include_str!("../sample.json");

/// The sample set: one version for all its items.
#[derive(Debug, Deserialize)]
struct SampleSet {
    version: DateTime<Utc>,
    items: Vec<SampleItem>,
}

/// One sample item: its entity type, external id and fields.
#[derive(Debug, Deserialize)]
struct SampleItem {
    entity: EntityType,
    id: String,
    data: serde_json::Value,
}

/// Where the last sync got to: the version of the sample set it sent.
#[derive(Debug, serde::Serialize, Deserialize, PartialEq)]
struct DemoCursor {
    version: DateTime<Utc>,
}

fn sample_set() -> Result<SampleSet, PluginError> {
    serde_json::from_str(SAMPLE)
        .map_err(|e| PluginError::Other(format!("the bundled sample set is unreadable: {e}")))
}

/// How many items of each entity type the sample set holds, in the order it sends them.
pub fn sample_counts() -> Vec<(EntityType, usize)> {
    let mut counts: Vec<(EntityType, usize)> = Vec::new();
    for item in sample_set().map(|s| s.items).unwrap_or_default() {
        match counts.iter_mut().find(|(entity, _)| *entity == item.entity) {
            Some((_, count)) => *count += 1,
            None => counts.push((item.entity, 1)),
        }
    }
    counts
}

/// The demo connector; see the [crate] documentation.
#[derive(Debug, Clone, Default)]
pub struct DemoConnector;

impl ConnectorPlugin for DemoConnector {
    /// Sends the sample set and a checkpoint, or, from a checkpoint of the same version
    /// without a full sync asked for, only the checkpoint.
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let steps = sample_set().and_then(|sample| {
            let checkpoint = Cursor::new(DemoCursor {
                version: sample.version,
            })?;
            let up_to_date = request.mode != SyncMode::Full
                && cursor
                    .as_ref()
                    .and_then(|c| c.parse::<DemoCursor>().ok())
                    .is_some_and(|c| c.version == sample.version);
            let mut steps: Vec<Result<SyncStep, PluginError>> = Vec::new();
            if !up_to_date {
                steps.extend(sample.items.into_iter().map(|item| {
                    Ok(SyncStep::Item(ConnectorItem {
                        instance_id: ctx.instance_id().to_owned(),
                        entity_type: item.entity,
                        external_id: item.id,
                        operation: ItemOperation::Upsert,
                        source_modified_at: sample.version,
                        raw: item.data.clone(),
                        data: item.data,
                    }))
                }));
            }
            steps.push(Ok(SyncStep::Checkpoint(checkpoint)));
            Ok(steps)
        });
        match steps {
            Ok(steps) => stream::iter(steps).boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tributary_plugin_sdk::validate_manifest;

    use super::*;

    #[test]
    fn the_manifest_is_valid_and_grants_every_entity_the_sample_holds() {
        let manifest = validate_manifest(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(manifest.id, PLUGIN_ID);
        assert_eq!(manifest.entrypoint, ENTRYPOINT);
        let permissions: Vec<String> = manifest.permissions.iter().map(|p| p.to_string()).collect();
        for (entity, _) in sample_counts() {
            let needed = format!("data:write:{}", entity.plural());
            assert!(permissions.contains(&needed), "{needed} is not granted");
        }
    }

    #[test]
    fn every_sample_item_has_the_fields_of_its_entity() {
        use tributary_proto::model::*;
        for item in sample_set().unwrap().items {
            let data = item.data.clone();
            let parsed = match item.entity {
                EntityType::Person => serde_json::from_value::<PersonFields>(data).map(drop),
                EntityType::Organization => {
                    serde_json::from_value::<OrganizationFields>(data).map(drop)
                }
                EntityType::Conversation => {
                    serde_json::from_value::<ConversationFields>(data).map(drop)
                }
                EntityType::Message => serde_json::from_value::<MessageFields>(data).map(drop),
                EntityType::CalendarEvent => {
                    serde_json::from_value::<CalendarEventFields>(data).map(drop)
                }
                EntityType::Document => serde_json::from_value::<DocumentFields>(data).map(drop),
            };
            parsed.unwrap_or_else(|e| panic!("{} ({}): {e}", item.id, item.entity));
        }
    }

    #[test]
    fn the_sample_holds_every_entity_type() {
        let counts = sample_counts();
        assert_eq!(counts.len(), 6, "{counts:?}");
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), 28);
    }
}
