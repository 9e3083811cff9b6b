-- The ETL keeps each source's normalised fields next to its raw payload: a person met through
-- several sources is the merge of their fields, recomputed when any one of them changes.
ALTER TABLE source_record ADD COLUMN data JSONB NOT NULL DEFAULT 'null';

-- The outbox publisher deletes a row once JetStream has acknowledged its event, so the table
-- holds only what is still to be published and needs no published flag.
DROP INDEX outbox_unpublished_idx;
ALTER TABLE outbox DROP COLUMN published_at;

-- The ETL looks people up by address for every batch of people it writes. GIN's fast-update
-- pending list is scanned linearly on every lookup, which under a steady stream of inserts
-- made each lookup cost a full pass over the recent rows; without it, a lookup is a few index
-- probes and inserts stay cheap.
ALTER INDEX person_emails_idx SET (fastupdate = off);
ALTER INDEX person_phones_idx SET (fastupdate = off);
