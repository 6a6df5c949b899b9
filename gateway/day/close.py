"""Closing the shop's day: totals, reconciliation with the acquirer, the day's record.

``POST /api/days/close`` (a manager) and ``posgw close-day`` both run :meth:`DayCloser.close`:

1. the day runs from the previous close (or the first payment) to now; payments created from
   now on belong to the next day, and a sale of a closed day can no longer be voided (it is
   refunded instead);
2. the day's totals are computed from the journal (:func:`gateway.day.totals.day_totals`: per
   lane, AID, interface, currency and kind);
3. the acquirer's batch is closed (``POST /v1/batches/close`` under the key
   ``day-<n>-<opened ms>``, so a retried close never closes a second batch) and its totals are
   compared line by line with the journal's (:func:`gateway.day.totals.compare_with_acquirer`),
   without the sales of payment-terminal lanes (their own host has them: listed apart in
   ``terminal_lines``, not reconciled until the terminals' end-of-day totals are fetched);
   an acquirer that cannot be reached leaves the day closed and *not reconciled*, which the
   record says;
4. the record (totals, reconciliation, differences, who closed it) is journaled in ``days``, then
   published to head office by :class:`gateway.sync.days.DayPublisher` (the journal keeps it
   until head office acknowledges it).

The record is checked by the journal's card-data guard like every write; it holds amounts,
counts, lane ids, AIDs and currency codes only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from gateway.acquirer import AcquirerClient, AcquirerError
from gateway.acquirer.batches import close_batch
from gateway.day.totals import (
    AcquirerLine,
    compare_with_acquirer,
    day_totals,
    journal_acquirer_lines,
)
from gateway.journal import Journal
from gateway.journal.queries import DayClose

__all__ = ["DayCloser"]

log = logging.getLogger("gateway.day")

_IN_FLIGHT = frozenset(
    {"CREATED", "CARD_READ", "AUTH_REQUESTED", "UNKNOWN", "APPROVED", "REVERSAL_PENDING",
     "VOID_PENDING"}
)  # fmt: skip


class DayCloser:
    """Closes days (see the module docstring)."""

    def __init__(
        self,
        *,
        journal: Journal,
        client: AcquirerClient | None,
        merchant_id: str,
        lane_interfaces: Mapping[str, str] | None = None,
        on_closed: Callable[[DayClose], None] = lambda _day: None,
        terminal_lanes: frozenset[str] = frozenset(),
    ) -> None:
        #: Lanes whose payment terminal has its own host: their sales are not in our acquirer's
        #: batch (compared with the terminal's own totals once the TPE end of day is wired).
        self._terminal_lanes = terminal_lanes
        self._journal = journal
        self._client = client
        self._merchant_id = merchant_id
        self._interfaces = dict(lane_interfaces or {})
        #: Told of each journaled close (the daemon wakes the head-office day publisher).
        self.on_closed = on_closed

    async def opened_ms(self) -> int:
        """When the current day started (the last close, or 0 before the first)."""
        last = await self._journal.last_day_close()
        return 0 if last is None else last.closed_ms

    async def close(self, *, actor: str) -> DayClose:
        """Close the current day (see the module docstring) and return its journaled record.

        Raises:
            DayAlreadyClosed: Another close was journaled meanwhile. JournalError.
        """
        last = await self._journal.last_day_close()
        opened = 0 if last is None else last.closed_ms
        closed = self._journal.now_ms()
        number = 1 if last is None else last.id + 1
        payments = await self._journal.day_payments(opened, closed)
        totals = day_totals(payments, lane_interfaces=self._interfaces)
        ours = [p for p in payments if p.lane not in self._terminal_lanes]
        mine = journal_acquirer_lines(ours)
        record: dict[str, Any] = {
            "day": number,
            "opened_ms": opened,
            "closed_ms": closed,
            "closed_by": actor,
            "payments": len(payments),
            "in_flight": sum(1 for p in payments if p.state in _IN_FLIGHT),
            "totals": [line.to_json() for line in totals],
            "journal_lines": [_line_json(line) for line in mine],
        }
        if len(ours) != len(payments):
            theirs_lines = journal_acquirer_lines(
                p for p in payments if p.lane in self._terminal_lanes
            )
            record["terminal_lines"] = {
                "reconciled": False,
                "reason": "the terminals' own end-of-day totals are not fetched yet",
                "lines": [_line_json(line) for line in theirs_lines],
            }
        differences = 0
        if self._client is None:
            record["acquirer"] = {"reconciled": False, "error": "no acquirer client"}
        else:
            try:
                batch = await close_batch(
                    self._client,
                    merchant_id=self._merchant_id,
                    idempotency_key=f"day-{number}-{opened}",
                )
            except AcquirerError as exc:
                log.warning("day %d: acquirer totals unavailable: %s", number, exc)
                record["acquirer"] = {"reconciled": False, "error": type(exc).__name__}
            else:
                theirs = [
                    AcquirerLine(line.currency, line.kind, line.count, line.amount)
                    for line in batch.lines
                    if line.kind in ("sales_net", "refund")
                ]
                theirs = [
                    AcquirerLine(x.currency, "refunds" if x.kind == "refund" else x.kind,
                                 x.count, x.amount)
                    for x in theirs
                ]  # fmt: skip
                found = compare_with_acquirer(mine, theirs)
                differences = len(found)
                record["acquirer"] = {
                    "reconciled": True,
                    "batch": batch.batch,
                    "entries": batch.entries,
                    "lines": [_line_json(x) for x in theirs],
                    "differences": [d.to_json() for d in found],
                }
        day = await self._journal.record_day_close(
            opened_ms=opened, closed_ms=closed, actor=actor, differences=differences, record=record
        )
        log.info("day %d closed by %s: %d payment(s), %d difference(s)", day.id, actor,
                 len(payments), differences)  # fmt: skip
        try:
            self.on_closed(day)
        except Exception:  # a listener's defect never undoes a journaled close
            log.exception("day %d: on_closed listener failed", day.id)
        return day


def _line_json(line: AcquirerLine) -> dict[str, Any]:
    return {"currency": line.currency, "kind": line.kind, "count": line.count,
            "amount": line.amount}  # fmt: skip
