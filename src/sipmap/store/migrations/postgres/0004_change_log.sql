-- The change feed (store/feed.py): every committed change recognition depends on,
-- appended by triggers in the writing transaction itself, so no write can commit
-- without its entry, however it was made (the API, the CLI, a cascade, manual SQL).
--
-- Order. `pos` is taken from an identity sequence while the transaction holds the
-- schema's write lock (the same pg_advisory_xact_lock the writer takes first; the
-- trigger takes it again, which is free for the holder and makes SQL typed by hand
-- wait its turn too). The lock is released only after the commit is visible, so a
-- transaction that commits later also drew its positions later: a reader that has
-- seen position N has already been able to see every entry below N. Positions of
-- rolled-back transactions are simply missing; nobody waits for them.
CREATE TABLE change_log (
    pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl TEXT NOT NULL,
    deleted BOOLEAN NOT NULL,
    row JSONB NOT NULL
);

-- The highest position trimmed away: a node that applied less must reload in full.
INSERT INTO settings (key, value) VALUES ('change_log_trimmed', '0');

CREATE FUNCTION sipmap_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20745, hashtext(coalesce(current_schema(), '')));
    IF TG_OP = 'DELETE' THEN
        INSERT INTO change_log (tbl, deleted, row) VALUES (TG_TABLE_NAME, TRUE, to_jsonb(OLD));
    ELSE
        INSERT INTO change_log (tbl, deleted, row) VALUES (TG_TABLE_NAME, FALSE, to_jsonb(NEW));
    END IF;
    -- One channel per schema; identical notifications in a transaction are sent once.
    PERFORM pg_notify('sipmap_' || md5(coalesce(current_schema(), '')), '');
    RETURN NULL;
END
$$;

CREATE TRIGGER source_ip_mappings_log AFTER INSERT OR UPDATE OR DELETE ON source_ip_mappings
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_change();
CREATE TRIGGER sip_domains_log AFTER INSERT OR UPDATE OR DELETE ON sip_domains
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_change();
CREATE TRIGGER acl_mappings_log AFTER INSERT OR UPDATE OR DELETE ON acl_mappings
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_change();
CREATE TRIGGER ip_addresses_log AFTER INSERT OR UPDATE OR DELETE ON ip_addresses
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_change();
