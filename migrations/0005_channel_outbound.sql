-- The channel service's outbound messages: what was asked to be sent, what the provider said,
-- and the delivery statuses it reported since. A send is idempotent by its id; a status
-- callback finds its message by (instance, provider message id).
CREATE TABLE channel_outbound (
    id                  uuid PRIMARY KEY,
    instance_id         text NOT NULL,
    channel             text NOT NULL,
    -- The request: recipients, text, subject, conversation and reply-to, as sent to the plugin.
    request             jsonb NOT NULL,
    -- sending (a send is in progress or was cut off), then the provider's status word
    -- (queued, sent, delivered, read, undelivered) or failed.
    status              text NOT NULL DEFAULT 'sending',
    provider_message_id text,
    sender              text,
    error               text,
    attempts            integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    status_at           timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX channel_outbound_provider_id
    ON channel_outbound (instance_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
