-- The connector service's state of each connector instance's syncs: what the current or
-- last sync is doing or did, and the cursor a sync resumes from. One row per instance.
CREATE TABLE connector_sync_state (
    instance_id      text PRIMARY KEY,
    -- idle (never synced), running, succeeded, failed, cancelled. A row left `running` by a
    -- process that died is an interrupted sync: the next sync resumes it from `cursor`.
    status           text NOT NULL DEFAULT 'idle'
        CHECK (status IN ('idle', 'running', 'succeeded', 'failed', 'cancelled')),
    -- The last checkpoint the plugin yielded, every item before it acknowledged by JetStream.
    cursor           jsonb,
    -- The current or last sync, how it was asked to run, and when it ran.
    sync_id          uuid,
    mode             text CHECK (mode IN ('incremental', 'full', 'backfill')),
    since            timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    -- Items published and errors met by the current or last sync.
    items            bigint NOT NULL DEFAULT 0,
    errors           bigint NOT NULL DEFAULT 0,
    -- Over every sync of the instance.
    total_items      bigint NOT NULL DEFAULT 0,
    last_success_at  timestamptz,
    last_error       text,
    -- Set by connector.cancel; the process running the sync stops it at its next heartbeat.
    cancel_requested boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
