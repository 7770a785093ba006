"""Every setting, declared once: the CLI, the docs and the tests are driven by this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # the attribute on parsed arguments
    flag: str
    default: str | int | bool | None  # a bool default makes an on/off flag
    help: str
    env: str | None = None
    choices: tuple[str, ...] | None = None
    # An integer setting's allowed range (inclusive); the CLI refuses values outside it.
    minimum: int | None = None
    maximum: int | None = None


SERVE_SETTINGS = (
    Setting("host", "--host", "127.0.0.1", "Address the HTTP API listens on."),
    Setting(
        "port",
        "--port",
        8080,
        "TCP port of the HTTP API (0: any free port; the log says which).",
        minimum=0,
        maximum=65535,
    ),
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
        minimum=0,
        maximum=32,
    ),
    Setting(
        "max_concurrent_requests",
        "--max-concurrent-requests",
        1000,
        "Requests handled at once; beyond it the API answers 429 (code 20429).",
        minimum=1,
    ),
    Setting(
        "login_failures_per_source",
        "--login-failures-per-source",
        10,
        "Failed logins a client address (an IPv6 /64) may make per minute, in a burst or "
        "spread out; beyond it its logins get 429 (code 20429) with Retry-After. 0: no limit.",
        minimum=0,
    ),
    Setting(
        "login_failures_per_account",
        "--login-failures-per-account",
        100,
        "Failed logins per minute naming one account or API key SID; beyond it logins as "
        "it get 429 (code 20429), except from addresses it has logged in from. 0: no limit.",
        minimum=0,
    ),
    Setting(
        "page_token_lifetime",
        "--page-token-lifetime",
        86400,
        "Seconds a PageToken stays valid after it was issued, even if the item it names is "
        "deleted; deleted items' places are forgotten after this (checked every tenth of it, "
        "at most hourly).",
        minimum=1,
    ),
    Setting(
        "max_account_requests",
        "--max-account-requests",
        100,
        "Requests one account family (an account and its subaccounts) may have in flight; "
        "beyond it its requests get 429 (code 20429), others' are unaffected.",
        minimum=1,
    ),
    Setting(
        "max_account_body_bytes",
        "--max-account-body-bytes",
        1024 * 1024,
        "Bytes of request bodies one account family may have in flight (a body counts its "
        "Content-Length from its first byte); beyond it 429 (code 20429).",
        minimum=1,
    ),
    Setting(
        "body_timeout",
        "--body-timeout",
        10,
        "Seconds a request body may take to arrive in full; then 408 and the connection closes.",
        minimum=1,
    ),
    Setting(
        "header_timeout",
        "--header-timeout",
        10,
        "Seconds a request's headers may take to arrive in full, from their first byte; "
        "then 408 and the connection closes.",
        minimum=1,
    ),
    Setting(
        "keep_alive_timeout",
        "--keep-alive-timeout",
        5,
        "Seconds a connection with no request in progress (new, or kept alive) may stay "
        "silent before it is closed.",
        minimum=1,
    ),
    Setting(
        "max_header_bytes",
        "--max-header-bytes",
        16 * 1024,
        "Largest request head (request line and headers) accepted; beyond it 431.",
        minimum=1024,
    ),
    Setting(
        "max_headers",
        "--max-headers",
        100,
        "Most header fields a request may have; beyond it 431.",
        minimum=1,
    ),
    Setting(
        "max_connections",
        "--max-connections",
        1000,
        "Open HTTP connections; a new one beyond it closes the one waiting longest without "
        "a request in progress. Lowered to fit the open-file limit if that cannot be raised.",
        minimum=1,
    ),
    Setting(
        "log_level",
        "--log-level",
        "info",
        "Log level: debug, info, warning or error.",
        choices=("debug", "info", "warning", "error"),
    ),
    Setting(
        "sip_host",
        "--sip-host",
        None,
        "Address the SIP edge listens on (UDP and TCP); by default the --host value.",
    ),
    Setting(
        "sip_port",
        "--sip-port",
        5060,
        "UDP and TCP port of the SIP edge; 0 disables it.",
        minimum=0,
        maximum=65535,
    ),
    Setting(
        "sip_upstream",
        "--sip-upstream",
        None,
        "Where accepted requests are proxied: HOST:PORT, optionally ;transport=tcp (UDP by "
        "default). Without it an accepted INVITE gets the --sip-final-response.",
    ),
    Setting(
        "sip_final_response",
        "--sip-final-response",
        480,
        "Final response to an accepted INVITE when no --sip-upstream is set.",
    ),
    Setting(
        "sip_drop_unrecognized",
        "--sip-drop-unrecognized",
        False,
        "Stay silent to requests from unrecognised sources instead of answering 403/404.",
    ),
    Setting(
        "sip_unrecognized_answers",
        "--sip-unrecognized-answers",
        500,
        "Answers (403/404) a second to unrecognised UDP sources; beyond it they are "
        "dropped unparsed, so a flood cannot take the CPU from recognised traffic.",
    ),
    Setting(
        "sip_max_message",
        "--sip-max-message",
        65536,
        "Largest SIP message accepted, in bytes; larger ones get 513 (TCP: then the "
        "connection closes).",
    ),
    Setting(
        "sip_tcp_idle_timeout",
        "--sip-tcp-idle-timeout",
        120,
        "Seconds a SIP TCP connection may stay silent before it is closed.",
        minimum=1,
    ),
    Setting(
        "sip_tcp_max_connections",
        "--sip-tcp-max-connections",
        5000,
        "SIP TCP connections open at once; beyond it new ones are closed at once.",
        minimum=1,
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
