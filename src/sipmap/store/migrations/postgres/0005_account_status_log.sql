-- Account status in the change feed: a suspended or closed account's domains accept
-- nothing (recognition rule 4), so every node must learn of a status change. Only the
-- SID and the status are logged: the row also holds the credential hash, which has no
-- business in the log.
CREATE FUNCTION sipmap_log_account_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20745, hashtext(coalesce(current_schema(), '')));
    INSERT INTO change_log (tbl, deleted, row)
        VALUES (TG_TABLE_NAME, FALSE, jsonb_build_object('sid', NEW.sid, 'status', NEW.status));
    PERFORM pg_notify('sipmap_' || md5(coalesce(current_schema(), '')), '');
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_status_log AFTER UPDATE OF status ON accounts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION sipmap_log_account_status();
