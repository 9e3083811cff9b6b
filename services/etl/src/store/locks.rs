//! The transaction-long advisory locks a batch takes before it reads anything, so that two
//! batches in flight at once never both miss each other's uncommitted rows: the later one
//! waits for the earlier one to commit, then reads what it wrote.
//!
//! A batch takes all its locks at once, in one order (kind, then bucket), and before any row
//! lock. A batch waiting for one of them holds nothing but locks that come before it, so
//! batches cannot deadlock on them, nor between them and the source-record, person and merge
//! row locks taken after.

use sqlx::{Postgres, Transaction};

use super::{person_fields, sql, tables, StoreError};
use crate::normalise::NormalisedItem;

/// What a lock stands for. Each kind has buckets of its own, so that a batch of people never
/// waits on a batch of messages by chance.
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
enum LockKind {
    /// A conversation, by instance and external id: of a batch that writes a message and one
    /// that writes its conversation, the later one sees the earlier one's row, and the message
    /// is linked. Kind 0, so its locks are the ones earlier versions took.
    ConversationLink = 0,
    /// A normalised e-mail address or phone number of a person the batch brings: of two
    /// batches with people who share one, the later one's identity lookup finds the earlier
    /// one's person, and the two are merged.
    Address = 1,
}

/// How many locks the keys of one kind are spread over. Batches whose keys fall in different
/// buckets never wait on each other; a batch takes at most this many locks of each kind, well
/// within PostgreSQL's lock table.
const BUCKETS_PER_KIND: i32 = 64;

/// The keys a batch locks: kind, scope and name of each, as [`sql::LOCK_BATCH_KEYS`] takes
/// them.
#[derive(Debug, Default)]
struct BatchKeys<'a> {
    kinds: Vec<i32>,
    scopes: Vec<&'a str>,
    names: Vec<&'a str>,
}

impl<'a> BatchKeys<'a> {
    fn add(&mut self, kind: LockKind, scope: &'a str, name: &'a str) {
        self.kinds.push(kind as i32);
        self.scopes.push(scope);
        self.names.push(name);
    }
}

/// Serialises this batch, until its transaction ends, with any other in flight that writes
/// the conversations of its messages or the messages of its conversations, or people who
/// share an e-mail address or phone number with its people.
pub(super) async fn lock_batch(
    tx: &mut Transaction<'static, Postgres>,
    items: &[&NormalisedItem],
) -> Result<(), StoreError> {
    let mut keys = BatchKeys::default();
    for item in items {
        if let Some(conversation) = tables::conversation_of(item) {
            keys.add(
                LockKind::ConversationLink,
                &item.key.instance_id,
                conversation,
            );
        }
        if let Some(person) = person_fields(item) {
            for email in &person.emails {
                keys.add(LockKind::Address, "email", email);
            }
            for phone in &person.phones {
                keys.add(LockKind::Address, "phone", phone);
            }
        }
    }
    take(tx, &keys).await
}

/// Takes the locks of these people's addresses, as a batch bringing someone with one of them
/// would: for a person's decision about people already stored.
pub(super) async fn lock_addresses(
    tx: &mut Transaction<'static, Postgres>,
    emails: &[&str],
    phones: &[&str],
) -> Result<(), StoreError> {
    let mut keys = BatchKeys::default();
    for email in emails {
        keys.add(LockKind::Address, "email", email);
    }
    for phone in phones {
        keys.add(LockKind::Address, "phone", phone);
    }
    take(tx, &keys).await
}

/// Takes the locks of `keys`, all in one statement, in order.
async fn take(
    tx: &mut Transaction<'static, Postgres>,
    keys: &BatchKeys<'_>,
) -> Result<(), StoreError> {
    if keys.kinds.is_empty() {
        return Ok(());
    }
    sqlx::query(sql::LOCK_BATCH_KEYS)
        .bind(BUCKETS_PER_KIND)
        .bind(&keys.kinds)
        .bind(&keys.scopes)
        .bind(&keys.names)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
