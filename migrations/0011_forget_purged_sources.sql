-- Earlier versions purged an instance by sending a tombstone for each of its items, which
-- the ETL applied by keeping a deleted source record versioned at the purge's time. Those
-- records outlived the instance and hid everything a later instance under the same id sent
-- (its items are older than the purge). A purge now forgets its source records; this forgets
-- the ones earlier purges left: tombstones of ids with no instance in the registry.
DELETE FROM source_record s
WHERE s.deleted
  AND NOT EXISTS (SELECT 1 FROM plugin_instance p WHERE p.id = s.instance_id);
