//! The master key that seals plugin secrets, and the admin API's bearer token, both read from
//! configuration (inline, or from a file).
//!
//! Secrets are sealed with XChaCha20-Poly1305 under a random 192-bit nonce. The instance id and
//! field name are the associated data, so a sealed value cannot be moved to another field.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tributary_kit::config::PluginManagerConfig;
use tributary_kit::{Config, ConfigError};

/// Bytes in a master key.
pub const MASTER_KEY_BYTES: usize = 32;

/// A secret value sealed under a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The id of the key it is sealed under.
    pub key_id: String,
    /// The random nonce.
    pub nonce: Vec<u8>,
    /// The ciphertext with its authentication tag.
    pub ciphertext: Vec<u8>,
}

/// A sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// It was sealed under another key.
    #[error(
        "the secret is sealed under key {sealed_under}, not under the configured key {configured}"
    )]
    OtherKey {
        /// The key it is sealed under.
        sealed_under: String,
        /// The key given.
        configured: String,
    },
    /// The ciphertext, nonce or context does not authenticate.
    #[error("the secret does not authenticate under key {0}: it was altered or moved")]
    Tampered(String),
}

/// The key that seals every plugin secret. Its [`MasterKey::id`] (a digest, not the key) is
/// stored next to each sealed value, so a wrong key is recognised before it is used.
#[derive(Clone)]
pub struct MasterKey {
    key: Key,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    fn from_bytes(bytes: [u8; MASTER_KEY_BYTES]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"tributary master key id\0")
            .chain_update(bytes)
            .finalize();
        Self {
            key: bytes.into(),
            id: hex::encode(&digest[..8]),
        }
    }

    /// Reads a base64-encoded 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let bytes: [u8; MASTER_KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "must be {MASTER_KEY_BYTES} bytes, found {}; make one with `tributary plugins generate-key`",
                b.len()
            )
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key in base64, to write to a key file.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(BASE64.encode(self.key.as_slice()))
    }

    /// A short digest naming the key (not the key).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, plaintext: &str, context: &str) -> SealedSecret {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption in memory with a valid key and nonce cannot fail.
        let ciphertext = XChaCha20Poly1305::new(&self.key)
            .encrypt(&nonce, payload)
            .unwrap_or_default();
        SealedSecret {
            key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Opens a value sealed with [`MasterKey::seal`] under the same context.
    pub fn open(&self, sealed: &SealedSecret, context: &str) -> Result<SecretString, SealError> {
        if sealed.key_id != self.id {
            return Err(SealError::OtherKey {
                sealed_under: sealed.key_id.clone(),
                configured: self.id.clone(),
            });
        }
        if sealed.nonce.len() != 24 {
            return Err(SealError::Tampered(self.id.clone()));
        }
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: context.as_bytes(),
        };
        let plain = XChaCha20Poly1305::new(&self.key)
            .decrypt(XNonce::from_slice(&sealed.nonce), payload)
            .map_err(|_| SealError::Tampered(self.id.clone()))?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SealError::Tampered(self.id.clone()))
    }
}

use tributary_kit::http::{bearer_token_from, inline_or_file};

/// The master key configured in `plugin_manager.master_key` or `plugin_manager.master_key_file`.
pub fn master_key_from(config: &PluginManagerConfig) -> Result<MasterKey, ConfigError> {
    let text = inline_or_file(
        &config.master_key,
        &config.master_key_file,
        "plugin_manager.master_key",
        "the master key that encrypts plugin secrets",
    )?;
    let key = if config.master_key.expose_secret().trim().is_empty() {
        "plugin_manager.master_key_file"
    } else {
        "plugin_manager.master_key"
    };
    MasterKey::from_base64(text.expose_secret()).map_err(|m| ConfigError::new(key, m))
}

/// The admin API token configured in `plugin_manager.admin_token` or `…admin_token_file`.
pub fn admin_token_from(config: &PluginManagerConfig) -> Result<SecretString, ConfigError> {
    bearer_token_from(
        &config.admin_token,
        &config.admin_token_file,
        "plugin_manager.admin_token",
        "the admin API's bearer token",
    )
}

/// Where `tributary up` keeps the keys it makes: `<data_dir>/secrets`.
pub fn local_keys_dir(config: &Config) -> PathBuf {
    config.data_dir.join("secrets")
}

/// The master key file `tributary up` makes when no key is configured.
pub fn local_master_key_file(config: &Config) -> PathBuf {
    local_keys_dir(config).join(LOCAL_MASTER_KEY)
}

const LOCAL_MASTER_KEY: &str = "master.key";

/// A key `tributary up` may make when none is configured.
struct LocalKey<'a> {
    /// Its inline setting.
    inline: &'a mut SecretString,
    /// Its file setting.
    file: &'a mut PathBuf,
    /// The inline setting's configuration key.
    setting: &'static str,
    /// The file's name under `<data_dir>/secrets/`.
    name: &'static str,
    /// Makes a new value.
    make: fn() -> String,
    /// What it is for, for the line `tributary up` prints about it.
    purpose: &'static str,
}

impl LocalKey<'_> {
    /// Whether it is configured, inline or as a file.
    fn configured(&self) -> bool {
        !self.inline.expose_secret().trim().is_empty() || !self.file.as_os_str().is_empty()
    }
}

/// A key file [`ensure_local_keys`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeKey {
    /// Where it is.
    pub file: PathBuf,
    /// What it is for and what depends on it, for the line `tributary up` prints about it.
    pub purpose: &'static str,
}

/// The keys of `config` that `tributary up` makes when neither an inline value nor a file is
/// configured: the master key, the admin token and the search API token.
fn local_keys(config: &mut Config) -> [LocalKey<'_>; 3] {
    let pm = &mut config.plugin_manager;
    let search = &mut config.search;
    let token = random_token;
    [
        LocalKey {
            inline: &mut pm.master_key,
            file: &mut pm.master_key_file,
            setting: "plugin_manager.master_key",
            name: LOCAL_MASTER_KEY,
            make: || MasterKey::generate().to_base64().expose_secret().to_owned(),
            purpose:
                "the master key that seals plugin secrets (keep it: they cannot be read without it)",
        },
        LocalKey {
            inline: &mut pm.admin_token,
            file: &mut pm.admin_token_file,
            setting: "plugin_manager.admin_token",
            name: "admin.token",
            make: token,
            purpose: "the bearer token of the plugin manager's admin HTTP API",
        },
        LocalKey {
            inline: &mut search.api_token,
            file: &mut search.api_token_file,
            setting: "search.api_token",
            name: "search.token",
            make: token,
            purpose: "the bearer token of the search HTTP API (GET /search)",
        },
    ]
}

/// For one machine (`tributary up`): when neither an inline value nor a file is configured for
/// the master key, the admin token or the search API token, points the config at
/// `<data_dir>/secrets/` and creates the files there (readable by the owner only) if they do
/// not exist. Returns the files made, each with what it is for.
pub fn ensure_local_keys(config: &mut Config) -> std::io::Result<Vec<MadeKey>> {
    let dir = local_keys_dir(config);
    let mut made = Vec::new();
    for key in local_keys(config) {
        if key.configured() {
            continue;
        }
        let path = dir.join(key.name);
        if !path.exists() {
            write_private(&path, &(key.make)())?;
            made.push(MadeKey {
                file: path.clone(),
                purpose: key.purpose,
            });
        }
        *key.file = path;
    }
    Ok(made)
}

/// For `tributary check-config`: each key `tributary up` would take from `<data_dir>/secrets/`
/// (none configured) is pointed at its file where that exists, and otherwise given a value
/// made in memory only, so that the checks that follow judge the configuration `up` would run
/// with, and nothing is written. Returns the settings of the keys `up` would make, with where.
pub fn assume_local_keys(config: &mut Config) -> Vec<(&'static str, PathBuf)> {
    let dir = local_keys_dir(config);
    let mut to_make = Vec::new();
    for key in local_keys(config) {
        if key.configured() {
            continue;
        }
        let path = dir.join(key.name);
        if path.exists() {
            *key.file = path;
        } else {
            *key.inline = SecretString::from((key.make)());
            to_make.push((key.setting, path));
        }
    }
    to_make
}

/// 256 random bits from the operating system, as 64 hexadecimal digits: a bearer token or a
/// password `tributary up` makes.
pub fn random_token() -> String {
    hex::encode(MasterKey::generate().key.as_slice())
}

/// Writes `contents` and a newline to a new file at `path` (making its parents) that only its
/// owner may read and write (0600); fails if the file exists.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal("hunter2-token", "inst/accessToken");
        assert!(!String::from_utf8_lossy(&sealed.ciphertext).contains("hunter2"));
        assert_eq!(
            key.open(&sealed, "inst/accessToken")
                .unwrap()
                .expose_secret(),
            "hunter2-token"
        );
        assert!(matches!(
            key.open(&sealed, "other/accessToken"),
            Err(SealError::Tampered(_))
        ));
        let other = MasterKey::generate();
        assert!(matches!(
            other.open(&sealed, "inst/accessToken"),
            Err(SealError::OtherKey { .. })
        ));
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(key.open(&flipped, "inst/accessToken").is_err());
    }

    #[test]
    fn a_key_round_trips_through_base64_and_bad_keys_say_why() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(key.to_base64().expose_secret()).unwrap();
        assert_eq!(key.id(), again.id());
        assert!(MasterKey::from_base64("not base64!!")
            .unwrap_err()
            .contains("base64"));
        assert!(MasterKey::from_base64(&BASE64.encode([0u8; 16]))
            .unwrap_err()
            .contains("32 bytes"));
    }

    #[test]
    fn missing_keys_name_the_setting() {
        let config = Config::defaults().unwrap();
        let err = master_key_from(&config.plugin_manager).unwrap_err();
        assert_eq!(err.key, "plugin_manager.master_key");
        let err = admin_token_from(&config.plugin_manager).unwrap_err();
        assert_eq!(err.key, "plugin_manager.admin_token");
        let mut config = config;
        config.plugin_manager.master_key_file = "/nonexistent/master.key".into();
        let err = master_key_from(&config.plugin_manager).unwrap_err();
        assert_eq!(err.key, "plugin_manager.master_key_file");
        config.plugin_manager.master_key = SecretString::from("short".to_owned());
        let err = master_key_from(&config.plugin_manager).unwrap_err();
        assert_eq!(err.key, "plugin_manager.master_key");
    }

    #[test]
    fn local_keys_are_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("pm-keys-{}", uuid::Uuid::new_v4()));
        let mut config = Config::defaults().unwrap();
        config.data_dir = dir.clone();
        let made = ensure_local_keys(&mut config).unwrap();
        assert_eq!(
            made.len(),
            3,
            "master key, admin token, search token: {made:?}"
        );
        let first = master_key_from(&config.plugin_manager).unwrap();
        admin_token_from(&config.plugin_manager).unwrap();
        let search = &config.search;
        bearer_token_from(
            &search.api_token,
            &search.api_token_file,
            "search.api_token",
            "the search token",
        )
        .unwrap();
        let mut again = Config::defaults().unwrap();
        again.data_dir = dir.clone();
        assert!(ensure_local_keys(&mut again).unwrap().is_empty());
        assert_eq!(
            master_key_from(&again.plugin_manager).unwrap().id(),
            first.id()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_local_key_made_says_what_it_is_for() {
        let dir = std::env::temp_dir().join(format!("pm-keys-{}", uuid::Uuid::new_v4()));
        let mut config = Config::defaults().unwrap();
        config.data_dir = dir.clone();
        let made = ensure_local_keys(&mut config).unwrap();
        let purpose = |name: &str| {
            made.iter()
                .find(|k| k.file.ends_with(name))
                .map(|k| k.purpose)
                .unwrap()
        };
        assert!(purpose("master.key").contains("plugin secrets"));
        for (name, api) in [("admin.token", "admin"), ("search.token", "search")] {
            let purpose = purpose(name);
            assert!(purpose.contains(api), "{name}: {purpose}");
            assert!(!purpose.contains("plugin secrets"), "{name}: {purpose}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
