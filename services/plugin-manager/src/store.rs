//! The registry's rows in PostgreSQL: plugins, instances, sealed secrets, the master key check
//! and the audit log.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use tributary_proto::events::InstanceState;
use tributary_proto::manifest::{Permission, PluginManifest};
use tributary_proto::requests::plugins::AuditEntry;

use crate::actor::Actor;
use crate::discovery::DiscoveredPlugin;
use crate::keys::SealedSecret;

/// A stored row could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A column holds something this version cannot read.
    #[error("the registry holds an unreadable {what}: {reason}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// One installed instance.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    /// Its id.
    pub id: String,
    /// Its plugin.
    pub plugin_id: String,
    /// The manifest of the version it runs.
    pub manifest: PluginManifest,
    /// The permissions accepted for it.
    pub accepted: Vec<Permission>,
    /// Its configuration without secrets.
    pub config: Value,
    /// Its state.
    pub state: InstanceState,
    /// A held upgrade: version and the permissions it adds.
    pub held: Option<(String, Vec<String>)>,
    /// When its service last reported it alive.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The last error reported.
    pub last_error: Option<String>,
    /// When it was installed.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The text stored for a state.
pub fn state_name(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Installed => "installed",
        InstanceState::Enabled => "enabled",
        InstanceState::Disabled => "disabled",
        InstanceState::Failed => "failed",
        InstanceState::NeedsReconnect => "needs_reconnect",
        InstanceState::Uninstalled => "uninstalled",
    }
}

fn parse_state(text: &str) -> Result<InstanceState, StoreError> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|e| StoreError::Corrupt {
        what: "instance state",
        reason: e.to_string(),
    })
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

const INSTANCE_COLUMNS: &str = "id, plugin_id, manifest, accepted_permissions, config, state, \
    held_version, held_permissions, last_heartbeat, last_error, created_at, updated_at";

fn instance_from(row: &sqlx::postgres::PgRow) -> Result<InstanceRow, StoreError> {
    let held_version: Option<String> = row.try_get("held_version")?;
    let held_permissions: Option<Value> = row.try_get("held_permissions")?;
    let held = match (held_version, held_permissions) {
        (Some(v), Some(p)) => Some((
            v,
            serde_json::from_value(p).map_err(corrupt("held permissions"))?,
        )),
        _ => None,
    };
    Ok(InstanceRow {
        id: row.try_get("id")?,
        plugin_id: row.try_get("plugin_id")?,
        manifest: serde_json::from_value(row.try_get("manifest")?).map_err(corrupt("manifest"))?,
        accepted: serde_json::from_value(row.try_get("accepted_permissions")?)
            .map_err(corrupt("accepted permissions"))?,
        config: row.try_get("config")?,
        state: parse_state(row.try_get("state")?)?,
        held,
        last_heartbeat: row.try_get("last_heartbeat")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Records the plugins a scan found (their newest manifests).
pub async fn upsert_plugins(
    pool: &PgPool,
    plugins: &[&DiscoveredPlugin],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for p in plugins {
        let manifest = serde_json::to_value(&p.manifest).map_err(corrupt("manifest"))?;
        sqlx::query(
            "INSERT INTO plugin (id, name, version, plugin_type, manifest, location) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, version = EXCLUDED.version, \
               plugin_type = EXCLUDED.plugin_type, manifest = EXCLUDED.manifest, \
               location = EXCLUDED.location, discovered_at = now() \
             WHERE plugin.manifest IS DISTINCT FROM EXCLUDED.manifest \
                OR plugin.location IS DISTINCT FROM EXCLUDED.location",
        )
        .bind(&p.manifest.id)
        .bind(&p.manifest.name)
        .bind(p.manifest.version.to_string())
        .bind(p.manifest.plugin_type.as_str())
        .bind(manifest)
        .bind(&p.location)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One instance, locked for the rest of the transaction.
pub async fn lock_instance(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<InstanceRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM plugin_instance WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(instance_from).transpose()
}

/// One instance.
pub async fn instance(pool: &PgPool, id: &str) -> Result<Option<InstanceRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM plugin_instance WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(instance_from).transpose()
}

/// Every instance, optionally of one plugin type and in one state, by id.
pub async fn instances(
    pool: &PgPool,
    plugin_type: Option<&str>,
    state: Option<&str>,
) -> Result<Vec<InstanceRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM plugin_instance \
         WHERE ($1::text IS NULL OR manifest->>'type' = $1) AND ($2::text IS NULL OR state = $2) \
         ORDER BY id"
    ))
    .bind(plugin_type)
    .bind(state)
    .fetch_all(pool)
    .await?;
    rows.iter().map(instance_from).collect()
}

/// Inserts a new instance; `false` when the id is taken.
pub async fn insert_instance(
    conn: &mut PgConnection,
    row: &InstanceRow,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO plugin_instance (id, plugin_id, version, manifest, accepted_permissions, \
           config, state) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.plugin_id)
    .bind(row.manifest.version.to_string())
    .bind(serde_json::to_value(&row.manifest).map_err(corrupt("manifest"))?)
    .bind(serde_json::to_value(&row.accepted).map_err(corrupt("accepted permissions"))?)
    .bind(&row.config)
    .bind(state_name(row.state))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes back every mutable column of an instance.
pub async fn save_instance(conn: &mut PgConnection, row: &InstanceRow) -> Result<(), StoreError> {
    let (held_version, held_permissions) = match &row.held {
        Some((v, p)) => (Some(v.clone()), Some(serde_json::json!(p))),
        None => (None, None),
    };
    sqlx::query(
        "UPDATE plugin_instance SET version = $2, manifest = $3, accepted_permissions = $4, \
           config = $5, state = $6, held_version = $7, held_permissions = $8, \
           last_heartbeat = $9, last_error = $10, updated_at = now() WHERE id = $1",
    )
    .bind(&row.id)
    .bind(row.manifest.version.to_string())
    .bind(serde_json::to_value(&row.manifest).map_err(corrupt("manifest"))?)
    .bind(serde_json::to_value(&row.accepted).map_err(corrupt("accepted permissions"))?)
    .bind(&row.config)
    .bind(state_name(row.state))
    .bind(held_version)
    .bind(held_permissions)
    .bind(row.last_heartbeat)
    .bind(&row.last_error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes an instance and (by cascade) its secrets.
pub async fn delete_instance(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM plugin_instance WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The sealed secrets of an instance, by field.
pub async fn secrets_of(
    conn: &mut PgConnection,
    instance_id: &str,
) -> Result<Vec<(String, SealedSecret)>, StoreError> {
    let rows = sqlx::query(
        "SELECT field, key_id, nonce, ciphertext FROM plugin_secret \
         WHERE instance_id = $1 ORDER BY field",
    )
    .bind(instance_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("field")?,
                SealedSecret {
                    key_id: r.try_get("key_id")?,
                    nonce: r.try_get("nonce")?,
                    ciphertext: r.try_get("ciphertext")?,
                },
            ))
        })
        .collect()
}

/// One sealed secret of an instance.
pub async fn secret_of(
    conn: &mut PgConnection,
    instance_id: &str,
    field: &str,
) -> Result<Option<SealedSecret>, StoreError> {
    let row = sqlx::query(
        "SELECT key_id, nonce, ciphertext FROM plugin_secret WHERE instance_id = $1 AND field = $2",
    )
    .bind(instance_id)
    .bind(field)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(SealedSecret {
            key_id: r.try_get("key_id")?,
            nonce: r.try_get("nonce")?,
            ciphertext: r.try_get("ciphertext")?,
        })
    })
    .transpose()
}

/// Stores (or replaces) one sealed secret.
pub async fn set_secret(
    conn: &mut PgConnection,
    instance_id: &str,
    field: &str,
    sealed: &SealedSecret,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plugin_secret (instance_id, field, key_id, nonce, ciphertext) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_id, field) DO UPDATE SET \
           key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, \
           updated_at = now()",
    )
    .bind(instance_id)
    .bind(field)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets one secret.
pub async fn clear_secret(
    conn: &mut PgConnection,
    instance_id: &str,
    field: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM plugin_secret WHERE instance_id = $1 AND field = $2")
        .bind(instance_id)
        .bind(field)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends to the audit log: `actor`'s established name as the actor, and what the request
/// claimed, if anything, as `detail.claimed_actor` ([`Actor::with_claim`]).
pub async fn audit(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    plugin_id: Option<&str>,
    instance_id: Option<&str>,
    detail: Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plugin_audit (actor, action, plugin_id, instance_id, detail) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor.name())
    .bind(action)
    .bind(plugin_id)
    .bind(instance_id)
    .bind(actor.with_claim(detail))
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest `limit` audit entries, of one instance or of all, oldest first.
pub async fn audit_log(
    pool: &PgPool,
    instance_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM (SELECT seq, at, actor, action, plugin_id, instance_id, detail \
           FROM plugin_audit WHERE ($1::text IS NULL OR instance_id = $1) \
           ORDER BY seq DESC LIMIT $2) newest ORDER BY seq",
    )
    .bind(instance_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                plugin_id: r.try_get("plugin_id")?,
                instance_id: r.try_get("instance_id")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// A source record an instance brought in, as a purge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecordKey {
    /// The entity type it maps to.
    pub entity_type: String,
    /// The source's own id of it.
    pub external_id: String,
    /// Whether it is a tombstone (the source deleted it).
    pub deleted: bool,
}

/// Every source record an instance brought in, tombstones too: a purge forgets them all.
pub async fn source_records_of(
    pool: &PgPool,
    instance_id: &str,
) -> Result<Vec<SourceRecordKey>, StoreError> {
    let rows = sqlx::query(
        "SELECT entity_type, external_id, deleted FROM source_record \
         WHERE instance_id = $1 ORDER BY entity_type, external_id",
    )
    .bind(instance_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SourceRecordKey {
                entity_type: r.try_get("entity_type")?,
                external_id: r.try_get("external_id")?,
                deleted: r.try_get("deleted")?,
            })
        })
        .collect()
}

/// How many source records of `instance_id` are stored: after a purge, those the ETL has not
/// forgotten yet.
pub async fn source_record_count(pool: &PgPool, instance_id: &str) -> Result<u64, StoreError> {
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM source_record WHERE instance_id = $1")
            .bind(instance_id)
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Deletes what other services keep of a purged instance in their own tables: the
/// connector's sync state and cursor (a reinstalled instance must sync from the start, not
/// resume a cursor that says everything was sent), the channel's outbound messages and the
/// provider ids of the inbound ones it announced, and the ETL's decisions and suggestions
/// about people that name one of its records (a reinstalled instance's records are new ones).
///
/// Done here, in the purge's transaction, rather than when those services next hear of the
/// purge, so that a reinstall that comes first cannot find them.
pub async fn delete_service_state(conn: &mut PgConnection, id: &str) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM connector_sync_state WHERE instance_id = $1",
        "DELETE FROM channel_outbound WHERE instance_id = $1",
        "DELETE FROM channel_inbound_message WHERE instance_id = $1",
        "DELETE FROM instance_kv WHERE instance_id = $1",
        // What people decided about its records, and the pairs left for them to decide.
        "DELETE FROM person_decision WHERE a_instance_id = $1 OR b_instance_id = $1",
        "DELETE FROM person_suggestion WHERE a_instance_id = $1 OR b_instance_id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *conn).await?;
    }
    Ok(())
}
