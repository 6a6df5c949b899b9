"""What the store manager reads: the daemon snapshot turned into plain words.

:func:`build_view` takes a snapshot that has already been through
:func:`gateway.web.values.scrub` and returns a :class:`StatusView` of short, ready-to-escape
strings: "Reader not connected since 10:42 (3 min ago) — retrying", "12.50 EUR",
"Waiting for the bank's answer". Every field may be missing or of the wrong type; the view
then says "unknown" and never raises. Each block carries a *tone* (``ok``, ``warn``, ``bad``,
``idle`` or ``unknown``) the page turns into a colour.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from gateway.web.i18n import N_
from gateway.web.values import (
    as_bool,
    as_int,
    as_mapping,
    as_text,
    as_time,
    scrub_text,
    zone_of,
)
from gateway.web.words import PAYMENT_STATES
from terminal.currency import CurrencyError, currency

__all__ = ["UNKNOWN", "HealthView", "LaneView", "PaymentView", "StatusView", "build_view"]

UNKNOWN = N_("unknown")

#: The page's translation for the view being built (:func:`build_view`'s ``gettext``).
_GETTEXT: ContextVar[Callable[[str], str]] = ContextVar("gettext", default=lambda text: text)


def _(message: str) -> str:
    """``message`` (an English msgid) in the language of the view being built."""
    return _GETTEXT.get()(message)

_MASK = re.compile(r"\d{0,6}\*{2,15}\d{0,4}")
# A Python class name as drivers print exceptions ("ReaderRemoved: reader removed").
_CLASS_NAME = re.compile(
    r"(?:[a-z_][\w]*\.)*(?:[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+|[A-Z]{2,}[a-z][A-Za-z0-9]*)"
)


@dataclass(frozen=True, slots=True)
class PaymentView:
    """The payment running on a lane."""

    state: str
    tone: str
    amount: str
    card: str
    started: str
    reference: str


@dataclass(frozen=True, slots=True)
class LaneView:
    """One lane's card on the page."""

    key: str
    name: str
    reader: str
    interface: str
    tone: str
    device: str
    problem: str | None
    prompt: str
    payment: PaymentView | None


@dataclass(frozen=True, slots=True)
class HealthView:
    """A link to the outside (payment provider, head office)."""

    title: str
    tone: str
    summary: str
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StatusView:
    """The whole page."""

    shop: str
    version: str
    tone: str
    headline: str
    updated: str
    started: str
    lanes: list[LaneView]
    totals: HealthView
    outbox: HealthView
    acquirer: HealthView
    mqtt: HealthView
    stock: HealthView


class _Clock:
    """Formats times relative to the snapshot's ``now``, in the shop's zone."""

    def __init__(self, now: Any) -> None:
        self.zone: tzinfo = zone_of(now)
        self.now: datetime | None = as_time(now, self.zone)

    def at(self, value: Any) -> str | None:
        """``10:42`` today, ``21 Nov 10:42`` another day; None for no usable time."""
        moment = as_time(value, self.zone)
        if moment is None:
            return None
        if self.now is not None and moment.date() == self.now.date():
            return moment.strftime("%H:%M")
        return moment.strftime("%d %b %H:%M")

    def since(self, value: Any) -> str:
        """`` since 10:42 (3 min ago)`` or the empty string."""
        moment = as_time(value, self.zone)
        shown = self.at(value)
        if moment is None or shown is None:
            return ""
        if self.now is None:
            return " " + _(N_("since {time}")).format(time=shown)
        ago = _ago((self.now - moment).total_seconds())
        return " " + _(N_("since {time} ({ago})")).format(time=shown, ago=ago)


def _ago(seconds: float) -> str:
    if seconds < 60:
        return _(N_("just now"))
    minutes = int(seconds // 60)
    if minutes < 60:
        return _(N_("{minutes} min ago")).format(minutes=minutes)
    hours = minutes // 60
    if hours < 48:
        text = _(N_("{hours} h {minutes} min ago"))
        return text.format(hours=hours, minutes=f"{minutes % 60:02d}")
    return _(N_("{days} days ago")).format(days=hours // 24)


def plain_error(value: Any) -> str | None:
    """A driver/client error in plain words: first useful line, class names dropped.

    ``"setup failed: ReaderRemoved: reader removed"`` becomes ``"Setup failed: reader removed"``;
    a traceback is reduced to its last line. Never longer than 160 characters.
    """
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    parts = [p for p in (p.strip() for p in line.split(": ")) if p]
    kept = [p for p in parts if not _CLASS_NAME.fullmatch(p)] or parts
    text = as_text(": ".join(dict.fromkeys(kept)), limit=160)
    return None if text is None else text[0].upper() + text[1:]


def format_amount(amount: Any, code: Any) -> str:
    """``1250`` minor units of ``"EUR"`` as ``"12.50 EUR"`` (ISO 4217 minor-unit exponent)."""
    minor = as_int(amount)
    alpha = as_text(code, limit=8)
    if minor is None:
        return _(UNKNOWN)
    try:
        cur = currency(alpha) if alpha is not None else None
    except CurrencyError:
        cur = None
    if cur is None:
        return f"{minor} (minor units{', ' + alpha if alpha else ''})"
    value = Decimal(minor).scaleb(-cur.exponent)
    return f"{value:.{cur.exponent}f} {cur.alpha}"


def _address(url: str | None) -> str:
    """A device or service URL for display: no credentials, no query or fragment."""
    if url is None:
        return _(UNKNOWN)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return as_text(url.split("?")[0].split("#")[0], limit=120) or _(UNKNOWN)
    rest = rest.split("?")[0].split("#")[0]
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    # Decoded for reading ("Virtual PCD 00 00"), then masked again: %-escapes hide nothing.
    shown = scrub_text(unquote(f"{scheme}://{authority}{slash}{path}"))
    return as_text(shown, limit=120) or _(UNKNOWN)


def _device_kind(url: str | None) -> str:
    """What a lane's device is called: a reader (PC/SC, simulated) or a payment terminal."""
    scheme = (url or "").partition("://")[0].lower()
    return "terminal" if scheme in ("serial", "tcp") else "reader"


def _device_words(device: Any, kind: str, clock: _Clock) -> tuple[str, str, str | None]:
    """(tone, sentence, problem) for a drivers diagnostics dict (drivers.lifecycle)."""
    diag = as_mapping(device)
    state = as_text(diag.get("state"), limit=40)
    since = clock.since(diag.get("since"))
    problem = plain_error(diag.get("last_error"))
    if problem is not None:
        when = clock.at(diag.get("last_error_at"))
        if when:
            problem = _(N_("{problem} (at {time})")).format(problem=problem, time=when)
    terminal = kind == "terminal"
    if state == "ready":
        card = as_bool(as_mapping(diag.get("device")).get("card_present"))
        text = _(N_("Payment terminal ready{since}")) if terminal else _(N_("Reader ready{since}"))
        text = text.format(since=since)
        return "ok", text + (_(N_(" — card in reader")) if card else ""), problem
    if state == "not_ready":
        retry = as_int(diag.get("next_retry_in"))
        then = ""
        if retry is not None and retry >= 0:
            then = " " + _(N_("(next try in {seconds} s)")).format(seconds=retry)
        text = (_(N_("Payment terminal not connected{since} — retrying")) if terminal
                else _(N_("Reader not connected{since} — retrying")))  # fmt: skip
        return "bad", text.format(since=since) + then, problem
    if state == "setting_up":
        text = (_(N_("Connecting to the payment terminal{since}")) if terminal
                else _(N_("Connecting to the reader{since}")))  # fmt: skip
        return "warn", text.format(since=since), problem
    if state == "stopped":
        text = (_(N_("Payment terminal stopped{since}")) if terminal
                else _(N_("Reader stopped{since}")))  # fmt: skip
        return "idle", text.format(since=since), problem
    text = _(N_("Payment terminal state unknown")) if terminal else _(N_("Reader state unknown"))
    return "unknown", text, problem


def _payment(value: Any, clock: _Clock) -> PaymentView | None:
    if value is None:
        return None
    value = as_mapping(value)
    state = as_text(value.get("state"), limit=40)
    known = PAYMENT_STATES.get(state or "")
    words = _(known) if known else (state.replace("_", " ").capitalize() if state else _(UNKNOWN))
    tone = {"APPROVED": "ok", "COMPLETED": "ok", "DECLINED": "bad", "UNKNOWN": "warn",
            "CANCELLED": "idle", "REVERSED": "idle"}.get(state or "", "warn")
    masked = as_text(value.get("masked_pan"), limit=40)
    card = masked if masked is not None and _MASK.fullmatch(masked) else _(UNKNOWN)
    return PaymentView(
        state=words,
        tone=tone,
        amount=format_amount(value.get("amount"), value.get("currency")),
        card=card,
        started=clock.at(value.get("started_at")) or _(UNKNOWN),
        reference=as_text(value.get("id"), limit=40) or _(UNKNOWN),
    )


def _lane(value: Any, index: int, clock: _Clock) -> LaneView:
    lane = as_mapping(value)
    key = as_text(lane.get("id"), limit=20) or str(index + 1)
    url = as_text(lane.get("reader"), limit=300)
    kind, reader = _device_kind(url), _address(url)
    tone, device, problem = _device_words(lane.get("device"), kind, clock)
    prompt = as_text(lane.get("prompt"), limit=60)
    raw = lane.get("for_manager")
    flagged = [as_text(item, limit=40) for item in raw] if isinstance(raw, list | tuple) else []
    if flagged:  # payments a smart terminal could not confirm: a person decides (docs/tpe.md)
        shown = ", ".join(item for item in flagged[:5] if item)
        more = f" and {len(flagged) - 5} more" if len(flagged) > 5 else ""
        tone = "bad"
        problem = (f"{len(flagged)} payment(s) the terminal could not confirm, for the "
                   f"manager to check: {shown}{more}")
    return LaneView(
        key=key,
        name=as_text(lane.get("name"), limit=60) or _(N_("Lane {number}")).format(number=key),
        reader=reader,
        interface=as_text(lane.get("interface"), limit=20) or _(UNKNOWN),
        tone=tone,
        device=device,
        problem=problem,
        prompt=prompt or _(UNKNOWN),
        payment=_payment(lane.get("payment"), clock),
    )


def _count(value: Any) -> str:
    number = as_int(value)
    return _(UNKNOWN) if number is None else str(number)


def _journal(journal: Any) -> tuple[HealthView, HealthView]:
    j = as_mapping(journal)
    total, approved, declined = (as_int(j.get(k)) for k in
                                 ("payments_today", "approved_today", "declined_today"))
    if total is None:
        summary = _(N_("Payments today: unknown"))
    elif total == 1:
        summary = _(N_("1 payment today"))
    else:
        summary = _(N_("{count} payments today")).format(count=total)
    totals = HealthView(_(N_("Today")), "ok" if total is not None else "unknown", summary, [
        (_(N_("Approved")), _count(approved)), (_(N_("Declined")), _count(declined)),
        (_(N_("Refunds")), _count(j.get("refunds_today")))])
    backlog, recovery = as_int(j.get("outbox_backlog")), as_int(j.get("awaiting_recovery"))
    if recovery:
        tone = "bad"
        words = _(N_("{count} payment(s) need checking after a restart")).format(count=recovery)
    elif backlog is None:
        tone, words = "unknown", _(N_("Sales waiting for head office: unknown"))
    elif backlog == 0:
        tone, words = "ok", _(N_("All sales sent to head office"))
    else:
        tone = "warn"
        words = _(N_("{count} sale(s) waiting to be sent to head office")).format(count=backlog)
    outbox = HealthView(_(N_("Outbox")), tone, words, [
        (_(N_("Waiting to send")), _count(backlog)),
        (_(N_("Awaiting recovery")), _count(recovery))])
    return totals, outbox


def _acquirer(value: Any, clock: _Clock) -> HealthView:
    acq = as_mapping(value)
    reachable = as_bool(acq.get("reachable"))
    last_ok = clock.at(acq.get("last_success"))
    if reachable is True:
        tone, words = "ok", _(N_("Payment provider reachable"))
    elif reachable is False:
        tone, words = "bad", _(N_("Payment provider not reachable — retrying"))
    else:
        tone, words = "unknown", _(N_("Payment provider: unknown"))
    details = [(_(N_("Address")), _address(as_text(acq.get("url"), limit=300))),
               (_(N_("Last answer")), last_ok or _(UNKNOWN))]
    problem = plain_error(acq.get("last_error"))
    if problem:
        details.append((_(N_("Last problem")), problem))
    return HealthView(_(N_("Payment provider")), tone, words, details)


def _mqtt(value: Any, clock: _Clock) -> HealthView:
    mq = as_mapping(value)
    enabled, connected = as_bool(mq.get("enabled")), as_bool(mq.get("connected"))
    if enabled is False:
        tone, words = "idle", _(N_("Head office link switched off"))
    elif connected is True:
        tone, words = "ok", _(N_("Connected to head office"))
    elif connected is False:
        tone, words = "bad", _(N_("Not connected to head office — sales are kept and sent later"))
    else:
        tone, words = "unknown", _(N_("Head office link: unknown"))
    details = [(_(N_("Waiting to publish")), _count(mq.get("backlog"))),
               (_(N_("Last sent")), clock.at(mq.get("last_publish")) or _(UNKNOWN))]
    problem = plain_error(mq.get("last_error"))
    if problem:
        details.append((_(N_("Last problem")), problem))
    return HealthView(_(N_("Head office (MQTT)")), tone, words, details)


#: Most low-stock lines listed on the page (the API and /metrics have them all).
LOW_STOCK_SHOWN = 20


def _stock(value: Any) -> HealthView:
    st = as_mapping(value)
    if as_bool(st.get("enabled")) is not True:
        off = _(N_("No local stock (head office link switched off)"))
        return HealthView(_(N_("Stock")), "idle", off)
    low = [as_mapping(line) for line in st.get("low") or [] if isinstance(line, dict)]
    threshold = _count(st.get("low_threshold"))
    low_at = _(N_("{threshold} or less")).format(threshold=threshold)
    details = [(_(N_("Products")), _count(st.get("skus"))), (_(N_("Low at")), low_at)]
    for line in low[:LOW_STOCK_SHOWN]:
        details.append((as_text(line.get("sku"), limit=64) or _(UNKNOWN),
                        _(N_("{count} left")).format(count=_count(line.get("level")))))  # fmt: skip
    if len(low) > LOW_STOCK_SHOWN:
        more = _(N_("{count} more low products")).format(count=len(low) - LOW_STOCK_SHOWN)
        details.append((_(N_("More")), more))
    if low:
        words = (_(N_("1 product low on stock")) if len(low) == 1
                 else _(N_("{count} products low on stock")).format(count=len(low)))  # fmt: skip
        return HealthView(_(N_("Stock")), "warn", words, details)
    return HealthView(_(N_("Stock")), "ok", _(N_("No product low on stock")), details)


def build_view(snapshot: Any, *, gettext: Callable[[str], str] | None = None) -> StatusView:
    """Turn a (scrubbed) snapshot into the page's words; missing or odd fields read "unknown".

    Args:
        snapshot: The daemon snapshot after :func:`gateway.web.values.scrub` (any JSON-like
            value is accepted; a non-mapping is read as an empty snapshot).
        gettext: The manager's language (:meth:`gateway.web.i18n.PageLocale.gettext`); None:
            English, the msgids themselves.
    """
    token = _GETTEXT.set(gettext or (lambda text: text))
    try:
        return _build(snapshot)
    finally:
        _GETTEXT.reset(token)


def _build(snapshot: Any) -> StatusView:
    snap = as_mapping(snapshot)
    clock = _Clock(snap.get("now"))
    ready = as_bool(snap.get("ready"))
    lanes_raw = snap.get("lanes")
    lanes = [_lane(lane, i, clock) for i, lane in enumerate(lanes_raw)] if isinstance(
        lanes_raw, list) else []
    totals, outbox = _journal(snap.get("journal"))
    if ready is True:
        tone, headline = "ok", _(N_("Ready to take payments"))
    elif ready is False:
        tone, headline = "bad", _(N_("Not ready to take payments"))
    else:
        tone, headline = "unknown", _(N_("Gateway state unknown"))
    return StatusView(
        shop=as_text(snap.get("shop"), limit=60) or _(N_("Shop (name unknown)")),
        version=as_text(snap.get("version"), limit=30) or _(UNKNOWN),
        tone=tone,
        headline=headline,
        updated=(clock.now.strftime("%H:%M:%S") if clock.now else _(UNKNOWN)),
        started=clock.at(snap.get("started_at")) or _(UNKNOWN),
        lanes=lanes,
        totals=totals,
        outbox=outbox,
        acquirer=_acquirer(snap.get("acquirer"), clock),
        mqtt=_mqtt(snap.get("mqtt"), clock),
        stock=_stock(snap.get("stock")),
    )
