-- Credentials in the change feed: every node keeps the credentials it verified for a
-- few seconds (service/accounts.py), so a deleted API key or a changed auth token
-- must reach every node before the write that made it is acknowledged (leases.py),
-- or another node would still let the old secret in. Only the SID is logged: a
-- credential hash has no business in the log. The node forgets every credential it
-- holds on such an entry (they are cheap to verify again).
CREATE FUNCTION sipmap_log_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20745, hashtext(coalesce(current_schema(), '')));
    INSERT INTO change_log (tbl, deleted, row)
        VALUES ('credentials', TG_OP = 'DELETE', jsonb_build_object('sid', OLD.sid));
    PERFORM pg_notify('sipmap_' || md5(coalesce(current_schema(), '')), '');
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_credentials_log AFTER UPDATE OF secret_hash OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION sipmap_log_credentials();
CREATE TRIGGER accounts_credentials_log AFTER UPDATE OF auth_token_hash ON accounts
    FOR EACH ROW WHEN (OLD.auth_token_hash IS DISTINCT FROM NEW.auth_token_hash)
    EXECUTE FUNCTION sipmap_log_credentials();
