"""Local stock follows the journal: every settled sale lowers its lines, every refund raises them.

A voided sale gives its lines back (:func:`movements`).

:class:`StockFollower` reads the journal's outbox (the record of each settled sale and refund,
with its basket lines, written in the same SQLite transaction as the payment's last state;
docs/journal.md) from the position it last reached, and hands the records to
:meth:`gateway.sync.stock_store.StockStore.follow`, which applies them and stores the new
position in one transaction of the stock file. So:

* a crash between a sale and its stock movement never loses the movement: on restart the
  follower resumes from its stored position, and the journal still has the record;
* nor applies it twice: a payment id is applied once, and the position only grows;
* stock never blocks a payment: the follower runs beside the payment path, in its own task,
  on its own file. :meth:`notify` (called when a payment settles) wakes it at once; it also
  looks every ``poll_interval`` seconds (a refund, or a settlement it was not told about).

The position is an outbox record id, and records are only pruned long after they were sent
(``journal.outbox_retention_days``), so the follower, which runs all the time, never misses
one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from gateway.journal.records import OutboxItem
from gateway.sync.errors import SyncError
from gateway.sync.stock_store import Movement, StockStore

__all__ = ["OutboxReader", "StockFollower"]

log = logging.getLogger("posgw.gateway.sync.stock")


class OutboxReader(Protocol):
    """The part of :class:`gateway.journal.Journal` the follower reads."""

    async def outbox_after(self, position: int, *, limit: int = ...) -> list[OutboxItem]: ...


def movement(item: OutboxItem, body: dict[str, Any] | None = None) -> Movement:
    """The stock movement of one outbox record (a ``refund`` raises, anything else lowers);
    ``body``: the record's decoded body when the caller has it."""
    body = item.body if body is None else body
    items = body.get("items")
    return Movement(
        position=item.id,
        payment_id=item.payment_id,
        refund=body.get("type") == "refund",
        items=items if isinstance(items, list) else None,
    )


def movements(item: OutboxItem) -> list[Movement]:
    """The stock movements of one outbox record.

    A voided sale's record (revision 2, ``"voided": true``, docs/day.md "Void") gives its lines
    back, like a refund, under its own key ``<payment id>:void`` (applied once). The sale's own
    movement comes first, a no-op when it was applied already: the void replaced the sale's
    first record, perhaps before the follower read it.
    """
    body = item.body
    first = movement(item, body)
    if body.get("voided") is not True or first.refund:
        return [first]
    back = Movement(position=item.id, payment_id=f"{item.payment_id}:void", refund=True,
                    items=first.items)  # fmt: skip
    return [first, back]


class StockFollower:
    """Applies the journal's settled sales and refunds to the local stock store.

    Args:
        journal: The journal (``outbox_after``).
        stock: The local stock store.
        batch: Records read per step.
        poll_interval: Seconds between looks when not notified.
        on_change: Called after levels changed (e.g. to refresh a page); must not raise.
    """

    def __init__(
        self,
        *,
        journal: OutboxReader,
        stock: StockStore,
        batch: int = 200,
        poll_interval: float = 2.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._journal = journal
        self._stock = stock
        self._batch = batch
        self._poll = poll_interval
        self._on_change = on_change
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._applied = 0
        self._position = 0
        self._last_error: str | None = None

    def notify(self) -> None:
        """Look at the journal now (call when a payment settles)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stopping.set()
        self._wake.set()

    async def catch_up(self) -> int:
        """Apply every record beyond the stored position; returns how many moved stock."""
        applied = 0
        position = await self._stock.position()
        while True:
            items = await self._journal.outbox_after(position, limit=self._batch)
            if not items:
                break
            applied += await self._stock.follow([m for item in items for m in movements(item)])
            position = items[-1].id
        self._position = position
        self._applied += applied
        if applied:
            self._on_change()
        return applied

    async def run(self) -> None:
        """Follow the journal until :meth:`stop`; errors are recorded and retried."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.catch_up()
                self._last_error = None
            except SyncError as exc:  # the journal's and the store's errors are GatewayErrors
                self._last_error = str(exc)[:200]
                log.error("stock follower: %s", self._last_error)
            except Exception as exc:  # noqa: BLE001 - keep following; the page shows it
                self._last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.error("stock follower: %s", self._last_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe state: movements applied, position in the outbox, last error."""
        return {"applied": self._applied, "position": self._position,
                "last_error": self._last_error}  # fmt: skip
