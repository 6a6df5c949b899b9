"""The manager page's lists of what waits for a manager (gateway/security/manager_work.py):
forms with the CSRF field for a manager only, every text escaped, card numbers masked even
when a provider hands more, and the result sentence built from checked parameters only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from html.parser import HTMLParser

from babel import Locale

from gateway.security.manager import ManagerPages
from gateway.security.manager_work import (
    DeclinedForward,
    LeftForManager,
    ManagerWork,
    render_close_day,
    render_work,
    result_message,
)
from gateway.security.sessions import SessionStore
from gateway.web.i18n import PageLocale

HOSTILE = '<script>alert("x")</script>'
WORK = ManagerWork(
    declined=(
        DeclinedForward(
            payment_id="pay_declined1",
            amount=4321,
            currency="EUR",
            masked_pan="4761739001010010",  # a provider handing a clear PAN: masked anyway
            lane=HOSTILE,
            at_ms=1_700_000_000_000,
            response_code="05",
        ),
    ),
    terminal=(
        LeftForManager("pay_left1", lane="2", amount=4200, currency="EUR", state="UNKNOWN"),
        LeftForManager('pay_"quoted', lane="2", amount=-5, currency="EUR", state="VOID_PENDING"),
    ),
    declined_more=3,
)


class _Forms(HTMLParser):
    """The page's forms: action, and the names/values of their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "form":
            self.forms.append({"action": found.get("action"), "inputs": {}})
        elif tag == "input" and self.forms:
            inputs = self.forms[-1]["inputs"]
            assert isinstance(inputs, dict)
            inputs.setdefault(found.get("name"), []).append(found.get("value"))


def _parse(text: str) -> _Forms:
    parser = _Forms()
    parser.feed(text)
    return parser


def test_a_manager_gets_one_form_per_item_each_with_the_csrf_field() -> None:
    session = SessionStore().create("grace", "manager")
    page = _parse(render_work(WORK, session) + render_close_day(session))
    actions = [form["action"] for form in page.forms]
    assert actions == [
        "/manager/payments/pay_declined1/acknowledge",
        "/manager/payments/pay_left1/settle",
        '/manager/payments/pay_"quoted/settle',  # escaped in the markup, intact once parsed
        "/manager/days/close",
    ]
    for form in page.forms:
        inputs = form["inputs"]
        assert isinstance(inputs, dict)
        assert inputs["csrf"] == [session.csrf]
    settle = page.forms[1]["inputs"]
    assert isinstance(settle, dict)
    assert settle["outcome"] == ["approved", "declined"]
    assert {"auth_code", "reason"} <= set(settle)


def test_a_viewer_sees_the_lists_without_any_form() -> None:
    session = SessionStore().create("val", "viewer")
    text = render_work(WORK, session) + render_close_day(session)
    page = _parse(text)
    assert page.forms == []
    assert session.csrf not in text
    assert "pay_left1" in text and "42.00 EUR" in text and "UNKNOWN" in text
    assert "43.21 EUR" in text and "VOID_PENDING" in text and "3 more" in text


def test_every_text_is_escaped_and_a_clear_pan_is_masked() -> None:
    session = SessionStore().create("grace", "manager")
    text = render_work(WORK, session)
    assert _parse(text).scripts == 0
    assert "&lt;script&gt;" in text
    assert "4761739001010010" not in text
    assert "476173******0010" in text
    assert 'pay_"quoted' not in text and "pay_&quot;quoted" in text
    short = ManagerWork(declined=(DeclinedForward("pay_x", 1, "EUR", "12345678", "1", 0, None),))
    assert "12345678" not in render_work(short, session)


def test_no_provider_and_empty_lists_say_so() -> None:
    session = SessionStore().create("grace", "manager")
    assert "Not available" in render_work(None, session)
    empty = render_work(ManagerWork(), session)
    assert "No declined forward waits" in empty
    assert "No payment-terminal payment waits" in empty
    assert _parse(empty).forms == []


def test_the_result_sentence_comes_from_checked_parameters_only() -> None:
    assert "Payment pay_ab-1 acknowledged" in result_message(
        {"done": "acknowledged", "payment": "pay_ab-1"}
    )
    settled = result_message({"done": "settled", "payment": "pay_1", "state": "COMPLETED"})
    assert "pay_1 settled by hand: COMPLETED" in settled
    assert "Day 7 closed" in result_message({"done": "closed", "day": "7"})
    assert "Refund approval 12 approved." in result_message({"done": "approved", "approval": "12"})
    for bad in (
        {"done": "acknowledged", "payment": HOSTILE},
        {"done": "settled", "payment": "pay_1", "state": "<b>"},
        {"done": "closed", "day": "7<"},
        {"done": "approved", "approval": "x"},
        {"done": "anything", "payment": "pay_1"},
        {"error": HOSTILE},
        {"error": "NOT-A-CODE"},
        {},
    ):
        assert result_message(bad) == "", bad


def test_a_refused_form_says_so_in_a_fixed_sentence() -> None:
    """``/manager?error=...`` (gateway.security.page_forms): one sentence per code or field,
    marked as an alert; a hostile field or payment is left out, never echoed."""
    refused = result_message({"error": "invalid_request", "field": "auth_code", "payment": "p_1"})
    assert refused.startswith("<p class=refused role=alert>Payment p_1: The auth code is")
    assert "Nothing was done." in refused
    assert "out of date" in result_message({"error": "csrf"})
    assert "Only a manager" in result_message({"error": "forbidden"})
    assert "Tick the box" in result_message({"error": "invalid_request", "field": "confirm"})
    assert "field notes was not accepted" in result_message(
        {"error": "invalid_request", "field": "notes"}
    )
    assert "Refused (teapot): nothing was done." in result_message({"error": "teapot"})
    for pan_shaped in ("4761739001010010", "pay_4761739001010010"):  # typed into a URL
        assert pan_shaped not in result_message({"error": "not_found", "payment": pan_shaped})
        assert result_message({"done": "acknowledged", "payment": pan_shaped}) == ""
    hostile = result_message({"error": "invalid_request", "field": HOSTILE, "payment": HOSTILE})
    assert hostile == "<p class=refused role=alert>A field was not accepted: nothing was done.</p>"


async def test_a_failing_provider_leaves_the_lists_not_available() -> None:
    async def broken(_sales: Sequence[str]) -> ManagerWork:
        raise OSError("journal gone")

    async def fine(_sales: Sequence[str]) -> ManagerWork:
        return WORK

    pages = ManagerPages(None, None, None, secure_cookie=True, work=broken)  # type: ignore[arg-type]
    assert await pages._work(["pay_1"]) is None  # logged; the page shows "Not available"
    pages.work = fine
    assert await pages._work(["pay_1"]) is WORK


def test_amounts_use_their_currencys_minor_unit_and_the_readers_language() -> None:
    """ISO 4217's exponent, not two decimals for all: 12.345 KWD, 1250 JPY; in French the
    locale's own way (the status page's PageLocale, as the daemon hands it)."""
    work = ManagerWork(terminal=(
        LeftForManager("pay_kwd", lane="1", amount=12345, currency="KWD", state="UNKNOWN"),
        LeftForManager("pay_jpy", lane="1", amount=1250, currency="JPY", state="UNKNOWN"),
        LeftForManager("pay_eur", lane="1", amount=-5, currency="EUR", state="VOID_PENDING"),
    ))  # fmt: skip
    manager = SessionStore().create("grace", "manager")
    english = render_work(work, manager)
    for shown in ("12.345 KWD", "1250 JPY", "-0.05 EUR"):
        assert f"<td>{shown}</td>" in english, shown
    french = render_work(work, manager, PageLocale(Locale.parse("fr_FR"), UTC))
    assert "12,345\u00a0KWD" in french and "-0,05\u00a0€" in french
    assert "Paiements de TPE à régler à la main" in french
