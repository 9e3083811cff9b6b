//! `tributary check-config` runs every check the services run at start-up: what only a
//! service's `build` used to refuse is refused here too, naming the key, and the keys
//! `tributary up` makes are assumed, not written.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

/// `tributary check-config` with nothing of this process's environment but the PATH, a data
/// directory of its own and `vars`: its exit code, standard output and standard error.
fn check_config(data_dir: &std::path::Path, vars: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("check-config")
        .current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TRIBUTARY__DATA_DIR", data_dir.join("data"))
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_defaults_are_valid_and_the_keys_up_makes_are_named_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check_config(dir.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("configuration is valid"), "{stdout}");
    for setting in [
        "plugin_manager.master_key",
        "plugin_manager.admin_token",
        "search.api_token",
    ] {
        assert!(
            stdout.contains(&format!("{setting} is not set: `tributary up` makes one")),
            "{stdout}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "check-config writes nothing"
    );
}

#[test]
fn what_a_service_refuses_at_start_up_check_config_refuses_naming_the_key() {
    for (var, value, key) in [
        (
            "TRIBUTARY__CONNECTOR__DEFAULT_SCHEDULE",
            "fortnightly",
            "`connector.default_schedule`",
        ),
        (
            "TRIBUTARY__ETL__DEFAULT_PHONE_REGION",
            "XX",
            "`etl.default_phone_region`",
        ),
        (
            "TRIBUTARY__SEARCH__API_TOKEN",
            "0123456789",
            "`search.api_token`",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (code, stdout, stderr) = check_config(dir.path(), &[(var, value)]);
        assert_eq!(code, 1, "{var}={value}: {stdout}");
        assert!(stderr.contains(key), "{var}={value}: {stderr}");
        assert!(!stdout.contains("configuration is valid"), "{stdout}");
    }
}

#[test]
fn every_problem_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check_config(
        dir.path(),
        &[
            ("TRIBUTARY__CONNECTOR__DEFAULT_SCHEDULE", "fortnightly"),
            ("TRIBUTARY__ETL__DEFAULT_PHONE_REGION", "XX"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("connector.default_schedule")
            && stderr.contains("etl.default_phone_region"),
        "{stderr}"
    );
}
