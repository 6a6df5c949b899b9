"""The page's words and the defences under it: PAN scrubbing, amounts, errors, any snapshot."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.web.page import render_page
from gateway.web.values import as_time, scrub, scrub_text
from gateway.web.view import build_view, format_amount, plain_error
from tests.gateway.web_support import FULL_PAN, MASKED_PAN, two_lane_snapshot


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FULL_PAN, MASKED_PAN),
        ("4761 7390 0101 0010", MASKED_PAN),
        ("card=4761-7390-0101-0010;", f"card={MASKED_PAN};"),
        ("5413330089010434", "541333******0434"),           # 16-digit Mastercard test PAN
        ("378282246310005", "378282*****0005"),             # 15-digit Amex test PAN
        ("4000000000006", "*********0006"),                 # 13 digits: last 4 only
        (f"{FULL_PAN}D2512201", f"{MASKED_PAN}=****"),      # track 2 equivalent
        (f"{FULL_PAN}=25122010000F", f"{MASKED_PAN}=****"),
        (f"{FULL_PAN}7777", "****************7777"),        # PAN with digits glued on
        ("4761739001010011", "4761739001010011"),           # fails Luhn: not a PAN
        ("A0000000031010", "A0000000031010"),               # an AID
        ("2025-11-22T10:42:00+01:00", "2025-11-22T10:42:00+01:00"),
        ("1763804520.5", "1763804520.5"),
        (MASKED_PAN, MASKED_PAN),
        ("500000000009", "********0009"),                   # 12 digits: the shortest PAN
        ("5000 0000 0009", "********0009"),                 # ... grouped by spaces
        ("lane 12 at 500000000 and 09", "lane 12 at 500000000 and 09"),  # 11 digits in runs
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_scrub_is_json_safe_and_deep() -> None:
    class Odd:
        def __str__(self) -> str:
            return f"odd {FULL_PAN}"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    deep: Any = "bottom"
    for _ in range(40):
        deep = [deep]
    value = {1: (int(FULL_PAN), b"\x47\x61", float("inf")), "o": Odd(), "b": Broken(),
             "deep": deep, "ok": [True, None, 1.5, 7]}
    out = scrub(value)
    assert out["1"] == [MASKED_PAN, "<2 bytes>", None]
    assert out["o"] == f"odd {MASKED_PAN}"
    assert out["b"] == "?"
    assert out["ok"] == [True, None, 1.5, 7]
    assert "…" in repr(out["deep"])


def test_scrub_masks_pan_shaped_integers_from_twelve_digits() -> None:
    out = scrub([500000000009, -4761739001010010, 99999999999, -99999999999, 2**70])
    assert out[:4] == ["********0009", "-476173******0010", 99999999999, -99999999999]
    assert out[4] == "*" * 18 + "3424"  # 22 digits with a Luhn-valid prefix: hidden


def test_scrub_keeps_millisecond_times_that_pass_luhn() -> None:
    luhn_ms = next(ms for ms in range(1_764_979_200_000, 1_764_979_200_100)
                   if scrub(ms) != ms)  # fmt: skip
    out = scrub({"last_close": {"closed_ms": luhn_ms, "note": str(luhn_ms)}, "x": luhn_ms})
    assert out["last_close"]["closed_ms"] == luhn_ms  # a time the gateway computed
    assert out["last_close"]["note"] != str(luhn_ms) and out["x"] != luhn_ms  # elsewhere: masked


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        (1250, "EUR", "12.50 EUR"),
        ("1250", "eur", "12.50 EUR"),
        (-1250, "GBP", "-12.50 GBP"),
        (5, "EUR", "0.05 EUR"),
        (500, "JPY", "500 JPY"),
        (1250, 978, "12.50 EUR"),
        (1250, "XYZ", "1250 (minor units, XYZ)"),
        (1250, None, "1250 (minor units)"),
        (12.5, "EUR", "unknown"),
        (True, "EUR", "unknown"),
        (None, "EUR", "unknown"),
    ],
)
def test_format_amount(amount: Any, code: Any, expected: str) -> None:
    assert format_amount(amount, code) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("setup failed: ReaderRemoved: reader removed", "Setup failed: reader removed"),
        ("Traceback (most recent call last):\n  File \"x.py\", line 1\nOSError: [Errno 19] "
         "No such device", "[Errno 19] No such device"),
        ("TimeoutError", "TimeoutError"),
        ("aiohttp.client_exceptions.ClientConnectorError: cannot connect", "Cannot connect"),
        ("x" * 400, "X" + "x" * 158 + "…"),
        ("", None),
        (None, None),
        ({"a": 1}, None),
    ],
)
def test_plain_error(error: Any, expected: str | None) -> None:
    assert plain_error(error) == expected


def test_today_shows_sales_and_refunds() -> None:
    totals = build_view(two_lane_snapshot()).totals
    assert totals.summary == "12 payments today"
    assert dict(totals.details) == {"Approved": "10", "Declined": "2", "Refunds": "1"}
    old_daemon = two_lane_snapshot()
    del old_daemon["journal"]["refunds_today"]
    assert dict(build_view(old_daemon).totals.details)["Refunds"] == "unknown"


def test_times_show_in_the_shop_zone() -> None:
    assert as_time("2025-11-22T09:42:00Z") is not None
    view = build_view(two_lane_snapshot())
    lane2 = view.lanes[1]
    assert lane2.device.startswith("Reader not connected since 10:42 (3 min ago)")
    assert view.started == "08:00" and view.updated == "10:45:12"
    other_day = two_lane_snapshot()
    other_day["started_at"] = "2025-11-20T07:30:00+01:00"
    assert build_view(other_day).started == "20 Nov 07:30"


def test_states_in_plain_words() -> None:
    snapshot = two_lane_snapshot()
    lane = snapshot["lanes"][1]
    lane["device"]["state"] = "setting_up"
    lane["reader"] = "serial:///dev/ttyACM0?protocol=concert_v2"
    assert build_view(snapshot).lanes[1].device.startswith(
        "Connecting to the payment terminal since 10:42")
    assert build_view(snapshot).lanes[1].reader == "serial:///dev/ttyACM0"
    lane["reader"] = "tcp://admin:secret@10.0.0.5:8888/x?key=1"
    assert build_view(snapshot).lanes[1].reader == "tcp://10.0.0.5:8888/x"
    snapshot["ready"] = False
    snapshot["journal"]["awaiting_recovery"] = 2
    snapshot["mqtt"]["enabled"] = False
    snapshot["acquirer"]["reachable"] = False
    view = build_view(snapshot)
    assert view.headline == "Not ready to take payments" and view.tone == "bad"
    assert view.outbox.summary == "2 payment(s) need checking after a restart"
    assert view.mqtt.summary == "Head office link switched off"
    assert view.acquirer.summary == "Payment provider not reachable — retrying"


class _TextOnly(HTMLParser):
    """Collects the tags of a page, to check that values never become markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


_PAGE_TAGS = {"html", "head", "meta", "title", "noscript", "style", "body", "header", "h1",
              "span", "div", "main", "section", "h2", "p", "dl", "dt", "dd", "script", "link"}

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from([FULL_PAN, f"x{FULL_PAN}y", "<b>", "ready", "not_ready", "EUR",
                       "2025-11-22T10:00:00+01:00", 1763804520.0, int(FULL_PAN)]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=25,
)
_keys = st.sampled_from(["shop", "version", "ready", "now", "started_at", "lanes", "journal",
                         "acquirer", "mqtt", "id", "name", "reader", "device", "state",
                         "since", "last_error", "prompt", "payment", "amount", "currency",
                         "masked_pan", "payments_today", "reachable", "connected"])
_snapshots = st.recursive(
    _json, lambda inner: st.dictionaries(_keys, inner, max_size=8) | st.lists(inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(_snapshots)
def test_any_snapshot_renders_without_pan_or_markup_injection(snapshot: Any) -> None:
    page = render_page(build_view(scrub(snapshot)))
    assert FULL_PAN not in page
    parser = _TextOnly()
    parser.feed(page)
    assert parser.tags <= _PAGE_TAGS
    assert re.search(r"<main[ >]", page)


def test_stock_lists_the_low_products() -> None:
    snap = two_lane_snapshot()
    low = [{"sku": "SKU-7", "level": 2}, {"sku": "SKU-9", "level": -1}]
    snap["stock"] = {"enabled": True, "skus": 42, "low_threshold": 3, "low": low}
    stock = build_view(snap).stock
    assert (stock.tone, stock.summary) == ("warn", "2 products low on stock")
    assert ("SKU-7", "2 left") in stock.details and ("SKU-9", "-1 left") in stock.details
    page = render_page(build_view(snap))
    assert "SKU-7" in page and "2 products low on stock" in page
    snap["stock"] = dict(snap["stock"], low=[])
    assert build_view(snap).stock.summary == "No product low on stock"
    del snap["stock"]  # a daemon without [mqtt], or an older one
    assert build_view(snap).stock.tone == "idle"


def test_a_long_low_stock_list_is_cut() -> None:
    snap = two_lane_snapshot()
    low = [{"sku": f"SKU-{n}", "level": 0} for n in range(30)]
    snap["stock"] = {"enabled": True, "skus": 30, "low_threshold": 0, "low": low}
    details = dict(build_view(snap).stock.details)
    assert "SKU-19" in details and "SKU-20" not in details
    assert details["More"] == "10 more low products"
