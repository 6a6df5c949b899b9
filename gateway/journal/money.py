"""The day in money, kept in memory by the journal's own commits (the status page's money part).

The page shows, for the current shop day: takings per currency, the approval rate, the median
authorisation time, the last payments (masked PAN only), the declined forwards waiting for a
manager, what is held offline (store-and-forward) and the last day close. Querying them on every
view read every payment since the last close through the journal's worker, queued behind the
payments' writes, and grew with the journal (docs/performance.md). Instead, like the day's
counts (:mod:`gateway.journal.figures`):

* :func:`read_money` reads them at :meth:`Journal.open <gateway.journal.Journal.open>` and right
  after a day close (in the close's own transaction), with bounded, indexed queries: the day's
  rows through ``payments_by_created`` (a range from the day's start), the held and declined
  sales through ``payments_by_state``, the newest :data:`LAST_KEPT` payments and
  :data:`AUTH_WINDOW` authorisation times with ``LIMIT``;
* after each COMMIT, on the event loop, :meth:`DayMoney.note` applies the committed record.

**The day.** It starts at the last day close (``days.closed_ms``). A shop that never closed a
day would otherwise have a "day" as long as the journal; its day starts at local midnight
instead (and starts again at the next midnight), so the page shows today's money and the
start-up query never reads more than today's rows. ``posgw close-day`` runs with the daemon
stopped, so the next open reads the new day.

**Why the new state alone is enough.** What a payment adds to the takings and the approval rate
depends on its kind and state only (:func:`weights`). Every state that adds something has at most
one predecessor that adds something (checked at import, :data:`_PREVIOUS`): a transition's change
is ``weights(new) - weights(that predecessor)``, without reading the old row. Membership of the
day (``created_ms`` at or after its start) never changes for a payment, so a payment created
before a close moves nothing after it.

**Bounded.** The takings and counts are a few integers per currency; the last payments keep
:data:`LAST_KEPT` entries; the median is over the day's last :data:`AUTH_WINDOW` authorisation
times (a window, not the whole day, once the day has more); the requests awaiting an answer
are at most :data:`PENDING_KEPT`; the held sales and the declined forwards are the outstanding
ones (bounded by the store-and-forward limits and by the manager acknowledging them).
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.journal.figures import local_midnight_ms
from gateway.journal.queries import (
    DayClose,
    DayPayment,
    OfflineExposure,
    forward_declined,
    last_close,
)
from gateway.journal.records import Payment
from gateway.journal.states import TRANSITIONS, PaymentKind, PaymentState

__all__ = [
    "AUTH_WINDOW",
    "LAST_KEPT",
    "DayMoney",
    "MoneyFigures",
    "MoneyReading",
    "read_money",
    "weights",
]

S = PaymentState

#: Payments the page lists (newest first), and how many are kept to sort them.
LAST_SHOWN = 10
LAST_KEPT = 64
#: Authorisation times the median is taken over (the day's most recent ones).
AUTH_WINDOW = 1024
#: Payments waiting for the acquirer's answer whose request time is kept.
PENDING_KEPT = 4096

#: Approved (by the bank, or by the card while not yet refused by the bank).
_APPROVED = frozenset({S.COMPLETED, S.STORED_FOR_FORWARDING, S.FORWARDED, S.VOID_PENDING,
                       S.VOIDED})  # fmt: skip
#: Decided: approved, declined, or refused by the bank after an offline approval.
_DECIDED = _APPROVED | {S.DECLINED, S.FORWARD_DECLINED, S.DECLINE_ACKNOWLEDGED}
#: Sales whose money is taken: a sale being voided (VOID_PENDING) still is, until the void is
#: confirmed (VOIDED), since the card stays charged if it fails (docs/day.md, "Void").
_TAKEN = frozenset({S.COMPLETED, S.STORED_FOR_FORWARDING, S.FORWARDED, S.VOID_PENDING})
#: States a sale reaches only through STORED_FOR_FORWARDING (approved offline).
_OFFLINE = frozenset({S.STORED_FOR_FORWARDING, S.FORWARDED, S.FORWARD_DECLINED,
                      S.DECLINE_ACKNOWLEDGED})  # fmt: skip
#: The acquirer's answers to an authorisation request (what the median times).
_ANSWERS = frozenset({S.APPROVED, S.DECLINED, S.UNKNOWN})

_Weights = tuple[int, int, int]
_ZERO: _Weights = (0, 0, 0)


def weights(kind: PaymentKind, state: PaymentState) -> _Weights:
    """What one payment adds to the day: (sign of its amount in the takings, decided, approved).

    A sale adds its amount once taken and counts in the approval rate once decided; a completed
    refund takes its amount off (the states of :func:`gateway.day.summary.day_summary`).
    """
    if kind is PaymentKind.SALE:
        return (int(state in _TAKEN), int(state in _DECIDED), int(state in _APPROVED))
    return (-1, 0, 0) if state is S.COMPLETED else _ZERO


#: Transitions whose caller names the predecessor (:meth:`DayMoney.note`'s ``previous``): a
#: refused terminal void, VOID_PENDING -> COMPLETED, would otherwise make COMPLETED's one
#: weighted predecessor VOID_PENDING for every sale that completes.
_NAMED = frozenset({(S.VOID_PENDING, S.COMPLETED)})


def _previous(kind: PaymentKind, state: PaymentState) -> _Weights:
    before = {w for s, nexts in TRANSITIONS.items() if state in nexts
              if (s, state) not in _NAMED
              if (w := weights(kind, s)) != _ZERO}  # fmt: skip
    if len(before) > 1:  # the new state alone would not say what the transition changed
        raise AssertionError(f"{kind} {state}: several weighted predecessors")
    return before.pop() if before else _ZERO


#: (kind, state) -> the weights of the one predecessor that has any.
_PREVIOUS = {(k, s): _previous(k, s) for k in PaymentKind for s in PaymentState}
#: (kind, state) -> :func:`weights` (looked up at each commit).
_WEIGHTS = {(k, s): weights(k, s) for k in PaymentKind for s in PaymentState}


def _shown(p: Payment | DayPayment) -> DayPayment:
    """A payment as the day's list shows it (a commit's record is made one when read)."""
    return _day_payment(p) if isinstance(p, Payment) else p


def _day_payment(p: Payment) -> DayPayment:
    return DayPayment(
        id=p.id, kind=p.kind.value, state=p.state.value, lane=p.lane, amount=p.amount,
        currency=p.currency, aid=p.aid, masked_pan=p.masked_pan, response_code=p.response_code,
        created_ms=p.created_ms, updated_ms=p.updated_ms,
        voided=p.state in (S.VOID_PENDING, S.VOIDED), offline=p.state in _OFFLINE,
    )  # fmt: skip


@dataclass(slots=True)
class MoneyReading:
    """What :func:`read_money` read from the journal (one snapshot: one worker call)."""

    day_start_ms: int
    close: DayClose | None
    #: (kind, state, currency) -> (count, sum of amounts), the day's payments.
    groups: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    last: list[DayPayment] = field(default_factory=list)
    #: The day's authorisation times, oldest first.
    auth_ms: list[int] = field(default_factory=list)
    #: The day's payments in AUTH_REQUESTED: id -> when the request was journaled.
    pending: dict[str, int] = field(default_factory=dict)
    held: list[tuple[str, str, int, int]] = field(default_factory=list)
    declined: list[DayPayment] = field(default_factory=list)


def read_money(conn: sqlite3.Connection, now_ms: int) -> MoneyReading:
    """The money figures from the journal (bounded indexed queries; module docstring)."""
    close = last_close(conn)
    start = close.closed_ms if close is not None else local_midnight_ms(now_ms / 1000)
    reading = MoneyReading(start, close)
    reading.groups = [
        (str(k), str(s), str(c), int(n), int(a)) for k, s, c, n, a in conn.execute(
            "SELECT kind, state, currency, count(*), coalesce(sum(amount), 0) FROM payments"
            " INDEXED BY payments_by_created WHERE created_ms >= ? GROUP BY kind, state, currency",
            (start,),
        )
    ]  # fmt: skip
    rows = conn.execute(
        "SELECT id, kind, state, lane, amount, currency, aid, masked_pan, response_code,"
        " created_ms, updated_ms FROM payments INDEXED BY payments_by_created"
        " WHERE created_ms >= ? ORDER BY updated_ms DESC, id DESC LIMIT ?",
        (start, LAST_KEPT),
    ).fetchall()
    reading.last = [
        DayPayment(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), r[6], r[7],
                   r[8], int(r[9]), int(r[10]), voided=r[2] in (S.VOID_PENDING, S.VOIDED),
                   offline=S(r[2]) in _OFFLINE)
        for r in rows
    ]  # fmt: skip
    # each answer against the request it answered (the payment's latest AUTH_REQUESTED before
    # it: a wrong-PIN retry asks again); events_by_payment for both
    reading.auth_ms = [int(row[0]) for row in conn.execute(
        "SELECT a.at_ms - (SELECT max(r.at_ms) FROM events r WHERE r.payment_id = p.id"
        "   AND r.to_state = 'AUTH_REQUESTED' AND r.seq < a.seq)"
        " FROM payments p INDEXED BY payments_by_created"
        " JOIN events a ON a.payment_id = p.id AND a.from_state = 'AUTH_REQUESTED'"
        " AND a.to_state IN ('APPROVED', 'DECLINED', 'UNKNOWN')"
        " WHERE p.created_ms >= ? ORDER BY a.seq DESC LIMIT ?",
        (start, AUTH_WINDOW),
    )][::-1]  # fmt: skip
    reading.pending = {str(pid): int(at) for pid, at in conn.execute(
        "SELECT p.id, max(e.at_ms) FROM payments p INDEXED BY payments_by_state"
        " JOIN events e ON e.payment_id = p.id AND e.to_state = 'AUTH_REQUESTED'"
        " WHERE p.state = 'AUTH_REQUESTED' AND p.created_ms >= ? GROUP BY p.id",
        (start,),
    )}  # fmt: skip
    reading.held = [(str(i), str(c), int(a), int(t)) for i, c, a, t in conn.execute(
        "SELECT id, currency, amount, created_ms FROM payments INDEXED BY payments_by_state"
        " WHERE state = ? AND kind = ?",
        (S.STORED_FOR_FORWARDING.value, PaymentKind.SALE.value),
    )]  # fmt: skip
    reading.declined = forward_declined(conn)
    return reading


class DayMoney:
    """The day's money, current as of the last COMMIT the journal delivered."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._close: DayClose | None = None
        self._start = local_midnight_ms(clock())
        self._next_midnight: int | None = local_midnight_ms(clock(), days_after=1)
        #: currency -> sum, and how many of the day's payments are in it (shown while > 0).
        self._takings: dict[str, int] = {}
        self._taking: dict[str, int] = {}
        self._decided = self._approved = self._payments = 0
        #: The day's payments changed last: as read at load, or a commit's record (made a
        #: DayPayment only when the list is read: most are pushed out before that).
        self._last: OrderedDict[str, Payment | DayPayment] = OrderedDict()
        self._auth_ms: deque[int] = deque(maxlen=AUTH_WINDOW)
        self._pending: OrderedDict[str, int] = OrderedDict()
        #: currency -> id -> (amount, created_ms) of the sales held offline (any day).
        self._held: dict[str, dict[str, tuple[int, int]]] = {}
        self._declined: dict[str, DayPayment] = {}

    # -- loading ------------------------------------------------------------------------------

    def load(self, reading: MoneyReading) -> None:
        """Start from what :func:`read_money` read (at open, and after a day close)."""
        self._close = reading.close
        self._start_day(reading.day_start_ms)
        for kind, state, currency, count, amount in reading.groups:
            self._payments += count
            taken, decided, approved = weights(PaymentKind(kind), S(state))
            if taken:
                self._takings[currency] = self._takings.get(currency, 0) + taken * amount
                self._taking[currency] = self._taking.get(currency, 0) + count
            self._decided += decided * count
            self._approved += approved * count
        for entry in reversed(reading.last):
            self._last[entry.id] = entry
        self._auth_ms.extend(reading.auth_ms)
        self._pending = OrderedDict(sorted(reading.pending.items(), key=lambda kv: kv[1]))
        self._held = {}
        for pid, currency, amount, created in reading.held:
            self._held.setdefault(currency, {})[pid] = (amount, created)
        self._declined = {p.id: p for p in reading.declined}

    def _start_day(self, start_ms: int) -> None:
        self._start = start_ms
        self._next_midnight = (
            None if self._close is not None
            else local_midnight_ms(start_ms / 1000, days_after=1)
        )  # fmt: skip
        self._takings, self._taking = {}, {}
        self._decided = self._approved = self._payments = 0
        self._last.clear()
        self._auth_ms.clear()
        self._pending.clear()  # requests of payments of the day before

    def _roll(self) -> None:
        """A shop that never closed a day: its day starts again at local midnight."""
        if self._next_midnight is not None and self._clock() * 1000 >= self._next_midnight:
            self._start_day(local_midnight_ms(self._clock()))

    # -- the commits ----------------------------------------------------------------------------

    def note(
        self, payment: Payment, *, created: bool = False, previous: PaymentState | None = None
    ) -> None:
        """A change to ``payment`` (its record as the COMMIT returned it) was committed.

        ``previous``: the state it left, for the transitions in :data:`_NAMED` only.
        """
        self._roll()
        state, kind = payment.state, payment.kind
        self._outstanding(payment)
        if payment.created_ms < self._start:
            return
        if created:
            self._payments += 1
        now = _WEIGHTS[(kind, state)]
        if created:
            before = _ZERO
        elif previous is not None and (previous, state) in _NAMED:
            before = weights(kind, previous)
        else:
            before = _PREVIOUS[(kind, state)]
        if now[0] != before[0]:
            currency = payment.currency
            self._takings[currency] = (
                self._takings.get(currency, 0) + (now[0] - before[0]) * payment.amount
            )
            self._taking[currency] = (
                self._taking.get(currency, 0) + abs(now[0]) - abs(before[0])
            )
        self._decided += now[1] - before[1]
        self._approved += now[2] - before[2]
        last = self._last
        last[payment.id] = payment
        last.move_to_end(payment.id)
        if len(last) > LAST_KEPT:
            last.popitem(last=False)
        if state is S.AUTH_REQUESTED:
            pending = self._pending
            pending[payment.id] = payment.updated_ms
            pending.move_to_end(payment.id)
            if len(pending) > PENDING_KEPT:
                pending.popitem(last=False)
        else:
            requested = self._pending.pop(payment.id, None)
            if requested is not None and state in _ANSWERS:
                self._auth_ms.append(payment.updated_ms - requested)

    def _outstanding(self, payment: Payment) -> None:
        """The held and declined sales, whatever their day."""
        state = payment.state
        if payment.kind is not PaymentKind.SALE:
            return
        if state is S.STORED_FOR_FORWARDING:
            held = self._held.setdefault(payment.currency, {})
            held[payment.id] = (payment.amount, payment.created_ms)
        elif state in (S.FORWARDED, S.FORWARD_DECLINED):
            self._held.get(payment.currency, {}).pop(payment.id, None)
        if state is S.FORWARD_DECLINED:
            self._declined[payment.id] = _day_payment(payment)
        elif state is S.DECLINE_ACKNOWLEDGED:
            self._declined.pop(payment.id, None)

    # -- reading --------------------------------------------------------------------------------

    @property
    def last_close(self) -> DayClose | None:
        """The last day close (the current day started then), if any."""
        return self._close

    def day_start_ms(self) -> int:
        """When the current day started: the last close, or local midnight (module docstring)."""
        self._roll()
        return self._start

    def exposure(self) -> dict[str, OfflineExposure]:
        """Per currency: the sales held offline (count, amount, oldest creation time)."""
        out: dict[str, OfflineExposure] = {}
        for currency in sorted(self._held):
            held = self._held[currency]
            if held:
                out[currency] = OfflineExposure(
                    currency,
                    len(held),
                    sum(amount for amount, _ in held.values()),
                    min(created for _, created in held.values()),
                )
        return out

    def read(self, *, last: int = LAST_SHOWN) -> MoneyFigures:
        """The day's money now (nothing is read from the journal; O(kept entries))."""
        self._roll()
        newest = sorted(self._last.values(), key=lambda p: (p.updated_ms, p.id), reverse=True)
        durations = list(self._auth_ms)
        return MoneyFigures(
            day_start_ms=self._start,
            close=self._close,
            takings={c: self._takings[c] for c in sorted(self._takings) if self._taking[c]},
            payments=self._payments,
            decided=self._decided,
            approved=self._approved,
            median_auth_ms=None if not durations else statistics.median(durations),
            auth_samples=len(durations),
            last_payments=tuple(_shown(p) for p in newest[:last]),
            declined_forwards=tuple(
                sorted(self._declined.values(), key=lambda p: (p.updated_ms, p.id))
            ),
            exposure=self.exposure(),
        )


@dataclass(frozen=True, slots=True)
class MoneyFigures:
    """One reading of :class:`DayMoney` (what the status page's money part is made of).

    Attributes:
        day_start_ms: When the day started (the last close, or local midnight).
        close: The last day close, if any.
        takings: Currency -> sales taken less completed refunds (minor units).
        payments: Payments created in the day (sales and refunds).
        decided: Sales decided (approved, declined, refused by the bank after the sale).
        approved: Sales approved among them.
        median_auth_ms: Median of the day's last :data:`AUTH_WINDOW` authorisation times.
        auth_samples: How many times that median is taken over.
        last_payments: The payments changed last, newest first (masked PAN only).
        declined_forwards: Sales in FORWARD_DECLINED, oldest first (any day).
        exposure: The sales held offline, per currency (any day).
    """

    day_start_ms: int
    close: DayClose | None
    takings: dict[str, int]
    payments: int
    decided: int
    approved: int
    median_auth_ms: float | None
    auth_samples: int
    last_payments: tuple[DayPayment, ...]
    declined_forwards: tuple[DayPayment, ...]
    exposure: dict[str, OfflineExposure]
