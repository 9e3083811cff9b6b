-- The outbox keeps one row per committed transaction rather than one per event: a batch of a
-- thousand items wrote, read back and deleted a thousand JSONB rows, which cost the ETL more
-- than writing the entities themselves. `events` is a JSON array of {event_id, subject,
-- payload, traceparent}, kept as bytes (PostgreSQL never parses it, and it is stored
-- uncompressed); `emitter` is the service whose publisher drains the row.
ALTER TABLE outbox
    ADD COLUMN emitter TEXT,
    ADD COLUMN event_count INTEGER,
    ADD COLUMN events BYTEA;

-- Rows left by the version before: one event each, its emitter told by its subject's domain
-- (`[<prefix>.]<domain>.<Event>`).
UPDATE outbox SET
    event_count = 1,
    events = convert_to(jsonb_build_array(jsonb_build_object(
        'event_id', event_id, 'subject', subject, 'payload', payload,
        'traceparent', traceparent))::text, 'UTF8'),
    emitter = CASE split_part(subject, '.', array_length(string_to_array(subject, '.'), 1) - 1)
        WHEN 'data' THEN 'etl'
        WHEN 'plugins' THEN 'plugin-manager'
        WHEN 'connector' THEN 'connector'
        WHEN 'communication' THEN 'channel'
        ELSE 'unknown'
    END;

ALTER TABLE outbox
    DROP COLUMN event_id,
    DROP COLUMN subject,
    DROP COLUMN payload,
    DROP COLUMN traceparent,
    ALTER COLUMN emitter SET NOT NULL,
    ALTER COLUMN event_count SET NOT NULL,
    ALTER COLUMN events SET NOT NULL,
    ALTER COLUMN events SET STORAGE EXTERNAL;

CREATE INDEX outbox_emitter_idx ON outbox (emitter, seq);
