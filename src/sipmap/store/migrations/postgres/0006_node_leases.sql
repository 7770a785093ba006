-- The read cache on PostgreSQL (store/leases.py, store/feed_cache.py).
--
-- IP records and IP access control lists join the change feed: recognition does not
-- need them, but a node may serve a row from memory only if the feed tells it of every
-- change to that row. The same trigger function as migration 0004, so the same order.
CREATE TRIGGER ip_records_log AFTER INSERT OR UPDATE OR DELETE ON ip_records
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_change();
CREATE TRIGGER ip_access_control_lists_log
    AFTER INSERT OR UPDATE OR DELETE ON ip_access_control_lists
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_change();

-- Every running node: the change-log position it has applied, and until when (by the
-- database's clock) it holds its lease. A write is acknowledged only once every node
-- holding a lease has applied it, or its lease ran out. `continuous`: whether the last
-- renewal came before the previous lease ran out — if not, writes may have been
-- acknowledged without this node, and it must catch up before it trusts its cache.
CREATE TABLE node_leases (
    id TEXT PRIMARY KEY,
    applied BIGINT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL,
    continuous BOOLEAN NOT NULL
);
