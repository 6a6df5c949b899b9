"""A TPE's end-of-day totals compared with the journal's lines (gateway.day.terminals)."""

from __future__ import annotations

from gateway.day.terminals import UNAVAILABLE, compare_with_terminal, terminal_reconciliation
from gateway.day.totals import AcquirerLine, Difference
from gateway.journal import TerminalTotals


def totals(*, ok: bool = True, transactions: int | None = 3, debits: int | None = 6000,
           refunds: int | None = 1500, currency: str | None = "EUR",
           message: str = "") -> TerminalTotals:  # fmt: skip
    return TerminalTotals(id=7, lane="2", at_ms=1000, actor="till:a", ok=ok,
                          transactions=transactions, debits=debits, refunds=refunds,
                          currency=currency, message=message)  # fmt: skip


JOURNAL = [AcquirerLine("EUR", "refunds", 1, 1500), AcquirerLine("EUR", "sales_net", 2, 6000)]


def test_matching_totals_have_no_difference() -> None:
    entry, count = terminal_reconciliation("2", JOURNAL, totals())
    assert (count, entry["reconciled"], entry["differences"], entry["totals_id"]) == (
        0, True, [], 7)


def test_each_line_that_differs_is_reported_with_both_sides() -> None:
    found = compare_with_terminal("2", JOURNAL, totals(transactions=4, debits=6700, refunds=0))
    assert found == [
        Difference("tpe:2", "EUR", "sales_net", 2, 6000, None, 6700),
        Difference("tpe:2", "EUR", "refunds", 1, 1500, None, 0),
        Difference("tpe:2", "EUR", "transactions", 3, None, 4, None),
    ]
    assert [d.amount for d in found] == [700, -1500, None]


def test_a_currency_the_terminal_did_not_report_counts_zero_on_its_side() -> None:
    journal = [*JOURNAL, AcquirerLine("CHF", "sales_net", 1, 900)]
    found = compare_with_terminal("2", journal, totals())
    assert found == [Difference("tpe:2", "CHF", "sales_net", 1, 900, None, 0),
                     Difference("tpe:2", "CHF", "transactions", 1, None, 0, None)]


def test_no_count_from_the_terminal_compares_the_amounts_only() -> None:
    assert compare_with_terminal("2", JOURNAL, totals(transactions=None)) == []


def test_a_terminal_that_did_not_close_its_day_is_unavailable_not_a_difference() -> None:
    for failed in (totals(ok=False, message="Concert V2 has no end-of-day"),
                   totals(currency=None, debits=None, refunds=None)):  # fmt: skip
        entry, count = terminal_reconciliation("2", JOURNAL, failed)
        assert (count, entry["reconciled"], entry["error"]) == (0, False, UNAVAILABLE)
        assert entry["reason"] and entry["journal_lines"][1]["amount"] == 6000
