"""Local stock levels: head office sets them, sales take from them (docs/sync.md, "Stock").

One small SQLite file of its own (``stock.db``), separate from the payment journal: stock is a
convenience for the shop, payments are money, and a stock problem must never block a payment.
As in the journal, ``sqlite3`` runs on one dedicated worker thread, never on the event loop.

Two writers, two rules:

* :meth:`StockStore.apply_update` sets a SKU's level from head office only when the update's
  version is newer than the stored one; an equal or older version (a duplicate QoS 1 delivery,
  or a retained message older than what we already have) changes nothing.
* :meth:`StockStore.apply_sale` takes each sold quantity off the level, once per sale id, in
  one transaction. A level may go below zero: that is real information (sold more than head
  office thought we had) and the next update from head office corrects it.
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
from typing import Any, ParamSpec, TypeVar

from gateway.sync.errors import SyncError

__all__ = ["InvalidItems", "StockClosed", "StockError", "StockLevel", "StockStore"]

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    sku        TEXT PRIMARY KEY,
    level      INTEGER NOT NULL,
    version    INTEGER NOT NULL,     -- head office's version; 0 = never set by head office
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS applied_sales (
    sale_id TEXT PRIMARY KEY,
    at_ms   INTEGER NOT NULL
);
"""


class StockError(SyncError):
    """Base of the stock store's errors."""


class StockClosed(StockError):
    """The store was used after :meth:`StockStore.close`."""


class InvalidItems(StockError):
    """A basket entry cannot be applied (the field is named; values are not quoted).

    Attributes:
        field: JSON path of the bad value, e.g. ``"items[2].qty"``.
    """

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


StockLevel = dict[str, Any]


def _parse_items(items: Sequence[Any] | None) -> dict[str, int]:
    """Sum quantities per SKU. Entries without ``sku`` (services, fees) are not stock."""
    wanted: dict[str, int] = {}
    if items is None:
        return wanted
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidItems("items", "expected a list")
    for n, entry in enumerate(items):
        if not isinstance(entry, dict):
            raise InvalidItems(f"items[{n}]", "expected an object")
        if "sku" not in entry:
            continue
        sku, qty = entry["sku"], entry.get("qty", 1)
        if not isinstance(sku, str) or not 0 < len(sku) <= 64:
            raise InvalidItems(f"items[{n}].sku", "expected a string of 1-64 characters")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 < qty <= 1_000_000:
            raise InvalidItems(f"items[{n}].qty", "expected an integer 1..1000000")
        wanted[sku] = wanted.get(sku, 0) + qty
    return wanted


class StockStore:
    """Stock levels in their own SQLite file, behind an asyncio API (one worker thread)."""

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
    ) -> StockStore:
        """Open (creating) the stock file at ``path`` (WAL, ``synchronous=FULL``).

        Raises:
            StockError: SQLite cannot open or initialise it.
        """
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="posgw-stock")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(Path(path), isolation_level=None)
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
            raise StockError(f"cannot open the stock store: {exc}") from exc
        return cls(executor, conn, clock)

    async def close(self) -> None:
        """Close the file; a second call does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> StockStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._conn is None:
            raise StockClosed("the stock store is closed")
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            raise StockError(f"SQLite: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StockClosed("the stock store is closed")
        return self._conn

    # -- writes ------------------------------------------------------------------------------

    async def apply_update(self, sku: str, *, level: int, version: int) -> bool:
        """Set ``sku`` to ``level`` if ``version`` is newer than the stored one.

        Returns:
            True when applied; False for a duplicate or stale version (nothing changed).
        """
        return await self._run(self._apply_update, sku, level, version)

    def _apply_update(self, sku: str, level: int, version: int) -> bool:
        conn = self._db()
        now = round(self._clock() * 1000)
        with _txn(conn):
            cur = conn.execute(
                "INSERT INTO stock (sku, level, version, updated_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sku) DO UPDATE SET level = excluded.level, "
                "version = excluded.version, updated_ms = excluded.updated_ms "
                "WHERE excluded.version > stock.version",
                (sku, level, version, now),
            )
            return cur.rowcount == 1

    async def apply_sale(
        self, items: Sequence[Any] | None, *, sale_id: str | None = None
    ) -> dict[str, int]:
        """Take a sale's quantities off local stock, once per ``sale_id``, in one transaction.

        Args:
            items: The basket as journaled: objects with ``sku`` (str) and ``qty`` (int >= 1,
                default 1); entries without ``sku`` are ignored.
            sale_id: The payment id; a second call with the same id changes nothing.

        Returns:
            The new level of each SKU touched (empty for a repeated ``sale_id``).

        Raises:
            InvalidItems: A malformed entry (nothing is applied).
        """
        wanted = _parse_items(items)
        return await self._run(self._apply_sale, wanted, sale_id)

    def _apply_sale(self, wanted: dict[str, int], sale_id: str | None) -> dict[str, int]:
        conn = self._db()
        now = round(self._clock() * 1000)
        with _txn(conn):
            if sale_id is not None:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO applied_sales (sale_id, at_ms) VALUES (?, ?)",
                    (sale_id, now),
                )
                if cur.rowcount == 0:
                    return {}
            levels: dict[str, int] = {}
            for sku, qty in sorted(wanted.items()):
                row = conn.execute(
                    "INSERT INTO stock (sku, level, version, updated_ms) VALUES (?, ?, 0, ?) "
                    "ON CONFLICT (sku) DO UPDATE SET level = stock.level - ?, "
                    "updated_ms = excluded.updated_ms RETURNING level",
                    (sku, -qty, now, qty),
                ).fetchone()
                levels[sku] = int(row[0])
            return levels

    # -- reads -------------------------------------------------------------------------------

    async def level(self, sku: str) -> int | None:
        """The local level of ``sku``, or None when it is unknown."""
        return await self._run(self._level, sku)

    def _level(self, sku: str) -> int | None:
        row = self._db().execute("SELECT level FROM stock WHERE sku = ?", (sku,)).fetchone()
        return None if row is None else int(row[0])

    async def levels(self) -> dict[str, StockLevel]:
        """Every SKU: ``{"level": int, "version": int, "updated_ms": int}``, sorted by SKU."""
        return await self._run(self._levels)

    def _levels(self) -> dict[str, StockLevel]:
        rows = (
            self._db()
            .execute("SELECT sku, level, version, updated_ms FROM stock ORDER BY sku")
            .fetchall()
        )
        return {r[0]: {"level": r[1], "version": r[2], "updated_ms": r[3]} for r in rows}


class _txn:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
