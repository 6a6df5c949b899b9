"""The day's totals from the journal, and their line-by-line comparison with the acquirer's.

Pure functions over :class:`gateway.journal.queries.DayPayment` rows (no I/O), so the day close
(:mod:`gateway.day.close`) and the status page compute the same figures.

Totals (docs/day.md, "Day close"): every line is ``(dimension, key, kind, currency) -> (count,
amount)`` with amounts in minor units:

* dimensions: ``all``, ``lane``, ``aid`` (scheme application), ``interface`` (where the card
  was read, as journaled with CARD_READ: ``contact``, ``contactless``, ``terminal``; for a row
  without one, journaled before schema 8 or never read, the lane's interface when it is fixed in
  the configuration, else ``unknown``);
* kinds: ``sales`` (money taken: COMPLETED or FORWARDED), ``refunds`` (refunds completed),
  ``voids`` (sales voided), ``offline`` (sales approved offline, forwarded or not),
  ``forward_declined`` (offline sales the bank declined), ``held`` (offline sales not yet
  forwarded at the close).

Reconciliation with the acquirer compares, per currency, the net sales (charges less reversals
at the host; sales taken in the journal, offline ones only once forwarded) and the refunds; each
line that differs is a :class:`Difference`. Offline sales still held at the close are not yet
at the host: they are reported (``held``) and not counted as differences.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.journal.queries import DayPayment

__all__ = [
    "KINDS",
    "AcquirerLine",
    "Difference",
    "TotalLine",
    "compare_with_acquirer",
    "day_totals",
    "journal_acquirer_lines",
]

KINDS = ("sales", "refunds", "voids", "offline", "forward_declined", "held")

_TAKEN = frozenset({"COMPLETED", "FORWARDED"})


@dataclass(frozen=True, slots=True)
class TotalLine:
    """One line of the day's totals."""

    dimension: str
    key: str
    kind: str
    currency: str
    count: int
    amount: int

    def to_json(self) -> dict[str, object]:
        """JSON-safe."""
        return {
            "dimension": self.dimension,
            "key": self.key,
            "kind": self.kind,
            "currency": self.currency,
            "count": self.count,
            "amount": self.amount,
        }


@dataclass(frozen=True, slots=True)
class AcquirerLine:
    """What the acquirer (or a TPE) counts for one currency and kind (``sales_net``,
    ``refunds``)."""

    currency: str
    kind: str
    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class Difference:
    """A reconciliation line that does not agree.

    Attributes:
        source: Whose totals (``acquirer``, ``tpe:<lane>``).
        currency: ISO 4217 alphabetic.
        kind: ``sales_net`` or ``refunds`` (and ``transactions`` for a TPE:
            :mod:`gateway.day.terminals`).
        journal_count, journal_amount: The journal's figures.
        other_count, other_amount: The other side's (None where it does not say: a TPE gives
            no count per kind, and a count of transactions has no amount).
    """

    source: str
    currency: str
    kind: str
    journal_count: int
    journal_amount: int | None
    other_count: int | None
    other_amount: int | None

    @property
    def amount(self) -> int | None:
        """Other side minus journal (positive: the other side counts more); None for a line
        without amounts."""
        if self.other_amount is None or self.journal_amount is None:
            return None
        return self.other_amount - self.journal_amount

    def to_json(self) -> dict[str, object]:
        """JSON-safe."""
        return {
            "source": self.source,
            "currency": self.currency,
            "kind": self.kind,
            "journal": {"count": self.journal_count, "amount": self.journal_amount},
            "other": {"count": self.other_count, "amount": self.other_amount},
            "difference": self.amount,
        }


def _kinds(payment: DayPayment) -> list[str]:
    if payment.kind == "refund":
        return ["refunds"] if payment.state == "COMPLETED" else []
    kinds: list[str] = []
    if payment.state in _TAKEN:
        kinds.append("sales")
    if payment.voided:
        kinds.append("voids")
    if payment.offline:
        kinds.append("offline")
    if payment.state in ("FORWARD_DECLINED", "DECLINE_ACKNOWLEDGED"):
        kinds.append("forward_declined")
    if payment.state == "STORED_FOR_FORWARDING":
        kinds.append("held")
    return kinds


def day_totals(
    payments: Iterable[DayPayment], *, lane_interfaces: Mapping[str, str] | None = None
) -> list[TotalLine]:
    """The day's totals, sorted by dimension, key, kind and currency.

    Args:
        payments: The day's payments (:meth:`gateway.journal.Journal.day_payments`).
        lane_interfaces: Lane id -> ``contact`` / ``contactless`` for lanes whose interface is
            fixed in the configuration: the fallback for payments without a journaled
            interface (others count as ``unknown``).
    """
    interfaces = lane_interfaces or {}
    sums: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for payment in payments:
        keys = (
            ("all", "all"),
            ("lane", payment.lane),
            ("aid", payment.aid or "unknown"),
            ("interface", payment.interface or interfaces.get(payment.lane, "unknown")),
        )
        for kind in _kinds(payment):
            for dimension, key in keys:
                line = sums[(dimension, key, kind, payment.currency)]
                line[0] += 1
                line[1] += payment.amount
    return [
        TotalLine(dimension, key, kind, currency, count, amount)
        for (dimension, key, kind, currency), (count, amount) in sorted(sums.items())
    ]


def journal_acquirer_lines(payments: Iterable[DayPayment]) -> list[AcquirerLine]:
    """The journal's side of the reconciliation: net sales and refunds per currency."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for payment in payments:
        if payment.kind == "sale" and payment.state in _TAKEN:
            kind = "sales_net"
        elif payment.kind == "refund" and payment.state == "COMPLETED":
            kind = "refunds"
        else:
            continue
        line = sums[(payment.currency, kind)]
        line[0] += 1
        line[1] += payment.amount
    return [
        AcquirerLine(currency, kind, count, amount)
        for (currency, kind), (count, amount) in sorted(sums.items())
    ]


def compare_with_acquirer(
    journal: Iterable[AcquirerLine], other: Iterable[AcquirerLine], *, source: str = "acquirer"
) -> list[Difference]:
    """Every (currency, kind) line where the two sides differ in count or amount."""
    mine = {(line.currency, line.kind): line for line in journal}
    theirs = {(line.currency, line.kind): line for line in other}
    differences = []
    for currency, kind in sorted(set(mine) | set(theirs)):
        a = mine.get((currency, kind), AcquirerLine(currency, kind, 0, 0))
        b = theirs.get((currency, kind), AcquirerLine(currency, kind, 0, 0))
        if (a.count, a.amount) != (b.count, b.amount):
            differences.append(
                Difference(source, currency, kind, a.count, a.amount, b.count, b.amount)
            )
    return differences
