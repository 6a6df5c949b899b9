"""A payment terminal's end-of-day totals compared with the journal's, for the day close.

A TPE lane's sales are authorised by the terminal's own host, so they are reconciled with the
terminal's totals, not our acquirer's batch (docs/day.md, "Day close"; docs/tpe.md, "End of
day"). The terminal's remittance gives one currency, the number of transactions it took
(approved debits and refunds) and the debit and refund totals in minor units
(:class:`gateway.journal.TerminalTotals`); it does not count debits and refunds apart. So three
lines are compared, per currency:

* ``sales_net``: the journal's sales taken on the lane (count, amount) with the terminal's
  debits (amount; the terminal gives no count: ``None``);
* ``refunds``: the journal's refunds completed on the lane with the terminal's refunds;
* ``transactions``: how many sales and refunds the journal took with the terminal's count (no
  amount: ``None``).

Lines the terminal reports nothing for (a currency it did not name) count as zero on its side.
Pure: the day close (:mod:`gateway.day.close`) fetches the totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.day.totals import AcquirerLine, Difference
from gateway.journal import TerminalTotals

__all__ = ["UNAVAILABLE", "compare_with_terminal", "terminal_reconciliation", "unavailable"]

#: What the record and the page say of a lane whose terminal gave no usable totals.
UNAVAILABLE = "terminal totals unavailable"


def compare_with_terminal(
    lane: str, journal: Iterable[AcquirerLine], totals: TerminalTotals
) -> list[Difference]:
    """Every line (see the module docstring) where the journal and the terminal differ.

    Args:
        lane: The lane's id (the differences' source is ``tpe:<lane>``).
        journal: The lane's net sales and refunds per currency
            (:func:`gateway.day.totals.journal_acquirer_lines`).
        totals: The terminal's end of day (``ok`` with a currency).
    """
    source = f"tpe:{lane}"
    mine = {(line.currency, line.kind): line for line in journal}
    currencies = {currency for currency, _kind in mine} | {totals.currency or ""}
    currencies.discard("")
    found: list[Difference] = []
    for currency in sorted(currencies):
        own = currency == totals.currency
        sales = mine.get((currency, "sales_net"), AcquirerLine(currency, "sales_net", 0, 0))
        refunds = mine.get((currency, "refunds"), AcquirerLine(currency, "refunds", 0, 0))
        debits = (totals.debits or 0) if own else 0
        refunded = (totals.refunds or 0) if own else 0
        if sales.amount != debits:
            found.append(Difference(source, currency, "sales_net", sales.count, sales.amount,
                                    None, debits))  # fmt: skip
        if refunds.amount != refunded:
            found.append(Difference(source, currency, "refunds", refunds.count, refunds.amount,
                                    None, refunded))  # fmt: skip
        taken = sales.count + refunds.count
        count = (totals.transactions or 0) if own else 0
        if ((own and totals.transactions is not None) or not own) and taken != count:
            found.append(Difference(source, currency, "transactions", taken, None, count,
                                    None))  # fmt: skip
    return found


def terminal_reconciliation(
    lane: str, journal: list[AcquirerLine], totals: TerminalTotals
) -> tuple[dict[str, Any], int]:
    """The day record's entry for one TPE lane and how many differences it holds."""
    if not totals.ok or totals.currency is None:
        return unavailable(lane, journal, totals.message or "the terminal gave no totals"), 0
    found = compare_with_terminal(lane, journal, totals)
    entry = {
        "lane": lane,
        "reconciled": True,
        "totals_id": totals.id,
        "at_ms": totals.at_ms,
        "terminal": {"currency": totals.currency, "transactions": totals.transactions,
                     "debits": totals.debits, "refunds": totals.refunds},
        "journal_lines": [_line_json(line) for line in journal],
        "differences": [d.to_json() for d in found],
    }  # fmt: skip
    return entry, len(found)


def unavailable(lane: str, journal: list[AcquirerLine], reason: str) -> dict[str, Any]:
    """The record's entry for a lane whose terminal could not be reconciled."""
    return {"lane": lane, "reconciled": False, "error": UNAVAILABLE, "reason": reason[:200],
            "journal_lines": [_line_json(line) for line in journal]}  # fmt: skip


def _line_json(line: AcquirerLine) -> dict[str, Any]:
    return {"currency": line.currency, "kind": line.kind, "count": line.count,
            "amount": line.amount}  # fmt: skip
