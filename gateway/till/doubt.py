"""A manager settles by hand what a payment terminal cannot tell: ``POST .../settle``.

A payment on a smart-terminal lane stays UNKNOWN (or a void of one stays VOID_PENDING), flagged
for the manager on the status page, when the terminal cannot say what became of it (Concert V2
has no "last transaction" request: :mod:`gateway.payments.terminal_recovery`). The manager
reads the answer on the terminal (its receipt or its own journal) and settles it here; nothing
else settles a payment by hand.

=============================================  ==============================================
``POST /manager/payments/{id}/settle``         manager (logged in, CSRF), form or JSON:
(also ``POST /api/payments/{id}/settle``)       ``outcome`` ``approved`` (charged: APPROVED,
                                               COMPLETED, sent to head office; a void:
                                               VOIDED) or ``declined`` (not charged:
                                               DECLINED; a void: COMPLETED, the sale stands),
                                               ``auth_code`` (approved, optional),
                                               ``reason`` (what the manager checked, required)
=============================================  ==============================================

Answers 200 ``{"id", "state", "by"}`` (the manager page's form post: 303 to
``/manager?done=settled&payment=ID&state=STATE``). Errors: ``400`` a field (``field`` names
it), ``404`` no such payment, ``409 not_for_manager`` (not a terminal payment waiting for a
manager: the terminal or the acquirer settles it), ``401/403`` from the authorisation hook,
``503`` when the journal fails. The manager is the journaled actor of each step.
"""

from __future__ import annotations

import re
from typing import Protocol

from aiohttp import web

from gateway.journal import IllegalTransition, Journal, JournalError, UnknownPayment
from gateway.payments import Lane, NotForManager
from gateway.till.authority import Authorise
from gateway.till.jsonio import (
    back_to_manager_page,
    bad_request,
    error,
    from_a_form,
    json_body,
    no_card_data,
)

__all__ = ["DoubtBackend", "add_doubt_routes"]

_REASON = re.compile(r"^[\x20-\x7e]{1,120}$")
_AUTH_CODE = re.compile(r"^[0-9A-Za-z]{1,12}$")
_FIELDS = {"outcome", "auth_code", "reason"}


class DoubtBackend(Protocol):
    """What the route needs from the daemon."""

    journal: Journal
    authorise: Authorise

    def lane(self, lane_id: int) -> Lane | None:
        """The lane with this id."""
        ...


async def _fields(request: web.Request) -> tuple[bool, str | None, str]:
    """``(approved, auth_code, reason)`` from a manager page's form or a JSON body."""
    if request.content_type == "application/json":
        body = await json_body(request)
    else:  # the manager page's form: its CSRF field was checked by the page middleware
        body = {k: v for k, v in (await request.post()).items() if k != "csrf"}
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise bad_request(unknown[0], "unknown field")
    outcome = body.get("outcome")
    if outcome not in ("approved", "declined"):
        raise bad_request("outcome", "expected approved or declined")
    code = body.get("auth_code") or None
    if code is not None and (not isinstance(code, str) or not _AUTH_CODE.match(code)):
        raise bad_request("auth_code", "expected 1 to 12 letters or digits")
    if code is not None and outcome != "approved":
        raise bad_request("auth_code", "only with outcome approved")
    if code is not None:
        no_card_data("auth_code", code)
    reason = body.get("reason")
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise bad_request("reason", "say what you checked: 1 to 120 printable characters")
    return outcome == "approved", code, no_card_data("reason", reason)


def add_doubt_routes(app: web.Application, backend: DoubtBackend) -> None:
    """Mount the settle-by-hand route on ``app`` (see the module docstring)."""

    async def settle(request: web.Request) -> web.Response:
        actor = await backend.authorise(request, "manager")
        approved, auth_code, reason = await _fields(request)
        payment_id = request.match_info["payment"]
        try:
            payment = await backend.journal.get(payment_id)
            lane = backend.lane(int(payment.lane)) if payment.lane.isdigit() else None
            if lane is None:
                raise NotForManager(f"payment {payment_id} is on no lane of this gateway")
            payment = await lane.terminal_recovery.settle_by_hand(
                payment_id, approved=approved, auth_code=auth_code, actor=actor, reason=reason
            )
        except UnknownPayment:
            raise error(web.HTTPNotFound, "not_found", "no such payment") from None
        except (NotForManager, IllegalTransition) as exc:
            raise error(web.HTTPConflict, "not_for_manager", str(exc)) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        if from_a_form(request):  # the manager page's Settle button
            raise back_to_manager_page(
                done="settled", payment=payment.id, state=payment.state.value
            )
        return web.json_response({"id": payment.id, "state": payment.state.value, "by": actor})

    app.router.add_post("/api/payments/{payment}/settle", settle)
    app.router.add_post("/manager/payments/{payment}/settle", settle)
