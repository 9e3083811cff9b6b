//! Write-only secrets stay bound to where they were entered for (issue 27, finding 5): a
//! change that points a `network:outbound:${field}` grant at another scheme, host or port is
//! refused unless the stored secrets are given again in the same request, so an admin-API
//! caller cannot recover a token "never returned by an API" by aiming the instance at a
//! server of their own. An OAuth instance's tokens are forgotten on such a move.

use serde_json::{json, Value};
use tributary_proto::requests::plugins::{
    Call, ConfigureRequest, InstallRequest, InstanceCall, RuntimeQuery,
};
use tributary_proto::requests::ErrorCode;

use crate::support::*;

const API: &str = "com.example.api";
const PERMISSIONS: [&str; 1] = ["network:outbound:${apiBaseUrl}"];
const TOKEN: &str = "tok-entered-for-api-9F3k";

fn api_manifest() -> String {
    json!({
        "id": API, "name": "Example API", "version": "1.0.0", "type": "connector",
        "entrypoint": "builtin:example", "permissions": PERMISSIONS,
        "configSchema": {
            "type": "object",
            "properties": {
                "apiBaseUrl": { "type": "string", "format": "uri" },
                "token": { "type": "string", "writeOnly": true },
                "pageSize": { "type": "integer" }
            },
            "required": ["apiBaseUrl", "token"]
        }
    })
    .to_string()
}

async fn configure(
    env: &tributary_kit::testing::TestEnv,
    config: Value,
) -> Result<Value, tributary_proto::requests::ApiError> {
    ask::<InstanceCall<ConfigureRequest>, Value>(
        env,
        json!({ "instance_id": "api", "config": config, "actor": "admin-api:attacker" }),
    )
    .await
}

async fn runtime_config(env: &tributary_kit::testing::TestEnv) -> Value {
    let runtime: Value = ask::<RuntimeQuery, _>(env, json!({ "instance_id": "api" }))
        .await
        .unwrap();
    runtime["config"].clone()
}

#[tokio::test]
async fn pointing_a_granted_host_elsewhere_needs_the_secrets_given_again() {
    let (mut env, dir) = env_with_plugin().await;
    dir.write("api", &api_manifest());
    env.config.plugin_manager.plugin_dirs = vec![dir.0.clone()];
    let _pm = RunningPm::start(env.config.clone()).await;
    ask::<Call<InstallRequest>, Value>(
        &env,
        json!({ "plugin_id": API, "instance_id": "api", "accept_permissions": PERMISSIONS,
                "config": { "apiBaseUrl": "https://api.example.com/v1", "token": TOKEN } }),
    )
    .await
    .unwrap();

    // The attack: aim the instance at a server of one's own, keeping the stored token.
    for elsewhere in [
        "https://attacker.example/v1",
        "http://api.example.com/v1",
        "https://api.example.com:8443/v1",
    ] {
        let refused = configure(&env, json!({ "apiBaseUrl": elsewhere }))
            .await
            .unwrap_err();
        assert_eq!(
            refused.error,
            ErrorCode::InvalidConfig,
            "{elsewhere}: {}",
            refused.message
        );
        assert_eq!(refused.problems.len(), 1, "{refused:?}");
        assert_eq!(refused.problems[0].path, "/token");
        assert!(
            refused
                .message
                .contains("`apiBaseUrl` from https://api.example.com:443"),
            "{}",
            refused.message
        );
        // Nothing changed: the token still goes only to the host it was entered for.
        let config = runtime_config(&env).await;
        assert_eq!(config["apiBaseUrl"], "https://api.example.com/v1");
        assert_eq!(config["token"], TOKEN);
    }

    // Within the same destination, secrets are kept as always.
    configure(
        &env,
        json!({ "apiBaseUrl": "https://API.example.com/v2", "pageSize": 50 }),
    )
    .await
    .unwrap();
    assert_eq!(runtime_config(&env).await["token"], TOKEN);

    // Given again with the move, the change is made, and the audit log says what moved.
    configure(
        &env,
        json!({ "apiBaseUrl": "https://api2.example.com/v2", "token": "tok-new-host" }),
    )
    .await
    .unwrap();
    let config = runtime_config(&env).await;
    assert_eq!(
        (config["apiBaseUrl"].as_str(), config["token"].as_str()),
        (Some("https://api2.example.com/v2"), Some("tok-new-host"))
    );
    let (audit, _) = audit_of(&env, "api").await;
    let last = audit.last().unwrap();
    assert_eq!(last["action"], "configure");
    assert_eq!(
        last["detail"]["destinations_moved"],
        json!([{ "field": "apiBaseUrl", "from": "https://api.example.com:443", "to": "https://api2.example.com:443" }])
    );
}
