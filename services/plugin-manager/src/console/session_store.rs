//! The console's session store: tower-sessions records in PostgreSQL (`console_session`), so a
//! restart of the plugin manager signs nobody out and several plugin manager processes share
//! sessions. `tower-sessions-sqlx-store`, the store crate of tower-sessions' own project, is
//! still built on tower-sessions-core 0.14 while the workspace is on 0.15, whose trait it does
//! not implement; the trait is four methods, so this is them, over the plugin manager's pool
//! and its migrations.
//!
//! A record is its id (the random 128-bit session id, as tower-sessions prints it), its data as
//! JSON and its expiry; a record past its expiry is not loaded, and
//! [`PgSessionStore::delete_expired`] removes those (the plugin manager runs it every few
//! minutes).

use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

/// Sessions in the `console_session` table.
#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
}

impl PgSessionStore {
    /// A store on `pool`, whose database has run the migrations.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encoded(record: &Record) -> session_store::Result<serde_json::Value> {
    serde_json::to_value(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for PgSessionStore {
    /// Inserts the record; an id already taken (a 1 in 2¹²⁸ chance) gets a new one.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encoded(record)?;
        loop {
            let inserted = sqlx::query(
                "INSERT INTO console_session (id, data, expires_at) \
                 VALUES ($1, $2, to_timestamp($3)) ON CONFLICT (id) DO NOTHING",
            )
            .bind(record.id.to_string())
            .bind(&data)
            .bind(record.expiry_date.unix_timestamp() as f64)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        sqlx::query(
            "INSERT INTO console_session (id, data, expires_at) \
             VALUES ($1, $2, to_timestamp($3)) \
             ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at",
        )
        .bind(record.id.to_string())
        .bind(encoded(record)?)
        .bind(record.expiry_date.unix_timestamp() as f64)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(serde_json::Value, i64)> = sqlx::query_as(
            "SELECT data, extract(epoch FROM expires_at)::bigint FROM console_session \
             WHERE id = $1 AND expires_at > now()",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some((data, expires)) = row else {
            return Ok(None);
        };
        let data = serde_json::from_value(data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(expires)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM console_session WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for PgSessionStore {
    /// Removes every record past its expiry.
    async fn delete_expired(&self) -> session_store::Result<()> {
        sqlx::query("DELETE FROM console_session WHERE expires_at <= now()")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
