"""The till's end of day at a smart-terminal lane: ``POST /api/lanes/{lane}/end-of-day``.

Answers 200 with what the terminal reported and the journal kept (``terminal_totals``): ``ok``,
``transactions``, ``debits``, ``refunds`` (minor units) and ``currency`` where the terminal
gives them; 404 for an unknown lane; 409 while the lane takes a payment. A terminal that cannot
close its day (Concert V2 has no such request, or it is not reachable) is a 200 with
``ok: false`` and the reason, recorded as well.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.journal import JournalError, TerminalTotals
from gateway.payments import LaneBusy
from gateway.payments.terminal_day import end_of_day
from gateway.till.jsonio import error
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
        raw = request.match_info["lane"]
        lane = backend.lane(int(raw)) if raw.isdigit() else None
        if lane is None:
            raise error(web.HTTPNotFound, "not_found", "no such lane")
        try:
            totals = await end_of_day(lane, actor=f"till:{lane.actor}")
        except LaneBusy as exc:
            raise error(web.HTTPConflict, "lane_busy", str(exc)) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        return web.json_response(totals_json(totals))

    app.router.add_post("/api/lanes/{lane}/end-of-day", close_day)
