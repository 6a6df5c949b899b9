"""The declined forwards on the page: the oldest listed, the others counted, in both languages.

The snapshot lists at most ``DECLINED_SHOWN`` of them (the page's cost must not grow with the
forwards nobody acknowledged yet) and says how many more wait; the page says it in the
manager's language.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from babel import Locale

from gateway.day.summary import DECLINED_SHOWN
from gateway.web.i18n import PageLocale
from gateway.web.money import render_money

PARIS = ZoneInfo("Europe/Paris")


def _money(shown: int, more: int) -> dict[str, object]:
    declined = [
        {"id": f"pay_{i}", "kind": "sale", "state": "FORWARD_DECLINED", "lane": "1",
         "amount": 1000 + i, "currency": "EUR", "masked_pan": "476173******0010",
         "at": "2026-12-05T18:30:00+00:00", "offline": True}
        for i in range(shown)
    ]  # fmt: skip
    return {"declined_forwards": declined, "declined_forwards_more": more}


def test_the_oldest_are_listed_and_the_others_counted_in_the_manager_s_language() -> None:
    en = PageLocale(Locale.parse("en_GB"), PARIS)
    fr = PageLocale(Locale.parse("fr_FR"), PARIS)
    english = str(render_money(_money(DECLINED_SHOWN, 1234), en))
    assert english.count('class="declined-forward"') == DECLINED_SHOWN
    assert "1,234 more waiting" in english
    french = str(render_money(_money(DECLINED_SHOWN, 5), fr))
    assert "5 autres en attente" in french and french.count("<tr") == DECLINED_SHOWN


def test_no_count_when_every_declined_forward_is_listed() -> None:
    en = PageLocale(Locale.parse("en_GB"), PARIS)
    page = str(render_money(_money(2, 0), en))
    assert page.count('class="declined-forward"') == 2 and "more waiting" not in page


def test_a_terminal_s_differences_and_unavailable_totals_are_shown_per_lane() -> None:
    # The day close's TPE lines (gateway.day.terminals): amounts as money, the count of
    # transactions as a signed count, and the lanes whose terminal gave no totals.
    differences = [
        {"source": "acquirer", "currency": "EUR", "kind": "sales_net", "difference": 999},
        {"source": "tpe:2", "currency": "EUR", "kind": "sales_net", "difference": 700},
        {"source": "tpe:2", "currency": "EUR", "kind": "transactions", "difference": None,
         "journal": {"count": 1, "amount": None}, "other": {"count": 2, "amount": None}},
    ]  # fmt: skip
    money = {"day": {"last_close": {"differences": 3, "closed": "2026-12-05T18:30:00+00:00"},
                     "last_differences": differences, "terminals_unavailable": ["3"]}}
    en = PageLocale(Locale.parse("en_GB"), PARIS)
    fr = PageLocale(Locale.parse("fr_FR"), PARIS)
    english = str(render_money(money, en))
    assert "<dt>EUR</dt><dd>€9.99</dd>" in english
    assert "<dt>Lane 2 · EUR</dt><dd>€7.00</dd>" in english
    assert "<dt>Lane 2 · EUR</dt><dd>+1 transactions</dd>" in english
    assert "Terminal totals unavailable: lane 3" in english
    french = str(render_money(money, fr))
    assert "<dt>Caisse 2 · EUR</dt>" in french
    assert "Totaux du terminal indisponibles : caisse 3" in french
