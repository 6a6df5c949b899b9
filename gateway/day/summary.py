"""The day in money, for the status page: takings, last payments, approval rate, latency.

Pure. The page's figures come from memory kept by the journal's commits
(:class:`gateway.journal.money.DayMoney`), worded here by :func:`money_summary`;
:func:`day_summary` builds the same words from the journal's rows of the day
(:meth:`gateway.journal.Journal.day_payments`), its authorisation times and the declined
forwards: the reference the memory is tested against. Amounts stay integers of minor units with
their currency (the page formats them per locale). Masked PANs only.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.journal.money import MoneyFigures
from gateway.journal.queries import DayPayment

__all__ = ["DECLINED_SHOWN", "day_summary", "iso_ms", "money_summary"]

#: Approved (by the bank, or by the card while not yet refused by the bank).
_APPROVED = frozenset({"COMPLETED", "STORED_FOR_FORWARDING", "FORWARDED", "VOID_PENDING",
                       "VOIDED"})  # fmt: skip
#: Decided: approved, declined, or refused by the bank after an offline approval.
_DECIDED = _APPROVED | {"DECLINED", "FORWARD_DECLINED", "DECLINE_ACKNOWLEDGED"}
#: Sales whose money is taken (a void not yet confirmed, VOID_PENDING, leaves the sale taken).
_TAKEN = frozenset({"COMPLETED", "STORED_FOR_FORWARDING", "FORWARDED", "VOID_PENDING"})
#: Declined forwards listed (the oldest, waiting longest); the others are counted: the page's
#: cost must not grow with how many nobody acknowledged yet.
DECLINED_SHOWN = 20


def iso_ms(ms: int) -> str:
    # ISO 8601, not a millisecond count: a 13-digit number can pass the Luhn check and be
    # masked as a PAN by the page's scrubber.
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _payment(p: DayPayment) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "state": p.state,
        "lane": p.lane,
        "amount": p.amount,
        "currency": p.currency,
        "masked_pan": p.masked_pan,
        "at": iso_ms(p.updated_ms),
        "offline": p.offline,
    }


def day_summary(
    payments: Sequence[DayPayment],
    *,
    auth_ms: Iterable[int],
    declined: Iterable[DayPayment],
    last: int = 10,
) -> dict[str, Any]:
    """The page's money section.

    Returns:
        ``takings`` (currency -> sales taken less refunds, minor units; offline sales count
        once approved by the card), ``last_payments`` (newest first), ``approval_rate`` (approved
        sales over decided sales, None before any), ``median_auth_ms`` (None before any) and
        ``declined_forwards`` (waiting for a manager).
    """
    takings: dict[str, int] = defaultdict(int)
    approved = decided = 0
    for p in payments:
        if p.kind == "sale":
            if p.state in _TAKEN:
                takings[p.currency] += p.amount
            if p.state in _DECIDED:
                decided += 1
                approved += p.state in _APPROVED
        elif p.state == "COMPLETED":
            takings[p.currency] -= p.amount
    durations = list(auth_ms)
    newest = sorted(payments, key=lambda p: (p.updated_ms, p.id), reverse=True)[:last]
    return {
        "takings": dict(sorted(takings.items())),
        "last_payments": [_payment(p) for p in newest],
        "approval_rate": None if not decided else approved / decided,
        "median_auth_ms": None if not durations else statistics.median(durations),
        "payments": len(payments),
        **_declined(list(declined)),
    }


def _declined(declined: Sequence[DayPayment]) -> dict[str, Any]:
    return {
        "declined_forwards": [_payment(p) for p in declined[:DECLINED_SHOWN]],
        "declined_forwards_more": max(0, len(declined) - DECLINED_SHOWN),
    }


def money_summary(figures: MoneyFigures) -> dict[str, Any]:
    """The page's money section from the figures kept in memory: the keys of
    :func:`day_summary` (the median over the day's last authorisation times, a window)."""
    return {
        "takings": dict(figures.takings),
        "last_payments": [_payment(p) for p in figures.last_payments],
        "approval_rate": None if not figures.decided else figures.approved / figures.decided,
        "median_auth_ms": figures.median_auth_ms,
        "payments": figures.payments,
        **_declined(figures.declined_forwards),
    }
