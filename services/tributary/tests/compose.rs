//! compose.yaml cannot run here (no Docker engine), so it is held against what it deploys:
//! the services' real configuration (every service's environment loads, with .env.example's
//! values), their ports and health routes, the NATS users of deploy/nats-server.conf, the
//! collector's receiver in deploy/otel-collector.yaml, Meilisearch, the `${VAR}`s .env.example
//! defines, the `depends_on` conditions, and which container gets which secret.
//!
//! Checked by hand as well, with docker-compose 1.29 (Debian's `docker-compose` package):
//! `cp .env.example .env && docker-compose --profile cli config -q; rm .env` must print nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use clap::Parser;
use serde_norway::Value;
use tributary::provision_cli::{DbAction, DbArgs, MeiliAction, MeiliArgs, NatsAction, NatsArgs};
use tributary::Command;
use tributary_kit::config::config_section;
use tributary_kit::{Config, ConfigSources};
use tributary_proto::ServiceName;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A YAML file with its merge keys (`<<: *anchor`) applied, as compose applies them.
fn yaml(path: &str) -> Value {
    let mut value: Value = serde_norway::from_str(&repo_file(path))
        .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    value.apply_merge().unwrap();
    value
}

fn compose() -> Value {
    yaml("compose.yaml")
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .expect("compose.yaml has services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

/// `KEY=value` lines of .env.example.
fn env_example() -> BTreeMap<String, String> {
    repo_file(".env.example")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!(".env.example: `{l}` is not KEY=value"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The names of the `${NAME}`, `${NAME:?…}`, `${NAME:-…}` in `text`.
fn vars_in(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.split(['}', ':', '-', '?'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// `text` with its `${…}` replaced by .env.example's values, as compose does with a .env
/// copied from it.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("an unclosed ${") + start;
        let name = vars_in(&rest[start..=end]).remove(0);
        out.push_str(vars.get(&name).unwrap_or_else(|| {
            panic!("compose.yaml uses ${{{name}}}, which .env.example does not define")
        }));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A service's environment as written (before interpolation).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other).unwrap().trim().to_owned(),
                };
                (k.as_str().unwrap().to_owned(), value)
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("write environment as a mapping, not {other:?}"),
    }
}

/// The configuration a service container starts with.
fn config_of(name: &str, service: &Value) -> Config {
    let vars = env_example();
    let env: HashMap<String, String> = environment(service)
        .into_iter()
        .filter(|(k, _)| k.starts_with("TRIBUTARY__"))
        .map(|(k, v)| (k, interpolate(&v, &vars)))
        .collect();
    Config::load(&ConfigSources {
        file: None,
        env: Some(env),
    })
    .unwrap_or_else(|e| panic!("{name}'s environment in compose.yaml does not load: {e}"))
}

/// The services that run Tributary on NATS (the five and the command line); db-provision
/// runs it too, against PostgreSQL only.
fn tributary_services(compose: &Value) -> BTreeMap<String, Value> {
    services(compose)
        .into_iter()
        .filter(|(_, s)| environment(s).contains_key("TRIBUTARY__NATS__URL"))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `tributary` command line a service's `command` runs, parsed as the real binary parses
/// it: a command the CLI does not have fails here, not in the deployment.
fn tributary_command(name: &str, service: &Value) -> tributary::Command {
    let args = strings(&service["command"]);
    assert_eq!(
        args.first().map(String::as_str),
        Some("tributary"),
        "{name} does not run the tributary command line: {args:?}"
    );
    tributary::Cli::try_parse_from(&args)
        .unwrap_or_else(|e| {
            panic!(
                "{name}: `{}` is not a tributary command: {e}",
                args.join(" ")
            )
        })
        .command
}

/// The users of deploy/nats-server.conf, each with the variable its password comes from.
fn nats_users() -> BTreeMap<String, String> {
    let conf = repo_file("deploy/nats-server.conf");
    let mut users = BTreeMap::new();
    let mut user = None;
    for line in conf.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("user: ") {
            user = Some(name.trim_matches('"').to_owned());
        } else if let Some(var) = line.strip_prefix("password: $") {
            let name = user.take().expect("a password before its user");
            users.insert(name, var.to_owned());
        }
    }
    users
}

/// The port of a URL such as `http://collector:4318` or an address such as `0.0.0.0:4318`.
fn host_and_port(url: &str) -> (String, u16) {
    let address = url.split("://").last().unwrap().split('/').next().unwrap();
    let (host, port) = address.rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap())
}

#[test]
fn every_variable_compose_uses_is_defined_in_env_example_and_env_is_not_committed() {
    let text = repo_file("compose.yaml");
    let defined = env_example();
    let used: BTreeSet<String> = vars_in(&text).into_iter().collect();
    assert!(used.len() > 10, "found only {used:?}");
    for var in &used {
        assert!(
            defined.contains_key(var),
            "compose.yaml uses ${{{var}}}, which .env.example does not define"
        );
    }
    for var in defined.keys() {
        assert!(
            used.contains(var),
            ".env.example defines {var}, which compose.yaml does not use"
        );
    }
    for ignore in [".gitignore", ".dockerignore"] {
        assert!(
            repo_file(ignore).lines().any(|l| l.trim() == ".env"),
            "{ignore} does not list .env"
        );
    }
    // An env_file would give every secret in it to the container.
    for (name, service) in services(&compose()) {
        assert!(
            service.get("env_file").is_none(),
            "{name} reads an env_file; give it only the variables it uses"
        );
    }
}

#[test]
fn each_service_environment_loads_as_its_real_configuration() {
    let compose = compose();
    let services = tributary_services(&compose);
    for name in ServiceName::ALL {
        assert!(
            services.contains_key(name.as_str()),
            "no {name} in compose.yaml"
        );
    }
    for (name, service) in &services {
        config_of(name, service);
    }
}

#[test]
fn each_service_health_check_probes_its_configured_port_and_readyz() {
    let compose = compose();
    let services = services(&compose);
    for name in ServiceName::ALL {
        let service = &services[name.as_str()];
        assert_eq!(
            strings(&service["command"]),
            vec![format!("tributary-{name}")],
            "{name}: wrong command"
        );
        let config = config_of(name.as_str(), service);
        let addr_key = format!(
            "TRIBUTARY__{}__HTTP_ADDR",
            config_section(name).to_uppercase()
        );
        assert!(
            environment(service).contains_key(&addr_key),
            "{name} does not set {addr_key}"
        );
        let port = config.http_addr_of(name).port();
        assert!(
            config.http_addr_of(name).ip().is_unspecified(),
            "{name} listens on {} only: health checks and other containers cannot reach it",
            config.http_addr_of(name)
        );
        let probe = strings(&service["healthcheck"]["test"]).join(" ");
        assert!(
            probe.contains(&format!("http://127.0.0.1:{port}/readyz")),
            "{name}: health check `{probe}` does not probe /readyz on port {port}"
        );
        for published in strings(&service["ports"]) {
            assert!(
                published.ends_with(&format!(":{port}")),
                "{name} publishes {published}, not its port {port}"
            );
        }
    }
}

#[test]
fn each_service_connects_as_its_own_nats_user_with_its_password_variable() {
    let compose = compose();
    let services = services(&compose);
    let users = nats_users();
    assert!(
        users.len() >= 7,
        "deploy/nats-server.conf has only {users:?}"
    );
    let nats = &services["nats"];
    let nats_env = environment(nats);
    let defined = env_example();
    // The server reads deploy/nats-server.conf, where the services' users are, and keeps its
    // streams on its volume.
    let command = strings(&nats["command"]);
    let conf_path = &command[command.iter().position(|a| a == "-c").unwrap() + 1];
    let volumes = strings(&nats["volumes"]);
    assert!(
        volumes.contains(&format!("./deploy/nats-server.conf:{conf_path}:ro")),
        "nats does not mount deploy/nats-server.conf at {conf_path}: {volumes:?}"
    );
    let store = &nats_env["NATS_STORE_DIR"];
    assert!(
        volumes.iter().any(|v| v.ends_with(&format!(":{store}"))),
        "NATS_STORE_DIR {store} is not on a volume: {volumes:?}"
    );
    for var in users.values() {
        assert!(
            nats_env
                .get(var)
                .is_some_and(|v| vars_in(v) == vec![var.clone()]),
            "nats is not given {var} from .env"
        );
        let password = &defined[var];
        assert!(
            password.starts_with(|c: char| c.is_ascii_alphabetic())
                && password.chars().all(|c| c.is_ascii_alphanumeric()),
            ".env.example: {var} must be a letter followed by letters and digits (nats-server reads it as a configuration value)"
        );
    }

    let mut taken = BTreeSet::new();
    for (name, service) in tributary_services(&compose) {
        let env = environment(&service);
        let user = env
            .get("TRIBUTARY__NATS__USER")
            .unwrap_or_else(|| panic!("{name} sets no TRIBUTARY__NATS__USER"));
        let var = users.get(user).unwrap_or_else(|| {
            panic!("{name} connects as NATS user `{user}`, which deploy/nats-server.conf does not define")
        });
        let password = env
            .get("TRIBUTARY__NATS__PASSWORD")
            .unwrap_or_else(|| panic!("{name} sets no TRIBUTARY__NATS__PASSWORD"));
        assert_eq!(
            vars_in(password),
            vec![var.clone()],
            "{name}: the password of `{user}` comes from {var}"
        );
        assert!(
            taken.insert(user.clone()),
            "two services connect as `{user}`"
        );
        if let Some(service) = ServiceName::ALL.iter().find(|s| s.as_str() == name) {
            assert_eq!(user, service.as_str(), "{name} connects as another's user");
        }
    }
}

#[test]
fn streams_and_consumers_are_provisioned_before_any_service_starts() {
    // Issue 27, finding 2: no service may create or change a stream or a consumer, so one
    // step does, as the NATS user `provision`, to completion before the five start.
    let compose = compose();
    let services = services(&compose);
    let provision = services
        .get("nats-provision")
        .expect("compose.yaml has a nats-provision service");
    assert!(matches!(
        tributary_command("nats-provision", provision),
        Command::Nats(NatsArgs {
            action: NatsAction::Provision
        })
    ));
    assert_eq!(provision["restart"].as_str(), Some("no"), "it runs once");
    assert_eq!(
        environment(provision)["TRIBUTARY__NATS__USER"],
        tributary_kit::nats::PROVISION_USER
    );
    assert!(nats_users().contains_key(tributary_kit::nats::PROVISION_USER));
    assert_eq!(
        provision["depends_on"]["nats"]["condition"].as_str(),
        Some("service_healthy")
    );
    for name in ServiceName::ALL {
        let name = name.as_str();
        assert_eq!(
            services[name]["depends_on"]["nats-provision"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} may start before the streams and consumers are provisioned"
        );
    }
}

#[test]
fn search_uses_the_meilisearch_service() {
    let compose = compose();
    let services = services(&compose);
    let search = config_of("search", &services["search"]).search;
    let (host, port) = host_and_port(&search.meilisearch_url);
    let meilisearch = services
        .get(&host)
        .unwrap_or_else(|| panic!("search.meilisearch_url names {host}, not a service"));
    let probe = strings(&meilisearch["healthcheck"]["test"]).join(" ");
    assert!(
        probe.contains(&format!("http://127.0.0.1:{port}/health")),
        "search reaches Meilisearch on port {port}, its health check `{probe}` probes another"
    );
    // The master key goes to meili-provision, which writes the search service's own key
    // where search reads it; search gets no inline key at all.
    let search_env = environment(&services["search"]);
    assert!(
        !search_env.contains_key("TRIBUTARY__SEARCH__MEILISEARCH_API_KEY"),
        "search is given an inline Meilisearch key: it reads its own from meili-provision's file"
    );
    let provision = &services["meili-provision"];
    assert!(matches!(
        tributary_command("meili-provision", provision),
        Command::Meili(MeiliArgs {
            action: MeiliAction::Provision
        })
    ));
    let provisioned = config_of("meili-provision", provision).search;
    let key = &environment(provision)["TRIBUTARY__SEARCH__MEILISEARCH_API_KEY"];
    assert_eq!(
        vars_in(key),
        vars_in(&environment(meilisearch)["MEILI_MASTER_KEY"]),
        "meili-provision runs with Meilisearch's master key"
    );
    assert_eq!(provisioned.meilisearch_url, search.meilisearch_url);
    assert_eq!(provisioned.index_name, search.index_name);
    assert_eq!(
        provisioned.meilisearch_api_key_file, search.meilisearch_api_key_file,
        "search reads its key where meili-provision writes it"
    );
    let file = search.meilisearch_api_key_file.display().to_string();
    let mounted = |service: &Value, read_only: bool| {
        strings(&service["volumes"]).iter().any(|v| {
            let mut parts = v.split(':');
            let (volume, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            volume == "meilisearch-key"
                && file.starts_with(&format!("{path}/"))
                && (parts.next() == Some("ro")) == read_only
        })
    };
    assert!(
        mounted(provision, false),
        "meili-provision writes {file} on the meilisearch-key volume"
    );
    assert!(
        mounted(&services["search"], true),
        "search reads {file} from the same volume, read-only"
    );
    assert_eq!(
        services["search"]["depends_on"]["meili-provision"]["condition"].as_str(),
        Some("service_completed_successfully"),
        "search starts once its key is made"
    );
}

#[test]
fn every_service_sends_its_traces_to_the_collector_receiver() {
    let compose = compose();
    let services = services(&compose);
    let collector_config = yaml("deploy/otel-collector.yaml");
    let receiver = collector_config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
        .as_str()
        .expect("deploy/otel-collector.yaml receives OTLP over HTTP");
    let (_, receiver_port) = host_and_port(receiver);
    let mut collectors = BTreeSet::new();
    for name in ServiceName::ALL {
        let endpoint = config_of(name.as_str(), &services[name.as_str()])
            .telemetry
            .otlp_endpoint;
        assert!(!endpoint.is_empty(), "{name} exports no traces");
        let (host, port) = host_and_port(&endpoint);
        assert_eq!(
            port, receiver_port,
            "{name} sends traces to port {port}; the collector receives OTLP/HTTP on {receiver_port}"
        );
        collectors.insert(host);
    }
    for host in collectors {
        let collector = services
            .get(&host)
            .unwrap_or_else(|| panic!("traces go to {host}, which is not a service"));
        let config_arg = strings(&collector["command"])
            .into_iter()
            .find_map(|a| a.strip_prefix("--config=").map(str::to_owned))
            .expect("the collector is given its configuration");
        assert!(
            strings(&collector["volumes"])
                .contains(&format!("./deploy/otel-collector.yaml:{config_arg}:ro")),
            "the collector does not read deploy/otel-collector.yaml"
        );
    }
    // And the collector hands them to the trace viewer.
    let exporter = collector_config["exporters"]["otlp/jaeger"]["endpoint"]
        .as_str()
        .unwrap();
    let (viewer, _) = host_and_port(exporter);
    assert!(services.contains_key(&viewer), "no {viewer} service");
}

#[test]
fn each_depends_on_names_a_service_with_a_health_check_when_it_waits_for_health() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in &services {
        let Some(depends) = service.get("depends_on") else {
            continue;
        };
        let depends = depends
            .as_mapping()
            .unwrap_or_else(|| panic!("{name}: write depends_on with conditions"));
        for (target, condition) in depends {
            let target = target.as_str().unwrap();
            let target_service = services
                .get(target)
                .unwrap_or_else(|| panic!("{name} depends on {target}, which is not a service"));
            match condition["condition"].as_str() {
                Some("service_healthy") => assert!(
                    target_service.get("healthcheck").is_some(),
                    "{name} waits for {target} to be healthy, which has no health check"
                ),
                Some("service_started") | Some("service_completed_successfully") => {}
                other => panic!("{name} -> {target}: condition {other:?}"),
            }
        }
    }
    let healthy = |name: &str, target: &str| {
        services[name]["depends_on"][target]["condition"].as_str() == Some("service_healthy")
    };
    for name in ServiceName::ALL {
        let name = name.as_str();
        assert!(healthy(name, "nats"), "{name} does not wait for NATS");
        assert!(
            healthy(name, "postgres"),
            "{name} does not wait for PostgreSQL"
        );
    }
    assert!(healthy("search", "meilisearch"));
    assert!(healthy("connector", "plugin-manager"));
    assert!(healthy("channel", "plugin-manager"));
}

#[test]
fn each_secret_goes_only_to_the_containers_that_read_it() {
    let compose = compose();
    let five: Vec<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
    // Who reads what: the plugin manager its key and admin token (plugin_manager.*), the
    // search service its API token (search.*), meili-provision Meilisearch's master key (to
    // make the search service's own key), each service its own
    // PostgreSQL role's password (search for `tributary search reindex`) and NATS password;
    // db-provision the owner's and every service role's, which it sets; nobody but postgres
    // the superuser's.
    let mut readers: BTreeMap<String, Vec<&str>> = BTreeMap::from([
        ("PLUGIN_MANAGER_MASTER_KEY".into(), vec!["plugin-manager"]),
        ("PLUGIN_MANAGER_ADMIN_TOKEN".into(), vec!["plugin-manager"]),
        ("SEARCH_API_TOKEN".into(), vec!["search"]),
        (
            "MEILI_MASTER_KEY".into(),
            vec!["meilisearch", "meili-provision"],
        ),
        ("CHANNEL_PUBLIC_BASE_URL".into(), vec!["channel"]),
        ("POSTGRES_PASSWORD".into(), vec!["postgres"]),
        (
            "POSTGRES_OWNER_PASSWORD".into(),
            vec!["postgres", "db-provision"],
        ),
        ("NATS_ADMIN_PASSWORD".into(), vec!["nats", "cli"]),
        ("NATS_SUBSCRIBER_PASSWORD".into(), vec!["nats"]),
        (
            "NATS_PROVISION_PASSWORD".into(),
            vec!["nats", "nats-provision"],
        ),
    ]);
    for service in &five {
        let var = service.to_uppercase().replace('-', "_");
        readers.insert(format!("NATS_{var}_PASSWORD"), vec!["nats", service]);
        readers.insert(
            format!("POSTGRES_{var}_PASSWORD"),
            vec!["db-provision", service],
        );
    }
    for var in env_example().keys() {
        assert!(
            readers.contains_key(var),
            "{var}: say which containers may read it"
        );
    }
    for (name, service) in services(&compose) {
        for (key, value) in environment(&service) {
            for var in vars_in(&value) {
                assert!(
                    readers[&var].contains(&name.as_str()),
                    "{name} is given {var} (as {key}), which it does not read"
                );
            }
        }
    }
}

/// The owner role deploy/postgres/init-owner.sh makes on the postgres volume's first start.
fn owner_made_by_init_script() -> String {
    let script = repo_file("deploy/postgres/init-owner.sh");
    let line = script
        .lines()
        .find(|l| l.starts_with("CREATE ROLE "))
        .expect("deploy/postgres/init-owner.sh creates a role");
    assert!(
        line.contains("CREATEROLE") && !line.contains("SUPERUSER") && !line.contains("CREATEDB"),
        "the owner may create roles and nothing more: {line}"
    );
    line.split_whitespace().nth(2).unwrap().to_owned()
}

#[test]
fn postgres_makes_the_owner_and_db_provision_migrates_as_it_before_any_service_starts() {
    let compose = compose();
    let services = services(&compose);
    let postgres = &services["postgres"];
    let postgres_env = environment(postgres);
    let owner = owner_made_by_init_script();
    assert_ne!(
        postgres_env["POSTGRES_USER"], owner,
        "the owner must not be the container's superuser"
    );
    assert!(
        strings(&postgres["volumes"]).iter().any(|v| v
            .starts_with("./deploy/postgres/init-owner.sh:/docker-entrypoint-initdb.d/")
            && v.ends_with(".sh:ro")),
        "postgres does not run deploy/postgres/init-owner.sh on first start"
    );
    let provision = &services["db-provision"];
    assert!(matches!(
        tributary_command("db-provision", provision),
        Command::Db(DbArgs {
            action: DbAction::Provision
        })
    ));
    assert_eq!(provision["restart"].as_str(), Some("no"), "a one-shot step");
    let config = config_of("db-provision", provision);
    assert!(
        config.database.migrate,
        "db-provision is the one that migrates"
    );
    assert_eq!(
        config.database.user, owner,
        "db-provision runs as the owner"
    );
    assert_eq!(
        vars_in(&environment(provision)["TRIBUTARY__DATABASE__PASSWORD"]),
        vars_in(&postgres_env["POSTGRES_OWNER_PASSWORD"]),
        "db-provision's password is not the one init-owner.sh gives the owner"
    );
    assert_eq!(
        provision["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    for name in ServiceName::ALL {
        assert_eq!(
            services[name.as_str()]["depends_on"]["db-provision"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} does not wait for db-provision to have migrated and granted"
        );
    }
}

#[test]
fn each_service_connects_to_postgresql_as_the_role_db_provision_makes_for_it() {
    let compose = compose();
    let services = services(&compose);
    let provision = &services["db-provision"];
    let provision_env = environment(provision);
    let provision_database = config_of("db-provision", provision).database;
    let roles = provision_database.roles.clone();
    let owner = owner_made_by_init_script();
    let mut taken = BTreeSet::new();
    for name in ServiceName::ALL {
        let service = &services[name.as_str()];
        let database = config_of(name.as_str(), service).database;
        let role = roles.of(name);
        assert_eq!(
            database.user, role.user,
            "{name} connects as `{}`, db-provision makes `{}` for it",
            database.user, role.user
        );
        assert_ne!(database.user, owner, "{name} connects as the owner");
        assert!(
            taken.insert(database.user.clone()),
            "two services share `{}`",
            database.user
        );
        assert!(
            !database.migrate,
            "{name} would migrate, which its role may not: set TRIBUTARY__DATABASE__MIGRATE false"
        );
        assert_eq!(
            (database.ssl_mode, &database.ssl_root_cert),
            (
                provision_database.ssl_mode,
                &provision_database.ssl_root_cert
            ),
            "{name} reaches PostgreSQL with other TLS settings than db-provision"
        );
        let section = config_section(name).to_uppercase();
        let password = &environment(service)["TRIBUTARY__DATABASE__PASSWORD"];
        assert_eq!(
            vars_in(password),
            vars_in(&provision_env[&format!("TRIBUTARY__DATABASE__ROLES__{section}__PASSWORD")]),
            "{name}'s password is not the one db-provision sets on its role"
        );
    }
}
