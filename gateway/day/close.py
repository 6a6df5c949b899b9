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
   without the sales of payment-terminal lanes (their own host has them); an acquirer that
   cannot be reached leaves the day closed and *not reconciled*, which the record says;
4. each payment-terminal lane is compared with its terminal's end-of-day totals
   (:mod:`gateway.day.terminals`, record ``terminals``): the lane's latest ``terminal_totals``
   row since the day opened if the terminal closed its day then (not one the previous close
   asked for: that one is timed after the previous close), else the terminal is asked
   now through the code path of ``POST /api/lanes/{id}/end-of-day`` (``ask_terminal``); a
   terminal that cannot answer makes that lane "terminal totals unavailable", never a failed
   close;
5. the record (totals, reconciliation, differences, who closed it) is journaled in ``days``, then
   published to head office by :class:`gateway.sync.days.DayPublisher` (the journal keeps it
   until head office acknowledges it).

The record is checked by the journal's card-data guard like every write; it holds amounts,
counts, lane ids, AIDs and currency codes only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gateway.acquirer import AcquirerClient, AcquirerError
from gateway.acquirer.batches import close_batch
from gateway.day.terminals import terminal_reconciliation, unavailable
from gateway.day.totals import (
    AcquirerLine,
    compare_with_acquirer,
    day_totals,
    journal_acquirer_lines,
)
from gateway.errors import GatewayError
from gateway.journal import Journal, JournalError, TerminalTotals
from gateway.journal.queries import DayClose

__all__ = ["DayCloser"]

log = logging.getLogger("gateway.day")

#: Asks a TPE lane's terminal for its end of day and journals it: ``(lane, actor) -> totals``.
AskTerminal = Callable[[str, str], Awaitable[TerminalTotals]]

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
        ask_terminal: AskTerminal | None = None,
    ) -> None:
        #: Lanes whose payment terminal has its own host: their sales are not in our acquirer's
        #: batch; they are compared with the terminal's own end-of-day totals.
        self._terminal_lanes = terminal_lanes
        #: None where no terminal can be asked (``posgw close-day``, the daemon stopped).
        self._ask_terminal = ask_terminal
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
        differences = 0
        if self._terminal_lanes:
            entries = []
            # totals the previous close asked for are timed after it closed: not this day's
            cited = _cited_totals(None if last is None else last.record)
            for lane in sorted(self._terminal_lanes, key=lambda x: (len(x), x)):
                lines = journal_acquirer_lines(p for p in payments if p.lane == lane)
                entry, count = await self._reconcile_terminal(lane, lines, opened, cited, actor)
                entries.append(entry)
                differences += count
            record["terminals"] = entries
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
                differences += len(found)
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

    async def _reconcile_terminal(
        self, lane: str, lines: list[AcquirerLine], opened: int, cited: frozenset[int],
        actor: str,
    ) -> tuple[dict[str, Any], int]:
        """One TPE lane's entry in the record and its number of differences."""
        kept = [t for t in await self._journal.terminal_totals(lane)
                if t.at_ms >= opened and t.id not in cited]  # fmt: skip
        if kept and kept[-1].ok:
            return terminal_reconciliation(lane, lines, kept[-1])
        if self._ask_terminal is None:  # posgw close-day: no daemon, no terminal to ask
            reason = kept[-1].message if kept else "no end of day at the terminal this day"
            return unavailable(lane, lines, reason or "the terminal could not close its day"), 0
        try:
            totals = await self._ask_terminal(lane, actor)
        except JournalError:
            raise
        except GatewayError as exc:  # the lane refused (LaneBusy: a payment is in progress)
            return unavailable(lane, lines, f"{type(exc).__name__}: {exc}"), 0
        except Exception as exc:  # a terminal's defect never fails the close
            log.exception("lane %s: terminal totals unavailable", lane)
            return unavailable(lane, lines, type(exc).__name__), 0
        return terminal_reconciliation(lane, lines, totals)


def _cited_totals(record: Mapping[str, Any] | None) -> frozenset[int]:
    """The ``terminal_totals`` rows a day's record used (none before the first close)."""
    if record is None:
        return frozenset()
    return frozenset(
        int(entry["totals_id"])
        for entry in record.get("terminals", [])
        if isinstance(entry, dict) and isinstance(entry.get("totals_id"), int)
    )


def _line_json(line: AcquirerLine) -> dict[str, Any]:
    return {"currency": line.currency, "kind": line.kind, "count": line.count,
            "amount": line.amount}  # fmt: skip
