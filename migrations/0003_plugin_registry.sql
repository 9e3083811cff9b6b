-- The plugin registry: plugins found by discovery, their installed instances with config and
-- encrypted secrets, and an audit log of every lifecycle and permission change.

-- The last manifest discovered for each plugin id.
CREATE TABLE plugin (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    plugin_type    TEXT NOT NULL CHECK (plugin_type IN ('connector', 'channel', 'operator')),
    manifest       JSONB NOT NULL,
    -- `builtin` or the directory it was found in.
    location       TEXT NOT NULL,
    discovered_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One installed copy of a plugin, with its own config and credentials.
CREATE TABLE plugin_instance (
    id                    TEXT PRIMARY KEY,
    plugin_id             TEXT NOT NULL REFERENCES plugin (id),
    -- The manifest of the version the instance runs (not necessarily the newest discovered).
    version               TEXT NOT NULL,
    manifest              JSONB NOT NULL,
    -- The permissions a person accepted; the instance is never granted more.
    accepted_permissions  JSONB NOT NULL DEFAULT '[]',
    -- Configuration without its secrets (those are in plugin_secret, encrypted).
    config                JSONB NOT NULL DEFAULT '{}',
    state                 TEXT NOT NULL
                            CHECK (state IN ('installed', 'enabled', 'disabled', 'failed', 'uninstalled')),
    -- An upgrade waiting for its new permissions to be accepted.
    held_version          TEXT,
    held_permissions      JSONB,
    last_heartbeat        TIMESTAMPTZ,
    last_error            TEXT,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX plugin_instance_plugin_idx ON plugin_instance (plugin_id);

-- Secret config fields (`writeOnly` in the config schema), sealed with the master key. The
-- instance id and field are bound into each ciphertext, so a value cannot be moved elsewhere.
CREATE TABLE plugin_secret (
    instance_id  TEXT NOT NULL REFERENCES plugin_instance (id) ON DELETE CASCADE,
    -- JSON pointer of the field in the config: `/accessToken`.
    field        TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    nonce        BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, field)
);

-- Proof of which master key the secrets are sealed under: a known value sealed with it. A
-- service started with another key finds out before it touches a secret.
CREATE TABLE plugin_master_key (
    singleton   BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    key_id      TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    rotated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who changed what, when: every lifecycle and permission change.
CREATE TABLE plugin_audit (
    seq          BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    plugin_id    TEXT,
    instance_id  TEXT,
    detail       JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX plugin_audit_instance_idx ON plugin_audit (instance_id, seq);
