//! `data:write` enforced by the ETL (issue 27, Low): an item is stored only when its instance
//! is installed and its accepted permissions grant the item's entity type; whoever publishes
//! on the instance's subject, a refused item goes to the dead-letter stream naming why.

use std::time::Duration;

use serde_json::json;
use tributary_kit::requests::serve;
use tributary_kit::testing::RunningService;
use tributary_kit::{Config, ServiceRuntime, ServiceSpec};
use tributary_proto::dead_letter::REASON_HEADER;
use tributary_proto::requests::plugins::{InstanceInfo, InstanceView};
use tributary_proto::requests::{ApiError, ErrorCode};
use tributary_proto::streams::StreamKey;
use tributary_proto::ServiceName;

use crate::support::*;

/// Answers `plugins.instance` as the plugin manager would, and nothing else.
const STAND_IN: ServiceSpec = ServiceSpec {
    name: ServiceName::PluginManager,
    version: "0.0.0",
    description: "Stands in for the plugin manager's plugins.instance.",
    uses_database: false,
};

/// A plugin manager knowing one instance, `crm`, accepted `data:write:persons` only.
async fn plugin_manager(config: Config) -> RunningService {
    RunningService::start(
        |config| async move {
            let runtime = ServiceRuntime::start(STAND_IN, config).await?;
            serve::<InstanceInfo, _, _>(&runtime, |asked| async move {
                if asked.instance_id != "crm" {
                    return Err(ApiError::new(ErrorCode::NotFound, "no such instance"));
                }
                let view: InstanceView = serde_json::from_value(json!({
                    "id": "crm", "plugin_id": "com.example.crm", "plugin_type": "connector",
                    "version": "1.0.0", "state": "enabled", "config": {}, "secrets": {},
                    "permissions": ["network:outbound:crm.example.com", "data:write:persons"],
                    "last_heartbeat": null, "last_error": null, "auth": null,
                    "held_upgrade": null,
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                }))
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                Ok(view)
            })
            .await?;
            Ok(runtime)
        },
        config,
    )
    .await
}

#[tokio::test]
async fn an_item_of_an_entity_type_not_granted_or_of_no_instance_is_dead_lettered() {
    // The attack: items for an instance granted persons only, of a type it was never
    // granted and under an instance that does not exist, published straight on the item
    // stream as a compromised service or a hostile plugin could.
    let mut env = env().await;
    env.config.etl.check_data_write = true;
    let manager = plugin_manager(env.config.clone()).await;
    let etl = RunningEtl::start(env.config.clone()).await;
    let mesh = Mesh::of(&env).await;

    let document = item(
        "crm",
        "document",
        "d1",
        "2026-01-01T00:00:00Z",
        json!({"title": "Planted"}),
    );
    let ghost = item(
        "ghost",
        "person",
        "g1",
        "2026-01-01T00:00:00Z",
        json!({"display_name": "Nobody Installed"}),
    );
    publish_bytes(&mesh, "crm", &serde_json::to_vec(&document).unwrap()).await;
    publish_bytes(&mesh, "ghost", &serde_json::to_vec(&ghost).unwrap()).await;
    mesh.publish_items(&[item(
        "crm",
        "person",
        "p1",
        "2026-01-01T00:00:00Z",
        json!({"display_name": "Granted Person"}),
    )])
    .await;

    mesh.wait_for_rows("SELECT count(*) FROM person", 1, Duration::from_secs(15))
        .await;
    let letters = eventually(15, "2 dead letters", || async {
        let letters = read_stream(&mesh, StreamKey::DeadLetters).await;
        (letters.len() >= 2).then_some(letters)
    })
    .await;
    let reasons: Vec<String> = letters
        .iter()
        .map(|l| l.headers.get(REASON_HEADER).unwrap().as_str().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r
            == "instance `crm` may not write documents: permission `data:write:documents` is not granted"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("instance `ghost` is not installed")),
        "{reasons:?}"
    );
    assert_eq!(count(mesh.pool(), "document").await, 0);
    assert_eq!(count(mesh.pool(), "person").await, 1);
    etl.stop().await;
    manager.stop().await;
}

#[tokio::test]
async fn granted_items_keep_being_stored_while_the_plugin_manager_restarts() {
    // The grants the ETL was told are kept for a while (30 s): a plugin manager restarting
    // for an upgrade does not hold up every sync, and the ETL does not ask it once per item.
    let mut env = env().await;
    env.config.etl.check_data_write = true;
    let manager = plugin_manager(env.config.clone()).await;
    let etl = RunningEtl::start(env.config.clone()).await;
    let mesh = Mesh::of(&env).await;
    let person = |id: &str, name: &str| {
        item(
            "crm",
            "person",
            id,
            "2026-01-01T00:00:00Z",
            json!({ "display_name": name }),
        )
    };
    mesh.publish_items(&[person("p1", "Asked For")]).await;
    mesh.wait_for_rows("SELECT count(*) FROM person", 1, Duration::from_secs(15))
        .await;

    manager.stop().await;
    mesh.publish_items(&[person("p2", "While Away")]).await;
    mesh.wait_for_rows("SELECT count(*) FROM person", 2, Duration::from_secs(10))
        .await;
    etl.stop().await;
}

#[tokio::test]
async fn items_wait_for_a_plugin_manager_that_cannot_be_asked_rather_than_being_refused() {
    // Not knowing the grants is not a refusal: with one delivery allowed, an item refused
    // even once would be dead-lettered and lost to its sync.
    let mut env = env().await;
    env.config.etl.check_data_write = true;
    env.config.etl.max_deliver = 1;
    let etl = RunningEtl::start(env.config.clone()).await;
    let mesh = Mesh::of(&env).await;
    mesh.publish_items(&[item(
        "crm",
        "person",
        "p1",
        "2026-01-01T00:00:00Z",
        json!({"display_name": "Patient Person"}),
    )])
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(mesh.pool(), "person").await, 0);

    let manager = plugin_manager(env.config.clone()).await;
    mesh.wait_for_rows("SELECT count(*) FROM person", 1, Duration::from_secs(15))
        .await;
    assert!(
        read_stream(&mesh, StreamKey::DeadLetters).await.is_empty(),
        "nothing dead-lettered while the grants could not be asked"
    );
    etl.stop().await;
    manager.stop().await;
}
