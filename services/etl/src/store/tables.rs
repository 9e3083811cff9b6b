//! The statements of a batch against the tables: locking and reading the stored source
//! records, writing source records and entity rows, and linking messages to conversations.
//!
//! What a batch knows to be new (source records never seen, entities with a fresh id) is
//! written with `COPY`; what may exist already is upserted from one JSON array per table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use tributary_proto::model::{EntityType, Message};
use uuid::Uuid;

use super::copy::CopyText;
use super::plan::StoredSource;
use super::{sql, BatchChanges, EntityRows, StoreError};
use crate::normalise::{NormalisedItem, SourceKey};

/// The columns of `keys`, as the `unnest($1, $2, $3)` of a statement on source keys takes them.
fn key_columns<'k>(
    keys: impl Iterator<Item = &'k SourceKey>,
) -> (Vec<&'k str>, Vec<&'k str>, Vec<&'k str>) {
    let (mut instances, mut types, mut externals) = (Vec::new(), Vec::new(), Vec::new());
    for key in keys {
        instances.push(key.instance_id.as_str());
        types.push(key.entity_type.as_str());
        externals.push(key.external_id.as_str());
    }
    (instances, types, externals)
}

/// Locks the stored source records of `keys` for the rest of the transaction.
pub(super) async fn lock_sources<'k>(
    tx: &mut Transaction<'static, Postgres>,
    keys: impl Iterator<Item = &'k SourceKey>,
) -> Result<HashMap<SourceKey, StoredSource>, StoreError> {
    let (instances, types, externals) = key_columns(keys);
    let rows = sqlx::query(sql::LOCK_SOURCES)
        .bind(&instances)
        .bind(&types)
        .bind(&externals)
        .fetch_all(&mut **tx)
        .await?;
    let mut stored = HashMap::with_capacity(rows.len());
    for row in rows {
        let entity_type: String = row.try_get("entity_type")?;
        let Ok(entity_type) = entity_type.parse() else {
            continue;
        };
        stored.insert(
            SourceKey {
                instance_id: row.try_get("instance_id")?,
                entity_type,
                external_id: row.try_get("external_id")?,
            },
            StoredSource {
                entity_id: row.try_get("entity_id")?,
                version: row.try_get("source_modified_at")?,
                content_hash: row.try_get("content_hash")?,
                deleted: row.try_get("deleted")?,
            },
        );
    }
    Ok(stored)
}

/// Appends the source record of `item`, which maps to `entity_id`, as a row of
/// [`sql::COPY_SOURCES`].
pub fn copy_source_row(copy: &mut CopyText, item: &NormalisedItem, entity_id: Uuid) {
    copy.text(&item.key.instance_id);
    copy.text(item.key.entity_type.as_str());
    copy.text(&item.key.external_id);
    copy.text(&entity_id.to_string());
    copy.text(&item.version.to_rfc3339());
    copy.text(&item.content_hash);
    copy.json(&item.raw);
    copy.json(&item.json);
    copy.bool(item.fields.is_none());
    copy.end_row();
}

/// Writes the batch's source records: the new ones with `COPY` (in key order, so that two
/// batches inserting the same new keys wait on each other rather than deadlock; the second
/// fails with a unique violation, a conflict, and is written again), the others upserted;
/// those of a purge are forgotten instead.
pub(super) async fn write_sources(
    tx: &mut Transaction<'static, Postgres>,
    changes: &BatchChanges<'_>,
) -> Result<(), StoreError> {
    let (forgotten, kept): (Vec<_>, Vec<_>) = changes.sources.iter().partition(|s| s.item.forget);
    if !forgotten.is_empty() {
        forget_sources(tx, forgotten.iter().map(|s| &s.item.key)).await?;
    }
    let mut new: Vec<_> = kept.iter().filter(|s| s.new).collect();
    new.sort_by(|a, b| a.item.key.cmp(&b.item.key));
    if !new.is_empty() {
        let mut copy = CopyText::default();
        for source in new {
            copy_source_row(&mut copy, source.item, source.entity_id);
        }
        copy_in(tx, sql::COPY_SOURCES, copy).await?;
    }
    let known: Vec<Value> = kept
        .iter()
        .filter(|s| !s.new)
        .map(|s| {
            let item = s.item;
            json!({
                "instance_id": item.key.instance_id,
                "entity_type": item.key.entity_type.as_str(),
                "external_id": item.key.external_id,
                "entity_id": s.entity_id,
                "source_modified_at": item.version,
                "content_hash": item.content_hash,
                "raw": item.raw,
                "data": item.json,
                "deleted": item.fields.is_none(),
            })
        })
        .collect();
    if !known.is_empty() {
        sqlx::query(sql::UPSERT_SOURCES)
            .bind(Json(&known))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Deletes the source records of `keys`.
async fn forget_sources<'k>(
    tx: &mut Transaction<'static, Postgres>,
    keys: impl Iterator<Item = &'k SourceKey>,
) -> Result<(), StoreError> {
    let (instances, types, externals) = key_columns(keys);
    sqlx::query(sql::FORGET_SOURCES)
        .bind(&instances)
        .bind(&types)
        .bind(&externals)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes the rows of `entity`: the new ones with `COPY`, the others upserted. Returns the
/// creation time of the upserted ones, which may be older than this batch.
pub(super) async fn write_entities(
    tx: &mut Transaction<'static, Postgres>,
    entity: EntityType,
    rows: &EntityRows,
) -> Result<HashMap<Uuid, DateTime<Utc>>, StoreError> {
    if !rows.new.is_empty() {
        let columns = sql::columns(entity);
        let mut copy = CopyText::default();
        for row in &rows.new {
            copy.object_row(&columns, row);
        }
        copy_in(tx, &sql::copy_entities(entity), copy).await?;
    }
    if rows.existing.is_empty() {
        return Ok(HashMap::new());
    }
    sqlx::query(&sql::upsert_entities(entity))
        .bind(Json(&rows.existing))
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("created_at")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Runs `statement` (a `COPY … FROM STDIN`) with `data`.
async fn copy_in(
    tx: &mut Transaction<'static, Postgres>,
    statement: &str,
    data: CopyText,
) -> Result<(), StoreError> {
    let mut copy = tx.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data.into_bytes()).await {
        // The connection is left in COPY mode unless the copy is ended.
        let _ = copy.abort(e.to_string()).await;
        return Err(e.into());
    }
    copy.finish().await?;
    Ok(())
}

/// Fills in the conversation ids of the batch's messages from their conversations' source
/// keys, stored before or in this batch.
pub(super) async fn resolve_conversations(
    tx: &mut Transaction<'static, Postgres>,
    changes: &mut BatchChanges<'_>,
) -> Result<(), StoreError> {
    let mut in_batch: HashMap<(String, String), Uuid> = HashMap::new();
    let mut message_keys: HashMap<Uuid, (String, String)> = HashMap::new();
    for source in &changes.sources {
        let key = &source.item.key;
        match key.entity_type {
            // Conversations written in this batch: their source records carry their ids.
            EntityType::Conversation if source.item.fields.is_some() => {
                in_batch.insert(
                    (key.instance_id.clone(), key.external_id.clone()),
                    source.entity_id,
                );
            }
            EntityType::Message => {
                if let Some(conversation) = conversation_of(source.item) {
                    message_keys.insert(
                        source.entity_id,
                        (key.instance_id.clone(), conversation.to_owned()),
                    );
                }
            }
            _ => {}
        }
    }
    let wanted: Vec<&(String, String)> = message_keys
        .values()
        .filter(|k| !in_batch.contains_key(*k))
        .collect();
    if !wanted.is_empty() {
        let instances: Vec<&str> = wanted.iter().map(|k| k.0.as_str()).collect();
        let externals: Vec<&str> = wanted.iter().map(|k| k.1.as_str()).collect();
        let found = sqlx::query(sql::CONVERSATION_IDS)
            .bind(&instances)
            .bind(&externals)
            .fetch_all(&mut **tx)
            .await?;
        for row in found {
            in_batch.insert(
                (row.try_get("instance_id")?, row.try_get("external_id")?),
                row.try_get("entity_id")?,
            );
        }
    }
    let Some(rows) = changes.rows.get_mut(&EntityType::Message) else {
        return Ok(());
    };
    for row in rows.new.iter_mut().chain(rows.existing.iter_mut()) {
        let Some(id) = row
            .get("id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<Uuid>().ok())
        else {
            continue;
        };
        if let Some(conversation) = message_keys.get(&id).and_then(|k| in_batch.get(k)) {
            row["conversation_id"] = json!(conversation);
        }
    }
    Ok(())
}

/// The conversation an item is about, by its external id at the item's instance: a
/// conversation's own, or the one a message belongs to.
pub(super) fn conversation_of(item: &NormalisedItem) -> Option<&str> {
    match item.key.entity_type {
        EntityType::Conversation => Some(&item.key.external_id),
        EntityType::Message => item.json["conversation_external_id"].as_str(),
        _ => None,
    }
}

/// A conversation this batch wrote, by its source key.
pub(super) struct WrittenConversation<'a> {
    pub instance_id: &'a str,
    pub external_id: &'a str,
    pub id: Uuid,
}

/// Links the stored messages that arrived before their conversation to the conversations
/// this batch wrote. Returns each linked message as a whole row, with its conversation's id.
pub(super) async fn link_waiting_messages(
    tx: &mut Transaction<'static, Postgres>,
    conversations: &[WrittenConversation<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, Message)>, StoreError> {
    let instances: Vec<&str> = conversations.iter().map(|c| c.instance_id).collect();
    let externals: Vec<&str> = conversations.iter().map(|c| c.external_id).collect();
    let ids: Vec<Uuid> = conversations.iter().map(|c| c.id).collect();
    let rows = sqlx::query(sql::LINK_WAITING_MESSAGES)
        .bind(&instances)
        .bind(&externals)
        .bind(&ids)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
    let mut linked = Vec::with_capacity(rows.len());
    for row in rows {
        let Json(message): Json<Message> = row.try_get("message")?;
        linked.push((row.try_get("conversation_id")?, message));
    }
    Ok(linked)
}
