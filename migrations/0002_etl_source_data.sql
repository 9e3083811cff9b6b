-- The ETL keeps each source's normalised fields next to its raw payload: a person met through
-- several sources is the merge of their fields, recomputed when any one of them changes.
ALTER TABLE source_record ADD COLUMN data JSONB NOT NULL DEFAULT 'null';

-- The outbox publisher deletes a row once JetStream has acknowledged its event, so the table
-- holds only what is still to be published and needs no published flag.
DROP INDEX outbox_unpublished_idx;
ALTER TABLE outbox DROP COLUMN published_at;
