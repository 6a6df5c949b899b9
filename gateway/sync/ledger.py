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

import sqlite3
from collections.abc import Sequence

from gateway.sync.errors import SyncError
from gateway.sync.sqlite_thread import SqliteOnThread

__all__ = ["AckLedger", "LedgerError", "Unacknowledged"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS unacknowledged (
    sale_id  TEXT PRIMARY KEY,
    payload  BLOB NOT NULL,          -- the message as published (masked PAN only)
    sent_ms  INTEGER NOT NULL,       -- last PUBACK of this sale
    resends  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS unacknowledged_sent ON unacknowledged(sent_ms);
"""


def _create(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


class LedgerError(SyncError):
    """The acknowledgement ledger cannot be opened or written (SQLite's reason attached)."""


Unacknowledged = tuple[str, bytes]


class AckLedger(SqliteOnThread):
    """Published sales awaiting head office's acknowledgement, in their own SQLite file."""

    error = LedgerError
    closed_error = LedgerError
    what = "the acknowledgement ledger"
    thread = "posgw-acks"
    _initialise = staticmethod(_create)

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
