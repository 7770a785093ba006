"""The host part of a SIP Request-URI (RFC 3261 §19.1), lowercased."""

from __future__ import annotations


def request_uri_host(uri: str) -> str | None:
    """'sip:alice@Example.sip.twilio.com:5060;transport=tcp' → 'example.sip.twilio.com'.

    A bare host ('example.com') is accepted too. None when no host can be read,
    and for a tel: URI, which has none.
    """
    text = uri.strip()
    scheme, sep, rest = text.partition(":")
    if sep and scheme.lower() in ("sip", "sips"):
        text = rest
    elif sep and scheme.lower() == "tel":
        return None
    # The user part may contain ';' and '?' (RFC 3261 "user-unreserved"), but no
    # part of a SIP URI other than the user-info may contain an unescaped '@':
    # so the user-info ends at the first '@', and the host part follows it.
    text = text.split("@", 1)[-1]
    text = text.split(";", 1)[0].split("?", 1)[0]
    if text.startswith("["):  # IPv6 reference
        end = text.find("]")
        host = text[1:end] if end > 0 else ""
    else:
        host = text.split(":", 1)[0]
    host = host.lower().rstrip(".")
    return host or None
