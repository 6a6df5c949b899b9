"""What waits for a manager on ``GET /manager``, below the refund approvals (HTML, escaped).

The security part does not read the journal's payments or the lanes: the daemon gives
:class:`~gateway.security.manager.ManagerPages` a :data:`WorkProvider`, an async callable that
returns plain data (:class:`ManagerWork`), and this module renders it:

* declined forwards (sales the bank refused after an offline approval: FORWARD_DECLINED) with
  an *Acknowledge* form → ``POST /manager/payments/{id}/acknowledge`` (``reason`` optional);
* payment-terminal payments and voids the terminal could not tell about (UNKNOWN or
  VOID_PENDING, each lane's ``for_manager``: docs/tpe.md "Settled by hand") with a *Settle*
  form → ``POST /manager/payments/{id}/settle`` (``outcome``, ``auth_code``, ``reason``);
* a *Close the day* form → ``POST /manager/days/close``, with a box to tick that confirms it
  (``confirm=yes``; the route refuses a form post without it).

Every form carries the session's CSRF field; a viewer (role not ``manager``) sees the lists
without forms. Every text is escaped; a card number is shown masked (first 6, last 4 at most)
even if a provider handed more. After a form post the routes answer 303 to
``/manager?done=...``, or ``/manager?error=...`` when they refused it (page_forms);
:func:`result_message` turns those parameters into one fixed sentence (the parameters are
checked, never echoed as given).
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.security.errors import InputError
from gateway.security.inputs import check_no_card_data
from gateway.security.page_words import ENGLISH, N_, PageWords
from gateway.security.sessions import Session

__all__ = [
    "DeclinedForward",
    "LeftForManager",
    "ManagerWork",
    "WorkProvider",
    "render_close_day",
    "render_work",
    "result_message",
]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STATE = re.compile(r"^[A-Z_]{1,32}$")
_DAY = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True, slots=True)
class DeclinedForward:
    """A sale the bank declined after it was approved offline (FORWARD_DECLINED).

    Attributes:
        payment_id: The journal's payment id.
        amount: Minor units.
        currency: ISO 4217 alphabetic code.
        masked_pan: The card number, masked (None when unknown).
        lane: The lane id as journaled.
        at_ms: When the bank's answer was journaled (ms since the epoch).
        response_code: The acquirer's response code, if any.
    """

    payment_id: str
    amount: int
    currency: str
    masked_pan: str | None
    lane: str
    at_ms: int
    response_code: str | None


@dataclass(frozen=True, slots=True)
class LeftForManager:
    """A payment-terminal payment or void its terminal could not settle (docs/tpe.md).

    Attributes:
        payment_id: The journal's payment id.
        lane: The lane id as journaled.
        amount: Minor units.
        currency: ISO 4217 alphabetic code.
        state: ``UNKNOWN`` (a payment) or ``VOID_PENDING`` (a void).
    """

    payment_id: str
    lane: str
    amount: int
    currency: str
    state: str


@dataclass(frozen=True, slots=True)
class ManagerWork:
    """Everything waiting for a manager, as the daemon's provider reads it."""

    declined: tuple[DeclinedForward, ...] = ()
    terminal: tuple[LeftForManager, ...] = ()
    #: Declined forwards beyond those listed (the provider may bound its list).
    declined_more: int = 0
    #: The currency of each sale asked about (the refund approvals' sales), by sale id.
    sale_currencies: Mapping[str, str] = field(default_factory=dict)


#: ``await provider(sale_ids)`` -> what waits for a manager now, with the currencies of those
#: sales (the refund approvals': an approval records its amount, not the sale's currency).
WorkProvider = Callable[[Sequence[str]], Awaitable[ManagerWork]]
Words = Callable[[str], str]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _masked(pan: str | None) -> str:
    """First 6 and last 4 characters at most; everything between starred."""
    if not pan:
        return "-"
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _when(ms: int, words: PageWords) -> str:
    return words.datetime(datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC))


def _csrf(session: Session) -> str:
    return f'<input type=hidden name=csrf value="{_e(session.csrf)}">'


def _declined_row(item: DeclinedForward, session: Session, words: PageWords) -> str:
    tr = words.gettext
    form = ""
    if session.role == "manager":
        reason, button = _e(tr(N_("Reason"))), _e(tr(N_("Acknowledge")))
        form = (
            f'<form method=post action="/manager/payments/{_e(item.payment_id)}/acknowledge"'
            f" class=acknowledge>{_csrf(session)}"
            f"<label>{reason} <input name=reason maxlength=120 pattern='[ -~]*'></label> "
            f"<button>{button}</button></form>"
        )
    return (
        f'<tr class=declined-forward data-payment="{_e(item.payment_id)}">'
        f"<td>{_e(words.money(item.amount, item.currency))}</td>"
        f"<td>{_e(_masked(item.masked_pan))}</td>"
        f"<td>{_e(item.lane)}</td><td>{_e(_when(item.at_ms, words))}</td>"
        f"<td>{_e(item.response_code or '-')}</td><td>{form}</td></tr>"
    )


def _terminal_row(item: LeftForManager, session: Session, words: PageWords) -> str:
    tr = words.gettext
    form = ""
    if session.role == "manager":
        approved, declined = _e(tr(N_("approved"))), _e(tr(N_("declined")))
        code, reason, button = _e(tr(N_("Auth code"))), _e(tr(N_("Reason"))), _e(tr(N_("Settle")))
        form = (
            f'<form method=post action="/manager/payments/{_e(item.payment_id)}/settle"'
            f" class=settle>{_csrf(session)}"
            f"<label><input type=radio name=outcome value=approved required> {approved}</label> "
            f"<label><input type=radio name=outcome value=declined> {declined}</label> "
            f"<label>{code} <input name=auth_code maxlength=12 pattern='[0-9A-Za-z]{{1,12}}'>"
            f"</label> <label>{reason} <input name=reason required maxlength=120"
            f" pattern='[ -~]{{1,120}}'></label> <button>{button}</button></form>"
        )
    return (
        f'<tr class=for-manager data-payment="{_e(item.payment_id)}">'
        f"<td>{_e(item.payment_id)}</td><td>{_e(item.lane)}</td>"
        f"<td>{_e(words.money(item.amount, item.currency))}</td><td>{_e(item.state)}</td>"
        f"<td>{form}</td></tr>"
    )


def _th(tr: Words, *headings: str) -> str:
    return "<tr>" + "".join(f"<th>{_e(tr(h)) if h else ''}</th>" for h in headings) + "</tr>"


def render_work(work: ManagerWork | None, session: Session, words: PageWords = ENGLISH) -> str:
    """The two lists waiting for a manager (forms for the ``manager`` role only).

    Args:
        work: What the provider returned; None when the page has no provider or it failed.
        session: The viewer's session (its role and CSRF token).
        words: The request's language (English by default).
    """
    tr = words.gettext
    if work is None:
        title = _e(tr(N_("Waiting for a manager")))
        text = _e(tr(N_("Not available on this gateway.")))
        return f"<h2>{title}</h2><p>{text}</p>"
    none_declined = _e(tr(N_("No declined forward waits.")))
    declined = "".join(_declined_row(item, session, words) for item in work.declined) or (
        f"<tr><td colspan=6>{none_declined}</td></tr>"
    )
    more = ""
    if work.declined_more > 0:
        count = tr(N_("%(count)d more not listed.")) % {"count": work.declined_more}
        more = f"<p>{_e(count)}</p>"
    none_left = _e(tr(N_("No payment-terminal payment waits.")))
    terminal = "".join(_terminal_row(item, session, words) for item in work.terminal) or (
        f"<tr><td colspan=5>{none_left}</td></tr>"
    )
    declined_title = _e(tr(N_("Declined by the bank after the sale")))
    left_title = _e(tr(N_("Payment-terminal payments to settle by hand")))
    read = _e(tr(N_("Read the outcome on the terminal (its receipt or its journal), then settle.")))
    declined_head = _th(tr, N_("Amount"), N_("Card"), N_("Lane"), N_("Declined at"),
                        N_("Response"), "")  # fmt: skip
    left_head = _th(tr, N_("Payment"), N_("Lane"), N_("Amount"), N_("State"), "")
    return (
        f"<h2>{declined_title}</h2><table id=declined-forwards>{declined_head}{declined}</table>"
        f"{more}<h2>{left_title}</h2><p>{read}</p>"
        f"<table id=for-manager>{left_head}{terminal}</table>"
    )


def render_close_day(session: Session, words: PageWords = ENGLISH) -> str:
    """The *Close the day* form (nothing for a viewer)."""
    if session.role != "manager":
        return ""
    tr = words.gettext
    close = _e(tr(N_("Close the day")))
    counted = _e(tr(N_("The tills are counted: close the day now (a closed day cannot be "
                       "reopened)")))  # fmt: skip
    return (
        f"<h2>{close}</h2>"
        f"<form method=post action=/manager/days/close class=close-day>{_csrf(session)}"
        f"<label><input type=checkbox name=confirm value=yes required> {counted}</label> "
        f"<button>{close}</button></form>"
    )


#: What a refused form post says, by the route's error code (page_forms); nothing was done.
_REFUSALS = {
    "csrf": N_("The page was out of date: nothing was done. Reload it and try again."),
    "forbidden": N_("Only a manager can do this: nothing was done."),
    "not_found": N_("No such payment or approval any more: nothing was done."),
    "not_declined": N_("That payment no longer waits for an acknowledgement: nothing was done."),
    "not_for_manager": N_("That payment no longer waits to be settled by hand: nothing was "
                          "done."),
    "day_conflict": N_("The day could not be closed: it was closed meanwhile. Nothing was "
                       "done."),
    "journal": N_("The journal is unavailable: nothing was done. Try again in a moment."),
    "unavailable": N_("This is not available on this gateway: nothing was done."),
    "invalid_request": N_("A field was not accepted: nothing was done."),
}  # fmt: skip
#: What a refused field says (``error=invalid_request&field=...``).
_FIELD_REFUSALS = {
    "reason": N_("Say what you checked in the reason: 1 to 120 printable characters, no card "
                 "number. Nothing was done."),
    "auth_code": N_("The auth code is 1 to 12 letters or digits, given only with approved, "
                    "and never a card number. Nothing was done."),
    "outcome": N_("Choose approved or declined. Nothing was done."),
    "confirm": N_("Tick the box to confirm that the day is to be closed. Nothing was done."),
}  # fmt: skip
_CODE = re.compile(r"^[a-z_]{1,32}$")


def _shown_id(payment: str) -> bool:
    """A payment id the page may show: the journal's shape, and nothing like a card number
    (a URL typed with a PAN in it is never echoed)."""
    if not _ID.match(payment):
        return False
    try:
        check_no_card_data("payment", payment)
    except InputError:
        return False
    return True


def _refusal(query: Mapping[str, str], tr: Words) -> str:
    code = query.get("error", "")
    if not _CODE.match(code):
        return ""
    field = query.get("field", "")
    if code == "invalid_request" and field in _FIELD_REFUSALS:
        sentence = tr(_FIELD_REFUSALS[field])
    elif code == "invalid_request" and _CODE.match(field):
        sentence = tr(N_("The field %(field)s was not accepted: nothing was done.")) % {
            "field": field}  # fmt: skip
    elif code in _REFUSALS:
        sentence = tr(_REFUSALS[code])
    else:
        sentence = tr(N_("Refused (%(code)s): nothing was done.")) % {"code": code}
    payment = query.get("payment", "")
    if _shown_id(payment):
        sentence = tr(N_("Payment %(payment)s: %(sentence)s")) % {
            "payment": payment, "sentence": sentence}  # fmt: skip
    return f"<p class=refused role=alert>{_e(sentence)}</p>"


def _done(query: Mapping[str, str], tr: Words) -> str:
    done = query.get("done", "")
    if done == "approved":
        approval = query.get("approval", "")
        if _DAY.match(approval):
            return tr(N_("Refund approval %(approval)s approved.")) % {"approval": approval}
        return ""
    if done == "closed":
        day = query.get("day", "")
        return tr(N_("Day %(day)s closed.")) % {"day": day} if _DAY.match(day) else ""
    payment = query.get("payment", "")
    if done not in ("acknowledged", "settled") or not _shown_id(payment):
        return ""
    if done == "acknowledged":
        return tr(N_("Payment %(payment)s acknowledged.")) % {"payment": payment}
    state = query.get("state", "")
    if not _STATE.match(state):
        return ""
    return tr(N_("Payment %(payment)s settled by hand: %(state)s.")) % {
        "payment": payment, "state": state}  # fmt: skip


def result_message(query: Mapping[str, str], words: PageWords = ENGLISH) -> str:
    """The sentence for ``/manager?done=...`` or ``?error=...`` after a form post ('' when
    none or malformed), in the request's language."""
    if "error" in query:
        return _refusal(query, words.gettext)
    sentence = _done(query, words.gettext)
    return f"<p class=result role=status>{_e(sentence)}</p>" if sentence else ""
