//! The statements a batch runs. Each takes its rows as one `COPY` stream or one JSON array, so
//! a batch costs a statement or two per table however many items it holds.

use tributary_proto::model::EntityType;

/// The columns an upsert sets, beside `id` and `created_at` (which never change).
pub fn updated_columns(entity: EntityType) -> &'static [&'static str] {
    match entity {
        EntityType::Person => &[
            "display_name",
            "given_name",
            "family_name",
            "emails",
            "phones",
            "organization",
            "title",
            "extra",
            "merged_into",
            "updated_at",
            "deleted_at",
        ],
        EntityType::Organization => &["name", "domains", "extra", "updated_at", "deleted_at"],
        EntityType::Conversation => &[
            "title",
            "channel",
            "participants",
            "extra",
            "updated_at",
            "deleted_at",
        ],
        EntityType::Message => &[
            "conversation_id",
            "conversation_external_id",
            "sender",
            "recipients",
            "subject",
            "body_text",
            "body_html",
            "sent_at",
            "original_timezone",
            "extra",
            "updated_at",
            "deleted_at",
        ],
        EntityType::CalendarEvent => &[
            "title",
            "description",
            "location",
            "starts_at",
            "ends_at",
            "original_timezone",
            "all_day",
            "recurrence",
            "organizer",
            "attendees",
            "extra",
            "updated_at",
            "deleted_at",
        ],
        EntityType::Document => &[
            "title",
            "path",
            "mime_type",
            "content",
            "modified_at",
            "content_hash",
            "extra",
            "updated_at",
            "deleted_at",
        ],
    }
}

/// Every column of `entity`'s table, in the order `COPY` is given them.
pub fn columns(entity: EntityType) -> Vec<&'static str> {
    let mut columns = vec!["id", "created_at"];
    columns.extend_from_slice(updated_columns(entity));
    columns
}

/// Inserts the rows of a `COPY` stream (every column of [`columns`]) into `entity`'s table.
pub fn copy_entities(entity: EntityType) -> String {
    format!(
        "COPY {} ({}) FROM STDIN",
        entity.as_str(),
        columns(entity).join(", ")
    )
}

/// Inserts new source records from a `COPY` stream.
pub const COPY_SOURCES: &str = "COPY source_record (instance_id, entity_type, external_id, \
    entity_id, source_modified_at, content_hash, raw, data, deleted) FROM STDIN";

/// Inserts or updates the rows of `$1` (a JSON array of whole rows) and returns each row's id
/// and creation time.
pub fn upsert_entities(entity: EntityType) -> String {
    let table = entity.as_str();
    let set = updated_columns(entity)
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1) \
         ON CONFLICT (id) DO UPDATE SET {set} RETURNING id, created_at"
    )
}

/// Marks the ids of `$1` deleted at `$2`; returns the ids that were not deleted already.
pub fn delete_entities(entity: EntityType) -> String {
    let table = entity.as_str();
    format!(
        "UPDATE {table} SET deleted_at = $2, updated_at = $2 \
         WHERE id = ANY($1) AND deleted_at IS NULL RETURNING id"
    )
}

/// Keeps the rest of a batch's transaction from reading whole tables. Every statement of a
/// batch looks rows up by key or address, and an index serves each; but while a table grows
/// from empty faster than autovacuum analyses it (a first sync), the planner has no
/// statistics, guesses that a thousand addresses match much of the table, and picks a
/// sequential scan, and a cached generic plan keeps it as the table grows. Lookups then cost
/// a pass over the table each, and a first sync slows down quadratically.
pub const KEYED_PLANS_ONLY: &str = "SET LOCAL enable_seqscan = off";

/// Locks and reads the source records of the keys in `$1`, `$2`, `$3` (instance ids, entity
/// types, external ids), in key order so that concurrent batches cannot deadlock.
pub const LOCK_SOURCES: &str = "\
    SELECT s.instance_id, s.entity_type, s.external_id, s.entity_id, s.source_modified_at, \
           s.content_hash, s.deleted \
    FROM source_record s \
    JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(instance_id, entity_type, external_id) \
      USING (instance_id, entity_type, external_id) \
    ORDER BY s.instance_id, s.entity_type, s.external_id \
    FOR UPDATE OF s";

/// Forgets the source records of the keys `($1[i], $2[i], $3[i])`: what a purge leaves.
pub const FORGET_SOURCES: &str = "\
    DELETE FROM source_record s \
    USING unnest($1::text[], $2::text[], $3::text[]) AS k(instance_id, entity_type, external_id) \
    WHERE s.instance_id = k.instance_id AND s.entity_type = k.entity_type \
      AND s.external_id = k.external_id";

/// Writes the source records of `$1` (records stored before this batch, or by a concurrent
/// one since).
pub const UPSERT_SOURCES: &str = "\
    INSERT INTO source_record AS s (instance_id, entity_type, external_id, entity_id, \
        source_modified_at, content_hash, raw, data, deleted) \
    SELECT instance_id, entity_type, external_id, entity_id, source_modified_at, content_hash, \
        COALESCE(raw, 'null'), COALESCE(data, 'null'), deleted \
    FROM jsonb_to_recordset($1) AS r(instance_id text, entity_type text, external_id text, \
        entity_id uuid, source_modified_at timestamptz, content_hash text, raw json, \
        data json, deleted boolean) \
    ON CONFLICT (instance_id, entity_type, external_id) DO UPDATE SET \
        entity_id = EXCLUDED.entity_id, source_modified_at = EXCLUDED.source_modified_at, \
        content_hash = EXCLUDED.content_hash, raw = EXCLUDED.raw, data = EXCLUDED.data, \
        deleted = EXCLUDED.deleted, last_seen_at = now()";

/// Live people (not merged, not deleted) who have one of the e-mail addresses of `$1` or the
/// phone numbers of `$2`, locked. Each condition is its own GIN index scan: a plan that
/// walked the primary key for `ORDER BY id` would read the whole table.
pub const PEOPLE_WITH_ADDRESSES: &str = "\
    WITH matched AS MATERIALIZED ( \
        SELECT id FROM person WHERE emails && $1 \
        UNION SELECT id FROM person WHERE phones && $2) \
    SELECT p.id, p.emails, p.phones FROM person p JOIN matched USING (id) \
    WHERE p.merged_into IS NULL AND p.deleted_at IS NULL \
    ORDER BY p.id FOR UPDATE OF p";

/// The live source records of the people in `$1`, with what each says.
pub const SOURCES_OF_PEOPLE: &str = "\
    SELECT instance_id, external_id, entity_id, source_modified_at, data \
    FROM source_record \
    WHERE entity_type = 'person' AND entity_id = ANY($1) AND NOT deleted";

/// Folds the people of `$1` into those of `$2` (pairwise) at `$3`: marks them merged, and
/// points their source records, and anyone merged into them before, at the kept person.
pub const MERGE_PEOPLE: [&str; 3] = [
    "UPDATE person p SET merged_into = m.kept, deleted_at = $3, updated_at = $3 \
     FROM unnest($1::uuid[], $2::uuid[]) AS m(merged, kept) WHERE p.id = m.merged",
    "UPDATE person p SET merged_into = m.kept \
     FROM unnest($1::uuid[], $2::uuid[]) AS m(merged, kept) WHERE p.merged_into = m.merged",
    "UPDATE source_record s SET entity_id = m.kept \
     FROM unnest($1::uuid[], $2::uuid[]) AS m(merged, kept) \
     WHERE s.entity_type = 'person' AND s.entity_id = m.merged",
];

/// The entity ids of conversations by (instance id `$1`, external id `$2`).
pub const CONVERSATION_IDS: &str = "\
    SELECT s.instance_id, s.external_id, s.entity_id FROM source_record s \
    JOIN unnest($1::text[], $2::text[]) AS k(instance_id, external_id) \
      USING (instance_id, external_id) \
    WHERE s.entity_type = 'conversation' AND s.entity_id <> '00000000-0000-0000-0000-000000000000'";

/// Takes the transaction-long locks that serialise the batches that would otherwise miss each
/// other's uncommitted rows. Key `i` is of kind `$2[i]` and named by `$3[i]` and `$4[i]` (a
/// scope and a name); the keys of each kind are hashed into `$1` buckets of its own (kind `k`
/// owns locks `k·$1` to `k·$1 + $1 − 1`), and all the locks are taken in this one statement,
/// in order, so two batches never each hold a lock the other waits for. The first key,
/// 1953655138 ("trib" in ASCII), keeps these locks apart from any other advisory lock in the
/// database.
pub const LOCK_BATCH_KEYS: &str = "\
    SELECT pg_advisory_xact_lock(1953655138, b) FROM ( \
        SELECT DISTINCT kind * $1 + abs(hashtext(scope || chr(31) || name) % $1) AS b \
        FROM unnest($2::int4[], $3::text[], $4::text[]) AS k(kind, scope, name) ORDER BY b) buckets";

/// Links the live messages still waiting for the conversations of `$1`, `$2`, `$3`
/// (instance ids, external ids, conversation ids) at `$4`; returns each linked message whole
/// with the conversation's id.
pub const LINK_WAITING_MESSAGES: &str = "\
    UPDATE message m SET conversation_id = c.conversation_id, updated_at = $4 \
    FROM unnest($1::text[], $2::text[], $3::uuid[]) AS c(instance_id, external_id, conversation_id), \
         source_record s \
    WHERE m.conversation_id IS NULL AND m.conversation_external_id = c.external_id \
      AND m.deleted_at IS NULL \
      AND s.entity_type = 'message' AND s.entity_id = m.id AND s.instance_id = c.instance_id \
    RETURNING c.conversation_id, to_jsonb(m) AS message";
