"""The status page's money sections, in the manager's language (docs/status-page.md).

:func:`render_money` turns the snapshot's ``money`` part (``Daemon.day_snapshot``: takings,
last payments, approval rate, median authorisation time, store-and-forward queue against its
limits, declined forwards, the day close) into HTML sections, every word through the locale's
catalogue and every amount, percentage and time through its CLDR formats
(:class:`gateway.web.i18n.PageLocale`). Values are read defensively (a missing or mistyped field
shows "—", never an exception) and escaped like the rest of the page. Declined forwards are red
and stay until a manager acknowledges them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from string import Template
from typing import Any

from gateway.web.i18n import PageLocale
from gateway.web.page import Markup, fill, join
from gateway.web.values import as_int, as_mapping, as_text
from gateway.web.words import DAY_STATES, HEADINGS, OFFLINE_REFUSALS, PAYMENT_STATES

__all__ = ["render_money"]

DASH = "—"

_SECTION = Template("""<section class="money tone-$tone" id="$key" aria-label="$title">
<h2>$title</h2>
$body
</section>""")
_ROW = Template("<tr$cls><td>$time</td><td>$lane</td><td>$card</td>"
                "<td class=\"num\">$amount</td><td>$outcome</td></tr>")  # fmt: skip
_STAT = Template("<dt>$label</dt><dd>$value</dd>")
_HEAD = Template("<th$cls>$text</th>")
_P = Template("<p>$s</p>")


def _when(value: Any, loc: PageLocale) -> str:
    text = as_text(value)
    if text is None:
        return DASH
    try:
        return loc.time(datetime.fromisoformat(text))
    except ValueError:
        return DASH


def _money(amount: Any, currency: Any, loc: PageLocale) -> str:
    value, code = as_int(amount), as_text(currency)
    if value is None or code is None:
        return DASH
    return loc.money(value, code)


def _takings(money: Mapping[str, Any], loc: PageLocale) -> Markup:
    takings = as_mapping(money.get("takings"))
    parts = [fill(Template('<span class="taking">$v</span>'), v=_money(v, k, loc))
             for k, v in takings.items()]  # fmt: skip
    if not parts:
        body = fill(Template('<p class="muted">$t</p>'), t=loc.gettext(HEADINGS["none_yet"]))
    else:
        body = Markup('<div class="takings">' + join(parts) + "</div>")
    rate = money.get("approval_rate")
    median = money.get("median_auth_ms")
    stats = join([
        fill(_STAT, label=loc.gettext(HEADINGS["approval_rate"]),
             value=loc.percent(rate) if isinstance(rate, int | float) else DASH),
        fill(_STAT, label=loc.gettext(HEADINGS["median_auth"]),
             value=loc.milliseconds(median) if isinstance(median, int | float) else DASH),
    ])  # fmt: skip
    return fill(_SECTION, tone="ok", key="takings", title=loc.gettext(HEADINGS["takings"]),
                body=Markup(body + "<dl>" + stats + "</dl>"))  # fmt: skip


def _state_label(state: Any, loc: PageLocale) -> str:
    text = as_text(state) or ""
    return loc.gettext(PAYMENT_STATES[text]) if text in PAYMENT_STATES else text or DASH


def _last_payments(money: Mapping[str, Any], loc: PageLocale) -> Markup:
    rows = []
    for raw in money.get("last_payments") or []:
        item = as_mapping(raw)
        declined = item.get("state") in ("FORWARD_DECLINED", "DECLINED")
        rows.append(fill(
            _ROW, cls=Markup(' class="declined-forward"') if declined else Markup(""),
            time=_when(item.get("at"), loc), lane=as_text(item.get("lane")) or DASH,
            card=as_text(item.get("masked_pan")) or DASH,
            amount=_money(item.get("amount"), item.get("currency"), loc),
            outcome=_state_label(item.get("state"), loc),
        ))  # fmt: skip
    if not rows:
        return Markup("")
    head = join([
        fill(_HEAD, cls=Markup(' class="num"') if key == "amount" else Markup(""),
             text=loc.gettext(HEADINGS[key]))
        for key in ("time", "lane", "card", "amount", "outcome")
    ])  # fmt: skip
    table = Markup(f"<table><tr>{head}</tr>{join(rows)}</table>")
    return fill(_SECTION, tone="idle", key="last-payments",
                title=loc.gettext(HEADINGS["last_payments"]), body=table)  # fmt: skip


def _offline(money: Mapping[str, Any], loc: PageLocale) -> Markup:
    queue = as_mapping(money.get("offline"))
    lines = []
    tone = "ok"
    for code, raw in queue.items():
        item = as_mapping(raw)
        limit = loc.gettext(HEADINGS["limit"])
        count, max_count = as_int(item.get("count")), as_int(item.get("max_count"))
        amount = _money(item.get("amount"), code, loc)
        max_total = _money(item.get("max_total"), code, loc) if item.get("max_total") else None
        text = f"{loc.number(count or 0)}"
        text += f" / {loc.number(max_count)}" if max_count is not None else ""
        text += f" · {amount}" + (f" ({limit} {max_total})" if max_total else "")
        lines.append(fill(_STAT, label=code, value=text))
        stopped = as_text(item.get("stopped"))
        if stopped:
            tone = "bad"
            reason = loc.gettext(OFFLINE_REFUSALS.get(stopped, stopped))
            lines.append(fill(Template('<dt class="stopped">$s</dt><dd class="stopped">$r</dd>'),
                              s=loc.gettext(HEADINGS["offline_stopped"]), r=reason))  # fmt: skip
    if not lines:
        return Markup("")
    return fill(_SECTION, tone=tone, key="offline", title=loc.gettext(HEADINGS["offline_queue"]),
                body=Markup("<dl>" + join(lines) + "</dl>"))  # fmt: skip


def _declined(money: Mapping[str, Any], loc: PageLocale) -> Markup:
    items = [as_mapping(raw) for raw in money.get("declined_forwards") or []]
    if not items:
        return Markup("")
    rows = join([
        fill(_ROW, cls=Markup(' class="declined-forward"'), time=_when(i.get("at"), loc),
             lane=as_text(i.get("lane")) or DASH, card=as_text(i.get("masked_pan")) or DASH,
             amount=_money(i.get("amount"), i.get("currency"), loc),
             outcome=loc.gettext(PAYMENT_STATES["FORWARD_DECLINED"]))
        for i in items
    ])  # fmt: skip
    body = Markup(f"<table>{rows}</table>")
    more = as_int(money.get("declined_forwards_more")) or 0
    if more > 0:  # the snapshot lists the oldest only (gateway.day.summary.DECLINED_SHOWN)
        text = loc.gettext(HEADINGS["more_waiting"]).format(count=loc.number(more))
        body = Markup(body + fill(_P, s=text))
    return fill(_SECTION, tone="bad", key="declined-forwards",
                title=loc.gettext(HEADINGS["needs_manager"]), body=body)  # fmt: skip


def _difference(item: Mapping[str, Any], loc: PageLocale) -> Markup:
    """One reconciliation line that differs: the acquirer's by currency, a TPE's by lane
    and currency; a count of transactions (a TPE's, no amount) as a signed count."""
    code = item.get("currency")
    label = as_text(code) or DASH
    source = as_text(item.get("source")) or ""
    if source.startswith("tpe:"):
        label = f"{loc.gettext(HEADINGS['lane'])} {source[4:]} · {label}"
    if item.get("difference") is None and item.get("kind") == "transactions":
        counts = [as_int(as_mapping(item.get(side)).get("count")) for side in ("journal", "other")]
        if counts[0] is None or counts[1] is None:
            return fill(_STAT, label=label, value=DASH)
        delta = counts[1] - counts[0]
        sign = "+" if delta > 0 else ""
        value = loc.gettext(HEADINGS["terminal_transactions"]).format(
            count=sign + loc.number(delta))
        return fill(_STAT, label=label, value=value)
    return fill(_STAT, label=label, value=_money(item.get("difference"), code, loc))


def _day(money: Mapping[str, Any], loc: PageLocale) -> Markup:
    day = as_mapping(money.get("day"))
    last = as_mapping(day.get("last_close"))
    if not last:
        opened = fill(_P, s=loc.gettext(DAY_STATES["open"]))
        return fill(_SECTION, tone="idle", key="day", title=loc.gettext(HEADINGS["day"]),
                    body=opened)  # fmt: skip
    differences = as_int(last.get("differences")) or 0
    state = DAY_STATES["closed_with_differences" if differences else "closed"]
    body = fill(Template("<p class=\"state\">$s · $t</p>"), s=loc.gettext(state),
                t=_when(last.get("closed"), loc))  # fmt: skip
    rows = [_difference(as_mapping(raw), loc) for raw in day.get("last_differences") or []]
    if rows:
        body = Markup(body + fill(Template("<p class=\"stopped\">$h</p>"),
                                  h=loc.gettext(HEADINGS["differences"]))
                      + "<dl>" + join(rows) + "</dl>")  # fmt: skip
    lanes = [as_text(x) or DASH for x in day.get("terminals_unavailable") or []]
    if lanes:  # TPE lanes whose terminal gave no totals (gateway.day.terminals)
        text = loc.gettext(HEADINGS["terminal_unavailable"]).format(lanes=", ".join(lanes))
        body = Markup(body + fill(Template("<p class=\"stopped\">$s</p>"), s=text))
    return fill(_SECTION, tone="bad" if differences else "ok", key="day",
                title=loc.gettext(HEADINGS["day"]), body=body)  # fmt: skip


def render_money(money: Any, loc: PageLocale) -> Markup:
    """The money sections for the snapshot's ``money`` part (empty when there is none)."""
    if not isinstance(money, Mapping):
        return Markup("")
    data = as_mapping(money)
    return join([_takings(data, loc), _declined(data, loc), _offline(data, loc),
                 _day(data, loc), _last_payments(data, loc)])  # fmt: skip
