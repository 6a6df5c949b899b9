"""The journal's owner lock: one process at a time may own a journal file (docs/day.md, backup).

The daemon takes an exclusive ``flock(2)`` on ``<journal>.lock`` before it opens the journal and
holds it until it exits (the kernel releases it if the process dies, even by SIGKILL, so a stale
lock never blocks a restart). ``posgw restore`` takes the same lock before it replaces the file,
so a restore never overwrites the journal of a running daemon, and a daemon cannot start in the
middle of a restore. The lock file holds the owner's pid, for the error message only: the lock
itself, not the pid, decides.

``posgw backup`` does not take the lock: it reads a consistent snapshot through SQLite while the
daemon writes (:mod:`gateway.journal.backup`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from gateway.journal.errors import JournalError

__all__ = ["JournalInUse", "journal_lock", "lock_path"]


class JournalInUse(JournalError):
    """Another process (a running daemon, a restore) owns the journal.

    Attributes:
        path: The journal file.
        pid: The owner's pid as written in the lock file (None if unreadable).
    """

    def __init__(self, path: Path, pid: int | None) -> None:
        owner = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{path}: in use by {owner} (a running posgw daemon?)")
        self.path = path
        self.pid = pid


def lock_path(journal_path: str | os.PathLike[str]) -> Path:
    """The lock file of a journal: ``<journal>.lock`` beside it."""
    path = Path(journal_path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def journal_lock(journal_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Own the journal at ``journal_path`` for the duration of the ``with`` block.

    Raises:
        JournalInUse: Another process holds the lock (never waits).
        OSError: The lock file cannot be created (directory missing or read-only).
    """
    path = lock_path(journal_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalInUse(Path(journal_path), _read_pid(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
