"""Has anyone committed to this WAL-mode SQLite file since I last looked? In ~0.1 µs.

The row cache (sqlite.py) must be dropped whenever any connection, in any process,
commits. `PRAGMA data_version` answers that exactly, but it is a read transaction:
two `fcntl` system calls and ~4 µs, on every fetch. This reads the same fact from
where SQLite keeps it: the WAL-index header at the start of the `-shm` file, which
every connection to the database maps into memory. Its layout is part of SQLite's
documented file format (https://www.sqlite.org/walformat.html, "The WAL-Index
Header"): a commit appends frames (`mxFrame`) or restarts the log with new salts,
and bumps `iChange`, and every field is covered by a checksum, so the 48 bytes of
the header's first copy differ after every commit. SQLite writes that copy last,
after the commit's frames and the second copy, so a stamp that has changed is
never older than the state a read transaction begun after it sees.

Two hazards, both handled here:
- POSIX locks belong to a process and a file, not to a descriptor: closing *any*
  descriptor of the `-shm` file drops every lock SQLite holds on it in this process.
  The descriptor stays open until the last store using this file in the process has
  closed its connections (a reference count per file).
- A header of another version, or no `-shm` file (another VFS, exclusive locking):
  `open_watch` returns None and the caller falls back to `PRAGMA data_version`.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading

WAL_INDEX_VERSION = 3007000  # iVersion of every wal-index since SQLite 3.7.0
HEADER_BYTES = 48  # one copy of the WalIndexHdr

_lock = threading.Lock()
_open: dict[tuple[int, int], _Shm] = {}


class _Shm:
    """This process's one descriptor (and read-only mapping) of a `-shm` file."""

    def __init__(self, key: tuple[int, int], fd: int, size: int) -> None:
        self.key = key
        self.fds = [fd]
        self.users = 1
        # mmap keeps a duplicate descriptor of its own: it too is closed only in close().
        self._view: mmap.mmap | None = None
        self.map: mmap.mmap | None = None
        if size >= HEADER_BYTES:  # a read past the end of the file would be SIGBUS
            self._view = mmap.mmap(fd, HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
            if struct.unpack_from("=I", self._view, 0)[0] == WAL_INDEX_VERSION:
                self.map = self._view

    def close(self) -> None:
        if self._view is not None:
            self._view.close()
        for fd in self.fds:
            os.close(fd)


class WalWatch:
    """Hold one per store; `release()` it after the store's connections are closed."""

    def __init__(self, shm: _Shm) -> None:
        self._shm = shm
        self.usable = shm.map is not None

    def stamp(self) -> bytes:
        """Changes whenever a transaction commits (and rarely without one)."""
        assert self._shm.map is not None
        return self._shm.map[:HEADER_BYTES]

    def release(self) -> None:
        with _lock:
            self._shm.users -= 1
            if self._shm.users == 0:
                del _open[self._shm.key]
                self._shm.close()


def open_watch(db_path: str) -> WalWatch | None:
    """A watch on `db_path`, once a connection has initialised its WAL index.

    None when there is no `-shm` file; a watch that is not `usable` when its header
    is not one this module knows. Either way the caller asks `PRAGMA data_version`.
    """
    path = db_path + "-shm"
    with _lock:
        try:
            info = os.stat(path)
        except OSError:
            return None
        shm = _open.get((info.st_dev, info.st_ino))
        if shm is not None:
            shm.users += 1
            return WalWatch(shm)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        # From here on fd may only be closed by release(), whatever happens.
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        shm = _open.get(key)
        if shm is not None:  # the file was replaced between stat() and open()
            shm.users += 1
            shm.fds.append(fd)
        else:
            shm = _open[key] = _Shm(key, fd, info.st_size)
        return WalWatch(shm)
