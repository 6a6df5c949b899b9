"""Local stock levels: head office's snapshots merged with the shop's own movements (docs/sync.md).

One small SQLite file of its own (``stock.db``), separate from the payment journal: stock is a
convenience for the shop, payments are money, and a stock problem must never block a payment.
As in the journal, ``sqlite3`` runs on one dedicated worker thread, never on the event loop.

Per SKU the store keeps head office's last snapshot (``base_level``, ``version`` and
``counted``: the net quantity of this shop's sales and refunds head office had counted in it)
and ``local_net``, the net quantity of every sale and refund made here. The level shown is::

    level = base_level + (local_net - counted)

so the movements head office had not counted when it computed the snapshot are added back:
a snapshot that crosses a sale in flight neither loses that sale nor counts it twice, whatever
the order in which the two arrive. A snapshot without ``counted`` (an older head office) is
taken as the whole truth (``counted`` is then set to ``local_net``).

Three writers, three rules:

* :meth:`StockStore.apply_update` takes a snapshot only when its version is newer than the
  stored one (a duplicate QoS 1 delivery or an older retained message changes nothing);
* :meth:`StockStore.apply_sale` moves the levels of a basket once per payment id, in one
  transaction (a sale lowers, a refund raises);
* :meth:`StockStore.follow` applies records of the journal's outbox (the settled sales and
  refunds with their lines) and stores how far it got, in the same transaction: after a crash
  it resumes there, and the payment id makes a replay harmless, so a movement is never lost
  nor applied twice.

A level may go below zero: that is real information (sold more than head office thought we
had).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.sync.errors import SyncError
from gateway.sync.sqlite_thread import SqliteOnThread

__all__ = ["InvalidItems", "Movement", "StockClosed", "StockError", "StockLevel", "StockStore"]


_V1 = """
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
_V2 = (
    "ALTER TABLE stock ADD COLUMN base_level INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE stock ADD COLUMN counted INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE stock ADD COLUMN local_net INTEGER NOT NULL DEFAULT 0",
    "UPDATE stock SET base_level = level",
    "CREATE TABLE follower (name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
)
SCHEMA_VERSION = 2


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


@dataclass(frozen=True, slots=True)
class Movement:
    """One settled sale or refund as the journal's outbox has it.

    Attributes:
        position: The outbox record id (the follower's position).
        payment_id: The payment (applied once).
        refund: True for a refund (raises the levels).
        items: The basket lines (entries without ``sku`` are not stock).
    """

    position: int
    payment_id: str
    refund: bool
    items: Sequence[Any] | None


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


def _migrate(conn: sqlite3.Connection) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"stock.db schema {version} is newer than this code")
    conn.executescript(_V1)
    if version < 2:
        conn.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(stock)")}
            for statement in _V2:
                if "ADD COLUMN" in statement and statement.split()[5] in columns:
                    continue
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class StockStore(SqliteOnThread):
    """Stock levels in their own SQLite file, behind an asyncio API (one worker thread)."""

    error = StockError
    closed_error = StockClosed
    what = "the stock store"
    thread = "posgw-stock"
    _initialise = staticmethod(_migrate)

    # -- writes ------------------------------------------------------------------------------

    async def apply_update(
        self, sku: str, *, level: int, version: int, counted: int | None = None
    ) -> bool:
        """Take head office's snapshot of ``sku`` if ``version`` is newer than the stored one.

        Args:
            sku: The SKU. level: Head office's level. version: The snapshot's version.
            counted: The net quantity of this shop's movements head office had counted
                (None: the level is the whole truth).

        Returns:
            True when applied; False for a duplicate or stale version (nothing changed).
        """
        return await self._run(self._apply_update, sku, level, version, counted)

    def _apply_update(self, sku: str, level: int, version: int, counted: int | None) -> bool:
        conn = self._db()
        now = self._now_ms()
        with _txn(conn):
            row = conn.execute(
                "SELECT version, local_net FROM stock WHERE sku = ?", (sku,)
            ).fetchone()
            if row is not None and version <= row[0]:
                return False
            local_net = 0 if row is None else int(row[1])
            seen = local_net if counted is None else counted
            conn.execute(
                "INSERT INTO stock (sku, level, version, updated_ms, base_level, counted, "
                "local_net) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku) DO UPDATE SET "
                "level = excluded.level, version = excluded.version, "
                "updated_ms = excluded.updated_ms, base_level = excluded.base_level, "
                "counted = excluded.counted",
                (sku, level + local_net - seen, version, now, level, seen, local_net),
            )
            return True

    async def apply_sale(
        self, items: Sequence[Any] | None, *, sale_id: str | None = None, refund: bool = False
    ) -> dict[str, int]:
        """Move local stock by a sale (down) or a refund (up), once per ``sale_id``.

        Args:
            items: The basket as journaled: objects with ``sku`` (str) and ``qty`` (int >= 1,
                default 1); entries without ``sku`` are ignored.
            sale_id: The payment id; a second call with the same id changes nothing.
            refund: Raise the levels instead of lowering them.

        Returns:
            The new level of each SKU touched (empty for a repeated ``sale_id``).

        Raises:
            InvalidItems: A malformed entry (nothing is applied).
        """
        wanted = _parse_items(items)
        return await self._run(self._apply_sale, wanted, sale_id, 1 if refund else -1)

    def _apply_sale(
        self, wanted: dict[str, int], sale_id: str | None, sign: int
    ) -> dict[str, int]:
        conn = self._db()
        with _txn(conn):
            return self._move(conn, wanted, sale_id, sign)

    def _move(
        self, conn: sqlite3.Connection, wanted: dict[str, int], sale_id: str | None, sign: int
    ) -> dict[str, int]:
        now = self._now_ms()
        if sale_id is not None:
            cur = conn.execute(
                "INSERT OR IGNORE INTO applied_sales (sale_id, at_ms) VALUES (?, ?)",
                (sale_id, now),
            )
            if cur.rowcount == 0:
                return {}
        levels: dict[str, int] = {}
        for sku, qty in sorted(wanted.items()):
            delta = sign * qty
            row = conn.execute(
                "INSERT INTO stock (sku, level, version, updated_ms, base_level, counted, "
                "local_net) VALUES (?, ?, 0, ?, 0, 0, ?) ON CONFLICT (sku) DO UPDATE SET "
                "level = stock.level + ?, local_net = stock.local_net + ?, "
                "updated_ms = excluded.updated_ms RETURNING level",
                (sku, delta, now, delta, delta, delta),
            ).fetchone()
            levels[sku] = int(row[0])
        return levels

    async def follow(self, movements: Sequence[Movement]) -> int:
        """Apply settled movements and store the last position, in one transaction.

        A movement whose lines are malformed is skipped (it moves nothing; its position is
        still passed, so one bad record never stops stock).

        Returns:
            How many movements changed stock (a replayed payment id changes nothing).
        """
        if not movements:
            return 0
        return await self._run(self._follow, list(movements))

    def _follow(self, movements: list[Movement]) -> int:
        conn = self._db()
        applied = 0
        with _txn(conn):
            for movement in movements:
                try:
                    wanted = _parse_items(movement.items)
                except InvalidItems:
                    continue
                if self._move(conn, wanted, movement.payment_id, 1 if movement.refund else -1):
                    applied += 1
            conn.execute(
                "INSERT INTO follower (name, position) VALUES ('outbox', ?) ON CONFLICT (name) "
                "DO UPDATE SET position = max(follower.position, excluded.position)",
                (max(m.position for m in movements),),
            )
        return applied

    # -- reads -------------------------------------------------------------------------------

    async def position(self) -> int:
        """The last outbox record id :meth:`follow` applied (0 before the first)."""
        return await self._run(self._position)

    def _position(self) -> int:
        row = self._db().execute("SELECT position FROM follower WHERE name = 'outbox'").fetchone()
        return 0 if row is None else int(row[0])

    async def level(self, sku: str) -> int | None:
        """The local level of ``sku``, or None when it is unknown."""
        return await self._run(self._level, sku)

    def _level(self, sku: str) -> int | None:
        row = self._db().execute("SELECT level FROM stock WHERE sku = ?", (sku,)).fetchone()
        return None if row is None else int(row[0])

    async def levels(self) -> dict[str, StockLevel]:
        """Every SKU, sorted: ``level``, ``version``, ``updated_ms``, and the merge's parts
        ``head_office_level``, ``counted`` and ``local_net``."""
        return await self._run(self._levels)

    def _levels(self) -> dict[str, StockLevel]:
        rows = self._db().execute(
            "SELECT sku, level, version, updated_ms, base_level, counted, local_net "
            "FROM stock ORDER BY sku"
        ).fetchall()
        return {
            r[0]: {"level": r[1], "version": r[2], "updated_ms": r[3],
                   "head_office_level": r[4], "counted": r[5], "local_net": r[6]}
            for r in rows
        }  # fmt: skip


class _txn:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
