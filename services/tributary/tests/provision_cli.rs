//! The deployment's three provisioning steps as compose runs them: the real `tributary`
//! binary's `db provision`, `nats provision` and `meili provision`, on this test's database,
//! streams and a mock Meilisearch.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../search/tests/meili_mock/mod.rs"]
mod meili_mock;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use meili_mock::MockMeili;
use tributary_kit::config::config_section;
use tributary_kit::testing::{TestEnv, TestRoles, TEST_STREAM_BYTES};
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::ServiceName;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `tributary <args>` with nothing of the caller's environment but the PATH and `vars`.
fn tributary(args: &[&str], vars: &[(String, String)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn var(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

#[tokio::test]
async fn db_provision_migrates_and_creates_each_services_role_then_updates_them() {
    let env = TestEnv::new().await;
    // The role names TestRoles gives this test, so that it drops them afterwards.
    let mut vars = vec![var("TRIBUTARY__DATABASE__NAME", &env.database)];
    for service in ServiceName::ALL {
        let section = config_section(service);
        vars.push(var(
            &format!(
                "TRIBUTARY__DATABASE__ROLES__{}__USER",
                section.to_uppercase()
            ),
            format!("{}_{section}", env.prefix),
        ));
    }

    let first = tributary(&["db", "provision"], &vars);
    let again = tributary(&["db", "provision"], &vars);
    let _roles = TestRoles::provision(&env).await;

    assert_eq!(first.code, 0, "{}", first.stderr);
    let latest = tributary_kit::db::latest_migration();
    assert!(
        first.stdout.starts_with(&format!(
            "Database {} is at migration {latest};",
            env.database
        )),
        "{}",
        first.stdout
    );
    for service in ServiceName::ALL {
        let role = format!("{}_{}", env.prefix, config_section(service));
        assert!(
            first
                .stdout
                .contains(&format!("  {service}: {role} (created)")),
            "{}",
            first.stdout
        );
        assert!(
            again
                .stdout
                .contains(&format!("  {service}: {role} (updated)")),
            "{}",
            again.stdout
        );
    }
    // The tests' server runs it as the superuser `postgres`, more than the step needs.
    assert!(
        first
            .stderr
            .contains("warning: provisioning ran as postgres, a superuser"),
        "{}",
        first.stderr
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[tokio::test]
async fn db_provision_that_cannot_reach_postgres_says_where_it_looked() {
    let run = tributary(
        &["db", "provision"],
        &[
            var("TRIBUTARY__DATABASE__HOST", "127.0.0.1"),
            // Nothing listens on port 1.
            var("TRIBUTARY__DATABASE__PORT", "1"),
            var("TRIBUTARY__DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: cannot reach PostgreSQL at 127.0.0.1:1 as postgres"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn nats_provision_makes_every_stream_and_consumer_with_the_config_file_given() {
    let env = TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tributary.toml");
    let streams = [
        "connector_items",
        "data_events",
        "plugin_events",
        "connector_events",
        "communication",
        "channel_inbound",
        "dead_letters",
        "timeline",
    ]
    .map(|s| format!("{s} = {TEST_STREAM_BYTES}\n"))
    .concat();
    std::fs::write(
        &file,
        format!(
            "[nats.max_bytes]\n{streams}\n[[nats.consumers]]\nname = \"crm-sync\"\nstream = \"data_events\"\n"
        ),
    )
    .unwrap();

    let run = tributary(
        &["nats", "provision", "--config", file.to_str().unwrap()],
        &[var("TRIBUTARY__NATS__SUBJECT_PREFIX", &env.prefix)],
    );

    assert_eq!(run.code, 0, "{}", run.stderr);
    let subjects = env.subjects();
    assert!(
        run.stdout
            .starts_with(&format!("NATS at {} provisioned:", env.config.nats.url)),
        "{}",
        run.stdout
    );
    let js = async_nats::jetstream::new(env.nats().await);
    for key in StreamKey::ALL {
        let name = key.name(&subjects);
        assert!(
            run.stdout.contains(&format!("  stream {name}\n")),
            "{}",
            run.stdout
        );
        let mut stream = js.get_stream(&name).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.max_bytes, TEST_STREAM_BYTES as i64, "{name}");
    }
    let data_events = StreamKey::DataEvents.name(&subjects);
    let mut consumers: Vec<(String, String)> = ConsumerKey::ALL
        .into_iter()
        .map(|key| (key.stream().name(&subjects), key.durable_name().to_owned()))
        .collect();
    consumers.push((data_events, "crm-sync".to_owned()));
    for (stream, consumer) in consumers {
        assert!(
            run.stdout
                .contains(&format!("  consumer {stream}/{consumer}\n")),
            "{}",
            run.stdout
        );
        js.get_stream(&stream)
            .await
            .unwrap()
            .consumer_info(&consumer)
            .await
            .unwrap_or_else(|e| panic!("{stream}/{consumer} was not made: {e}"));
    }
}

#[tokio::test]
async fn meili_provision_writes_the_search_services_own_key_for_its_owner_alone() {
    const MASTER: &str = "the-master-key-of-this-meilisearch";
    let mock = MockMeili::start_with_master(MASTER).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("search");
    let vars = [
        var("TRIBUTARY__SEARCH__MEILISEARCH_URL", &mock.url),
        var("TRIBUTARY__SEARCH__MEILISEARCH_API_KEY", MASTER),
        var(
            "TRIBUTARY__SEARCH__MEILISEARCH_API_KEY_FILE",
            file.to_str().unwrap(),
        ),
        var("TRIBUTARY__SEARCH__INDEX_NAME", "people"),
    ];

    let first = tokio::task::spawn_blocking({
        let vars = vars.clone();
        move || tributary(&["meili", "provision"], &vars)
    })
    .await
    .unwrap();

    assert_eq!(first.code, 0, "{}", first.stderr);
    let written = std::fs::read_to_string(&file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is readable by others");
    let keys = mock.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(written.trim(), keys[0]["key"].as_str().unwrap());
    assert_ne!(written.trim(), MASTER);
    assert_eq!(
        keys[0]["indexes"],
        serde_json::json!(["people", "people_rebuild"])
    );
    assert!(
        first.stdout.contains("(created)") && first.stdout.contains(file.to_str().unwrap()),
        "{}",
        first.stdout
    );

    let again = tokio::task::spawn_blocking(move || tributary(&["meili", "provision"], &vars))
        .await
        .unwrap();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("(unchanged)"), "{}", again.stdout);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    assert_eq!(mock.keys().len(), 1);
}

#[test]
fn meili_provision_names_each_setting_it_lacks() {
    let url = var("TRIBUTARY__SEARCH__MEILISEARCH_URL", "http://127.0.0.1:1");
    let key = var("TRIBUTARY__SEARCH__MEILISEARCH_API_KEY", "master");
    for (vars, missing) in [
        (vec![], "`search.meilisearch_url` is not set"),
        (vec![url.clone()], "`search.meilisearch_api_key` is not set"),
        (
            vec![url, key],
            "`search.meilisearch_api_key_file` is not set",
        ),
    ] {
        let run = tributary(&["meili", "provision"], &vars);
        assert_eq!(run.code, 1, "{missing}");
        assert!(
            run.stderr.starts_with(&format!("error: {missing}")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn each_step_explains_itself_in_its_help() {
    for (command, says) in [
        ("db", "deploy/postgres/grants.sql"),
        ("nats", "[[nats.consumers]]"),
        ("meili", "search.meilisearch_api_key_file"),
    ] {
        let run = tributary(&[command, "provision", "--help"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains(says) && run.stdout.contains("--config <CONFIG>"),
            "{command}: {}",
            run.stdout
        );
    }
}
