//! The NATS users of `tributary up`'s own server: the users of `deploy/nats-server.conf`, the
//! file compose mounts, with the same permissions, each with a password made on first start
//! and kept under `<data_dir>/secrets/nats/`, readable by its owner only.
//!
//! The embedded server runs that very file (its text is built into the binary), so the
//! permissions a service has under `tributary up` are the ones it has in a compose
//! deployment, and `services/tributary/tests/nats_permissions.rs` holds both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use tributary_kit::{Config, ConfigSources};

use super::LocalServerError;

/// `deploy/nats-server.conf`: the users, their permissions, JetStream. It reads each user's
/// password from `$NATS_<USER>_PASSWORD` and the store directory from `$NATS_STORE_DIR`.
pub const SERVER_CONF: &str = include_str!("../../../../deploy/nats-server.conf");

/// The user the `tributary` commands other than `up` connect as: the operator's.
pub const ADMIN_USER: &str = "admin";

/// The users `SERVER_CONF` defines, in the order it defines them.
pub fn users_in(conf: &str) -> Vec<String> {
    conf.lines()
        .filter_map(|line| line.trim().strip_prefix("user:"))
        .map(|rest| rest.trim().trim_matches('"').to_owned())
        .filter(|user| !user.is_empty())
        .collect()
}

/// The environment variable the server configuration reads `user`'s password from:
/// `NATS_PLUGIN_MANAGER_PASSWORD` for `plugin-manager`.
pub fn password_variable(user: &str) -> String {
    format!("NATS_{}_PASSWORD", user.to_uppercase().replace('-', "_"))
}

/// The directory the passwords are kept in: `<data_dir>/secrets/nats`.
pub fn users_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("nats")
}

/// Where `tributary up` writes the URL of the NATS server it started, for the other
/// commands: `<data_dir>/nats/url`. It is removed when the server stops.
pub fn url_file(data_dir: &Path) -> PathBuf {
    data_dir.join("nats").join("url")
}

/// Every user of [`SERVER_CONF`] with its password.
pub struct NatsUsers {
    passwords: BTreeMap<String, SecretString>,
}

impl std::fmt::Debug for NatsUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsUsers")
            .field("users", &self.passwords.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NatsUsers {
    /// Reads each user's password from `<data_dir>/secrets/nats/<user>`, making the ones
    /// missing (the directory 0700, each file 0600). A file others may read or change is
    /// refused, naming it and the `chmod` that fixes it.
    pub fn ensure(data_dir: &Path) -> Result<Self, LocalServerError> {
        let users = users_in(SERVER_CONF);
        let passwords = super::passwords::ensure(
            &users_dir(data_dir),
            users.iter().map(String::as_str),
            "the NATS password",
        )?;
        Ok(NatsUsers { passwords })
    }

    /// The password of one user, from `<data_dir>/secrets/nats/<user>`, when that file exists
    /// (an earlier `tributary up` made it).
    pub fn password_of(
        data_dir: &Path,
        user: &str,
    ) -> Result<Option<SecretString>, LocalServerError> {
        let file = users_dir(data_dir).join(user);
        if !file.exists() {
            return Ok(None);
        }
        super::passwords::read(&file, &format!("the NATS password of {user}")).map(Some)
    }

    /// `user`'s password.
    pub fn password(&self, user: &str) -> Option<&SecretString> {
        self.passwords.get(user)
    }

    /// The environment the server needs to read [`SERVER_CONF`]: each password variable.
    pub fn server_environment(&self) -> Vec<(String, String)> {
        self.passwords
            .iter()
            .map(|(user, password)| (password_variable(user), password.expose_secret().to_owned()))
            .collect()
    }

    /// `config` with `nats.user` and `nats.password` set to `user`'s.
    pub fn config_as(&self, config: &Config, user: &str) -> Config {
        let mut config = config.clone();
        if let Some(password) = self.password(user) {
            config.nats.user = user.to_owned();
            config.nats.password = password.clone();
        }
        config
    }
}

/// For the commands other than `up`: when neither `nats.url` nor `nats.user` is configured,
/// connects to the server `tributary up` runs (the URL it wrote under the data directory, or
/// the default) as `admin`, with the password it made. Changes nothing when `up` never ran
/// with this data directory.
pub fn connect_as_admin(
    config: &mut Config,
    sources: &ConfigSources,
) -> Result<(), LocalServerError> {
    if sources.sets("nats.url") || sources.sets("nats.user") {
        return Ok(());
    }
    let Some(password) = NatsUsers::password_of(&config.data_dir, ADMIN_USER)? else {
        return Ok(());
    };
    let file = url_file(&config.data_dir);
    if let Ok(url) = std::fs::read_to_string(&file) {
        if !url.trim().is_empty() {
            config.nats.url = url.trim().to_owned();
        }
    }
    config.nats.user = ADMIN_USER.to_owned();
    config.nats.password = password;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_user_of_the_deployment_file_reads_its_password_from_its_own_variable() {
        let users = users_in(SERVER_CONF);
        for service in tributary_proto::ServiceName::ALL {
            assert!(users.iter().any(|u| u == service.as_str()), "{service}");
        }
        assert!(users.iter().any(|u| u == ADMIN_USER));
        for user in &users {
            let reference = format!("password: ${}", password_variable(user));
            assert!(SERVER_CONF.contains(&reference), "{user}: {reference}");
        }
        let variables = SERVER_CONF.matches("password: $").count();
        assert_eq!(variables, users.len(), "a password for every user, no more");
    }

    #[test]
    fn passwords_are_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = NatsUsers::ensure(dir.path()).unwrap();
        let again = NatsUsers::ensure(dir.path()).unwrap();
        for user in users_in(SERVER_CONF) {
            let password = first.password(&user).unwrap().expose_secret().to_owned();
            assert!(
                password.starts_with('n') && password.len() == 65,
                "{password}"
            );
            assert_eq!(again.password(&user).unwrap().expose_secret(), password);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode(&users_dir(dir.path()).join(&user)), 0o600);
                assert_eq!(mode(&users_dir(dir.path())), 0o700);
            }
        }
        let admin = first.password(ADMIN_USER).unwrap().expose_secret();
        let connector = first.password("connector").unwrap().expose_secret();
        assert_ne!(admin, connector, "each user has its own");
    }

    #[cfg(unix)]
    #[test]
    fn a_password_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        NatsUsers::ensure(dir.path()).unwrap();
        let file = users_dir(dir.path()).join("connector");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = NatsUsers::ensure(dir.path()).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert!(error.contains("connector"), "{error}");
    }
}
