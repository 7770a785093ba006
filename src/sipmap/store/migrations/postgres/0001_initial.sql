-- The PostgreSQL schema: the same tables, columns and constraints as SQLite's.
-- Every resource table has `seq`: creation order for lists and page tokens. An
-- identity column never hands out a value twice, even after the newest row is deleted,
-- and writes are serialised (see postgres.py), so seq order is also commit order.
-- Timestamps are Unix seconds (BIGINT) and booleans 0/1 (INTEGER), exactly as
-- store/schema.py converts them for both backends.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    owner_account_sid TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name TEXT NOT NULL,
    status TEXT NOT NULL,
    auth_token_hash TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX accounts_owner ON accounts (owner_account_sid, seq);

CREATE TABLE api_keys (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name TEXT,
    secret_hash TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys (account_sid, seq);

CREATE TABLE ip_records (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name TEXT,
    ip_address TEXT NOT NULL,
    cidr_prefix_length INTEGER NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX ip_records_account ON ip_records (account_sid, seq);

CREATE TABLE sip_domains (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    domain_name TEXT NOT NULL UNIQUE,
    friendly_name TEXT,
    voice_url TEXT,
    voice_method TEXT NOT NULL,
    voice_fallback_url TEXT,
    voice_fallback_method TEXT NOT NULL,
    voice_status_callback_url TEXT,
    voice_status_callback_method TEXT NOT NULL,
    sip_registration INTEGER NOT NULL,
    emergency_calling_enabled INTEGER NOT NULL,
    secure INTEGER NOT NULL,
    byoc_trunk_sid TEXT,
    emergency_caller_sid TEXT,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX sip_domains_account ON sip_domains (account_sid, seq);

CREATE TABLE source_ip_mappings (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    -- one mapping per IP record, enforced by the schema as well as the service
    ip_record_sid TEXT NOT NULL UNIQUE REFERENCES ip_records (sid),
    sip_domain_sid TEXT NOT NULL REFERENCES sip_domains (sid),
    network BIGINT NOT NULL,
    prefix_len INTEGER NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX source_ip_mappings_account ON source_ip_mappings (account_sid, seq);
CREATE INDEX source_ip_mappings_network ON source_ip_mappings (network, prefix_len);
CREATE INDEX source_ip_mappings_domain ON source_ip_mappings (sip_domain_sid);

CREATE TABLE ip_access_control_lists (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    friendly_name TEXT NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX ip_access_control_lists_account ON ip_access_control_lists (account_sid, seq);

CREATE TABLE ip_addresses (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    ip_access_control_list_sid TEXT NOT NULL REFERENCES ip_access_control_lists (sid),
    friendly_name TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    cidr_prefix_length INTEGER NOT NULL,
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL
);
CREATE INDEX ip_addresses_list ON ip_addresses (ip_access_control_list_sid, seq);

CREATE TABLE acl_mappings (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sid TEXT NOT NULL REFERENCES ip_access_control_lists (sid),
    account_sid TEXT NOT NULL REFERENCES accounts (sid),
    domain_sid TEXT NOT NULL REFERENCES sip_domains (sid),
    date_created BIGINT NOT NULL,
    date_updated BIGINT NOT NULL,
    UNIQUE (domain_sid, sid)
);
CREATE INDEX acl_mappings_list ON acl_mappings (sid);

-- Where deleted items stood, so a page token naming one keeps its place.
CREATE TABLE tombstones (
    tbl TEXT NOT NULL,
    sid TEXT NOT NULL,
    seq BIGINT NOT NULL,
    -- The list it stood in (schema.SCOPES), so a token naming a deleted item resolves
    -- only within that list (SQLite's migration 0002, here from the start).
    scope TEXT,
    PRIMARY KEY (tbl, sid, seq)
);
CREATE INDEX tombstones_scope ON tombstones (tbl, sid, scope);
