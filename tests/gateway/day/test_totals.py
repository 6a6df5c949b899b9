"""The day's totals and their comparison with the acquirer (gateway.day.totals), on plain rows."""

from __future__ import annotations

from gateway.day.summary import day_summary
from gateway.day.totals import (
    AcquirerLine,
    Difference,
    compare_with_acquirer,
    day_totals,
    journal_acquirer_lines,
)
from gateway.journal.queries import DayPayment


def row(
    pid: str, state: str, amount: int, *, kind: str = "sale", lane: str = "1",
    currency: str = "EUR", voided: bool = False, offline: bool = False, aid: str = "A0000000031010",
) -> DayPayment:  # fmt: skip
    return DayPayment(pid, kind, state, lane, amount, currency, aid, "476173******0010", "00",
                      1000, 2000, voided, offline)  # fmt: skip


DAY = [
    row("p1", "COMPLETED", 1250),
    row("p2", "VOIDED", 2000, voided=True),
    row("p3", "FORWARDED", 500, lane="2", offline=True),
    row("p4", "FORWARD_DECLINED", 700, lane="2", offline=True),
    row("p5", "STORED_FOR_FORWARDING", 300, offline=True),
    row("p6", "COMPLETED", 400, kind="refund"),
    row("p7", "DECLINED", 999),
    row("p8", "COMPLETED", 5000, currency="CHF", aid="A0000000041010"),
]


def test_totals_per_kind_lane_aid_and_interface() -> None:
    lines = {(t.dimension, t.key, t.kind, t.currency): (t.count, t.amount)
             for t in day_totals(DAY, lane_interfaces={"2": "contactless"})}  # fmt: skip
    assert lines[("all", "all", "sales", "EUR")] == (2, 1750)
    assert lines[("all", "all", "voids", "EUR")] == (1, 2000)
    assert lines[("all", "all", "offline", "EUR")] == (3, 1500)
    assert lines[("all", "all", "forward_declined", "EUR")] == (1, 700)
    assert lines[("all", "all", "held", "EUR")] == (1, 300)
    assert lines[("all", "all", "refunds", "EUR")] == (1, 400)
    assert lines[("lane", "2", "sales", "EUR")] == (1, 500)
    assert lines[("interface", "contactless", "offline", "EUR")] == (2, 1200)
    assert lines[("interface", "unknown", "sales", "EUR")] == (1, 1250)
    assert lines[("aid", "A0000000041010", "sales", "CHF")] == (1, 5000)
    assert not any(key[2] == "sales" and key[0] == "all" and key[3] == "EUR" and v[0] == 3
                   for key, v in lines.items())  # fmt: skip


def test_the_journaled_interface_wins_over_the_lane_and_old_rows_fall_back() -> None:
    """Schema 8: the interface journaled with CARD_READ; a row without one (journaled before
    version 8, or a refund taken without the card) counts under the lane's fixed interface,
    else ``unknown``."""
    day = [
        DayPayment("a", "sale", "COMPLETED", "1", 100, "EUR", None, None, "00", 1, 2, False,
                   False, interface="contact"),
        DayPayment("b", "sale", "COMPLETED", "1", 200, "EUR", None, None, "00", 1, 2, False,
                   False, interface="contactless"),
        DayPayment("c", "sale", "COMPLETED", "2", 400, "EUR", None, None, "00", 1, 2, False,
                   False, interface="contactless"),  # a journaled tap on a "contact" lane
        row("old-fixed", "COMPLETED", 800, lane="2"),  # no interface journaled: lane 2's
        row("old-auto", "COMPLETED", 1600, lane="1"),  # no interface, lane 1 is auto
    ]  # fmt: skip
    totals = day_totals(day, lane_interfaces={"2": "contact"})
    lines = {(t.dimension, t.key): (t.count, t.amount) for t in totals if t.kind == "sales"}
    assert lines[("interface", "contact")] == (2, 900)
    assert lines[("interface", "contactless")] == (2, 600)
    assert lines[("interface", "unknown")] == (1, 1600)
    assert lines[("all", "all")] == (5, 3100)


def test_reconciliation_names_each_line_that_differs() -> None:
    mine = journal_acquirer_lines(DAY)
    assert mine == [
        AcquirerLine("CHF", "sales_net", 1, 5000),
        AcquirerLine("EUR", "refunds", 1, 400),
        AcquirerLine("EUR", "sales_net", 2, 1750),
    ]
    theirs = [
        AcquirerLine("CHF", "sales_net", 1, 5000),
        AcquirerLine("EUR", "sales_net", 3, 2749),  # a planted extra charge of 9.99
    ]
    assert compare_with_acquirer(mine, theirs) == [
        Difference("acquirer", "EUR", "refunds", 1, 400, 0, 0),
        Difference("acquirer", "EUR", "sales_net", 2, 1750, 3, 2749),
    ]
    assert compare_with_acquirer(mine, mine) == []


def test_summary_takings_rate_and_median() -> None:
    summary = day_summary(DAY, auth_ms=[120, 80, 400], declined=[DAY[3]], last=3)
    assert summary["takings"] == {"CHF": 5000, "EUR": 1250 + 500 + 300 - 400}
    # decided sales: p1 p2 p3 p5 p8 approved, p4 refused by the bank, p7 declined
    assert summary["approval_rate"] == 5 / 7
    assert summary["median_auth_ms"] == 120
    assert len(summary["last_payments"]) == 3
    assert [p["id"] for p in summary["declined_forwards"]] == ["p4"]
    assert day_summary([], auth_ms=[], declined=[])["approval_rate"] is None
