//! The PostgreSQL roles of `tributary up`'s own cluster: one per service, as in a compose
//! deployment (deploy/postgres/grants.sql), each with a password made on first start and kept
//! under `<data_dir>/secrets/postgres/<service>`, readable by its owner only.
//!
//! `tributary up` provisions them as the cluster's owner before the services start
//! ([`tributary_kit::db::provision`]: migrations, roles, grants), and each service then
//! connects as its own role with `database.migrate = false`: the channel service, the one
//! facing the internet, reads no secret and rewrites no instance, as in a deployment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tributary_kit::Config;
use tributary_proto::ServiceName;

use super::LocalServerError;

/// The directory the role passwords are kept in: `<data_dir>/secrets/postgres`.
pub fn roles_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("postgres")
}

/// Each service's role password for `tributary up`'s own PostgreSQL cluster.
pub struct ServiceRoles {
    passwords: BTreeMap<String, SecretString>,
}

impl std::fmt::Debug for ServiceRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRoles")
            .field("services", &self.passwords.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ServiceRoles {
    /// Reads each service's password from `<data_dir>/secrets/postgres/<service>`, making the
    /// ones missing; a file others may read or change is refused.
    pub fn ensure(data_dir: &Path) -> Result<Self, LocalServerError> {
        let passwords = super::passwords::ensure(
            &roles_dir(data_dir),
            ServiceName::ALL.iter().map(|service| service.as_str()),
            "the PostgreSQL password",
        )?;
        Ok(ServiceRoles { passwords })
    }

    /// Sets each `database.roles.<service>.password` of `config` to the service's password,
    /// for the provisioning step.
    pub fn fill(&self, config: &mut Config) {
        for service in ServiceName::ALL {
            if let Some(password) = self.passwords.get(service.as_str()) {
                config.database.roles.of_mut(service).password = password.clone();
            }
        }
    }

    /// `config` as `service` connects with it: as its own role, with its password, checking
    /// the schema rather than migrating it (the provisioning step did).
    pub fn config_of(&self, config: &Config, service: ServiceName) -> Config {
        let mut config = config.clone();
        let role = config.database.roles.of(service).clone();
        if let Some(password) = self.passwords.get(service.as_str()) {
            config.database.user = role.user;
            config.database.password = password.clone();
            config.database.migrate = false;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn each_service_connects_as_its_own_role_with_its_own_password_and_does_not_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let roles = ServiceRoles::ensure(dir.path()).unwrap();
        let mut base = Config::defaults().unwrap();
        base.database.user = "tributary".into();
        roles.fill(&mut base);
        let mut seen = std::collections::HashSet::new();
        for service in ServiceName::ALL {
            let config = roles.config_of(&base, service);
            assert_eq!(
                config.database.user,
                base.database.roles.of(service).user,
                "{service}"
            );
            assert_ne!(config.database.user, "tributary");
            assert!(!config.database.migrate, "{service}");
            let password = config.database.password.expose_secret().to_owned();
            assert_eq!(
                password,
                base.database.roles.of(service).password.expose_secret(),
                "provisioning sets the password the service connects with"
            );
            assert!(seen.insert(password), "{service} has a password of its own");
        }
        let again = ServiceRoles::ensure(dir.path()).unwrap();
        let etl = |r: &ServiceRoles| r.config_of(&base, ServiceName::Etl).database.password;
        assert_eq!(
            etl(&again).expose_secret(),
            etl(&roles).expose_secret(),
            "kept"
        );
    }
}
