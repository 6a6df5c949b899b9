"""The till's end of day at a smart-terminal lane: ``POST /api/lanes/{lane}/end-of-day``.

Answers 200 with what the terminal reported and the journal kept (``terminal_totals``): ``ok``,
``transactions``, ``debits``, ``refunds`` (minor units) and ``currency`` where the terminal
gives them; 404 for an unknown lane; 403 ``lane_not_allowed`` for a till that may not use the
lane (as for payments); 409 while the lane takes a payment. A terminal that cannot close its
day (Concert V2 has no such request, or it is not reachable) is a 200 with ``ok: false`` and
the reason, recorded as well. The till is named in the totals and the audit log.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.journal import JournalError, TerminalTotals
from gateway.payments import LaneBusy
from gateway.payments.terminal_day import end_of_day
from gateway.security.errors import InputError
from gateway.security.guard import requesting_till
from gateway.security.inputs import parse_lane_id
from gateway.security.service import audit_request
from gateway.till.jsonio import bad_request, error
from gateway.till.payments import TillBackend

__all__ = ["add_terminal_routes", "totals_json"]


def totals_json(totals: TerminalTotals) -> dict[str, Any]:
    """The till's view of a recorded end of day."""
    return {"id": totals.id, "lane": int(totals.lane), "at_ms": totals.at_ms, "ok": totals.ok,
            "transactions": totals.transactions, "debits": totals.debits,
            "refunds": totals.refunds, "currency": totals.currency, "message": totals.message}


def add_terminal_routes(app: web.Application, backend: TillBackend) -> None:
    """Register the end-of-day route on ``app``."""

    async def close_day(request: web.Request) -> web.Response:
        till = requesting_till(request)
        try:
            number = parse_lane_id(request.match_info["lane"])
        except InputError as exc:
            raise bad_request(exc.field, exc.message) from None
        lane = backend.lane(number)
        if lane is None:
            raise error(web.HTTPNotFound, "not_found", f"no lane {number}")
        if not till.may_use_lane(lane.id):
            await audit_request(request, actor=till.actor, action="terminal.end_of_day",
                                outcome="denied", detail={"lane": lane.id})
            raise error(web.HTTPForbidden, "lane_not_allowed",
                        f"this till may not use lane {lane.id}")
        try:
            totals = await end_of_day(lane, actor=till.actor)
        except LaneBusy as exc:
            raise error(web.HTTPConflict, "lane_busy", str(exc)) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        await audit_request(request, actor=till.actor, action="terminal.end_of_day",
                            subject=str(totals.id), outcome="ok" if totals.ok else "failed",
                            detail={"lane": lane.id})
        return web.json_response(totals_json(totals))

    app.router.add_post("/api/lanes/{lane}/end-of-day", close_day)
