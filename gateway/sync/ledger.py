"""Sales the broker acknowledged and head office has not yet: re-sent until it has.

A PUBACK says the *broker* has a sale (MQTT 5, 4.3.2). Whether head office stored it depends
on head office's session and on the broker keeping its queue through a restart. When head
office acknowledges stored sales by id (``posgw/{shop}/acks``, docs/sync.md), the publisher
keeps each PUBACKed sale here until head office's acknowledgement arrives, and publishes it
again when none came within ``ack_timeout``: delivery is then end to end, and still at least
once (head office deduplicates by ``id``).

The ledger is its own small SQLite file (WAL, ``synchronous=FULL``), apart from the payment
journal, with one worker thread as in :mod:`gateway.journal`. A sale is written here *before*
the journal marks it sent, so a crash between the two re-sends it (at least once) rather than
losing track of it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

from gateway.sync.errors import SyncError

__all__ = ["AckLedger", "LedgerError", "Unacknowledged"]

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unacknowledged (
    sale_id  TEXT PRIMARY KEY,
    payload  BLOB NOT NULL,          -- the message as published (masked PAN only)
    sent_ms  INTEGER NOT NULL,       -- last PUBACK of this sale
    resends  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS unacknowledged_sent ON unacknowledged(sent_ms);
"""


class LedgerError(SyncError):
    """The acknowledgement ledger cannot be opened or written (SQLite's reason attached)."""


Unacknowledged = tuple[str, bytes]


class AckLedger:
    """Published sales awaiting head office's acknowledgement, in their own SQLite file."""

    def __init__(
        self,
        executor: concurrent.futures.ThreadPoolExecutor,
        conn: sqlite3.Connection,
        clock: Callable[[], float],
    ) -> None:
        self._executor = executor
        self._conn: sqlite3.Connection | None = conn
        self._clock = clock

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> AckLedger:
        """Open (creating) the ledger at ``path``.

        Raises:
            LedgerError: SQLite cannot open or initialise it.
        """
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="posgw-acks")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(Path(path), isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
            except sqlite3.Error:
                conn.close()
                raise
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise LedgerError(f"cannot open the acknowledgement ledger: {exc}") from exc
        return cls(executor, conn, clock)

    async def close(self) -> None:
        """Close the file; a second call does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AckLedger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._conn is None:
            raise LedgerError("the acknowledgement ledger is closed")
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            raise LedgerError(f"SQLite: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError("the acknowledgement ledger is closed")
        return self._conn

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    async def record_sent(self, sales: Sequence[Unacknowledged]) -> None:
        """Remember PUBACKed sales ``(sale_id, payload)`` (a re-sent one gets a new time)."""
        if sales:
            await self._run(self._record, list(sales), self._now_ms())

    def _record(self, sales: list[Unacknowledged], now: int) -> None:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO unacknowledged (sale_id, payload, sent_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (sale_id) DO UPDATE SET sent_ms = excluded.sent_ms, "
                "resends = unacknowledged.resends + 1",
                [(sale_id, payload, now) for sale_id, payload in sales],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def acknowledge(self, sale_ids: Sequence[str]) -> int:
        """Forget sales head office acknowledged; returns how many were awaited."""
        return await self._run(self._acknowledge, list(sale_ids))

    def _acknowledge(self, sale_ids: list[str]) -> int:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = sum(
                conn.execute("DELETE FROM unacknowledged WHERE sale_id = ?", (i,)).rowcount
                for i in sale_ids
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return count

    async def due(self, *, older_than: float, limit: int) -> list[Unacknowledged]:
        """Up to ``limit`` sales PUBACKed more than ``older_than`` seconds ago, oldest first."""
        cutoff = self._now_ms() - round(older_than * 1000)
        return await self._run(self._due, cutoff, limit)

    def _due(self, cutoff: int, limit: int) -> list[Unacknowledged]:
        rows = self._db().execute(
            "SELECT sale_id, payload FROM unacknowledged WHERE sent_ms <= ? "
            "ORDER BY sent_ms LIMIT ?",
            (cutoff, limit),
        ).fetchall()
        return [(str(r[0]), bytes(r[1])) for r in rows]

    async def count(self) -> int:
        """Sales awaiting head office's acknowledgement."""
        return await self._run(self._count)

    def _count(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM unacknowledged").fetchone()[0])
