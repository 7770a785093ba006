"""Every setting, declared once: the CLI, the docs and the tests are driven by this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # the attribute on parsed arguments
    flag: str
    default: str | int | float | None
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
        "db_timeout",
        "--db-timeout",
        5.0,
        "Seconds a PostgreSQL operation may take (connecting included); past it, or while the "
        "database is down, API requests get 503 (code 20503) instead of waiting.",
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
        "max_concurrent_requests",
        "--max-concurrent-requests",
        1000,
        "Requests handled at once; beyond it the API answers 429 (code 20429).",
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
)
