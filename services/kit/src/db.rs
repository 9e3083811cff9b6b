//! PostgreSQL: a pool built from configuration fields, the database created when missing, and
//! `migrations/` run at start-up.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::DatabaseConfig;

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
    options
}

/// Connects a pool to the configured database, creating it first when it does not exist,
/// and runs the migrations.
pub async fn connect_and_migrate(config: &DatabaseConfig) -> Result<PgPool, DatabaseError> {
    let unreachable = |source| DatabaseError::Unreachable {
        host: config.host.clone(),
        port: config.port,
        user: config.user.clone(),
        source,
    };
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
