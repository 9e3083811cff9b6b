-- The instances' timelines: one row per line the connector and channel services published on
-- `timeline.<service>.<instance>` (a sync ended, a webhook accepted or refused, a message sent
-- or its delivery status, a line the plugin logged), stored by the plugin manager's `timeline`
-- consumer. `entry_id` is the line's own id, so a redelivered line is stored once. The audit
-- entries of an instance (plugin_audit) are read beside these, not copied here. Lines older
-- than the retention (plugins.timeline_retention_days) are deleted by the plugin manager.
CREATE TABLE instance_timeline (
    seq          BIGSERIAL PRIMARY KEY,
    entry_id     uuid NOT NULL UNIQUE,
    instance_id  text NOT NULL,
    at           timestamptz NOT NULL,
    service      text NOT NULL,
    kind         text NOT NULL,
    status       text NOT NULL,
    summary      text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    suppressed   bigint NOT NULL DEFAULT 0
);

CREATE INDEX instance_timeline_page ON instance_timeline (instance_id, at DESC, seq DESC);
CREATE INDEX instance_timeline_age ON instance_timeline (at);
