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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

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


#: ``await provider()`` -> what waits for a manager now.
WorkProvider = Callable[[], Awaitable[ManagerWork]]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _amount(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d} {currency}"


def _masked(pan: str | None) -> str:
    """First 6 and last 4 characters at most; everything between starred."""
    if not pan:
        return "-"
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _when(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _csrf(session: Session) -> str:
    return f'<input type=hidden name=csrf value="{_e(session.csrf)}">'


def _declined_row(item: DeclinedForward, session: Session) -> str:
    form = ""
    if session.role == "manager":
        form = (
            f'<form method=post action="/manager/payments/{_e(item.payment_id)}/acknowledge"'
            f' class=acknowledge>{_csrf(session)}'
            "<label>Reason <input name=reason maxlength=120 pattern='[ -~]*'></label> "
            "<button>Acknowledge</button></form>"
        )
    return (
        f'<tr class=declined-forward data-payment="{_e(item.payment_id)}">'
        f"<td>{_e(_amount(item.amount, item.currency))}</td><td>{_e(_masked(item.masked_pan))}</td>"
        f"<td>{_e(item.lane)}</td><td>{_e(_when(item.at_ms))}</td>"
        f"<td>{_e(item.response_code or '-')}</td><td>{form}</td></tr>"
    )


def _terminal_row(item: LeftForManager, session: Session) -> str:
    form = ""
    if session.role == "manager":
        form = (
            f'<form method=post action="/manager/payments/{_e(item.payment_id)}/settle"'
            f" class=settle>{_csrf(session)}"
            "<label><input type=radio name=outcome value=approved required> approved</label> "
            "<label><input type=radio name=outcome value=declined> declined</label> "
            "<label>Auth code <input name=auth_code maxlength=12 pattern='[0-9A-Za-z]{1,12}'>"
            "</label> <label>Reason <input name=reason required maxlength=120"
            " pattern='[ -~]{1,120}'></label> <button>Settle</button></form>"
        )
    return (
        f'<tr class=for-manager data-payment="{_e(item.payment_id)}">'
        f"<td>{_e(item.payment_id)}</td><td>{_e(item.lane)}</td>"
        f"<td>{_e(_amount(item.amount, item.currency))}</td><td>{_e(item.state)}</td>"
        f"<td>{form}</td></tr>"
    )


def render_work(work: ManagerWork | None, session: Session) -> str:
    """The two lists waiting for a manager (forms for the ``manager`` role only).

    Args:
        work: What the provider returned; None when the page has no provider or it failed.
        session: The viewer's session (its role and CSRF token).
    """
    if work is None:
        return "<h2>Waiting for a manager</h2><p>Not available on this gateway.</p>"
    declined = "".join(_declined_row(item, session) for item in work.declined) or (
        "<tr><td colspan=6>No declined forward waits.</td></tr>"
    )
    more = (
        f"<p>{work.declined_more} more not listed.</p>" if work.declined_more > 0 else ""
    )
    terminal = "".join(_terminal_row(item, session) for item in work.terminal) or (
        "<tr><td colspan=5>No payment-terminal payment waits.</td></tr>"
    )
    return (
        "<h2>Declined by the bank after the sale</h2>"
        "<table id=declined-forwards><tr><th>Amount</th><th>Card</th><th>Lane</th>"
        f"<th>Declined at</th><th>Response</th><th></th></tr>{declined}</table>{more}"
        "<h2>Payment-terminal payments to settle by hand</h2>"
        "<p>Read the outcome on the terminal (its receipt or its journal), then settle.</p>"
        "<table id=for-manager><tr><th>Payment</th><th>Lane</th><th>Amount</th>"
        f"<th>State</th><th></th></tr>{terminal}</table>"
    )


def render_close_day(session: Session) -> str:
    """The *Close the day* form (nothing for a viewer)."""
    if session.role != "manager":
        return ""
    return (
        "<h2>Close the day</h2>"
        f"<form method=post action=/manager/days/close class=close-day>{_csrf(session)}"
        "<label><input type=checkbox name=confirm value=yes required> The tills are counted:"
        " close the day now (a closed day cannot be reopened)</label> "
        "<button>Close the day</button></form>"
    )


#: What a refused form post says, by the route's error code (page_forms); nothing was done.
_REFUSALS = {
    "csrf": "The page was out of date: nothing was done. Reload it and try again.",
    "forbidden": "Only a manager can do this: nothing was done.",
    "not_found": "No such payment or approval any more: nothing was done.",
    "not_declined": "That payment no longer waits for an acknowledgement: nothing was done.",
    "not_for_manager": "That payment no longer waits to be settled by hand: nothing was done.",
    "day_conflict": "The day could not be closed: it was closed meanwhile. Nothing was done.",
    "journal": "The journal is unavailable: nothing was done. Try again in a moment.",
    "unavailable": "This is not available on this gateway: nothing was done.",
    "invalid_request": "A field was not accepted: nothing was done.",
}
#: What a refused field says (``error=invalid_request&field=...``).
_FIELD_REFUSALS = {
    "reason": "Say what you checked in the reason: 1 to 120 printable characters, no card "
    "number. Nothing was done.",
    "auth_code": "The auth code is 1 to 12 letters or digits, given only with approved, and "
    "never a card number. Nothing was done.",
    "outcome": "Choose approved or declined. Nothing was done.",
    "confirm": "Tick the box to confirm that the day is to be closed. Nothing was done.",
}
_CODE = re.compile(r"^[a-z_]{1,32}$")


def _refusal(query: Mapping[str, str]) -> str:
    code = query.get("error", "")
    if not _CODE.match(code):
        return ""
    field = query.get("field", "")
    if code == "invalid_request" and field in _FIELD_REFUSALS:
        sentence = _FIELD_REFUSALS[field]
    elif code == "invalid_request" and _CODE.match(field):
        sentence = f"The field {field} was not accepted: nothing was done."
    else:
        sentence = _REFUSALS.get(code, f"Refused ({code}): nothing was done.")
    payment = query.get("payment", "")
    about = f"Payment {payment}: " if _ID.match(payment) else ""
    return f"<p class=refused role=alert>{_e(about + sentence)}</p>"


def result_message(query: Mapping[str, str]) -> str:
    """The sentence for ``/manager?done=...`` or ``?error=...`` after a form post ('' when
    none or malformed)."""
    if "error" in query:
        return _refusal(query)
    done = query.get("done", "")
    if done == "approved":
        approval = query.get("approval", "")
        if not _DAY.match(approval):
            return ""
        return f"<p class=result role=status>Refund approval {_e(approval)} approved.</p>"
    payment = query.get("payment", "")
    if done in ("acknowledged", "settled") and not _ID.match(payment):
        return ""
    if done == "acknowledged":
        return f"<p class=result role=status>Payment {_e(payment)} acknowledged.</p>"
    if done == "settled":
        state = query.get("state", "")
        if not _STATE.match(state):
            return ""
        return (
            f"<p class=result role=status>Payment {_e(payment)} settled by hand: "
            f"{_e(state)}.</p>"
        )
    if done == "closed":
        day = query.get("day", "")
        if not _DAY.match(day):
            return ""
        return f"<p class=result role=status>Day {_e(day)} closed.</p>"
    return ""
