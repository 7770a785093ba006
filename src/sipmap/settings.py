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
    Setting("sip_port", "--sip-port", 5060, "UDP and TCP port of the SIP edge; 0 disables it."),
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
    ),
    Setting(
        "sip_tcp_max_connections",
        "--sip-tcp-max-connections",
        5000,
        "SIP TCP connections open at once; beyond it new ones are closed at once.",
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
