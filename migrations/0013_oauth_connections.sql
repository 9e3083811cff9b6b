-- OAuth 2.0 connections of plugin instances: where each stands, and the consents under way.
-- The tokens themselves are sealed in plugin_secret under the fields `oauth:access_token` and
-- `oauth:refresh_token` (no config field is named so: config secrets are JSON pointers), so
-- key rotation and the master key check cover them with every other secret.

ALTER TABLE plugin_instance DROP CONSTRAINT plugin_instance_state_check;
ALTER TABLE plugin_instance ADD CONSTRAINT plugin_instance_state_check
    CHECK (state IN ('installed', 'enabled', 'disabled', 'failed', 'needs_reconnect', 'uninstalled'));

-- One row per instance that was ever connected.
CREATE TABLE plugin_oauth_connection (
    instance_id         TEXT PRIMARY KEY REFERENCES plugin_instance (id) ON DELETE CASCADE,
    provider            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('connected', 'needs_reconnect')),
    scopes              JSONB NOT NULL DEFAULT '[]',
    connected_as        TEXT,
    -- When the access token expires; NULL for one that does not.
    expires_at          TIMESTAMPTZ,
    connected_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_refresh_at     TIMESTAMPTZ,
    last_refresh_error  TEXT,
    reconnect_reason    TEXT,
    -- Bumped by every new access token, so a waiting refresh sees that another one happened.
    generation          BIGINT NOT NULL DEFAULT 0,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX plugin_oauth_connection_due_idx ON plugin_oauth_connection (status, expires_at);

-- Consents under way: the state a consent URL carries (only its SHA-256 is kept), the PKCE
-- verifier sealed with the master key, and how the attempt ended. A state works once.
CREATE TABLE plugin_oauth_consent (
    attempt_id     UUID PRIMARY KEY,
    state_hash     BYTEA NOT NULL UNIQUE,
    instance_id    TEXT NOT NULL REFERENCES plugin_instance (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    verifier_key   TEXT NOT NULL,
    verifier_nonce BYTEA NOT NULL,
    verifier       BYTEA NOT NULL,
    actor          TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    status         TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'connected', 'failed', 'expired')),
    scopes         JSONB NOT NULL DEFAULT '[]',
    connected_as   TEXT,
    error_code     TEXT,
    error_message  TEXT
);
CREATE INDEX plugin_oauth_consent_instance_idx ON plugin_oauth_consent (instance_id);
