-- The unified model: one table per entity type, a source table that makes every upsert
-- idempotent, and an outbox so rows and the events announcing them commit together.

CREATE TABLE person (
    id            UUID PRIMARY KEY,
    display_name  TEXT NOT NULL,
    given_name    TEXT,
    family_name   TEXT,
    emails        TEXT[] NOT NULL DEFAULT '{}',
    phones        TEXT[] NOT NULL DEFAULT '{}',
    organization  TEXT,
    title         TEXT,
    extra         JSONB NOT NULL DEFAULT '{}',
    -- Set when this person was merged into another; later items follow the pointer.
    merged_into   UUID REFERENCES person (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX person_emails_idx ON person USING GIN (emails);
CREATE INDEX person_phones_idx ON person USING GIN (phones);
CREATE INDEX person_display_name_idx ON person (lower(display_name));

CREATE TABLE organization (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    domains     TEXT[] NOT NULL DEFAULT '{}',
    extra       JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX organization_name_idx ON organization (lower(name));

CREATE TABLE conversation (
    id            UUID PRIMARY KEY,
    title         TEXT,
    channel       TEXT NOT NULL,
    participants  TEXT[] NOT NULL DEFAULT '{}',
    extra         JSONB NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX conversation_channel_idx ON conversation (channel);

CREATE TABLE message (
    id                        UUID PRIMARY KEY,
    conversation_id           UUID REFERENCES conversation (id),
    conversation_external_id  TEXT,
    sender                    TEXT NOT NULL,
    recipients                TEXT[] NOT NULL DEFAULT '{}',
    subject                   TEXT,
    body_text                 TEXT NOT NULL DEFAULT '',
    body_html                 TEXT,
    sent_at                   TIMESTAMPTZ NOT NULL,
    original_timezone         TEXT,
    extra                     JSONB NOT NULL DEFAULT '{}',
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at                TIMESTAMPTZ
);
CREATE INDEX message_conversation_idx ON message (conversation_id, sent_at);
CREATE INDEX message_sent_at_idx ON message (sent_at);
CREATE INDEX message_sender_idx ON message (sender);

CREATE TABLE calendar_event (
    id                 UUID PRIMARY KEY,
    title              TEXT NOT NULL,
    description        TEXT,
    location           TEXT,
    starts_at          TIMESTAMPTZ NOT NULL,
    ends_at            TIMESTAMPTZ,
    original_timezone  TEXT,
    all_day            BOOLEAN NOT NULL DEFAULT false,
    recurrence         TEXT,
    organizer          TEXT,
    attendees          TEXT[] NOT NULL DEFAULT '{}',
    extra              JSONB NOT NULL DEFAULT '{}',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at         TIMESTAMPTZ
);
CREATE INDEX calendar_event_starts_at_idx ON calendar_event (starts_at);

CREATE TABLE document (
    id            UUID PRIMARY KEY,
    title         TEXT NOT NULL,
    path          TEXT,
    mime_type     TEXT,
    content       TEXT NOT NULL DEFAULT '',
    modified_at   TIMESTAMPTZ,
    content_hash  TEXT,
    extra         JSONB NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX document_modified_at_idx ON document (modified_at);

-- Where each entity came from. The key (instance, entity type, external id) makes a repeated
-- item land on the same row; source_modified_at keeps a late older version from winning;
-- content_hash tells an unchanged item from a changed one; raw keeps the payload for
-- re-processing.
CREATE TABLE source_record (
    instance_id         TEXT NOT NULL,
    entity_type         TEXT NOT NULL CHECK (entity_type IN
                          ('person', 'organization', 'conversation', 'message', 'calendar_event', 'document')),
    external_id         TEXT NOT NULL,
    entity_id           UUID NOT NULL,
    source_modified_at  TIMESTAMPTZ NOT NULL,
    content_hash        TEXT NOT NULL,
    raw                 JSONB NOT NULL DEFAULT 'null',
    deleted             BOOLEAN NOT NULL DEFAULT false,
    first_seen_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, entity_type, external_id)
);
CREATE INDEX source_record_entity_idx ON source_record (entity_type, entity_id);

-- Events written in the same transaction as the rows they announce; a publisher drains it to
-- JetStream with Nats-Msg-Id set to the event id, so a crash between commit and publish is
-- recovered by publishing again and a repeated publish is dropped by JetStream.
CREATE TABLE outbox (
    seq           BIGSERIAL PRIMARY KEY,
    event_id      UUID NOT NULL UNIQUE,
    subject       TEXT NOT NULL,
    payload       JSONB NOT NULL,
    traceparent   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;
