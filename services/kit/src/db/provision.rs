//! The database's provisioning step (`tributary db provision`, the `db-provision` service of
//! compose): run as the role that owns the schema, it migrates, creates or updates each
//! service's role (`[database.roles.<service>]`), checks that none of them is a superuser,
//! may create roles or databases, is a member of any role or owns anything, and grants each
//! exactly what deploy/postgres/grants.sql says, the one place that does.
//!
//! Why a step of its own: a service that could migrate would own the schema, and whoever took
//! it over could rewrite any table (an instance's `apiBaseUrl`, so its stored token goes
//! elsewhere), read every secret, and as the superuser compose used to give every service,
//! run programs on the database host (`COPY … TO PROGRAM`). Services of a deployment connect
//! with `database.migrate = false` and only check that the schema is current
//! ([`super::connect`]).

use secrecy::ExposeSecret;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tributary_proto::ServiceName;

use super::{connect_options, DatabaseError};
use crate::config::{config_section, DatabaseConfig, DatabaseRoles};

/// What each service's role may do, with the roles as psql variables
/// (`:"channel"`, `:"database"`); see [`grants_sql`].
pub const GRANTS_SQL: &str = include_str!("../../../../deploy/postgres/grants.sql");

/// The provisioning step failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// Connecting, creating the database or migrating failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A role in the configuration cannot be used.
    #[error("`{key}` {problem}")]
    Config {
        /// The configuration key at fault.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A role exists with more than a service may have, which provisioning does not take
    /// away (only a superuser may).
    #[error("role {role} (`database.roles.{section}.user`) {problem}; a service's role must have none of that: fix it as a superuser, or name another role")]
    Unsafe {
        /// The role.
        role: String,
        /// Its configuration section.
        section: &'static str,
        /// What it has that it must not.
        problem: String,
    },
    /// A statement failed.
    #[error("cannot {what}: {source}")]
    Sql {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
}

/// What a provisioning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The database.
    pub database: String,
    /// The newest migration the schema has now.
    pub schema_version: i64,
    /// Each service's role, and whether this run created it.
    pub roles: Vec<(ServiceName, String, bool)>,
    /// Whether the role it ran as is a superuser (it need not be: owning the schema and
    /// `CREATEROLE` are enough, and all an owner should have).
    pub ran_as_superuser: bool,
}

/// Migrates the configured database as `config.user` (its owner), creates or updates the
/// five service roles of `config.roles` with their passwords, and grants them
/// [`GRANTS_SQL`]. Safe to run again: every run ends in the same grants, whatever an earlier
/// version of the file granted.
pub async fn provision(config: &DatabaseConfig) -> Result<Provisioned, ProvisionError> {
    check_roles(config)?;
    let pool = super::connect_and_migrate(config).await?;
    pool.close().await;

    // Its own connection, with statement logging off: ALTER ROLE … PASSWORD carries the
    // password, and a slow statement would be logged whole.
    let options = connect_options(config, &config.name).disable_statement_logging();
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|source| DatabaseError::unreachable(config, source))?;
    let sql = |what: &str| {
        let what = what.to_owned();
        move |source| ProvisionError::Sql { what, source }
    };
    let ran_as_superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .map_err(sql("read the provisioning role"))?;

    let mut tx = conn.begin().await.map_err(sql("begin"))?;
    let mut roles = Vec::new();
    for service in ServiceName::ALL {
        let role = config.roles.of(service);
        let name = role.user.trim();
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(sql(&format!("look up role {name}")))?;
        if !exists {
            sqlx::raw_sql(&format!(
                "CREATE ROLE {} LOGIN NOINHERIT",
                quote_ident(name)
            ))
            .execute(&mut *tx)
            .await
            .map_err(sql(&format!(
                "create role {name} (the provisioning role needs CREATEROLE)"
            )))?;
        }
        // Built by the server, whose %L quotes any password correctly.
        let password = role.password.expose_secret();
        let alter: String = if password.is_empty() {
            sqlx::query_scalar("SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD NULL', $1)")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
        } else {
            sqlx::query_scalar("SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1, $2)")
                .bind(name)
                .bind(password)
                .fetch_one(&mut *tx)
                .await
        }
        .map_err(sql(&format!("set the password of role {name}")))?;
        sqlx::raw_sql(&alter)
            .execute(&mut *tx)
            .await
            .map_err(sql(&format!("set the password of role {name}")))?;
        check_unprivileged(&mut tx, service, name).await?;
        roles.push((service, name.to_owned(), !exists));
    }
    let grants = grants_sql(&config.roles, &config.name)?;
    sqlx::raw_sql(&grants)
        .execute(&mut *tx)
        .await
        .map_err(sql("apply deploy/postgres/grants.sql"))?;
    tx.commit().await.map_err(sql("commit"))?;
    let _ = conn.close().await;
    Ok(Provisioned {
        database: config.name.clone(),
        schema_version: super::latest_migration(),
        roles,
        ran_as_superuser,
    })
}

/// [`GRANTS_SQL`] with each `:"<service>"` replaced by that service's role and `:"database"`
/// by the database, each quoted as an identifier.
pub fn grants_sql(roles: &DatabaseRoles, database: &str) -> Result<String, ProvisionError> {
    let mut sql = GRANTS_SQL.replace(":\"database\"", &quote_ident(database));
    for service in ServiceName::ALL {
        let variable = format!(":\"{}\"", config_section(service));
        sql = sql.replace(&variable, &quote_ident(roles.of(service).user.trim()));
    }
    if let Some(at) = sql.find(":\"") {
        let rest: String = sql[at..].chars().take(40).collect();
        return Err(ProvisionError::Config {
            key: "deploy/postgres/grants.sql".to_owned(),
            problem: format!("uses a variable that is not a service's role: {rest}"),
        });
    }
    Ok(sql)
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Each role named, at most 63 bytes (PostgreSQL's limit), none twice, none the owner.
fn check_roles(config: &DatabaseConfig) -> Result<(), ProvisionError> {
    let mut seen: Vec<&str> = Vec::new();
    for service in ServiceName::ALL {
        let key = format!("database.roles.{}.user", config_section(service));
        let name = config.roles.of(service).user.trim();
        let problem = if name.is_empty() {
            Some("must not be empty".to_owned())
        } else if name.len() > 63 || name.contains('\0') {
            Some("is not a role name (at most 63 bytes, no NUL)".to_owned())
        } else if name == config.user.trim() {
            Some(format!(
                "is `{name}`, the role provisioning runs as (database.user): a service must not own the schema"
            ))
        } else if seen.contains(&name) {
            Some(format!("is `{name}`, another service's role too"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ProvisionError::Config { key, problem });
        }
        seen.push(name);
    }
    Ok(())
}

/// Fails when role `name` is a superuser, may create roles or databases, replicate or bypass
/// row-level security, is a member of any role (`pg_execute_server_program`, another
/// service's…) or owns the database, a schema or a relation in it.
async fn check_unprivileged(
    conn: &mut PgConnection,
    service: ServiceName,
    name: &str,
) -> Result<(), ProvisionError> {
    let row = sqlx::query(
        "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, \
                ARRAY(SELECT g.rolname::text FROM pg_auth_members m \
                      JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid \
                      ORDER BY 1) AS member_of, \
                EXISTS (SELECT 1 FROM pg_database d \
                        WHERE d.datname = current_database() AND d.datdba = r.oid) \
                OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspowner = r.oid) \
                OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid) AS owns \
         FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await
    .map_err(|source| ProvisionError::Sql {
        what: format!("read the attributes of role {name}"),
        source,
    })?;
    let flag = |column: &str| row.try_get::<bool, _>(column).unwrap_or(true);
    let mut problems = Vec::new();
    for (column, what) in [
        ("rolsuper", "is a superuser"),
        ("rolcreaterole", "may create roles"),
        ("rolcreatedb", "may create databases"),
        ("rolreplication", "may replicate"),
        ("rolbypassrls", "bypasses row-level security"),
        ("owns", "owns the database, a schema or a table in it"),
    ] {
        if flag(column) {
            problems.push(what.to_owned());
        }
    }
    let member_of: Vec<String> = row.try_get("member_of").unwrap_or_default();
    if !member_of.is_empty() {
        problems.push(format!("is a member of {}", member_of.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ProvisionError::Unsafe {
            role: name.to_owned(),
            section: config_section(service),
            problem: problems.join(", "),
        })
    }
}
