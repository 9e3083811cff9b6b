-- The key-value store of plugin instances belongs to the plugin host, which runs in both the
-- connector and the channel service; `plugin_*` tables are the plugin manager's registry
-- (configs, sealed secrets, tokens), which only its own role may touch. The new name keeps
-- that line exact: the channel service's role is granted this table and no `plugin_*` one.
ALTER TABLE plugin_kv RENAME TO instance_kv;
ALTER INDEX plugin_kv_pkey RENAME TO instance_kv_pkey;
