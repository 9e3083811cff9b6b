-- The admin console's sessions (tower-sessions records: the signed-in token's fingerprint,
-- the CSRF token, the message shown on the next page), kept in PostgreSQL so a restart of the
-- plugin manager signs nobody out and several plugin manager processes behind one address
-- share them. Never the admin token itself. A row past `expires_at` is no session; the plugin
-- manager deletes those every few minutes.
CREATE TABLE console_session (
    id         text PRIMARY KEY,
    data       jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX console_session_expiry ON console_session (expires_at);
