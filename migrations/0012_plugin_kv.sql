-- A small key-value store of each plugin instance's own (the WebAssembly host's `kv-*`
-- calls, and `PluginContext::kv` for built-ins). A purge of the instance deletes its rows.
CREATE TABLE plugin_kv (
    instance_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, key)
);
