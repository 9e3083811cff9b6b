//! Each service's own PostgreSQL role in a test, as a deployment has them: provisioned in the
//! test's database by the real provisioning step ([`crate::db::provision`]), under names of
//! the test's own (roles are the whole cluster's, and tests run in parallel), dropped when
//! the handle is.

use sqlx::{Connection, PgConnection};
use tributary_proto::ServiceName;

use super::TestEnv;
use crate::config::{config_section, Config, DatabaseConfig};

/// The five service roles of one test, provisioned in its database.
#[derive(Debug)]
pub struct TestRoles {
    /// The configuration the roles were provisioned with (`database.roles` named for this
    /// test), as the test's owner (the server's superuser) connects.
    owner: DatabaseConfig,
}

impl TestRoles {
    /// Migrates `env`'s database and provisions the five roles in it, named
    /// `<prefix>_<service>`, as `tributary db provision` does in a deployment.
    pub async fn provision(env: &TestEnv) -> Self {
        let mut owner = env.original.database.clone();
        owner.name.clone_from(&env.database);
        for service in ServiceName::ALL {
            let user = format!("{}_{}", env.prefix, config_section(service));
            match service {
                ServiceName::PluginManager => owner.roles.plugin_manager.user = user,
                ServiceName::Connector => owner.roles.connector.user = user,
                ServiceName::Etl => owner.roles.etl.user = user,
                ServiceName::Channel => owner.roles.channel.user = user,
                ServiceName::Search => owner.roles.search.user = user,
            }
        }
        crate::db::provision::provision(&owner)
            .await
            .unwrap_or_else(|e| panic!("provisioning the test's roles: {e}"));
        Self { owner }
    }

    /// The configuration the provisioning ran with (its `roles` are this test's).
    pub fn owner_config(&self) -> &DatabaseConfig {
        &self.owner
    }

    /// The role of `service`.
    pub fn user(&self, service: ServiceName) -> &str {
        &self.owner.roles.of(service).user
    }

    /// `env`'s configuration for `service` as a deployment runs it: connected as its own
    /// role, not migrating.
    pub fn config_for(&self, env: &TestEnv, service: ServiceName) -> Config {
        let mut config = env.config.clone();
        config.database.user = self.user(service).to_owned();
        config.database.migrate = false;
        config
    }

    /// A connection to the test's database as `service`'s role: what a compromised service
    /// could do with its credentials.
    pub async fn connect_as(&self, service: ServiceName) -> PgConnection {
        let mut config = self.owner.clone();
        config.user = self.user(service).to_owned();
        PgConnection::connect_with(&crate::db::connect_options(&config, &config.name))
            .await
            .unwrap_or_else(|e| panic!("cannot connect as {}: {e}", config.user))
    }

    async fn drop_roles(owner: DatabaseConfig, users: Vec<String>) {
        let quoted: Vec<String> = users
            .iter()
            .map(|u| format!("\"{}\"", u.replace('"', "\"\"")))
            .collect();
        let list = quoted.join(", ");
        // Their grants and policies first, while the database is there (if the environment
        // has not dropped it yet): a role something still refers to cannot be dropped.
        if let Ok(mut conn) =
            PgConnection::connect_with(&crate::db::connect_options(&owner, &owner.name)).await
        {
            let _ = sqlx::raw_sql(&format!("DROP OWNED BY {list}"))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
        if let Ok(mut conn) =
            PgConnection::connect_with(&crate::db::connect_options(&owner, "postgres")).await
        {
            let _ = sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {list}"))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for TestRoles {
    fn drop(&mut self) {
        let owner = self.owner.clone();
        let users = ServiceName::ALL
            .iter()
            .map(|s| self.user(*s).to_owned())
            .collect();
        // As TestEnv's clean-up: its own thread and runtime, so it works after a panic too.
        let cleaner = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let dropping = Self::drop_roles(owner, users);
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(30), dropping).await;
                });
            }
        });
        let _ = cleaner.join();
    }
}
