//! `data:write`, enforced where items are written: an instance stores only entity types its
//! accepted permissions grant (DESIGN, Security). The ETL asks the plugin manager
//! (`plugins.instance`) for an instance's accepted permissions and keeps them a short while;
//! a refusal is checked once more against a fresh answer, so an upgrade that grants a new
//! type is never refused on a stale copy.
//!
//! Whoever publishes on `connector.items.<instance>` (the connector service, the channel
//! service, the plugin manager's purge) is held to the instance's grants, not to its own NATS
//! rights: a compromised service or a hostile plugin cannot bring in entity types the
//! operator did not accept, nor write for an instance that is not installed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tributary_kit::client::{CallError, MeshClient};
use tributary_proto::grants::Grants;
use tributary_proto::{ConnectorItem, ItemOperation, Permission};

use crate::normalise::Rejection;

/// How long an answer of the plugin manager is trusted before it is asked again, when it
/// allows the item (a refusal is always asked again at once).
pub const GRANTS_FRESH_FOR: Duration = Duration::from_secs(30);

/// Why an item was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRefusal {
    /// It can never be written: dead-letter it with this reason.
    Refused(Rejection),
    /// The plugin manager could not be asked; try again later.
    Unavailable(String),
}

/// The `data:write` grants of every instance the ETL has seen items of.
#[derive(Debug)]
pub struct WriteGrants {
    /// Asks `plugins.instance`.
    plugins: MeshClient,
    /// The last answer for each instance, with when it came; `None`: not installed.
    known: Mutex<HashMap<String, (Instant, Option<Grants>)>>,
}

impl WriteGrants {
    /// Grants asked of the plugin manager through `plugins`.
    pub fn new(plugins: MeshClient) -> Self {
        Self {
            plugins,
            known: Mutex::default(),
        }
    }

    /// Lets `item` through when its instance is installed and granted `data:write` for its
    /// entity type. A purge is let through whatever the grants: it only forgets records the
    /// instance already has, and the plugin manager sends it while uninstalling.
    pub async fn check(&self, item: &ConnectorItem) -> Result<(), WriteRefusal> {
        if item.operation == ItemOperation::Purge {
            return Ok(());
        }
        let cached = {
            let known = self.known.lock().await;
            known
                .get(&item.instance_id)
                .filter(|(at, _)| at.elapsed() < GRANTS_FRESH_FOR)
                .map(|(_, grants)| grants.clone())
        };
        if let Some(grants) = cached {
            if decide(item, grants.as_ref()).is_ok() {
                return Ok(());
            }
        }
        let grants = self.ask(&item.instance_id).await?;
        let decision = decide(item, grants.as_ref());
        self.known
            .lock()
            .await
            .insert(item.instance_id.clone(), (Instant::now(), grants));
        decision.map_err(WriteRefusal::Refused)
    }

    /// The instance's accepted permissions, `None` when it is not installed.
    async fn ask(&self, instance_id: &str) -> Result<Option<Grants>, WriteRefusal> {
        match self.plugins.instance(instance_id).await {
            Ok(view) => Ok(Some(Grants::new(
                // Each was valid when accepted; one that no longer parses grants nothing.
                view.permissions
                    .iter()
                    .filter_map(|p| p.parse::<Permission>().ok()),
            ))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(WriteRefusal::Unavailable(unavailable(&e))),
        }
    }
}

fn unavailable(e: &CallError) -> String {
    format!("cannot ask the plugin manager for the instance's permissions: {e}")
}

/// Whether `grants` (`None`: no such instance) let `item` be written.
fn decide(item: &ConnectorItem, grants: Option<&Grants>) -> Result<(), Rejection> {
    let Some(grants) = grants else {
        return Err(Rejection(format!(
            "instance `{}` is not installed; only an installed instance's items are stored",
            item.instance_id
        )));
    };
    grants.check_write(item.entity_type).map_err(|denied| {
        Rejection(format!(
            "instance `{}` may not write {}: {denied}",
            item.instance_id,
            item.entity_type.plural()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;
    use tributary_proto::EntityType;

    fn item(entity_type: EntityType, operation: ItemOperation) -> ConnectorItem {
        ConnectorItem {
            instance_id: "crm-1".into(),
            entity_type,
            external_id: "x".into(),
            operation,
            source_modified_at: Utc::now(),
            data: json!({}),
            raw: json!({}),
        }
    }

    fn grants(permissions: &[&str]) -> Grants {
        Grants::new(permissions.iter().map(|p| p.parse().expect("a permission")))
    }

    #[test]
    fn an_entity_type_granted_is_written_and_another_is_refused_naming_the_permission() {
        let persons = grants(&["data:write:persons"]);
        assert!(decide(
            &item(EntityType::Person, ItemOperation::Upsert),
            Some(&persons)
        )
        .is_ok());
        let refused = decide(
            &item(EntityType::Document, ItemOperation::Delete),
            Some(&persons),
        )
        .unwrap_err();
        assert_eq!(
            refused.0,
            "instance `crm-1` may not write documents: permission `data:write:documents` is not granted"
        );
    }

    #[test]
    fn an_instance_not_installed_writes_nothing() {
        let refused = decide(&item(EntityType::Person, ItemOperation::Upsert), None).unwrap_err();
        assert!(refused.0.contains("`crm-1` is not installed"), "{refused}");
    }
}
