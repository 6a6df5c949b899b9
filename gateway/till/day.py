"""The till API's day routes: voids, declined forwards, day close (aiohttp; docs/day.md).

==========================================  ====================================================
``POST /api/payments/{id}/void``             till: ``{"reason": "..."}`` (optional) → 200
                                             ``{"outcome": "voided", "state": "VOIDED"}``, or
                                             202 ``"pending"`` (journaled VOID_PENDING, the
                                             reversal is being re-sent under the same key; a
                                             TPE lane's: the terminal's cancellation, its
                                             answer lost)
``POST /manager/payments/{id}/acknowledge``  manager (logged in, CSRF): a FORWARD_DECLINED
                                             sale is seen → 200 (also under ``/api/``); the
                                             manager page's form post → 303 to
                                             ``/manager?done=acknowledged&payment=ID``
``POST /manager/days/close``                 manager (logged in, CSRF): close the day → 201 the
                                             day's record (also ``POST /api/days/close``); the
                                             manager page's form post (its box ticked:
                                             ``confirm=yes``, else ``400`` on ``confirm``) →
                                             303 to ``/manager?done=closed&day=N``
``GET /api/days/current``                    when the day opened, the last close (summary)
==========================================  ====================================================

Errors: ``404 not_found``; ``409 not_voidable`` (not a completed sale: offline sales, refunds,
declined ones), ``409 day_closed`` (a sale of a closed day: refund it), ``409 refunded``,
``409 void_refused`` (a payment terminal refused the cancellation: the sale stands),
``409 not_declined`` (acknowledging anything but a declined forward), ``409 day_conflict``
(two closes at once); ``401/403`` from the authorisation hook (:mod:`gateway.till.authority`);
``503`` when the journal fails. The actor the hook returns is journaled with each action. A
manager page's form post that is refused goes back to ``/manager?error=CODE`` instead
(gateway.security.page_forms).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from aiohttp import web

from gateway.day.close import DayCloser
from gateway.journal import (
    DayAlreadyClosed,
    IllegalTransition,
    Journal,
    JournalError,
    UnknownPayment,
    VoidNotAllowed,
)
from gateway.journal.queries import DayClose
from gateway.recovery.voids import VoidOutcome, VoidService
from gateway.till.authority import Authorise
from gateway.till.jsonio import (
    FORM_TYPES,
    back_to_manager_page,
    bad_request,
    error,
    from_a_form,
    json_body,
    no_card_data,
)

__all__ = ["DayBackend", "add_day_routes", "day_json"]

_REASON = re.compile(r"^[\x20-\x7e]{0,120}$")


class DayBackend(Protocol):
    """What the day routes need from the daemon."""

    journal: Journal
    voids: VoidService | None
    day_closer: DayCloser | None
    authorise: Authorise


def day_json(day: DayClose, *, full: bool = True) -> dict[str, Any]:
    """A day close for the API (the record only when ``full``)."""
    body: dict[str, Any] = {
        "day": day.id,
        "opened_ms": day.opened_ms,
        "closed_ms": day.closed_ms,
        "closed_by": day.closed_by,
        "differences": day.differences,
        "reconciled": bool(day.record.get("acquirer", {}).get("reconciled")),
    }
    if full:
        body["record"] = day.record
    return body


async def _reason(request: web.Request) -> str:
    if request.content_type in FORM_TYPES:  # a manager page's form
        # read (and cached) by the page middleware for its CSRF field already: can_read_body
        # is False by now, so it is asked of the form, not of the body
        form = await request.post()
        reason = form.get("reason", "")
        if not isinstance(reason, str) or not _REASON.match(reason):
            raise bad_request("reason", "expected up to 120 printable characters")
        return no_card_data("reason", reason)
    if not request.can_read_body:
        return ""
    body = await json_body(request)
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise bad_request(unknown[0], "unknown field")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise bad_request("reason", "expected up to 120 printable characters")
    return no_card_data("reason", reason)


def add_day_routes(app: web.Application, backend: DayBackend) -> None:
    """Mount the day routes on ``app`` (see the module docstring)."""

    async def void(request: web.Request) -> web.Response:
        actor = await backend.authorise(request, "till")
        reason = await _reason(request)
        if backend.voids is None:
            raise error(web.HTTPServiceUnavailable, "unavailable", "voids are not running")
        payment_id = request.match_info["payment"]
        try:
            result = await backend.voids.void(payment_id, actor=actor, reason=reason)
        except UnknownPayment:
            raise error(web.HTTPNotFound, "not_found", "no such payment") from None
        except VoidNotAllowed as exc:
            raise error(web.HTTPConflict, exc.code, str(exc)) from None
        except IllegalTransition as exc:
            raise error(
                web.HTTPConflict, "not_voidable", f"only a completed sale: it is {exc.current}"
            ) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        if result.outcome is VoidOutcome.REFUSED:  # a terminal's refusal: the sale stands
            raise error(web.HTTPConflict, "void_refused", result.reason or "refused")
        pending = result.outcome is VoidOutcome.PENDING
        body = {
            "id": payment_id,
            "outcome": result.outcome.value,
            "state": result.payment.state.value,
            "amount": result.payment.amount,
            "currency": result.payment.currency,
            "href": f"/api/payments/{payment_id}",
        }
        return web.json_response(body, status=202 if pending else 200)

    async def acknowledge(request: web.Request) -> web.Response:
        actor = await backend.authorise(request, "manager")
        reason = await _reason(request)
        payment_id = request.match_info["payment"]
        try:
            payment = await backend.journal.acknowledge_declined_forward(
                payment_id, actor=actor, reason=reason
            )
        except UnknownPayment:
            raise error(web.HTTPNotFound, "not_found", "no such payment") from None
        except IllegalTransition as exc:
            raise error(
                web.HTTPConflict, "not_declined", f"not a declined forward: {exc.current}"
            ) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        if from_a_form(request):  # the manager page's Acknowledge button
            raise back_to_manager_page(done="acknowledged", payment=payment.id)
        return web.json_response({"id": payment.id, "state": payment.state.value, "by": actor})

    async def close_day(request: web.Request) -> web.Response:
        actor = await backend.authorise(request, "manager")
        if backend.day_closer is None:
            raise error(web.HTTPServiceUnavailable, "unavailable", "day close is not running")
        if from_a_form(request) and (await request.post()).get("confirm") != "yes":
            raise bad_request("confirm", "tick the box to confirm closing the day")
        try:
            day = await backend.day_closer.close(actor=actor)
        except DayAlreadyClosed as exc:
            raise error(web.HTTPConflict, "day_conflict", str(exc)) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        if from_a_form(request):  # the manager page's Close the day button
            raise back_to_manager_page(done="closed", day=str(day.id))
        return web.json_response(day_json(day), status=201)

    async def current(_request: web.Request) -> web.Response:
        try:
            last = await backend.journal.last_day_close()
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        return web.json_response(
            {
                "opened_ms": 0 if last is None else last.closed_ms,
                "last_close": None if last is None else day_json(last, full=False),
            }
        )

    app.router.add_post("/api/payments/{payment}/void", void)
    app.router.add_post("/api/payments/{payment}/acknowledge", acknowledge)
    app.router.add_post("/api/days/close", close_day)
    # the same actions for a manager logged in to the status page (session, CSRF, role)
    app.router.add_post("/manager/payments/{payment}/acknowledge", acknowledge)
    app.router.add_post("/manager/days/close", close_day)
    app.router.add_get("/api/days/current", current)
