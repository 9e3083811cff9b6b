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

/// The live people (not merged, not deleted) who have one of the e-mail addresses of `$1` or
/// the phone numbers of `$2`, or whose id is in `$3`, locked: one round of loading the region
/// of people a batch or a decision touches.
pub const PEOPLE_IN_REGION: &str = "\
    WITH matched AS MATERIALIZED ( \
        SELECT id FROM person WHERE emails && $1 \
        UNION SELECT id FROM person WHERE phones && $2 \
        UNION SELECT unnest($3::uuid[])) \
    SELECT p.id FROM person p JOIN matched USING (id) \
    WHERE p.merged_into IS NULL AND p.deleted_at IS NULL \
    ORDER BY p.id FOR UPDATE OF p";

/// The decisions about the person records of `$1`, `$2` (instance ids, external ids).
pub const DECISIONS_OF_RECORDS: &str = "\
    SELECT d.a_instance_id, d.a_external_id, d.b_instance_id, d.b_external_id, d.verdict, d.actor \
    FROM person_decision d \
    JOIN unnest($1::text[], $2::text[]) AS k(instance_id, external_id) \
      ON d.a_instance_id = k.instance_id AND d.a_external_id = k.external_id \
    UNION \
    SELECT d.a_instance_id, d.a_external_id, d.b_instance_id, d.b_external_id, d.verdict, d.actor \
    FROM person_decision d \
    JOIN unnest($1::text[], $2::text[]) AS k(instance_id, external_id) \
      ON d.b_instance_id = k.instance_id AND d.b_external_id = k.external_id";

/// Records the decisions of `$1`..`$4` (the pairs, in key order), verdicts `$5`, by `$6` at
/// `$7`; a later decision about a pair replaces the earlier one.
pub const UPSERT_DECISIONS: &str = "\
    INSERT INTO person_decision (a_instance_id, a_external_id, b_instance_id, b_external_id, \
        verdict, actor, decided_at) \
    SELECT a_i, a_e, b_i, b_e, v, $6, $7 \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS d(a_i, a_e, b_i, b_e, v) \
    ON CONFLICT (a_instance_id, a_external_id, b_instance_id, b_external_id) DO UPDATE SET \
        verdict = EXCLUDED.verdict, actor = EXCLUDED.actor, decided_at = EXCLUDED.decided_at";

/// Points the person source records `($1[i], $2[i])` at person `$3[i]`: records that move to
/// another person without an item of their own in the batch (a split, a decision).
pub const MOVE_SOURCES: &str = "\
    UPDATE source_record s SET entity_id = m.person \
    FROM unnest($1::text[], $2::text[], $3::uuid[]) AS m(instance_id, external_id, person) \
    WHERE s.entity_type = 'person' AND s.instance_id = m.instance_id \
      AND s.external_id = m.external_id";

/// Records merges from a JSON array of `person_merge` rows.
pub const INSERT_MERGES: &str = "\
    INSERT INTO person_merge (id, kept_id, merged_id, rule, identifier, evidence, actor, merged_at) \
    SELECT id, kept_id, merged_id, rule, identifier, evidence, actor, merged_at \
    FROM jsonb_to_recordset($1) AS r(id uuid, kept_id uuid, merged_id uuid, rule text, \
        identifier text, evidence jsonb, actor text, merged_at timestamptz)";

/// Marks undone, at `$3` by `$4`, the merges into person `$1` that brought in one of the
/// source records of `$2` (a JSON array of `{instance_id, external_id}`): those records were
/// split off again.
pub const UNDO_MERGES: &str = "\
    UPDATE person_merge m SET undone_at = $3, undone_by = $4 \
    WHERE m.kept_id = $1 AND m.undone_at IS NULL AND EXISTS ( \
        SELECT 1 FROM jsonb_array_elements(m.evidence -> 'merged_sources') AS e(source), \
            jsonb_array_elements($2::jsonb) AS moved(source) \
        WHERE e.source = moved.source)";

/// Forgets the suggestions about the identifiers of `$1`, to write what the region says now.
pub const FORGET_SUGGESTIONS: &str = "DELETE FROM person_suggestion WHERE identifier = ANY($1)";

/// Writes suggestions from a JSON array of `person_suggestion` rows.
pub const INSERT_SUGGESTIONS: &str = "\
    INSERT INTO person_suggestion (a_instance_id, a_external_id, b_instance_id, b_external_id, \
        kind, identifier, score, a_name, b_name, created_at) \
    SELECT a_instance_id, a_external_id, b_instance_id, b_external_id, kind, identifier, score, \
        a_name, b_name, created_at \
    FROM jsonb_to_recordset($1) AS r(a_instance_id text, a_external_id text, b_instance_id text, \
        b_external_id text, kind text, identifier text, score real, a_name text, b_name text, \
        created_at timestamptz) \
    ON CONFLICT DO NOTHING";

/// Forgets which of the identifiers of `$1` were shared, to write what the region says now.
pub const FORGET_SHARED: &str = "DELETE FROM shared_identifier WHERE identifier = ANY($1)";

/// Writes shared identifiers from a JSON array of `shared_identifier` rows.
pub const INSERT_SHARED: &str = "\
    INSERT INTO shared_identifier (kind, identifier, carriers, names, updated_at) \
    SELECT kind, identifier, carriers, ARRAY(SELECT jsonb_array_elements_text(names)), updated_at \
    FROM jsonb_to_recordset($1) AS r(kind text, identifier text, carriers int, names jsonb, \
        updated_at timestamptz) \
    ON CONFLICT (kind, identifier) DO UPDATE SET carriers = EXCLUDED.carriers, \
        names = EXCLUDED.names, updated_at = EXCLUDED.updated_at";

/// A person's state, for a decision about her: `$1`'s id, where she was merged and whether she
/// was deleted.
pub const PERSON_STATE: &str = "SELECT id, merged_into, deleted_at FROM person WHERE id = $1";
