"""Call's reading of the ASGI scope."""

from __future__ import annotations

from sipmap.api import call


def test_base_urls_follow_the_host_header_and_their_map_stays_bounded() -> None:
    for n in range(3 * call.MAX_BASE_URLS):
        scope = {"scheme": "https", "headers": [(b"host", f"h{n}.example:8443".encode())]}
        assert call._url_of_host(scope) == f"https://h{n}.example:8443"
        assert len(call._BASE_URLS) <= call.MAX_BASE_URLS
    scope = {"scheme": "http", "headers": [(b"host", b"h1.example:8443")]}
    assert call._url_of_host(scope) == "http://h1.example:8443"  # the scheme is in the key
    no_host = {"scheme": "http", "headers": [], "server": ("127.0.0.1", 8080)}
    assert call._url_of_host(no_host) == "http://127.0.0.1:8080"
