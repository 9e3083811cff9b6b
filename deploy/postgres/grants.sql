-- What each service's PostgreSQL role may do: the one place that says it. Applied by
-- `tributary db provision` as the owner of the schema, after the migrations and after it
-- has created the roles (LOGIN, no other attribute, member of nothing), every time it runs, so
-- an upgrade that adds a table grants it here or to nobody.
--
-- :"plugin_manager", :"connector", :"etl", :"channel", :"search" are the roles
-- (`database.roles.<service>.user`) and :"database" the database, as psql's variables: the
-- provisioning step puts the quoted names in; `psql -v channel=… -f` would do the same.
--
-- Why each grant exists, from the code that needs it:
--   plugin manager  the registry (plugin_*), its audit log (append-only), the console's
--                   sessions, the keys of the source records a purge forgets, and the rows
--                   other services keep of a purged instance (delete only, found by
--                   instance id).
--   connector       its sync state, the instance keys of the plugins it runs, the unified
--                   model read-only (a plugin's data:read grant).
--   etl             the unified model and its source records, and why each person is who
--                   she is: her merges, the decisions people made, the suggestions and the
--                   shared identifiers (read by the `etl.people.*` requests too).
--   channel         its outbound messages, the instance keys of the plugins it runs, the
--                   unified model read-only (data:read). Nothing of plugin_*: not an
--                   instance's config (its apiBaseUrl), not a sealed secret.
--   search          the unified model and which instances each entity came from, read-only
--                   (`tributary search reindex`).
--   every service   the outbox rows it emits and no other's (row-level security), and the
--                   migration versions, to check at start-up the schema is the one it was
--                   built for.

-- Start from nothing, so a grant removed here is removed from the database too.
REVOKE ALL ON ALL TABLES IN SCHEMA public
    FROM :"plugin_manager", :"connector", :"etl", :"channel", :"search";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public
    FROM :"plugin_manager", :"connector", :"etl", :"channel", :"search";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public
    FROM :"plugin_manager", :"connector", :"etl", :"channel", :"search";

-- Nobody but the owner creates anything: no table in public (PostgreSQL 15 revokes that by
-- default, an older or upgraded cluster may not), no temporary table, no other connection to
-- this database than the services'.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database"
    TO :"plugin_manager", :"connector", :"etl", :"channel", :"search";
GRANT USAGE ON SCHEMA public
    TO :"plugin_manager", :"connector", :"etl", :"channel", :"search";

-- Which migrations ran (the start-up check of database.migrate = false).
GRANT SELECT (version, success) ON _sqlx_migrations
    TO :"plugin_manager", :"connector", :"etl", :"channel", :"search";

-- The plugin manager: the registry.
GRANT SELECT, INSERT, UPDATE ON plugin TO :"plugin_manager";
GRANT SELECT, INSERT, UPDATE, DELETE
    ON plugin_instance, plugin_secret, plugin_master_key,
       plugin_oauth_connection, plugin_oauth_consent
    TO :"plugin_manager";
GRANT SELECT, INSERT ON plugin_audit TO :"plugin_manager";
-- The admin console's sessions.
GRANT SELECT, INSERT, UPDATE, DELETE ON console_session TO :"plugin_manager";
GRANT USAGE ON SEQUENCE plugin_audit_seq_seq TO :"plugin_manager";
-- The instances' timelines (no UPDATE: a line is stored once, deleted when it is too old).
GRANT SELECT, INSERT, DELETE ON instance_timeline TO :"plugin_manager";
GRANT USAGE ON SEQUENCE instance_timeline_seq_seq TO :"plugin_manager";
-- A purge: which source records an instance brought (their keys, not their contents), and
-- the other services' rows of that instance, deleted in the purge's transaction.
GRANT SELECT (instance_id, entity_type, external_id, deleted) ON source_record
    TO :"plugin_manager";
GRANT SELECT (instance_id), DELETE ON connector_sync_state, channel_outbound, instance_kv,
    channel_inbound_message
    TO :"plugin_manager";
-- The decisions and suggestions about people that name one of a purged instance's records.
GRANT SELECT (a_instance_id, b_instance_id), DELETE ON person_decision, person_suggestion
    TO :"plugin_manager";

-- The connector service.
GRANT SELECT, INSERT, UPDATE, DELETE ON connector_sync_state TO :"connector";
GRANT SELECT, INSERT, UPDATE, DELETE ON instance_kv TO :"connector";
GRANT SELECT ON person, organization, conversation, message, calendar_event, document
    TO :"connector";

-- The ETL.
GRANT SELECT, INSERT, UPDATE
    ON person, organization, conversation, message, calendar_event, document
    TO :"etl";
GRANT SELECT, INSERT, UPDATE, DELETE ON source_record TO :"etl";
GRANT SELECT, INSERT, UPDATE, DELETE
    ON person_merge, person_decision, person_suggestion, shared_identifier
    TO :"etl";

-- The channel service.
GRANT SELECT, INSERT, UPDATE ON channel_outbound TO :"channel";
-- The provider ids of the inbound messages it announced, so a late replay is not announced again.
GRANT SELECT, INSERT, UPDATE ON channel_inbound_message TO :"channel";
GRANT SELECT, INSERT, UPDATE, DELETE ON instance_kv TO :"channel";
GRANT SELECT ON person, organization, conversation, message, calendar_event, document
    TO :"channel";

-- The search service.
GRANT SELECT ON person, organization, conversation, message, calendar_event, document
    TO :"search";
GRANT SELECT (instance_id, entity_type, entity_id, deleted) ON source_record TO :"search";

-- The outbox: each service writes, locks (FOR UPDATE needs UPDATE), reads and deletes the rows
-- of the events it emits, and sees no other's, so none can forge another's events (published
-- with that service's NATS identity) or drop them. The owner is exempt; the search service
-- emits nothing.
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox
    TO :"plugin_manager", :"connector", :"etl", :"channel";
GRANT USAGE ON SEQUENCE outbox_seq_seq TO :"plugin_manager", :"connector", :"etl", :"channel";
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS emitter_plugin_manager ON outbox;
CREATE POLICY emitter_plugin_manager ON outbox TO :"plugin_manager"
    USING (emitter = 'plugin-manager') WITH CHECK (emitter = 'plugin-manager');
DROP POLICY IF EXISTS emitter_connector ON outbox;
CREATE POLICY emitter_connector ON outbox TO :"connector"
    USING (emitter = 'connector') WITH CHECK (emitter = 'connector');
DROP POLICY IF EXISTS emitter_etl ON outbox;
CREATE POLICY emitter_etl ON outbox TO :"etl"
    USING (emitter = 'etl') WITH CHECK (emitter = 'etl');
DROP POLICY IF EXISTS emitter_channel ON outbox;
CREATE POLICY emitter_channel ON outbox TO :"channel"
    USING (emitter = 'channel') WITH CHECK (emitter = 'channel');
