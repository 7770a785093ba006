-- When each item was deleted, so tombstones can be pruned once no page token can name
-- them (docs/api-coverage.md, page token lifetime). Existing ones count from now.
ALTER TABLE tombstones ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
UPDATE tombstones SET deleted_at = CAST(strftime('%s', 'now') AS INTEGER);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);

-- The overlap check of a new mapping (sqltx.overlaps_outside_family) judges each
-- mapping in a range by its account from the index alone.
DROP INDEX source_ip_mappings_network;
CREATE INDEX source_ip_mappings_network ON source_ip_mappings (network, prefix_len, account_sid);
