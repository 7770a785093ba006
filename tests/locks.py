"""One test process at a time, machine-wide, for set-up steps that race when the suite
runs in several processes (pytest-xdist): installing a package, adding a system user."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    with open(Path(tempfile.gettempdir()) / f"sipmap-tests-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield
