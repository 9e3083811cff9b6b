//! The master key against the database: a check at start-up that the configured key is the
//! one the stored secrets are sealed under, and rotation to a new key.

use sqlx::{PgPool, Row};
use tributary_kit::ConfigError;

use crate::keys::{MasterKey, SealedSecret};
use crate::store::{self, StoreError};

const CHECK_VALUE: &str = "tributary master key check";
const CHECK_CONTEXT: &str = "plugin_master_key";

/// The context a secret is sealed under: its instance and field.
pub fn secret_context(instance_id: &str, field: &str) -> String {
    format!("{instance_id}\u{0}{field}")
}

/// Why a key cannot be used with this database.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key is not the one the secrets are sealed under.
    #[error("key {given} does not open the stored secrets, which are sealed under key {stored}")]
    WrongKey {
        /// The id of the key given.
        given: String,
        /// The id of the key in use.
        stored: String,
    },
    /// A stored secret did not open.
    #[error("the secret `{field}` of instance `{instance_id}` does not open: {reason}")]
    Unreadable {
        /// Its instance.
        instance_id: String,
        /// Its field.
        field: String,
        /// Why.
        reason: String,
    },
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for VaultError {
    fn from(e: sqlx::Error) -> Self {
        VaultError::Store(StoreError::Database(e))
    }
}

/// Checks at start-up that `key` is the key the secrets are sealed under; on a database with
/// no secrets yet, records it as the key (a new database, or one whose earlier key never
/// sealed anything). A wrong key while secrets are stored is a configuration error naming the
/// setting, and nothing is changed.
pub async fn check_master_key(pool: &PgPool, key: &MasterKey) -> Result<(), KitOrConfig> {
    let mut tx = pool.begin().await.map_err(VaultError::from)?;
    let row = sqlx::query(
        "SELECT key_id, nonce, ciphertext FROM plugin_master_key WHERE singleton FOR UPDATE",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(VaultError::from)?;
    let wrong = |stored: String| {
        KitOrConfig::Config(ConfigError::new(
            "plugin_manager.master_key",
            format!(
                "this key (id {}) does not open the plugin secrets stored in the database, which are sealed under key {stored}; start with the key they were sealed under, and change keys only with `tributary plugins rotate-key`",
                key.id()
            ),
        ))
    };
    match row {
        Some(row) => {
            let sealed = SealedSecret {
                key_id: row.try_get("key_id").map_err(VaultError::from)?,
                nonce: row.try_get("nonce").map_err(VaultError::from)?,
                ciphertext: row.try_get("ciphertext").map_err(VaultError::from)?,
            };
            if key.open(&sealed, CHECK_CONTEXT).is_err() {
                // A different key with no secret sealed yet loses nothing: it becomes the key.
                let sealed_secrets: i64 = sqlx::query_scalar("SELECT count(*) FROM plugin_secret")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(VaultError::from)?;
                if sealed_secrets > 0 {
                    return Err(wrong(sealed.key_id));
                }
                tracing::warn!(
                    previous = %sealed.key_id,
                    key = key.id(),
                    "The master key changed while no secret was stored; the new key is now the one in use."
                );
                write_check(&mut tx, key).await?;
            }
        }
        None => {
            let other: Option<String> =
                sqlx::query_scalar("SELECT key_id FROM plugin_secret WHERE key_id <> $1 LIMIT 1")
                    .bind(key.id())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(VaultError::from)?;
            if let Some(stored) = other {
                return Err(wrong(stored));
            }
            write_check(&mut tx, key).await?;
        }
    }
    tx.commit().await.map_err(VaultError::from)?;
    Ok(())
}

async fn write_check(conn: &mut sqlx::PgConnection, key: &MasterKey) -> Result<(), VaultError> {
    let check = key.seal(CHECK_VALUE, CHECK_CONTEXT);
    sqlx::query(
        "INSERT INTO plugin_master_key (singleton, key_id, nonce, ciphertext) \
         VALUES (true, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE SET key_id = EXCLUDED.key_id, \
           nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, rotated_at = now()",
    )
    .bind(&check.key_id)
    .bind(&check.nonce)
    .bind(&check.ciphertext)
    .execute(conn)
    .await?;
    Ok(())
}

/// A start-up check failed: either the key does not fit, or the database does not answer.
#[derive(Debug, thiserror::Error)]
pub enum KitOrConfig {
    /// The configured key is wrong.
    #[error(transparent)]
    Config(ConfigError),
    /// The database failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Re-seals every secret from `old` to `new` in one transaction, and records `new` as the
/// key in use. Either every secret moves or none does. Returns how many secrets moved.
pub async fn rotate_master_key(
    pool: &PgPool,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, VaultError> {
    let mut tx = pool.begin().await?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT key_id FROM plugin_master_key WHERE singleton FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(stored) = stored {
        if stored != old.id() {
            return Err(VaultError::WrongKey {
                given: old.id().to_owned(),
                stored,
            });
        }
    }
    let instances: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT instance_id FROM plugin_secret ORDER BY 1")
            .fetch_all(&mut *tx)
            .await?;
    let mut moved = 0;
    for instance_id in instances {
        for (field, sealed) in store::secrets_of(&mut tx, &instance_id).await? {
            let context = secret_context(&instance_id, &field);
            let plain = old
                .open(&sealed, &context)
                .map_err(|e| VaultError::Unreadable {
                    instance_id: instance_id.clone(),
                    field: field.clone(),
                    reason: e.to_string(),
                })?;
            let resealed = new.seal(secrecy::ExposeSecret::expose_secret(&plain), &context);
            store::set_secret(&mut tx, &instance_id, &field, &resealed).await?;
            moved += 1;
        }
    }
    write_check(&mut tx, new).await?;
    store::audit(
        &mut tx,
        &crate::actor::Actor::fixed("rotate-key"),
        "rotate_master_key",
        None,
        None,
        serde_json::json!({ "from_key": old.id(), "to_key": new.id(), "secrets": moved }),
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}
