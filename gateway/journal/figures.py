"""The day's figures and the recent payments, kept in memory by the journal's own commits.

The status page and ``/metrics`` show, for the local day: the sales created, those approved
(COMPLETED, STORED_FOR_FORWARDING or FORWARDED), those declined, the refunds completed, and the
outbox records not yet acknowledged by head office. Counting them with a query on every view
cost a scan of the day's rows queued behind the payments' writes; instead:

* at :meth:`Journal.open <gateway.journal.Journal.open>` one query reads today's counts (an
  index range over ``payments(created_ms, kind, state)``, schema version 5) and the unsent
  outbox rows (the ``outbox_unsent`` partial index): :meth:`DayFigures.load`;
* after each COMMIT, on the event loop, each committed change is applied
  (:meth:`created`, :meth:`committed`, :meth:`sent`), whether or not its caller still waits.

The counted sets only ever grow: a sale counted approved stays in the approved set
(:data:`gateway.journal.states.APPROVED_AT_LANE`: a void or the bank declining the forward moves
it within the set; the outbox row is written when a payment enters COMPLETED or
STORED_FOR_FORWARDING, docs/journal.md, and a record re-queued as revision 2 is noted by the
journal) and DECLINED is terminal. So a change counts by its new state alone, and the
figures equal a fresh count of the journal at any moment (tested against one). A payment
counts on the day it was created (``created_ms`` at or after local midnight), as the query
does; at the first change or read after midnight the counts start again from zero.

:class:`RecentPayments` keeps, the same way, the record each of the last payments' latest
COMMIT returned: ``Journal.get`` and ``Journal.last_committed`` answer from it without waiting
behind the queued writes (the journal is its file's only writer).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.journal.records import Payment
from gateway.journal.states import PaymentKind, PaymentState

__all__ = ["DayCounts", "DayFigures", "RecentPayments", "local_midnight_ms"]

S = PaymentState
_ENTERS_SETTLED = frozenset({S.COMPLETED, S.STORED_FOR_FORWARDING})


@dataclass(frozen=True, slots=True)
class DayCounts:
    """The figures of one local day (an immutable reading)."""

    day_start_ms: int
    payments: int = 0
    approved: int = 0
    declined: int = 0
    refunds: int = 0
    outbox_backlog: int = 0


def local_midnight_ms(now: float, *, days_after: int = 0) -> int:
    """Local midnight starting the day of ``now`` (plus ``days_after`` days), in ms."""
    t = time.localtime(now)
    return int(time.mktime((t.tm_year, t.tm_mon, t.tm_mday + days_after, 0, 0, 0, 0, 0, -1)) * 1000)


class DayFigures:
    """Today's counts, current as of the last COMMIT the journal delivered."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._day_start = local_midnight_ms(clock())
        self._next_day = local_midnight_ms(clock(), days_after=1)
        self._payments = self._approved = self._declined = self._refunds = 0
        self._backlog = 0

    def day_start_ms(self) -> int:
        """The local midnight the counts start from (after a rollover check)."""
        self._roll()
        return self._day_start

    def load(self, counts: DayCounts) -> None:
        """Start from a count read from the journal (at open)."""
        self._roll()
        self._backlog = counts.outbox_backlog
        if counts.day_start_ms == self._day_start:
            self._payments, self._approved = counts.payments, counts.approved
            self._declined, self._refunds = counts.declined, counts.refunds

    def _roll(self) -> None:
        now = round(self._clock() * 1000)
        if now >= self._next_day:
            self._day_start = local_midnight_ms(now / 1000)
            self._next_day = local_midnight_ms(now / 1000, days_after=1)
            self._payments = self._approved = self._declined = self._refunds = 0

    def created(self, payment: Payment) -> None:
        """A payment was committed in CREATED."""
        self._roll()
        if payment.kind is PaymentKind.SALE and payment.created_ms >= self._day_start:
            self._payments += 1

    def committed(self, payment: Payment) -> None:
        """A transition to ``payment.state`` was committed."""
        state = payment.state
        if state in _ENTERS_SETTLED:
            self._backlog += 1  # its outbox row was written in the same transaction
        self._roll()
        if payment.created_ms < self._day_start:
            return
        if payment.kind is PaymentKind.SALE:
            if state in _ENTERS_SETTLED:
                self._approved += 1
            elif state is S.DECLINED:
                self._declined += 1
        elif state is S.COMPLETED:
            self._refunds += 1

    def sent(self, count: int) -> None:
        """``count`` outbox records were newly marked sent."""
        self._backlog -= count

    def read(self) -> DayCounts:
        """The figures now (O(1): nothing is read from the journal)."""
        self._roll()
        return DayCounts(
            self._day_start,
            self._payments,
            self._approved,
            self._declined,
            self._refunds,
            self._backlog,
        )


class RecentPayments:
    """The records the last COMMITs returned, for the ``size`` payments changed last."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._records: OrderedDict[str, Payment] = OrderedDict()

    def remember(self, payment: Payment) -> None:
        """Keep ``payment`` (just committed) as the latest record of its id."""
        records = self._records
        records[payment.id] = payment
        records.move_to_end(payment.id)
        if len(records) > self._size:
            records.popitem(last=False)

    def get(self, payment_id: str) -> Payment | None:
        """The latest committed record of ``payment_id``, if it is still kept."""
        return self._records.get(payment_id)
