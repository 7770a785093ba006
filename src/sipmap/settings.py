"""Every setting, declared once: the CLI, the docs and the tests are driven by this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # the attribute on parsed arguments
    flag: str
    default: str | int | None
    help: str
    env: str | None = None
    choices: tuple[str, ...] | None = None


SERVE_SETTINGS = (
    Setting("host", "--host", "127.0.0.1", "Address the HTTP API listens on."),
    Setting("port", "--port", 8080, "TCP port of the HTTP API."),
    Setting(
        "db",
        "--db",
        "./sipmap.db",
        "Path of the SQLite database file (created if missing), or a PostgreSQL URL "
        "(postgresql://user@host:port/dbname) whose database several nodes may share.",
    ),
    Setting(
        "credential_key_file",
        "--credential-key-file",
        None,
        "File holding the key credentials are hashed under (64 hex digits, mode 0600). "
        "Default: the database path plus .key, created on first start; a PostgreSQL "
        "database needs this or SIPMAP_CREDENTIAL_KEY, the same on every node.",
    ),
    Setting(
        "public_base_url",
        "--public-base-url",
        None,
        "Scheme and host used in absolute URLs of responses (e.g. https://sipmap.example.com); "
        "by default they are built from the request's scheme and Host header.",
    ),
    Setting(
        "sip_domain_suffix",
        "--sip-domain-suffix",
        "sip.twilio.com",
        "Suffix every SIP domain name must end with.",
    ),
    Setting(
        "min_mapping_prefix",
        "--min-mapping-prefix",
        8,
        "Shortest network (prefix length, 0-32) a source IP mapping may map; "
        "shorter ones are refused with 400 (code 20001).",
    ),
    Setting(
        "max_concurrent_requests",
        "--max-concurrent-requests",
        1000,
        "Requests handled at once; beyond it the API answers 429 (code 20429).",
    ),
    Setting(
        "login_failures_per_source",
        "--login-failures-per-source",
        10,
        "Failed logins a client address (an IPv6 /64) may make per minute, in a burst or "
        "spread out; beyond it its logins get 429 (code 20429) with Retry-After. 0: no limit.",
    ),
    Setting(
        "login_failures_per_account",
        "--login-failures-per-account",
        100,
        "Failed logins per minute naming one account or API key SID; beyond it logins as "
        "it get 429 (code 20429), except from addresses it has logged in from. 0: no limit.",
    ),
    Setting(
        "page_token_lifetime",
        "--page-token-lifetime",
        86400,
        "Seconds a PageToken stays valid after it was issued, even if the item it names is "
        "deleted; deleted items' places are forgotten after this (checked every tenth of it, "
        "at most hourly).",
    ),
    Setting(
        "log_level",
        "--log-level",
        "info",
        "Log level: debug, info, warning or error.",
        choices=("debug", "info", "warning", "error"),
    ),
)

ENVIRONMENT = (
    Setting(
        "account_sid",
        "",
        None,
        "SID of the bootstrap account ensured on start; with SIPMAP_AUTH_TOKEN.",
        env="SIPMAP_ACCOUNT_SID",
    ),
    Setting(
        "auth_token",
        "",
        None,
        "Auth token of the bootstrap account. Without both variables an account is generated "
        "on first start and its token printed once.",
        env="SIPMAP_AUTH_TOKEN",
    ),
    Setting(
        "credential_key",
        "",
        None,
        "The key credentials are hashed under, as 64 hex digits; instead of a key file.",
        env="SIPMAP_CREDENTIAL_KEY",
    ),
)
