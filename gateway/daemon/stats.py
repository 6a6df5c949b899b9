"""Today's journal figures for the snapshot, read on a separate read-only SQLite connection.

The journal's own connection belongs to its worker thread; these counts come from a second,
read-only connection (``mode=ro``; WAL lets a reader run beside the writer) on this module's
own single thread, so nothing blocks the event loop. Only counts are read: no card data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["JournalStats"]

_SETTLED_OK = ("COMPLETED", "STORED_FOR_FORWARDING", "FORWARDED")


class JournalStats:
    """Counts of today's sales (approved, declined), completed refunds and the outbox backlog."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="posgw-stats")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = f"{self._path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=2.0)
        return self._conn

    def _read(self, since_ms: int) -> dict[str, int]:
        conn = self._connect()
        row = conn.execute(
            """SELECT COALESCE(SUM(kind = 'sale'), 0),
                       COALESCE(SUM(kind = 'sale' AND state IN (?, ?, ?)), 0),
                       COALESCE(SUM(kind = 'sale' AND state = 'DECLINED'), 0),
                       COALESCE(SUM(kind = 'refund' AND state = 'COMPLETED'), 0)
                FROM payments WHERE created_ms >= ?""",
            (*_SETTLED_OK, since_ms),
        ).fetchone()
        backlog = conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_ms IS NULL").fetchone()
        return {
            "payments_today": int(row[0]),
            "approved_today": int(row[1]),
            "declined_today": int(row[2]),
            "refunds_today": int(row[3]),
            "outbox_backlog": int(backlog[0]),
        }

    async def read(self) -> dict[str, int]:
        """Today's counts (local midnight) and the unsent outbox rows; empty on failure."""
        now = time.localtime(self._clock())
        midnight = time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1))
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._read, int(midnight * 1000))
        except sqlite3.Error:
            return {}

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connection and the thread (twice is fine)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # the executor is already shut down
            await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)
