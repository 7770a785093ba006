"""A TCP relay between a sipmap node and PostgreSQL that a test can cut: a real network
partition of one node (its connections reset, new ones refused) while the others keep
theirs."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict


def _target(url: str) -> tuple[int, str | tuple[str, int]]:
    """The address family and address `url`'s server listens on."""
    info = conninfo_to_dict(url)
    host = str(info.get("host") or "/tmp")
    port = int(info.get("port") or 5432)
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (host, port)


class Proxy:
    def __init__(self, url: str) -> None:
        self._family, self._address = _target(url)
        info = conninfo_to_dict(url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        # The same database, user and options (the scratch schema), through us.
        query = f"?options={quote(str(info['options']))}" if info.get("options") else ""
        self.url = f"postgresql://{info.get('user', 'postgres')}@127.0.0.1:{port}/{info.get('dbname', 'postgres')}{query}"
        self._open = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self._open:
                client.close()
                continue
            upstream = socket.socket(self._family, socket.SOCK_STREAM)
            upstream.connect(self._address)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for each in (source, sink):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Reset every relayed connection and refuse new ones."""
        self._open = False
        with self._lock:
            cut, self._sockets = self._sockets, []
        for each in cut:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def mend(self) -> None:
        self._open = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


@contextmanager
def proxied(url: str) -> Iterator[Proxy]:
    proxy = Proxy(url)
    try:
        with psycopg.connect(proxy.url, connect_timeout=5) as conn:  # it relays
            conn.execute("SELECT 1")
        yield proxy
    finally:
        proxy.close()
