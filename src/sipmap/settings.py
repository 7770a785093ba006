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
        "max_account_requests",
        "--max-account-requests",
        100,
        "Requests one account family (an account and its subaccounts) may have in flight; "
        "beyond it its requests get 429 (code 20429), others' are unaffected.",
    ),
    Setting(
        "max_account_body_bytes",
        "--max-account-body-bytes",
        1024 * 1024,
        "Bytes of request bodies one account family may have in flight (a body counts its "
        "Content-Length from its first byte); beyond it 429 (code 20429).",
    ),
    Setting(
        "body_timeout",
        "--body-timeout",
        10,
        "Seconds a request body may take to arrive in full; then 408 and the connection closes.",
    ),
    Setting(
        "header_timeout",
        "--header-timeout",
        10,
        "Seconds a request's headers may take to arrive in full, from their first byte; "
        "then 408 and the connection closes.",
    ),
    Setting(
        "keep_alive_timeout",
        "--keep-alive-timeout",
        5,
        "Seconds a connection with no request in progress (new, or kept alive) may stay "
        "silent before it is closed.",
    ),
    Setting(
        "max_header_bytes",
        "--max-header-bytes",
        16 * 1024,
        "Largest request head (request line and headers) accepted; beyond it 431.",
    ),
    Setting(
        "max_headers",
        "--max-headers",
        100,
        "Most header fields a request may have; beyond it 431.",
    ),
    Setting(
        "max_connections",
        "--max-connections",
        1000,
        "Open HTTP connections; a new one beyond it closes the one waiting longest without "
        "a request in progress. Lowered to fit the open-file limit if that cannot be raised.",
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
