//! Input PostgreSQL cannot store (a NUL byte) is refused naming the field, over HTTP and NATS
//! alike, and a database failure never reaches the caller.

use serde_json::{json, Value};
use tributary_proto::requests::ErrorCode;

use crate::support::*;
use tributary_proto::requests::plugins::{
    AuditQuery, Call, ConfigureRequest, DisableRequest, EnableRequest, HeartbeatRequest,
    InstallRequest, InstanceCall, InstanceFilter, InstanceInfo, RuntimeQuery, UpgradeRequest,
};

/// Whether a reply leaks what PostgreSQL said.
fn leaks_the_database(reply: &Value) -> bool {
    let text = reply.to_string();
    [
        "invalid byte sequence",
        "UTF8",
        "database",
        "relation",
        "sqlx",
        "0x00",
    ]
    .iter()
    .any(|leak| text.contains(leak))
}

#[tokio::test]
async fn a_nul_in_a_filter_is_refused_over_http_naming_the_parameter() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    for (path, field) in [
        ("/api/v1/instances?state=%00", "`state`"),
        ("/api/v1/instances?plugin_type=%00", "`plugin_type`"),
        ("/api/v1/audit?instance_id=%00", "`instance_id`"),
    ] {
        let (status, reply) = admin.call("GET", path, None).await;
        assert_eq!(status, 400, "{path}: {reply}");
        assert_eq!(reply["error"], "bad_request", "{path}: {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains(field), "{path}: {reply}");
        assert!(!leaks_the_database(&reply), "{path}: {reply}");
    }
    pm.stop().await;
}

#[tokio::test]
async fn an_instance_id_with_a_nul_is_not_found_on_every_instance_route() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    for (method, path, body) in [
        ("GET", "/api/v1/instances/%00", None),
        ("POST", "/api/v1/instances/%00/enable", None),
        ("POST", "/api/v1/instances/%00/disable", None),
        ("POST", "/api/v1/instances/a%00b/upgrade", Some(json!({}))),
        (
            "PUT",
            "/api/v1/instances/%00/config",
            Some(json!({ "config": contacts_config() })),
        ),
        ("DELETE", "/api/v1/instances/%00", None),
        ("DELETE", "/api/v1/instances/%00?purge=true", None),
    ] {
        let (status, reply) = admin.call(method, path, body).await;
        assert_eq!(status, 404, "{method} {path}: {reply}");
        assert!(!leaks_the_database(&reply), "{method} {path}: {reply}");
    }
    pm.stop().await;
}

#[tokio::test]
async fn a_config_string_with_a_nul_is_refused_as_invalid_config_naming_its_path() {
    let (env, _dir, pm) = started_with_work(false).await;
    let admin = Admin::new(&env, &pm);
    let config = json!({ "server": "https://dav.example.com/\u{0}", "password": "pw-0123456789" });
    let (status, reply) = admin
        .call(
            "PUT",
            "/api/v1/instances/work/config",
            Some(json!({ "config": config })),
        )
        .await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["error"], "invalid_config");
    assert_eq!(reply["problems"][0]["path"], "/server", "{reply}");
    assert!(!leaks_the_database(&reply), "{reply}");

    let refused = ask::<Call<InstallRequest>, Value>(
        &env,
        json!({ "plugin_id": CONTACTS, "instance_id": "other", "accept_permissions": V1_PERMISSIONS,
                "config": { "server": "https://dav.example.com", "password": "pw-0123456789", "username": "a\u{0}" } }),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.error, ErrorCode::InvalidConfig);
    assert_eq!(refused.problems[0].path, "/username", "{refused:?}");
    pm.stop().await;
}

#[tokio::test]
async fn a_nul_over_nats_is_refused_with_the_matching_code_naming_the_field() {
    let (env, _dir, pm) = started_with_work(false).await;
    let nul = "\u{0}";
    let asked = |verb: &'static str, body: Value| {
        let env = &env;
        async move {
            let asked = match verb {
                "instance" => ask::<InstanceInfo, Value>(env, body).await,
                "runtime" => ask::<RuntimeQuery, Value>(env, body).await,
                "enable" => ask::<InstanceCall<EnableRequest>, Value>(env, body).await,
                "disable" => ask::<InstanceCall<DisableRequest>, Value>(env, body).await,
                "upgrade" => ask::<InstanceCall<UpgradeRequest>, Value>(env, body).await,
                "configure" => ask::<InstanceCall<ConfigureRequest>, Value>(env, body).await,
                "instances" => ask::<InstanceFilter, Value>(env, body).await,
                "audit" => ask::<AuditQuery, Value>(env, body).await,
                other => panic!("no request type for plugins.{other}"),
            };
            asked.unwrap_err()
        }
    };
    for verb in ["instance", "runtime", "enable", "disable", "upgrade"] {
        let e = asked(
            verb,
            json!({ "instance_id": nul, "accept_permissions": [] }),
        )
        .await;
        assert_eq!(e.error, ErrorCode::NotFound, "plugins.{verb}: {e:?}");
    }
    let e = asked("instances", json!({ "state": nul })).await;
    assert_eq!(e.error, ErrorCode::BadRequest);
    assert!(e.message.contains("`state`"), "{e:?}");
    let e = asked("instances", json!({ "plugin_type": nul })).await;
    assert!(e.message.contains("`plugin_type`"), "{e:?}");
    let e = asked("audit", json!({ "instance_id": nul })).await;
    assert!(e.message.contains("`instance_id`"), "{e:?}");
    let e = asked("enable", json!({ "instance_id": "work", "actor": nul })).await;
    assert_eq!(e.error, ErrorCode::BadRequest);
    assert!(e.message.contains("`claimed_actor`"), "{e:?}");
    let e = asked(
        "configure",
        json!({ "instance_id": "work", "config": { "server": nul } }),
    )
    .await;
    assert_eq!(e.error, ErrorCode::InvalidConfig, "{e:?}");
    assert_eq!(e.problems[0].path, "/server", "{e:?}");
    pm.stop().await;
}

#[tokio::test]
async fn a_failure_report_whose_error_holds_a_nul_is_kept() {
    let (env, _dir, pm) = started_with_work(true).await;
    let view: Value = ask::<HeartbeatRequest, _>(
        &env,
        json!({ "instance_id": "work", "error": "the provider said \u{0}no" }),
    )
    .await
    .unwrap();
    assert_eq!(view["state"], "failed");
    assert_eq!(view["last_error"], "the provider said \u{FFFD}no");
    pm.stop().await;
}

#[tokio::test]
async fn a_database_failure_is_logged_not_shown_to_the_caller() {
    let (env, _dir, pm) = started_with_work(false).await;
    // Break the registry under the running service.
    sqlx::query("ALTER TABLE plugin_audit RENAME TO plugin_audit_gone")
        .execute(&env.pool().await)
        .await
        .unwrap();
    let e = ask::<AuditQuery, Value>(&env, json!({})).await.unwrap_err();
    assert_eq!(e.error, ErrorCode::Internal);
    assert!(!e.message.contains("plugin_audit"), "{e:?}");
    assert!(e.message.contains("log"), "{e:?}");
    let (status, reply) = Admin::new(&env, &pm)
        .call("GET", "/api/v1/audit", None)
        .await;
    assert_eq!(status, 500);
    assert!(!leaks_the_database(&reply), "{reply}");
    pm.stop().await;
}
