//! compose.yaml cannot run here (no Docker engine), so it is held against the services' real
//! configuration: every TRIBUTARY__ variable it sets must load, and every health check must
//! probe the port the service is configured to listen on.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use tributary_kit::config::config_section;
use tributary_kit::{Config, ConfigSources};
use tributary_proto::ServiceName;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `KEY: value` and `KEY=value` lines whose key starts with TRIBUTARY__.
fn tributary_vars(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (key, value) = line.split_once(": ").or_else(|| line.split_once('='))?;
            key.starts_with("TRIBUTARY__")
                .then(|| (key.to_owned(), value.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

#[test]
fn every_variable_compose_sets_is_a_real_configuration_key() {
    let compose = repo_file("compose.yaml");
    let mut vars = tributary_vars(&compose);
    vars.extend(tributary_vars(&repo_file(".env.example")));
    assert!(vars.len() > 10, "found only {vars:?}");
    for (key, value) in vars {
        let env = HashMap::from([(key.clone(), value.clone())]);
        Config::load(&ConfigSources {
            file: None,
            env: Some(env),
        })
        .unwrap_or_else(|e| panic!("compose sets {key}={value}, which does not load: {e}"));
    }
}

#[test]
fn each_service_health_check_probes_its_configured_port_and_readyz() {
    let compose = repo_file("compose.yaml");
    for name in ServiceName::ALL {
        let service = name.as_str();
        let section = config_section(name).to_uppercase();
        let start = compose
            .find(&format!("\n  {service}:\n"))
            .unwrap_or_else(|| panic!("no {service} in compose.yaml"));
        let block: String = compose[start + 1..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    ") || l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let addr_key = format!("TRIBUTARY__{section}__HTTP_ADDR");
        let (_, addr) = tributary_vars(&block)
            .into_iter()
            .find(|(k, _)| *k == addr_key)
            .unwrap_or_else(|| panic!("{service} does not set {addr_key}"));
        let config = Config::load(&ConfigSources {
            file: None,
            env: Some(HashMap::from([(addr_key.clone(), addr.clone())])),
        })
        .unwrap();
        let port = config.http_addr_of(name).port();
        assert!(
            block.contains(&format!("http://127.0.0.1:{port}/readyz")),
            "{service}: health check does not probe /readyz on port {port}"
        );
        assert!(
            block.contains(&format!("command: [\"tributary-{service}\"]")),
            "{service}: wrong command"
        );
    }
}
