//! PostgreSQL: a pool built from configuration fields, the database created when missing, and
//! `migrations/` run at start-up, or only checked when `database.migrate` is false (the
//! services of a deployment, whose roles [`provision`] creates and grants).

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::{DatabaseConfig, SslMode};

pub mod provision;

/// The embedded migrations, from the repository's `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A database step failed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// No connection could be made.
    #[error("cannot reach PostgreSQL at {host}:{port} as {user}: {source}. Start it (for example `pg_ctlcluster <version> main start`) or set `database.*` / TRIBUTARY__DATABASE__*")]
    Unreachable {
        /// Configured host.
        host: String,
        /// Configured port.
        port: u16,
        /// Configured role.
        user: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The database did not exist and could not be created.
    #[error("cannot create database {name}: {source}")]
    Create {
        /// The database name.
        name: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate database {name}: {source}")]
    Migrate {
        /// The database name.
        name: String,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// With `database.migrate = false`, the schema is not the one this version was built
    /// for: the provisioning step has not run since the upgrade.
    #[error("database {name} has run migrations up to {have}, this version needs {want}: run `tributary db provision` as the database's owner first (database.migrate is false, so services do not migrate)")]
    NotMigrated {
        /// The database name.
        name: String,
        /// The newest migration that ran (0: none).
        have: i64,
        /// The newest migration this version has.
        want: i64,
    },
    /// With `database.migrate = false`, the schema is newer than this version knows: a newer
    /// version has migrated it, and this one might misread it.
    #[error("database {name} has run migrations up to {have}, this version knows only up to {want}: run the newer version (an older one cannot be trusted with a schema it does not know)")]
    SchemaNewer {
        /// The database name.
        name: String,
        /// The newest migration that ran.
        have: i64,
        /// The newest migration this version has.
        want: i64,
    },
    /// With `database.migrate = false`, which migrations ran could not be read.
    #[error("cannot read which migrations database {name} has run as {user}: {source}. Run `tributary db provision` as the database's owner, which migrates and grants every service's role")]
    SchemaUnknown {
        /// The database name.
        name: String,
        /// The role connected as.
        user: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
}

impl DatabaseError {
    /// No connection to `config`'s server could be made as its role: the error naming the
    /// server, the role and what to do, for every connection this crate makes.
    pub fn unreachable(config: &DatabaseConfig, source: sqlx::Error) -> Self {
        Self::Unreachable {
            host: config.host.clone(),
            port: config.port,
            user: config.user.clone(),
            source,
        }
    }
}

/// Connect options for `database` (or another database on the same server).
pub fn connect_options(config: &DatabaseConfig, database: &str) -> PgConnectOptions {
    let mut options = PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&config.user)
        .database(database)
        .application_name("tributary");
    let password = config.password.expose_secret();
    if !password.is_empty() {
        options = options.password(password);
    }
    options = options.ssl_mode(ssl_mode(config.ssl_mode));
    if let Some(root) = config.ssl_root_cert_path() {
        options = options.ssl_root_cert(root);
    }
    options
}

/// sqlx's mode for `database.ssl_mode`, set on every connection so a `PGSSLMODE` in the
/// environment cannot weaken it.
fn ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// Connects a service's pool as `database.migrate` says: with it (the default), as
/// [`connect_and_migrate`]; without it, only connects, and fails unless every migration this
/// version has already ran and none it does not know, so a service whose role may not alter
/// the schema never tries to and never runs against another schema than its own.
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, DatabaseError> {
    if config.migrate {
        return connect_and_migrate(config).await;
    }
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
        .connect_with(connect_options(config, &config.name))
        .await
        .map_err(|source| DatabaseError::unreachable(config, source))?;
    check_migrated(&pool, config).await?;
    Ok(pool)
}

/// The newest migration this version has.
pub fn latest_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Fails unless the newest migration that ran on `pool`'s database is [`latest_migration`]:
/// older means provisioning has not run since an upgrade, newer that this is an old version.
async fn check_migrated(pool: &PgPool, config: &DatabaseConfig) -> Result<(), DatabaseError> {
    let have: Option<i64> =
        match sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
        {
            Ok(have) => have,
            // No migration ever ran here.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => None,
            Err(source) => {
                return Err(DatabaseError::SchemaUnknown {
                    name: config.name.clone(),
                    user: config.user.clone(),
                    source,
                })
            }
        };
    let (have, want) = (have.unwrap_or(0), latest_migration());
    let name = config.name.clone();
    match have.cmp(&want) {
        std::cmp::Ordering::Less => Err(DatabaseError::NotMigrated { name, have, want }),
        std::cmp::Ordering::Greater => Err(DatabaseError::SchemaNewer { name, have, want }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Connects a pool to the configured database, creating it first when it does not exist,
/// and runs the migrations, whatever `database.migrate` says: for the provisioning step, and
/// tools and tests that own the schema.
pub async fn connect_and_migrate(config: &DatabaseConfig) -> Result<PgPool, DatabaseError> {
    let unreachable = |source| DatabaseError::unreachable(config, source);
    let pool_options = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs));
    let pool = match pool_options
        .clone()
        .connect_with(connect_options(config, &config.name))
        .await
    {
        Ok(pool) => pool,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            create_database(config).await?;
            pool_options
                .connect_with(connect_options(config, &config.name))
                .await
                .map_err(unreachable)?
        }
        Err(e) => return Err(unreachable(e)),
    };
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| DatabaseError::Migrate {
            name: config.name.clone(),
            source,
        })?;
    Ok(pool)
}

/// Creates the configured database through the server's `postgres` database; one that
/// already exists is left as it is.
pub(crate) async fn create_database(config: &DatabaseConfig) -> Result<(), DatabaseError> {
    let fail = |source| DatabaseError::Create {
        name: config.name.clone(),
        source,
    };
    let mut conn = PgConnection::connect_with(&connect_options(config, "postgres"))
        .await
        .map_err(fail)?;
    let statement = format!("CREATE DATABASE \"{}\"", config.name.replace('"', "\"\""));
    match sqlx::query(&statement).execute(&mut conn).await {
        Ok(_) => Ok(()),
        // Another service created it a moment ago.
        Err(sqlx::Error::Database(e))
            if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) =>
        {
            Ok(())
        }
        Err(e) => Err(fail(e)),
    }
}
