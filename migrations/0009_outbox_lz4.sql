-- A batch's events are JSON envelopes that repeat the same keys, subjects and sources a
-- thousand times: lz4 shrinks them several times over, faster than PostgreSQL writes, reads
-- back and deletes the uncompressed chunks. Where PostgreSQL was built without lz4 the events
-- stay uncompressed, as before.
ALTER TABLE outbox ALTER COLUMN events SET STORAGE EXTENDED;
DO $$
BEGIN
    ALTER TABLE outbox ALTER COLUMN events SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    ALTER TABLE outbox ALTER COLUMN events SET STORAGE EXTERNAL;
END
$$;
