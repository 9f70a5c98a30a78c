"""One daemon per SQLite store: an exclusive lock on a file beside it, held for the daemon's life.

At start-up a daemon records whatever the store says is queued or running as interrupted (a
crash left it) and resumes it. A second daemon on the same file would do that to the first one's
live runs, and both would then copy the same tags. So `regsyncd serve` takes `flock(LOCK_EX)` on
`<store>.lock` before it opens the store, and a second one refuses to start, naming the holder.

The kernel drops the lock when the process dies, kill -9 included: no stale lock to clean up
after a crash. Only the daemon takes it: `regsyncd once`/`check` never open the store, and a
script or a test that opens the file (to read it, to back it up) is not locked out.
PostgreSQL stores are shared on purpose and take no file lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..base.errors import StoreInUseError
from .location import MEMORY, StoreLocation


def lock_path(location: StoreLocation) -> str:
    return location.path + ".lock"


@contextmanager
def exclusive_store(location: StoreLocation) -> Iterator[None]:
    """Hold the store's lock for the `with` block (nothing to hold for PostgreSQL or memory).

    Raises:
        StoreInUseError: another process holds it (its pid is in the message when known).
    """
    if location.postgres or location.path == MEMORY:
        yield
        return
    path = lock_path(location)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _holder(fd)
            raise StoreInUseError(
                f"the store {location.shown} is in use by another regsyncd"
                f"{f' (pid {holder})' if holder else ''}: two daemons on one SQLite file "
                "would take each other's running executions for interrupted ones; stop the "
                f"other daemon, or give this one another --db (lock: {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> int | None:
    """The pid the holder wrote into the lock file, if it looks like one."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
