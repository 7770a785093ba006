"""A private PostgreSQL server for tests that stop and start it (the suite's shared server
must never be restarted): initdb in a temporary directory, a free loopback port.

The binaries: the folder SIPMAP_TEST_PG_BIN names, else the system's PostgreSQL
(/usr/lib/postgresql/N/bin, readable by its system user wherever the checkout is), else
the `pgserver` wheel's (a test dependency), so this runs wherever the suite does. PostgreSQL refuses to run as
root: as root, it runs as the system user `postgres` if there is one, else `pgserver`
(created if missing, as pgserver itself does).

`frozen()` SIGSTOPs every process of the cluster — a server that hangs with its
connections open, as a frozen VM or a partition that drops packets looks to a client
(here the kernel still accepts and acknowledges what clients send, so no TCP timeout
fires either: only the client's own deadline can end a wait)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sipmap.testing import free_port

from .locks import machine_lock


def _bin() -> Path:
    named = os.environ.get("SIPMAP_TEST_PG_BIN")
    if named:
        return Path(named)
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if system:
        return system[-1].parent
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (as tests/pg.py says).
        warnings.simplefilter("ignore")
        import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _system_user() -> str:
    with machine_lock("pg-user"):  # test processes in parallel: one useradd
        for name in ("postgres", "pgserver"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        subprocess.run(["useradd", "--system", "pgserver"], check=True, capture_output=True)
        return "pgserver"


class Cluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.bin = _bin()
        self.user = _system_user() if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        prefix: Sequence[str] = ("runuser", "-u", self.user, "--") if self.user else ()
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        # fast: disconnect every client now, as a crash or a restart would.
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster's process ID first, then its children's (the backends)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP) inside, continued after."""
        stopped: list[int] = []
        try:
            # The postmaster first: once it is stopped it can start no new backend.
            postmaster = self.pids()[0]
            os.kill(postmaster, signal.SIGSTOP)
            stopped.append(postmaster)
            for pid in self.pids()[1:]:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="sipmap-pg-"))
    cluster = Cluster(root, free_port())
    if cluster.user:
        shutil.chown(root, cluster.user, cluster.user)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
