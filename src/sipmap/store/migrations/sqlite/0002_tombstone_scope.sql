-- A tombstone remembers the list it stood in (schema.SCOPES), so a page token
-- naming a deleted item resolves only within that list: a list's SID can be
-- mapped to several domains, and another account's deleted SID is no token of ours.
ALTER TABLE tombstones ADD COLUMN scope TEXT;
CREATE INDEX tombstones_scope ON tombstones (tbl, sid, scope);
