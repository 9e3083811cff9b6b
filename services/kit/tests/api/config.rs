use std::collections::HashMap;

use secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;
use tributary_kit::config::SslMode;
use tributary_kit::{Config, ConfigSources};

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn file_with(contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tributary-config-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn defaults_then_file_then_environment_each_override_the_one_before() {
    // The file overrides two defaults; the environment overrides one of those again.
    let file = file_with("[nats]\nurl = \"nats://file-host:4222\"\n\n[database]\nname = \"from_file\"\nport = 6543\n");
    let config = Config::load(&ConfigSources {
        file: Some(file.clone()),
        env: env(&[
            ("TRIBUTARY__DATABASE__NAME", "from_env"),
            ("TRIBUTARY__ETL__HTTP_ADDR", "0.0.0.0:9999"),
        ]),
    })
    .unwrap();
    std::fs::remove_file(file).unwrap();

    assert_eq!(
        config.nats.url, "nats://file-host:4222",
        "file beats default"
    );
    assert_eq!(config.database.port, 6543, "file beats default");
    assert_eq!(config.database.name, "from_env", "environment beats file");
    assert_eq!(
        config.etl.http_addr.port(),
        9999,
        "environment beats default"
    );
    assert_eq!(
        config.database.host, "127.0.0.1",
        "default stays where nothing overrides it"
    );
}

#[test]
fn nats_url_takes_the_servers_of_a_cluster_separated_by_commas() {
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[
            (
                "TRIBUTARY__NATS__URL",
                "nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222",
            ),
            ("TRIBUTARY__NATS__REPLICAS", "3"),
        ]),
    })
    .unwrap();
    assert_eq!(
        tributary_kit::nats::server_urls(&config.nats.url),
        [
            "nats://10.0.0.1:4222",
            "nats://10.0.0.2:4222",
            "nats://10.0.0.3:4222"
        ]
    );
    assert_eq!(config.nats.replicas, 3);
    assert_eq!(Config::defaults().unwrap().nats.replicas, 1);
}

#[test]
fn the_built_in_defaults_are_valid_on_their_own() {
    let config = Config::defaults().unwrap();
    assert_eq!(config.nats.url, "nats://127.0.0.1:4222");
    assert_eq!(config.database.port, 5432);
    assert!(config.nats.subject_prefix.is_empty());
}

#[test]
fn plugins_reach_no_private_address_and_read_32_mib_unless_the_operator_says_otherwise() {
    let config = Config::defaults().unwrap();
    assert!(!config.plugins.allow_private_network);
    assert_eq!(config.plugins.max_response_bytes, 32 * 1024 * 1024);
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[
            ("TRIBUTARY__PLUGINS__ALLOW_PRIVATE_NETWORK", "true"),
            ("TRIBUTARY__PLUGINS__MAX_RESPONSE_BYTES", "1024"),
        ]),
    })
    .unwrap();
    assert!(config.plugins.allow_private_network);
    assert_eq!(config.plugins.max_response_bytes, 1024);
}

#[test]
fn each_bad_value_stops_loading_with_its_key_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("TRIBUTARY__DATABASE__PORT", "not-a-port", "database.port"),
        (
            "TRIBUTARY__PLUGINS__MAX_RESPONSE_BYTES",
            "0",
            "plugins.max_response_bytes",
        ),
        (
            "TRIBUTARY__PLUGINS__ALLOW_PRIVATE_NETWORK",
            "sometimes",
            "plugins.allow_private_network",
        ),
        ("TRIBUTARY__DATABASE__PORT", "0", "database.port"),
        ("TRIBUTARY__NATS__URL", "http://127.0.0.1:4222", "nats.url"),
        ("TRIBUTARY__NATS__URL", "::nonsense", "nats.url"),
        (
            "TRIBUTARY__NATS__URL",
            "nats://127.0.0.1:4222,http://127.0.0.1:4223",
            "nats.url",
        ),
        ("TRIBUTARY__NATS__URL", " , ", "nats.url"),
        ("TRIBUTARY__NATS__REPLICAS", "2", "nats.replicas"),
        ("TRIBUTARY__NATS__REPLICAS", "0", "nats.replicas"),
        ("TRIBUTARY__NATS__REPLICAS", "7", "nats.replicas"),
        ("TRIBUTARY__NATS__PASSWORD", "no-user", "nats.password"),
        ("TRIBUTARY__NATS__USER", "etl.admin", "nats.user"),
        ("TRIBUTARY__NATS__USER", "etl >", "nats.user"),
        (
            "TRIBUTARY__NATS__SUBJECT_PREFIX",
            "a.b",
            "nats.subject_prefix",
        ),
        (
            "TRIBUTARY__TELEMETRY__LOG_FORMAT",
            "xml",
            "telemetry.log_format",
        ),
        (
            "TRIBUTARY__TELEMETRY__OTLP_ENDPOINT",
            "collector:4318",
            "telemetry.otlp_endpoint",
        ),
        (
            "TRIBUTARY__TELEMETRY__LOG_FILTER",
            "[[[",
            "telemetry.log_filter",
        ),
        ("TRIBUTARY__ETL__HTTP_ADDR", "localhost", "etl.http_addr"),
        (
            "TRIBUTARY__DATABASE__MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        ("TRIBUTARY__NATS__URLL", "nats://x", "nats.urll"),
        (
            "TRIBUTARY__DATABASE__SSL_MODE",
            "sometimes",
            "database.ssl_mode",
        ),
        (
            "TRIBUTARY__DATABASE__SSL_MODE",
            "verify-full",
            "database.ssl_root_cert",
        ),
        (
            "TRIBUTARY__DATABASE__SSL_ROOT_CERT",
            "/etc/ssl/certs/ca-certificates.crt",
            "database.ssl_root_cert",
        ),
        (
            "TRIBUTARY__SEARCH__MEILISEARCH_URL",
            "meilisearch:7700",
            "search.meilisearch_url",
        ),
        (
            "TRIBUTARY__SEARCH__MEILISEARCH_API_KEY",
            "bad\nkey",
            "search.meilisearch_api_key",
        ),
        ("TRIBUTARY__SEARCH__INDEX_NAME", "a/b", "search.index_name"),
        ("TRIBUTARY__SEARCH__BATCH_SIZE", "0", "search.batch_size"),
        (
            "TRIBUTARY__SEARCH__EMBEDDED_WRITER_MEMORY_MB",
            "4",
            "search.embedded_writer_memory_mb",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__SLACK__CLIENT_SECRET",
            "a-secret-without-an-id",
            "oauth.providers.slack.client_secret",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__GOOGLE__TENANT",
            "common",
            "oauth.providers.google.tenant",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__MICROSOFT__TENANT",
            "common/../x",
            "oauth.providers.microsoft.tenant",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__MICROSOFT__TOKEN_URL",
            "http://login.example.com/{tenant}/token",
            "oauth.providers.microsoft.token_url",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__GITHUB__AUTHORIZATION_URL",
            "https://ghe.example.com/{org}/authorize",
            "oauth.providers.github.authorization_url",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_ID",
            "two words",
            "oauth.providers.github.client_id",
        ),
        (
            "TRIBUTARY__OAUTH__PROVIDERS__HUB-SPOT__CLIENT_ID",
            "x",
            "oauth.providers.hub-spot",
        ),
    ];
    for (var, value, key) in cases {
        let err = Config::load(&ConfigSources {
            file: None,
            env: env(&[(var, value)]),
        })
        .err()
        .unwrap_or_else(|| panic!("{var}={value} was accepted"));
        assert_eq!(err.key, *key, "{var}={value}: {err}");
        assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
    }
}

#[test]
fn a_bad_value_in_the_file_is_named_too() {
    let file = file_with("[search]\nhttp_addr = 12\n");
    let err = Config::load(&ConfigSources {
        file: Some(file.clone()),
        env: env(&[]),
    })
    .unwrap_err();
    std::fs::remove_file(file).unwrap();
    assert_eq!(err.key, "search.http_addr", "{err}");
}

#[test]
fn a_missing_config_file_is_named() {
    let err = Config::load(&ConfigSources {
        file: Some("/nonexistent/tributary.toml".into()),
        env: env(&[]),
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/tributary.toml"),
        "{err}"
    );
}

#[test]
fn the_database_password_never_shows_in_debug_output() {
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[("TRIBUTARY__DATABASE__PASSWORD", "hunter2-secret")]),
    })
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2-secret"));
}

#[test]
fn a_verifying_tls_mode_needs_a_root_certificate_file_that_exists() {
    let load = |mode: &str, root: &str| {
        Config::load(&ConfigSources {
            file: None,
            env: env(&[
                ("TRIBUTARY__DATABASE__SSL_MODE", mode),
                ("TRIBUTARY__DATABASE__SSL_ROOT_CERT", root),
            ]),
        })
    };
    let missing = std::env::temp_dir().join(format!("no-such-ca-{}.pem", uuid::Uuid::new_v4()));
    let missing = missing.display().to_string();
    for mode in ["verify-ca", "verify-full"] {
        let err = load(mode, &missing).unwrap_err();
        assert_eq!(err.key, "database.ssl_root_cert", "{err}");
        assert!(err.to_string().contains(&missing), "names the file: {err}");
        let err = load(mode, "").unwrap_err();
        assert_eq!(err.key, "database.ssl_root_cert", "{err}");
        assert!(err.to_string().contains(mode), "names the mode: {err}");
    }
    let root = file_with("-----BEGIN CERTIFICATE-----\n");
    let config = load("verify-full", &root.display().to_string()).unwrap();
    std::fs::remove_file(&root).unwrap();
    assert_eq!(config.database.ssl_mode, SslMode::VerifyFull);
    assert_eq!(config.database.ssl_root_cert_path(), Some(root.as_path()));
    let default = Config::defaults().unwrap().database;
    assert_eq!(
        default.ssl_mode,
        SslMode::Prefer,
        "the default works on loopback and compose"
    );
    assert_eq!(default.ssl_root_cert_path(), None);
}

#[test]
fn sets_tells_a_key_given_by_file_or_environment_from_a_default() {
    let file = file_with("[database]\nport = 6543\n");
    let sources = ConfigSources {
        file: Some(file.clone()),
        env: env(&[("TRIBUTARY__NATS__URL", "nats://elsewhere:4222")]),
    };
    let (nats, port, host) = (
        sources.sets("nats.url"),
        sources.sets("database.port"),
        sources.sets("database.host"),
    );
    std::fs::remove_file(file).unwrap();
    assert!(nats, "the environment sets nats.url");
    assert!(port, "the file sets database.port");
    assert!(!host, "database.host keeps its default");
    let nothing = ConfigSources {
        file: None,
        env: env(&[]),
    };
    assert!(!nothing.sets("nats.url"));
}

#[test]
fn a_nats_user_and_password_load_and_the_password_never_shows() {
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[
            ("TRIBUTARY__NATS__USER", "etl"),
            ("TRIBUTARY__NATS__PASSWORD", "hunter2-nats"),
        ]),
    })
    .unwrap();
    assert_eq!(config.nats.user, "etl");
    assert!(!format!("{config:?}").contains("hunter2-nats"));
}

#[test]
fn the_managed_plugin_directory_is_scanned_after_the_configured_ones_and_only_once() {
    let mut config = Config::load(&ConfigSources {
        file: None,
        env: env(&[("TRIBUTARY__DATA_DIR", "/srv/tributary")]),
    })
    .unwrap();
    config.plugin_manager.plugin_dirs = vec!["/opt/plugins".into()];
    assert_eq!(
        config.managed_plugin_dir(),
        std::path::Path::new("/srv/tributary/plugins")
    );
    assert_eq!(
        config.plugin_dirs(),
        [
            std::path::PathBuf::from("/opt/plugins"),
            "/srv/tributary/plugins".into()
        ]
    );
    config
        .plugin_manager
        .plugin_dirs
        .push("/srv/tributary/plugins".into());
    assert_eq!(config.plugin_dirs().len(), 2, "not scanned twice");
}

#[test]
fn oauth_clients_come_per_provider_with_the_secret_sealed_and_ids_as_written() {
    let secret_file = file_with("  file-secret\n");
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[
            // Parsed as a number, this Slack client id would lose its last digits.
            (
                "TRIBUTARY__OAUTH__PROVIDERS__SLACK__CLIENT_ID",
                "2141029472.691202649728",
            ),
            (
                "TRIBUTARY__OAUTH__PROVIDERS__SLACK__CLIENT_SECRET",
                "hunter2-slack",
            ),
            // A plugin's own provider needs no defaults: every key may be left out.
            ("TRIBUTARY__OAUTH__PROVIDERS__HUBSPOT__CLIENT_ID", "0042"),
            (
                "TRIBUTARY__OAUTH__PROVIDERS__HUBSPOT__CLIENT_SECRET_FILE",
                secret_file.to_str().unwrap(),
            ),
            (
                "TRIBUTARY__OAUTH__PROVIDERS__MICROSOFT__TOKEN_URL",
                "http://127.0.0.1:9/{tenant}/oauth2/v2.0/token",
            ),
        ]),
    })
    .unwrap();
    let oauth = &config.oauth;

    let slack = oauth
        .provider("slack")
        .unwrap()
        .client("slack")
        .unwrap()
        .unwrap();
    assert_eq!(slack.client_id, "2141029472.691202649728");
    assert_eq!(
        slack
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some("hunter2-slack".to_owned())
    );
    assert!(!format!("{config:?}").contains("hunter2-slack"));

    let hubspot = oauth
        .provider("hubspot")
        .unwrap()
        .client("hubspot")
        .unwrap()
        .unwrap();
    assert_eq!(hubspot.client_id, "0042", "leading zeros kept");
    assert_eq!(
        hubspot.client_secret.map(|s| s.expose_secret().to_owned()),
        Some("file-secret".to_owned())
    );
    std::fs::remove_file(&secret_file).unwrap();

    // No client configured: none, and no error (each instance may bring its own).
    let google = oauth.provider("google").unwrap();
    assert!(google.client("google").unwrap().is_none());

    // The defaults name Microsoft's multi-tenant endpoint; the token URL is pointed elsewhere.
    let microsoft = oauth.provider("microsoft").unwrap().overrides();
    assert_eq!(microsoft.tenant, Some("common"));
    assert_eq!(
        microsoft.token_url,
        Some("http://127.0.0.1:9/{tenant}/oauth2/v2.0/token")
    );
    assert_eq!(microsoft.authorization_url, None);
}

#[test]
fn a_secret_file_other_users_can_read_is_refused_naming_its_key() {
    // Another local user could read this client secret: the service does not start with it.
    let secret_file = file_with("other-users-can-read-this\n");
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[
            ("TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_ID", "Iv1.0123"),
            (
                "TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_SECRET_FILE",
                secret_file.to_str().unwrap(),
            ),
        ]),
    });
    let err = match config {
        Err(e) => e,
        Ok(config) => config
            .oauth
            .provider("github")
            .unwrap()
            .client("github")
            .unwrap_err(),
    };
    assert_eq!(err.key, "oauth.providers.github.client_secret_file");
    assert!(err.message.contains("mode 0644"), "{}", err.message);
    assert!(err.message.contains("chmod 600"), "{}", err.message);
    // Its owner's alone (or its group's to read), it is taken.
    for mode in [0o600, 0o640, 0o400] {
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let config = Config::load(&ConfigSources {
            file: None,
            env: env(&[
                ("TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_ID", "Iv1.0123"),
                (
                    "TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_SECRET_FILE",
                    secret_file.to_str().unwrap(),
                ),
            ]),
        })
        .unwrap();
        let client = config.oauth.provider("github").unwrap().client("github");
        assert!(client.is_ok(), "mode {mode:o}: {client:?}");
    }
    std::fs::remove_file(&secret_file).unwrap();
}

#[test]
fn an_unreadable_client_secret_file_is_named() {
    let config = Config::load(&ConfigSources {
        file: None,
        env: env(&[
            (
                "TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_ID",
                "Iv1.8a61f9b3a7aba766",
            ),
            (
                "TRIBUTARY__OAUTH__PROVIDERS__GITHUB__CLIENT_SECRET_FILE",
                "/nonexistent/github-secret",
            ),
        ]),
    })
    .unwrap();
    let err = config
        .oauth
        .provider("github")
        .unwrap()
        .client("github")
        .unwrap_err();
    assert_eq!(
        err.key, "oauth.providers.github.client_secret_file",
        "{err}"
    );
}

#[tokio::test]
async fn a_url_with_credentials_never_shows_them_in_an_error() {
    // A URL may carry a user and password (nats://ada:hunter2@…); a log of a failed start
    // must not hand them to whoever reads it.
    for (variable, url, key) in [
        (
            "TRIBUTARY__SEARCH__MEILISEARCH_URL",
            "ftp://ada:hunter2@search.example/",
            "search.meilisearch_url",
        ),
        (
            "TRIBUTARY__TELEMETRY__OTLP_ENDPOINT",
            "grpc://ada:hunter2@collector.example:4317",
            "telemetry.otlp_endpoint",
        ),
    ] {
        let err = Config::load(&ConfigSources {
            file: None,
            env: env(&[(variable, url)]),
        })
        .unwrap_err();
        assert_eq!(err.key, key);
        let shown = err.to_string();
        assert!(
            !shown.contains("hunter2")
                && shown.contains("search.example") | shown.contains("collector.example"),
            "{shown}"
        );
    }
    let mut config = Config::defaults().unwrap().nats;
    // Nothing listens on port 1.
    config.url = "nats://ada:hunter2@127.0.0.1:1".into();
    config.connect_timeout_secs = 2;
    let err = tributary_kit::nats::connect(&config, "redaction")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("cannot reach NATS at nats://***@127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );
}
