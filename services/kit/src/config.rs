//! Layered configuration: built-in defaults, then a TOML file, then `TRIBUTARY__…`
//! environment variables, into typed structs that are validated before anything starts.
//!
//! An unknown key, a value of the wrong type or a value that makes no sense stops start-up
//! with one message that names the key.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tributary_proto::oauth::{self, DeploymentOverrides};
use tributary_proto::{ServiceName, Subjects};

/// The built-in defaults, shipped inside every binary.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// The prefix of environment variables that override configuration.
pub const ENV_PREFIX: &str = "TRIBUTARY";

/// The whole configuration of a Tributary process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where Tributary keeps local state.
    pub data_dir: PathBuf,
    /// Seconds in-flight work is given to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Milliseconds an HTTP client has to send a request's headers, on every service's HTTP
    /// port; a connection that takes longer is closed.
    pub http_header_read_timeout_ms: u64,
    /// Host names a service bound to loopback answers to, besides `localhost`, the loopback
    /// addresses and its own; any other `Host` is refused (421), against DNS rebinding. The
    /// hosts of `channel.public_base_url` and `oauth.redirect_base_url` are added to it.
    pub http_allowed_hosts: Vec<String>,
    /// Who may read the services' `/metrics`.
    pub metrics: MetricsConfig,
    /// The NATS connection.
    pub nats: NatsConfig,
    /// The PostgreSQL connection.
    pub database: DatabaseConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// The plugin manager service.
    pub plugin_manager: PluginManagerConfig,
    /// The connector service.
    pub connector: ConnectorConfig,
    /// The ETL service.
    pub etl: EtlConfig,
    /// The channel service.
    pub channel: ChannelConfig,
    /// The search service.
    pub search: SearchConfig,
    /// The WebAssembly plugin host of the connector and channel services.
    pub wasm: WasmConfig,
    /// The deployment's OAuth 2.0 clients, one per provider.
    pub oauth: OAuthConfig,
    /// What plugins' HTTP requests may reach beyond their grants, and how much they read.
    pub plugins: PluginsConfig,
}

/// `/metrics` on every service (`[metrics]`). With a token, a scraper must send it as
/// `Authorization: Bearer <token>` on every service; without one, a service bound to loopback
/// serves its metrics to anyone who reaches it, and one bound to any other address serves none.
/// A token of its own, not the admin or search token, so a scraper gets no other right.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The bearer token `/metrics` requires; empty with an empty `token_file`: none.
    pub token: SecretString,
    /// A file holding the token, read when `token` is empty.
    pub token_file: PathBuf,
}

impl MetricsConfig {
    /// The token, read from `metrics.token` or `metrics.token_file`; `None` when neither is
    /// set. At least 16 characters.
    pub fn token(&self) -> Result<Option<SecretString>, ConfigError> {
        if self.token.expose_secret().trim().is_empty() && self.token_file.as_os_str().is_empty() {
            return Ok(None);
        }
        crate::http::bearer_token_from(
            &self.token,
            &self.token_file,
            "metrics.token",
            "the metrics token",
        )
        .map(Some)
    }
}

/// Plugins' egress (`[plugins]`), for every plugin the connector and channel services run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Whether a plugin may reach an address inside the network (loopback, private,
    /// link-local, CGNAT…), through a grant naming that host or address exactly.
    pub allow_private_network: bool,
    /// The most body bytes of one HTTP answer a plugin is handed.
    pub max_response_bytes: u64,
}

impl PluginsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_response_bytes == 0 {
            return Err(ConfigError::new(
                "plugins.max_response_bytes",
                "must be at least 1 (bytes of one HTTP answer a plugin is handed)",
            ));
        }
        Ok(())
    }
}

/// OAuth 2.0 (`[oauth]`): the deployment's own OAuth client at each provider, for the
/// instances whose plugin's manifest names that provider in its `auth` section and whose
/// config brings no client of its own (`auth.client`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Where the provider sends the person back after consent, without the path
    /// (`https://hub.example.com`): the plugin manager serves `/oauth/callback` under it, and
    /// each provider must have `<redirect_base_url>/oauth/callback` registered. Empty:
    /// `http://<plugin_manager.http_addr>`, which only works in a browser on the same machine.
    pub redirect_base_url: String,
    /// Seconds before an access token expires that it is refreshed (15 minutes by default).
    pub refresh_margin_secs: u64,
    /// Seconds after which tokens are refreshed even when they have not expired, so a grant
    /// that was revoked is found out (a day by default).
    pub refresh_every_secs: u64,
    /// Seconds between the plugin manager's looks for tokens due for a refresh.
    pub refresh_check_secs: u64,
    /// Seconds a consent URL works (its `state` and PKCE verifier are kept that long).
    pub consent_ttl_secs: u64,
    /// `[oauth.providers.<name>]`, by the name a manifest's `auth.provider` uses: a built-in
    /// provider (`microsoft`, `google`, `github`, `slack`) or a plugin's own.
    pub providers: BTreeMap<String, OAuthProviderConfig>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            redirect_base_url: String::new(),
            refresh_margin_secs: 900,
            refresh_every_secs: 86_400,
            refresh_check_secs: 30,
            consent_ttl_secs: 600,
            providers: BTreeMap::new(),
        }
    }
}

/// The path of the callback the plugin manager serves for every provider.
pub const OAUTH_CALLBACK_PATH: &str = "/oauth/callback";

/// One provider's section, `[oauth.providers.<name>]`. Every key may be left out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthProviderConfig {
    /// The client id the provider issued to this deployment; empty: none, so each instance
    /// must bring its own. Not a secret (every consent URL carries it), so a plain string.
    pub client_id: String,
    /// The client's secret; empty for a public client, or when `client_secret_file` holds it.
    pub client_secret: SecretString,
    /// A file holding the client secret, read when `client_secret` is empty.
    pub client_secret_file: PathBuf,
    /// The tenant, for a provider whose endpoints take one (Microsoft: `common`,
    /// `organizations`, `consumers`, or the tenant's id or domain); an instance's own tenant
    /// (`auth.tenant`) wins over it.
    pub tenant: String,
    /// The authorization endpoint in place of the provider's (a national cloud, GitHub
    /// Enterprise Server, a test server); may hold `{tenant}`. Empty: the provider's.
    pub authorization_url: String,
    /// The token endpoint in place of the provider's, under the same rules.
    pub token_url: String,
}

/// A deployment's client at one provider, its secret read.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// The client id.
    pub client_id: String,
    /// The client secret; `None` for a public client.
    pub client_secret: Option<SecretString>,
}

impl OAuthConfig {
    /// The section of provider `name`, if the configuration has one.
    pub fn provider(&self, name: &str) -> Option<&OAuthProviderConfig> {
        self.providers.get(name)
    }

    /// The redirect URI every consent names: `<redirect_base_url>/oauth/callback`, or on
    /// `http_addr` (the plugin manager's) when no base URL is configured.
    pub fn redirect_uri(&self, http_addr: SocketAddr) -> String {
        let base = self.redirect_base_url.trim().trim_end_matches('/');
        if base.is_empty() {
            let host = if http_addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                match http_addr.ip() {
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                }
            };
            format!("http://{host}:{}{OAUTH_CALLBACK_PATH}", http_addr.port())
        } else {
            format!("{base}{OAUTH_CALLBACK_PATH}")
        }
    }

    /// How long before expiry a token is refreshed.
    pub fn refresh_margin(&self) -> Duration {
        Duration::from_secs(self.refresh_margin_secs)
    }

    /// The longest a token goes unrefreshed.
    pub fn refresh_every(&self) -> Duration {
        Duration::from_secs(self.refresh_every_secs)
    }

    /// The period of the look for tokens due.
    pub fn refresh_check(&self) -> Duration {
        Duration::from_secs(self.refresh_check_secs.max(1))
    }

    /// How long a consent URL works.
    pub fn consent_ttl(&self) -> Duration {
        Duration::from_secs(self.consent_ttl_secs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let base = self.redirect_base_url.trim();
        if !base.is_empty() {
            let url = url::Url::parse(base).map_err(|e| {
                ConfigError::new(
                    "oauth.redirect_base_url",
                    format!("`{base}` is not a URL: {e}"),
                )
            })?;
            let loopback = url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                    || h == "[::1]"
            });
            match url.scheme() {
                "https" => {}
                "http" if loopback => {}
                _ => {
                    return Err(ConfigError::new(
                        "oauth.redirect_base_url",
                        format!("`{base}` is not https:// (providers send codes only over TLS, http:// only to localhost)"),
                    ))
                }
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(ConfigError::new(
                    "oauth.redirect_base_url",
                    "holds a query or fragment; give the base URL only",
                ));
            }
        }
        if self.consent_ttl_secs == 0 || self.consent_ttl_secs > 3600 {
            return Err(ConfigError::new(
                "oauth.consent_ttl_secs",
                "is 1 to 3600 seconds (providers' codes last 10 minutes)",
            ));
        }
        if self.refresh_every_secs == 0 {
            return Err(ConfigError::new(
                "oauth.refresh_every_secs",
                "must be at least 1 second",
            ));
        }
        for (name, provider) in &self.providers {
            if !oauth::is_provider_name(name) {
                return Err(ConfigError::new(
                    format!("oauth.providers.{name}"),
                    "a provider name is lower-case letters, digits and `_`, starting with a letter",
                ));
            }
            provider.validate(name)?;
        }
        Ok(())
    }
}

impl OAuthProviderConfig {
    /// What the section says of the provider's endpoints and tenant, for
    /// [`oauth::ProviderProfile::endpoints`].
    pub fn overrides(&self) -> DeploymentOverrides<'_> {
        fn set(s: &str) -> Option<&str> {
            Some(s.trim()).filter(|s| !s.is_empty())
        }
        DeploymentOverrides {
            authorization_url: set(&self.authorization_url),
            token_url: set(&self.token_url),
            tenant: set(&self.tenant),
        }
    }

    /// The deployment's client at provider `name`, reading the secret from
    /// `client_secret_file` when it is not inline; `None` when no client id is configured.
    pub fn client(&self, name: &str) -> Result<Option<OAuthClient>, ConfigError> {
        let client_id = self.client_id.trim();
        if client_id.is_empty() {
            return Ok(None);
        }
        let inline = !self.client_secret.expose_secret().trim().is_empty();
        let client_secret = if inline || !self.client_secret_file.as_os_str().is_empty() {
            Some(crate::http::inline_or_file(
                &self.client_secret,
                &self.client_secret_file,
                &format!("oauth.providers.{name}.client_secret"),
                "the OAuth client secret",
            )?)
        } else {
            None
        };
        Ok(Some(OAuthClient {
            client_id: client_id.to_owned(),
            client_secret,
        }))
    }

    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("oauth.providers.{name}.{field}");
        let secret_set = !self.client_secret.expose_secret().trim().is_empty()
            || !self.client_secret_file.as_os_str().is_empty();
        if self.client_id.trim().is_empty() && secret_set {
            return Err(ConfigError::new(
                key("client_secret"),
                format!("is set but {} is not; set both", key("client_id")),
            ));
        }
        if self
            .client_id
            .trim()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::new(
                key("client_id"),
                "holds whitespace; a client id is one word",
            ));
        }
        let builtin = oauth::builtin(name);
        let tenant = self.tenant.trim();
        if !tenant.is_empty() {
            if builtin.is_some_and(|p| p.default_tenant.is_none()) {
                return Err(ConfigError::new(
                    key("tenant"),
                    format!("the endpoints of `{name}` take no tenant"),
                ));
            }
            if !oauth::is_tenant(tenant) {
                return Err(ConfigError::new(
                    key("tenant"),
                    format!("`{tenant}` is not a tenant (letters, digits, `.` and `-`)"),
                ));
            }
        }
        for (field, url) in [
            ("authorization_url", &self.authorization_url),
            ("token_url", &self.token_url),
        ] {
            if !url.trim().is_empty() {
                oauth::check_endpoint(url.trim()).map_err(|m| ConfigError::new(key(field), m))?;
            }
        }
        Ok(())
    }
}

/// The sandbox of WebAssembly plugins (`[wasm]`): the limits every instance gets unless its
/// manifest asks for others, and the most a manifest may ask for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// Where compiled components are cached, keyed by content and wasmtime version; empty:
    /// `<data_dir>/wasm-cache`.
    pub cache_dir: PathBuf,
    /// Linear memory of one instance, MiB.
    pub memory_mib: u32,
    /// The most memory a manifest may ask for, MiB.
    pub max_memory_mib: u32,
    /// CPU time of one call into a guest, milliseconds.
    pub call_cpu_ms: u32,
    /// The most CPU time per call a manifest may ask for, milliseconds.
    pub max_call_cpu_ms: u32,
    /// CPU time of a whole sync, milliseconds.
    pub sync_cpu_ms: u32,
    /// The most CPU time per sync a manifest may ask for, milliseconds.
    pub max_sync_cpu_ms: u32,
    /// Size of one item's data and raw payload, bytes.
    pub item_bytes: u32,
    /// Length of one log line, bytes; longer lines are cut.
    pub log_line_bytes: u32,
    /// Log lines per second per instance; more are dropped and counted.
    pub log_lines_per_second: u32,
    /// Instances from the pooling allocator: made in microseconds, with address space
    /// reserved up front.
    pub pooling: bool,
}

impl WasmConfig {
    /// The cache directory: `cache_dir`, or `<data_dir>/wasm-cache` when it is empty.
    pub fn cache_dir_in(&self, data_dir: &Path) -> PathBuf {
        if self.cache_dir.as_os_str().is_empty() {
            data_dir.join("wasm-cache")
        } else {
            self.cache_dir.clone()
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bounded = [
            (
                "memory_mib",
                self.memory_mib,
                self.max_memory_mib,
                "max_memory_mib",
            ),
            (
                "call_cpu_ms",
                self.call_cpu_ms,
                self.max_call_cpu_ms,
                "max_call_cpu_ms",
            ),
            (
                "sync_cpu_ms",
                self.sync_cpu_ms,
                self.max_sync_cpu_ms,
                "max_sync_cpu_ms",
            ),
        ];
        for (key, value, max, max_key) in bounded {
            if value == 0 {
                return Err(ConfigError::new(
                    format!("wasm.{key}"),
                    "must be at least 1",
                ));
            }
            if value > max {
                return Err(ConfigError::new(
                    format!("wasm.{key}"),
                    format!("{value} is above wasm.{max_key} ({max})"),
                ));
            }
        }
        if self.max_memory_mib > 4096 {
            return Err(ConfigError::new(
                "wasm.max_memory_mib",
                "a 32-bit guest addresses at most 4096 MiB",
            ));
        }
        for (key, value) in [
            ("item_bytes", self.item_bytes),
            ("log_line_bytes", self.log_line_bytes),
            ("log_lines_per_second", self.log_lines_per_second),
        ] {
            if value == 0 {
                return Err(ConfigError::new(
                    format!("wasm.{key}"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

/// How to reach NATS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port` (or `tls://`, `ws://`, `wss://`); several, separated by commas, for
    /// the servers of a cluster ([`crate::nats::server_urls`]): the first connection takes
    /// any that answers, and the client moves to another when its server goes.
    pub url: String,
    /// Put in front of every subject and stream name; one NATS token, or empty.
    pub subject_prefix: String,
    /// Seconds to wait for the first connection before giving up with a clear message.
    pub connect_timeout_secs: u64,
    /// The NATS user this service connects as; empty: no user (a server without
    /// authorization). In a deployment each service has its own (deploy/nats-server.conf).
    /// Letters, digits, `_` and `-`: replies to the user come to its own inbox,
    /// `_INBOX_<user>`.
    pub user: String,
    /// That user's password; only with `user`.
    pub password: SecretString,
    /// The most bytes each stream keeps (`[nats.max_bytes]`), set by `tributary nats
    /// provision`; past it a stream drops its oldest messages. Together they must fit the
    /// server's JetStream store limit (`max_file_store` in deploy/nats-server.conf), which
    /// reserves each stream's size when it is created.
    pub max_bytes: crate::provision::StreamSizes,
    /// How many copies JetStream keeps of every stream, each on another server of the cluster
    /// (1, 3 or 5), set by `tributary nats provision`; the durable consumers take their
    /// stream's. With 3, losing one server loses nothing; with 5, two.
    pub replicas: usize,
    /// Durable pull consumers for your own programs (`[[nats.consumers]]`), created by
    /// `tributary nats provision`: the `subscriber` user may pull from and ack them, but
    /// create none itself.
    #[serde(default)]
    pub consumers: Vec<crate::provision::AppConsumer>,
}

/// How to reach PostgreSQL. Built into connect options field by field, so the password never
/// sits in a URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Role to connect as.
    pub user: String,
    /// Its password; empty for trust or peer authentication.
    pub password: SecretString,
    /// The database; created on first start if it does not exist.
    pub name: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection.
    pub acquire_timeout_secs: u64,
    /// Whether a service creates the database when it is missing and runs the migrations
    /// when it connects: true for `tributary up` and tests, which connect as a role that
    /// owns the schema. False where each service connects as its own restricted role
    /// (compose), which may neither create nor alter tables: `tributary db provision`
    /// migrates as the owner first, and a service only checks at start-up that every
    /// migration it knows has run, stopping with what to run if not.
    pub migrate: bool,
    /// Whether and how the connection is encrypted (`database.ssl_mode`): `prefer` by
    /// default, which encrypts where the server offers TLS but neither verifies its
    /// certificate nor refuses a server (or a man in the middle) that answers without TLS;
    /// over a network, set `verify-full`.
    pub ssl_mode: SslMode,
    /// The PEM file of the certificate authorities `verify-ca` and `verify-full` trust
    /// (`database.ssl_root_cert`); empty: none. Required by those two modes, and refused with
    /// the others, which would not use it.
    pub ssl_root_cert: String,
    /// The role of each service, which `tributary db provision` creates (or updates)
    /// and grants what deploy/postgres/grants.sql says (`[database.roles.<service>]`). Read
    /// by that step only; a service connects as `user` above.
    pub roles: DatabaseRoles,
}

impl DatabaseConfig {
    /// The root certificate file `ssl_root_cert` names, if any.
    pub fn ssl_root_cert_path(&self) -> Option<&Path> {
        let path = self.ssl_root_cert.trim();
        (!path.is_empty()).then(|| Path::new(path))
    }

    /// Checks `database.ssl_mode` against `database.ssl_root_cert`: a verifying mode needs a
    /// root certificate file that exists; another mode would ignore one, so one given there
    /// is refused rather than left to look as if it were checked.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        match (self.ssl_mode.verifies(), self.ssl_root_cert_path()) {
            (true, None) => Err(ConfigError::new(
                "database.ssl_root_cert",
                format!(
                    "must name the PEM file of the certificate authority that signed the server's certificate: database.ssl_mode `{}` verifies it",
                    self.ssl_mode.as_str()
                ),
            )),
            (true, Some(path)) if !path.is_file() => Err(ConfigError::new(
                "database.ssl_root_cert",
                format!("`{}` is not a readable file", path.display()),
            )),
            (false, Some(_)) => Err(ConfigError::new(
                "database.ssl_root_cert",
                format!(
                    "is used only by database.ssl_mode `verify-ca` or `verify-full`, not `{}`, which would not check the server's certificate against it; set database.ssl_mode = \"verify-full\"",
                    self.ssl_mode.as_str()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// How the connection to PostgreSQL is encrypted, as libpq's `sslmode` (`database.ssl_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never encrypted.
    Disable,
    /// Encrypted when the server offers TLS, its certificate not checked; in clear when it
    /// does not (so a man in the middle may downgrade it).
    Prefer,
    /// Always encrypted, or no connection; the certificate is not checked.
    Require,
    /// Encrypted, the certificate signed by `database.ssl_root_cert`.
    VerifyCa,
    /// Encrypted, the certificate signed by `database.ssl_root_cert` and naming
    /// `database.host`.
    VerifyFull,
}

impl SslMode {
    /// The mode as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked against a root certificate.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// The five services' PostgreSQL roles, as `tributary db provision` makes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRoles {
    /// The plugin manager's: the registry, its secrets and audit log.
    pub plugin_manager: DatabaseRole,
    /// The connector service's: its sync state and plugins' instance keys.
    pub connector: DatabaseRole,
    /// The ETL's: the unified model and its source records.
    pub etl: DatabaseRole,
    /// The channel service's: its outbound messages and plugins' instance keys.
    pub channel: DatabaseRole,
    /// The search service's: the unified model, read-only.
    pub search: DatabaseRole,
}

impl DatabaseRoles {
    /// The role of `service`.
    pub fn of(&self, service: ServiceName) -> &DatabaseRole {
        match service {
            ServiceName::PluginManager => &self.plugin_manager,
            ServiceName::Connector => &self.connector,
            ServiceName::Etl => &self.etl,
            ServiceName::Channel => &self.channel,
            ServiceName::Search => &self.search,
        }
    }

    /// The role of `service`, to change (`tributary up` sets the passwords it made).
    pub fn of_mut(&mut self, service: ServiceName) -> &mut DatabaseRole {
        match service {
            ServiceName::PluginManager => &mut self.plugin_manager,
            ServiceName::Connector => &mut self.connector,
            ServiceName::Etl => &mut self.etl,
            ServiceName::Channel => &mut self.channel,
            ServiceName::Search => &mut self.search,
        }
    }
}

/// One service's role (`[database.roles.<service>]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRole {
    /// The role's name.
    pub user: String,
    /// Its password, set on every provisioning; empty: none, so the role can log in only
    /// where pg_hba.conf trusts it (tests, a local socket).
    pub password: SecretString,
}

/// How logs look and where traces go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// A `tracing-subscriber` filter directive.
    pub log_filter: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// OTLP/HTTP endpoint; empty for no trace export.
    pub otlp_endpoint: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A service's HTTP listener (health, metrics and its own routes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceHttpConfig {
    /// Address to bind; port 0 picks a free one.
    pub http_addr: SocketAddr,
}

/// The plugin manager: its listener, where plugins are found, and the keys that guard the
/// registry. Each secret can be given inline (best from an environment variable) or as a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManagerConfig {
    /// Address to bind (health, metrics and the admin API); port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// Directories scanned for plugins: each subdirectory holding a `plugin.json` is one, and
    /// so is each subdirectory of one that holds none (`<id>/<version>/`). The managed plugin
    /// directory ([`Config::managed_plugin_dir`]) is scanned after them
    /// ([`Config::plugin_dirs`]).
    pub plugin_dirs: Vec<PathBuf>,
    /// The master key that encrypts plugin secrets: 32 random bytes, base64-encoded.
    pub master_key: SecretString,
    /// A file holding the master key, read when `master_key` is empty.
    pub master_key_file: PathBuf,
    /// The bearer token the admin HTTP API requires.
    pub admin_token: SecretString,
    /// A file holding the admin token, read when `admin_token` is empty.
    pub admin_token_file: PathBuf,
    /// Days an instance's timeline lines are kept; older ones are deleted every hour. Audit
    /// entries are not: the audit log keeps everything.
    pub timeline_retention_days: u32,
}

impl PluginManagerConfig {
    /// How long timeline lines are kept.
    pub fn timeline_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeline_retention_days) * 86_400)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.timeline_retention_days == 0 {
            return Err(ConfigError::new(
                "plugin_manager.timeline_retention_days",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The connector service: its listener, schedules, backpressure and heartbeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Address to bind; port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// The schedule of an instance whose config sets none: an interval (`15m`) or a cron
    /// expression.
    pub default_schedule: String,
    /// Items published and not yet acknowledged by JetStream, per sync.
    pub max_inflight_publishes: usize,
    /// Milliseconds between a running sync's heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Seconds between full reconciliations with the plugin manager.
    pub reconcile_interval_secs: u64,
}

impl ConnectorConfig {
    /// The heartbeat period.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The reconciliation period.
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "connector.max_inflight_publishes",
                self.max_inflight_publishes as u64,
            ),
            (
                "connector.heartbeat_interval_ms",
                self.heartbeat_interval_ms,
            ),
            (
                "connector.reconcile_interval_secs",
                self.reconcile_interval_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.default_schedule.trim().is_empty() {
            return Err(ConfigError::new(
                "connector.default_schedule",
                "must be an interval such as `1h` or a cron expression",
            ));
        }
        Ok(())
    }
}

/// The channel service: its listener (health and the webhook routes), the public URL
/// providers call, request limits, and how verified webhooks and sends are handled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Address to bind; port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// The URL providers reach this service at (`https://hub.example.com`), as they see it
    /// behind a proxy; signatures that cover the URL are checked against it. Empty: the
    /// bound address, `http://<http_addr>`.
    pub public_base_url: String,
    /// The largest webhook body accepted, in bytes; a larger one gets 413.
    pub max_body_bytes: usize,
    /// Milliseconds a webhook's body may take to arrive once its route is known; a slower one
    /// gets 408, so a slow sender cannot hold a request open.
    pub webhook_body_timeout_ms: u64,
    /// Webhooks one channel process reads and verifies at the same time; one more is answered
    /// 503 at once (providers retry), so a flood cannot hold memory and tasks without bound.
    pub max_concurrent_webhooks: usize,
    /// Verified webhooks handled at the same time by one channel process.
    pub concurrent_handlers: usize,
    /// Seconds JetStream waits for a handled webhook's ack before delivering it again.
    pub ack_wait_secs: u64,
    /// Deliveries of a webhook whose handling keeps failing before it goes to the
    /// dead-letter stream.
    pub max_deliver: i64,
    /// Attempts of each call a channel makes to its provider (the first included); 429 and
    /// 5xx answers and refused connections are retried with backoff and `Retry-After`.
    pub send_max_attempts: u32,
    /// Seconds one `channel.send` may take, retries included.
    pub send_timeout_secs: u64,
    /// Seconds between full comparisons of the routes served here with the plugin manager's
    /// channel instances, besides the `plugins.*` events that add and remove them at once.
    pub reconcile_interval_secs: u64,
}

impl ChannelConfig {
    /// The ack wait.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs)
    }

    /// How long a webhook's body may take to arrive.
    pub fn webhook_body_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_body_timeout_ms)
    }

    /// The time limit of one send.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_secs)
    }

    /// The reconciliation period.
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("channel.max_body_bytes", self.max_body_bytes as u64),
            (
                "channel.webhook_body_timeout_ms",
                self.webhook_body_timeout_ms,
            ),
            (
                "channel.max_concurrent_webhooks",
                self.max_concurrent_webhooks as u64,
            ),
            (
                "channel.concurrent_handlers",
                self.concurrent_handlers as u64,
            ),
            ("channel.ack_wait_secs", self.ack_wait_secs),
            ("channel.max_deliver", self.max_deliver.max(0) as u64),
            (
                "channel.send_max_attempts",
                u64::from(self.send_max_attempts),
            ),
            ("channel.send_timeout_secs", self.send_timeout_secs),
            (
                "channel.reconcile_interval_secs",
                self.reconcile_interval_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        let base = self.public_base_url.trim();
        if !base.is_empty() {
            match url::Url::parse(base) {
                Ok(url)
                    if (url.scheme() == "http" || url.scheme() == "https")
                        && url.host().is_some()
                        && url.query().is_none() => {}
                _ => {
                    return Err(ConfigError::new(
                        "channel.public_base_url",
                        format!("`{base}` is not an http:// or https:// URL without a query"),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The search service: its listener and API token, the backend (Meilisearch when a URL is
/// set, the embedded index otherwise), and how data events are batched into the index.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Address to bind (health, metrics and `GET /search`); port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// The bearer token `GET /search` requires.
    pub api_token: SecretString,
    /// A file holding the API token, read when `api_token` is empty.
    pub api_token_file: PathBuf,
    /// Meilisearch's URL (`http://meilisearch:7700`); empty for the embedded index.
    pub meilisearch_url: String,
    /// Meilisearch's API key: the search service's own, which `tributary meili provision`
    /// makes (allowed only what the backend uses, on its index); the service refuses a key
    /// that may read Meilisearch's keys (the master key). For `tributary meili provision`
    /// itself, the master key. Empty when Meilisearch has none, or when
    /// `meilisearch_api_key_file` holds it.
    pub meilisearch_api_key: SecretString,
    /// A file holding the search service's key, read when `meilisearch_api_key` is empty;
    /// `tributary meili provision` writes it (0600).
    pub meilisearch_api_key_file: PathBuf,
    /// Seconds a Meilisearch task is awaited before it counts as failed.
    pub meilisearch_task_timeout_secs: u64,
    /// Batches of documents the indexer may have enqueued in Meilisearch and not yet seen
    /// finished: with more than one, the next batch is sent while the last one is being
    /// indexed, and Meilisearch merges the waiting tasks into one indexing run.
    pub meilisearch_tasks_in_flight: usize,
    /// The index's name: the Meilisearch index uid, or the embedded index's directory under
    /// `<data_dir>/search/`.
    pub index_name: String,
    /// Megabytes the embedded index's writer buffers before it flushes a segment.
    pub embedded_writer_memory_mb: usize,
    /// Data events applied to the index at once.
    pub batch_size: usize,
    /// Milliseconds a batch waits to fill, while more events are on their way, before it is
    /// applied anyway; with nothing else pending (and `cut_when_idle`), a batch is applied at
    /// once.
    pub batch_wait_ms: u64,
    /// Whether a batch is applied as soon as nothing more is pending for the indexer's
    /// consumer (on by default), rather than only once it is full or `batch_wait_ms` old, as
    /// before 2026-12-01: off only to measure the old policy against the new.
    pub cut_when_idle: bool,
    /// Seconds JetStream waits for an ack before it delivers an event again.
    pub ack_wait_secs: u64,
    /// Deliveries of an event the index keeps refusing before it is dead-lettered.
    pub max_deliver: i64,
}

impl SearchConfig {
    /// Whether Meilisearch is configured (otherwise the embedded index is used).
    pub fn uses_meilisearch(&self) -> bool {
        !self.meilisearch_url.trim().is_empty()
    }

    /// How long a batch waits to fill.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }

    /// How long JetStream waits for an ack.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs)
    }

    /// How long a Meilisearch task is awaited.
    pub fn meilisearch_task_timeout(&self) -> Duration {
        Duration::from_secs(self.meilisearch_task_timeout_secs)
    }

    /// Checks what types alone cannot: counts, the index name, Meilisearch's URL and key.
    /// Runs with every configuration load; a backend built from a hand-made `SearchConfig`
    /// runs it too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "search.meilisearch_task_timeout_secs",
                self.meilisearch_task_timeout_secs,
            ),
            (
                "search.embedded_writer_memory_mb",
                self.embedded_writer_memory_mb as u64,
            ),
            (
                "search.meilisearch_tasks_in_flight",
                self.meilisearch_tasks_in_flight as u64,
            ),
            ("search.batch_size", self.batch_size as u64),
            ("search.batch_wait_ms", self.batch_wait_ms),
            ("search.ack_wait_secs", self.ack_wait_secs),
            ("search.max_deliver", self.max_deliver.max(0) as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.embedded_writer_memory_mb < 15 {
            return Err(ConfigError::new(
                "search.embedded_writer_memory_mb",
                "must be at least 15 (tantivy's smallest writer)",
            ));
        }
        let name = &self.index_name;
        if name.is_empty() || name.len() > 400 || !is_token(name) {
            return Err(ConfigError::new(
                "search.index_name",
                format!("`{name}` must be letters, digits, `_` or `-` (a Meilisearch index uid and a directory name)"),
            ));
        }
        let url = self.meilisearch_url.trim();
        if !url.is_empty() {
            match url::Url::parse(url) {
                Ok(parsed)
                    if (parsed.scheme() == "http" || parsed.scheme() == "https")
                        && parsed.host().is_some() => {}
                _ => {
                    return Err(ConfigError::new(
                        "search.meilisearch_url",
                        format!("`{url}` is not an http:// or https:// URL"),
                    ))
                }
            }
        }
        // The key travels in an HTTP header, which cannot carry control characters.
        if self
            .meilisearch_api_key
            .expose_secret()
            .trim()
            .bytes()
            .any(|b| (b < 32 && b != b'\t') || b == 127)
        {
            return Err(ConfigError::new(
                "search.meilisearch_api_key",
                "holds characters an HTTP header cannot carry",
            ));
        }
        Ok(())
    }
}

/// The ETL service: its listener, how it batches and retries, and how it normalises.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtlConfig {
    /// Address to bind; port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// Items written in one transaction.
    pub batch_size: usize,
    /// Milliseconds a batch waits to fill, while more items are on their way, before it is
    /// written anyway; with nothing else pending (and `cut_when_idle`), a batch is written at
    /// once.
    pub batch_wait_ms: u64,
    /// Whether a batch is written as soon as nothing more is pending for the ETL's consumer
    /// (on by default), rather than only once it is full or `batch_wait_ms` old, as before
    /// 2026-12-01: off only to measure the old policy against the new.
    pub cut_when_idle: bool,
    /// Batches written at the same time by one ETL process.
    pub concurrent_batches: usize,
    /// Seconds JetStream waits for an ack before it delivers an item again.
    pub ack_wait_secs: u64,
    /// Deliveries of an item whose write keeps failing before it is dead-lettered.
    pub max_deliver: i64,
    /// Items handed out and not yet acked, across all ETL processes.
    pub max_ack_pending: i64,
    /// ISO 3166-1 region for phone numbers written without a country code (`US`, `GB`).
    pub default_phone_region: String,
    /// First wait, in milliseconds, before retrying while PostgreSQL or NATS is unreachable.
    pub retry_initial_ms: u64,
    /// Longest wait between such retries, in milliseconds.
    pub retry_max_ms: u64,
    /// Events published to JetStream per round of the outbox publisher; it takes whole
    /// batches, so a round may publish more.
    pub outbox_batch_size: usize,
    /// Whether each item's entity type is checked against its instance's accepted
    /// `data:write` permissions (asked of the plugin manager), a refused item dead-lettered
    /// naming the permission. On in every deployment; tests of the ETL alone, with no plugin
    /// manager to ask, turn it off.
    pub check_data_write: bool,
}

impl EtlConfig {
    /// How long a batch waits to fill.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }

    /// JetStream's redelivery wait.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs)
    }

    /// The first retry wait.
    pub fn retry_initial(&self) -> Duration {
        Duration::from_millis(self.retry_initial_ms)
    }

    /// The longest retry wait.
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("etl.batch_size", self.batch_size as u64),
            ("etl.batch_wait_ms", self.batch_wait_ms),
            ("etl.concurrent_batches", self.concurrent_batches as u64),
            ("etl.ack_wait_secs", self.ack_wait_secs),
            ("etl.retry_initial_ms", self.retry_initial_ms),
            ("etl.outbox_batch_size", self.outbox_batch_size as u64),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.max_deliver < 1 {
            return Err(ConfigError::new("etl.max_deliver", "must be at least 1"));
        }
        if self.max_ack_pending < (self.batch_size * self.concurrent_batches) as i64 {
            return Err(ConfigError::new(
                "etl.max_ack_pending",
                format!(
                    "must be at least etl.batch_size × etl.concurrent_batches ({}), or batches never fill",
                    self.batch_size * self.concurrent_batches
                ),
            ));
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return Err(ConfigError::new(
                "etl.retry_max_ms",
                "must be at least etl.retry_initial_ms",
            ));
        }
        let region = &self.default_phone_region;
        if region.len() != 2 || !region.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError::new(
                "etl.default_phone_region",
                format!("`{region}` is not a two-letter ISO 3166-1 region such as US or GB"),
            ));
        }
        Ok(())
    }
}

/// A service's check of what it reads of the configuration beyond its shape: run by its own
/// start-up and by `tributary check-config`, so each key is judged in one place.
pub type ConfigCheck = fn(&Config) -> Result<(), ConfigError>;

/// Configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}`: {message}")]
pub struct ConfigError {
    /// The dotted key (`database.port`), or the file, when the fault is not one key's.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A fault in `key`. A URL in `message` is shown without its user, password or secret
    /// query values (`nats.url`, `search.meilisearch_url` and the like may carry them).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            key: key.into(),
            message: tributary_proto::redact::redact_urls(&message).into_owned(),
        }
    }

    /// Turns an error of the `config` crate into one that names the key.
    fn from_source(err: config::ConfigError) -> Self {
        let text = err.to_string();
        // The config crate ends type errors with `for key `a.b``; unknown fields have the
        // offending field in backticks after "unknown field".
        if let Some(start) = text.find("for key `") {
            let rest = &text[start + 9..];
            let mut key = rest.split('`').next().unwrap_or_default().to_owned();
            let message = text[..start].trim().to_owned();
            if let Some(field) = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                key = format!("{key}.{field}");
            }
            return Self::new(key, message);
        }
        if let Some(start) = text.find("unknown field `") {
            let rest = &text[start + 15..];
            let field = rest.split('`').next().unwrap_or_default().to_owned();
            return Self::new(field, text.clone());
        }
        if let Some(start) = text.find("missing field `") {
            let rest = &text[start + 15..];
            let field = rest.split('`').next().unwrap_or_default().to_owned();
            return Self::new(field, text.clone());
        }
        Self::new("(configuration)", text)
    }
}

/// Where configuration comes from, beyond the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// A TOML file that overrides the defaults.
    pub file: Option<PathBuf>,
    /// The environment to read `TRIBUTARY__…` variables from; the process's own when `None`.
    pub env: Option<HashMap<String, String>>,
}

/// The `TRIBUTARY__SECTION__KEY` variables of `env` (the process's own when `None`).
fn environment(env: Option<HashMap<String, String>>) -> config::Environment {
    config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(env)
}

/// The variables of sections whose every key is a string (`[oauth]`), again, taken as
/// written: added after [`environment`], they override its guesses. Parsing would turn a
/// Slack client id (`2141029472.691202649728`) into a float and back into other digits.
fn verbatim_environment(env: Option<HashMap<String, String>>) -> config::Environment {
    let prefix = format!("{ENV_PREFIX}__OAUTH__");
    let all = env.unwrap_or_else(|| std::env::vars().collect());
    let strings = all
        .into_iter()
        .filter(|(name, _)| name.to_uppercase().starts_with(&prefix))
        .collect();
    config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(strings))
}

impl ConfigSources {
    /// Defaults, the given file, and the process environment.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self { file, env: None }
    }

    /// Whether the file or the environment sets `key` (`nats.url`), as opposed to it keeping
    /// its built-in default. `tributary up` starts its own servers only for what nobody set.
    pub fn sets(&self, key: &str) -> bool {
        let mut builder = config::Config::builder();
        if let Some(file) = self.file.as_deref().filter(|f| f.exists()) {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        builder
            .add_source(environment(self.env.clone()))
            .add_source(verbatim_environment(self.env.clone()))
            .build()
            .is_ok_and(|c| c.get::<config::Value>(key).is_ok())
    }
}

impl Config {
    /// Loads and validates configuration from the built-in defaults, then `sources.file`,
    /// then `TRIBUTARY__SECTION__KEY` environment variables.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = &sources.file {
            if !file.exists() {
                return Err(ConfigError::new(
                    file.display().to_string(),
                    "the configuration file does not exist",
                ));
            }
            builder = builder
                .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        let config: Config = builder
            .add_source(environment(sources.env.clone()))
            .add_source(verbatim_environment(sources.env.clone()))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(ConfigError::from_source)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads configuration from the defaults only: what `tributary up` runs with on a fresh
    /// machine.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load(&ConfigSources {
            file: None,
            env: Some(HashMap::new()),
        })
    }

    /// Checks what types alone cannot: URLs, names, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let servers = crate::nats::server_urls(&self.nats.url);
        if servers.is_empty() {
            return Err(ConfigError::new(
                "nats.url",
                "names no server (one URL, or several separated by commas)",
            ));
        }
        for server in servers {
            match url::Url::parse(server) {
                Ok(url) if ["nats", "tls", "ws", "wss"].contains(&url.scheme()) => {}
                Ok(url) => {
                    return Err(ConfigError::new(
                        "nats.url",
                        format!("scheme `{}` is not one of nats, tls, ws, wss", url.scheme()),
                    ))
                }
                Err(e) => {
                    return Err(ConfigError::new(
                        "nats.url",
                        format!("`{server}` is not a URL: {e}"),
                    ))
                }
            }
        }
        if ![1, 3, 5].contains(&self.nats.replicas) {
            return Err(ConfigError::new(
                "nats.replicas",
                format!(
                    "{} is not 1, 3 or 5 (the copies JetStream keeps of each stream: one server, or a cluster of at least that many)",
                    self.nats.replicas
                ),
            ));
        }
        let prefix = &self.nats.subject_prefix;
        if !prefix.is_empty() && !is_token(prefix) {
            return Err(ConfigError::new(
                "nats.subject_prefix",
                format!("`{prefix}` must be one token of letters, digits, `_` or `-`"),
            ));
        }
        let user = &self.nats.user;
        if !user.is_empty() && !is_token(user) {
            return Err(ConfigError::new(
                "nats.user",
                format!("`{user}` must be letters, digits, `_` or `-` (it names the user's inbox, `_INBOX_<user>`)"),
            ));
        }
        if self.nats.user.is_empty() && !self.nats.password.expose_secret().is_empty() {
            return Err(ConfigError::new(
                "nats.password",
                "is set but nats.user is not; set both or neither",
            ));
        }
        if self.nats.connect_timeout_secs == 0 {
            return Err(ConfigError::new(
                "nats.connect_timeout_secs",
                "must be at least 1",
            ));
        }
        self.nats.max_bytes.validate()?;
        crate::provision::validate_consumers(&self.nats.consumers)?;
        if self.database.host.trim().is_empty() {
            return Err(ConfigError::new("database.host", "must not be empty"));
        }
        if self.database.port == 0 {
            return Err(ConfigError::new(
                "database.port",
                "must be a TCP port from 1 to 65535",
            ));
        }
        if self.database.name.trim().is_empty() {
            return Err(ConfigError::new("database.name", "must not be empty"));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        self.database.validate_tls()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_filter) {
            return Err(ConfigError::new(
                "telemetry.log_filter",
                format!("`{}` is not a log filter: {e}", self.telemetry.log_filter),
            ));
        }
        if self.http_header_read_timeout_ms == 0 {
            return Err(ConfigError::new(
                "http_header_read_timeout_ms",
                "must be at least 1 (milliseconds a client has to send a request's headers)",
            ));
        }
        for host in &self.http_allowed_hosts {
            let name = host.trim();
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/@?#:".contains(c))
            {
                return Err(ConfigError::new(
                    "http_allowed_hosts",
                    format!("`{}` is not a host name (give the name alone, as `hub.example.com`, without scheme or port)", host.escape_debug()),
                ));
            }
        }
        self.etl.validate()?;
        self.plugin_manager.validate()?;
        self.connector.validate()?;
        self.channel.validate()?;
        self.search.validate()?;
        self.wasm.validate()?;
        self.oauth.validate()?;
        self.plugins.validate()?;
        let endpoint = &self.telemetry.otlp_endpoint;
        if !endpoint.is_empty() {
            match url::Url::parse(endpoint) {
                Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {}
                _ => {
                    return Err(ConfigError::new(
                        "telemetry.otlp_endpoint",
                        format!("`{endpoint}` is not an http:// or https:// URL"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Every name a service bound to loopback answers to besides its own addresses:
    /// `http_allowed_hosts`, and the hosts of `channel.public_base_url` (a tunnel forwards
    /// webhooks with it) and `oauth.redirect_base_url` (the consent callback comes to it).
    pub fn allowed_http_hosts(&self) -> Vec<String> {
        let mut hosts = self.http_allowed_hosts.clone();
        for base in [&self.channel.public_base_url, &self.oauth.redirect_base_url] {
            if let Some(host) = url::Url::parse(base.trim())
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                hosts.push(host);
            }
        }
        hosts
    }

    /// The subjects of this deployment (with its prefix).
    pub fn subjects(&self) -> Subjects {
        Subjects::new(self.nats.subject_prefix.clone())
    }

    /// The address of one service's HTTP listener.
    pub fn http_addr_of(&self, service: ServiceName) -> SocketAddr {
        match service {
            ServiceName::PluginManager => self.plugin_manager.http_addr,
            ServiceName::Connector => self.connector.http_addr,
            ServiceName::Etl => self.etl.http_addr,
            ServiceName::Channel => self.channel.http_addr,
            ServiceName::Search => self.search.http_addr,
        }
    }

    /// The managed plugin directory, `<data_dir>/plugins`: `tributary plugins add` copies a
    /// plugin into `<id>/<version>/` under it, versions side by side.
    pub fn managed_plugin_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }

    /// Every directory the plugin manager scans: `plugin_manager.plugin_dirs`, then the
    /// managed plugin directory (unless it is configured too). The managed one need not exist
    /// yet; the first `tributary plugins add` makes it.
    pub fn plugin_dirs(&self) -> Vec<PathBuf> {
        let managed = self.managed_plugin_dir();
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        };
        let mut dirs = self.plugin_manager.plugin_dirs.clone();
        if !dirs.iter().any(|d| same(d, &managed)) {
            dirs.push(managed);
        }
        dirs
    }

    /// The shutdown grace period.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// How long an HTTP client has to send a request's headers.
    pub fn http_header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_read_timeout_ms)
    }

    /// Reads `TRIBUTARY_CONFIG` when no file was given on the command line.
    pub fn file_from_env(cli: Option<&Path>) -> Option<PathBuf> {
        cli.map(Path::to_path_buf)
            .or_else(|| std::env::var_os("TRIBUTARY_CONFIG").map(PathBuf::from))
    }
}

/// Whether `s` is only letters, digits, `_` or `-`: one token of a NATS subject, and safe in
/// a directory name or a Meilisearch index uid.
fn is_token(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The configuration section of a service (`plugin_manager`, `etl`); its environment
/// variables are `TRIBUTARY__<SECTION>__…` in upper case.
pub fn config_section(service: ServiceName) -> &'static str {
    match service {
        ServiceName::PluginManager => "plugin_manager",
        ServiceName::Connector => "connector",
        ServiceName::Etl => "etl",
        ServiceName::Channel => "channel",
        ServiceName::Search => "search",
    }
}
