-- When each item was deleted, so tombstones can be pruned once no page token can name
-- them (docs/api-coverage.md, page token lifetime). Existing ones count from now.
ALTER TABLE tombstones ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
UPDATE tombstones SET deleted_at = CAST(strftime('%s', 'now') AS INTEGER);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);
