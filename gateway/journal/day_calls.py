"""The day's journal calls: the day close, what the close reads, and the terminals' totals.

The close (:mod:`gateway.day`) reads the day's payments and authorisation times, records the
day in one row (:func:`gateway.journal.queries.insert_day_close`) and starts the day in money
again from the same transaction; head office's acknowledgement marks the day published. A
smart terminal's own end of day is kept beside it (schema 8) for the reconciliation.
"""

from __future__ import annotations

from typing import Any

from gateway.journal.base import JournalBase
from gateway.journal.errors import InvalidRecord
from gateway.journal.guard import check_value
from gateway.journal.money import MoneyReading, read_money
from gateway.journal.queries import (
    DayClose,
    DayPayment,
    auth_durations_ms,
    day_payments,
    forward_declined,
    insert_day_close,
    last_close,
    mark_day_published,
    unpublished_days,
    without_own_times,
)
from gateway.journal.records import TerminalTotals

__all__ = ["DayCalls"]


class DayCalls(JournalBase):
    """The journal's end-of-day calls (a mixin of :class:`~gateway.journal.Journal`)."""

    async def last_day_close(self) -> DayClose | None:
        """The most recent day close (the current day started then), if any."""
        return await self._run(last_close, self._s().conn)

    async def day_payments(self, since_ms: int, until_ms: int) -> list[DayPayment]:
        """Payments created in ``[since_ms, until_ms)`` with their void/offline flags."""
        return await self._run(day_payments, self._s().conn, since_ms, until_ms)

    async def record_day_close(
        self,
        *,
        opened_ms: int,
        closed_ms: int,
        actor: str,
        differences: int,
        record: dict[str, Any],
    ) -> DayClose:
        """Journal a day close (see :func:`gateway.journal.queries.insert_day_close`).

        Raises:
            DayAlreadyClosed, CardDataRejected (the record is checked like every write).
        """
        check_value("actor", actor)
        # the journal's own millisecond times are not card data (a 13-digit number passes the
        # Luhn check one time in ten): the day's bounds and the time of each terminal totals
        # row the record cites; everything else in the record is checked
        check_value("day", without_own_times(record))
        store = self._s()

        def close() -> tuple[DayClose, MoneyReading]:
            day = insert_day_close(
                store.conn,
                opened_ms=opened_ms,
                closed_ms=closed_ms,
                closed_by=actor,
                differences=differences,
                record=record,
            )
            # the new day's money, read in the close's transaction (payments created since
            # ``closed_ms`` may already be journaled): the memory starts again from it
            return day, read_money(store.conn, store.now_ms())

        day, _ = await self._run_noting(lambda result: self.money.load(result[1]), close)
        return day

    async def unpublished_days(self) -> list[DayClose]:
        """Closed days head office has not acknowledged yet."""
        return await self._run(unpublished_days, self._s().conn)

    async def mark_day_published(self, day_id: int) -> None:
        """Head office acknowledged the day's record."""
        store = self._s()
        await self._run(mark_day_published, store.conn, day_id, store.now_ms())

    async def auth_durations_ms(self, since_ms: int) -> list[int]:
        """Authorisation times (ms) of the requests sent since ``since_ms``."""
        return await self._run(auth_durations_ms, self._s().conn, since_ms)

    async def forward_declined(self) -> list[DayPayment]:
        """The sales whose forward the bank declined, waiting for a manager."""
        return await self._run(forward_declined, self._s().conn)

    # -- a smart terminal's own end of day ----------------------------------------------------

    async def add_terminal_totals(
        self,
        *,
        lane: str,
        actor: str,
        ok: bool,
        transactions: int | None = None,
        debits: int | None = None,
        refunds: int | None = None,
        currency: str | None = None,
        message: str = "",
    ) -> TerminalTotals:
        """Record what a smart terminal reported at its end of day (kept for reconciliation).

        Raises:
            InvalidRecord: A negative count or amount. CardDataRejected: card data in the text.
        """
        for name, value in (("transactions", transactions), ("debits", debits),
                            ("refunds", refunds)):
            if value is not None and value < 0:
                raise InvalidRecord(name, "must not be negative")
        check_value("message", message)
        return await self._run(
            self._s().add_terminal_totals, lane=lane, actor=actor, ok=ok,
            transactions=transactions, debits=debits, refunds=refunds, currency=currency,
            message=message[:200],
        )

    async def terminal_totals(self, lane: str) -> list[TerminalTotals]:
        """A lane's recorded ends of day at its terminal, oldest first."""
        return await self._run(self._s().terminal_totals, lane)
