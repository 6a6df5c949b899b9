"""Shared pieces of the status page and metrics tests: snapshots, a swappable source, a server.

No tests here. The snapshots follow the shape documented in docs/status-page.md; the PAN is the
public Visa test card number of the simulator's profiles, which passes the Luhn check.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from gateway.web import add_status_routes

FULL_PAN = "4761739001010010"
MASKED_PAN = "476173******0010"


def two_lane_snapshot() -> dict[str, Any]:
    """Lane 1 ready and mid-payment, lane 2 with its reader unplugged (shop time +01:00)."""
    return {
        "shop": "shop-001",
        "version": "0.1.0",
        "ready": True,
        "started_at": "2025-11-22T08:00:00+01:00",
        "now": "2025-11-22T10:45:12+01:00",
        "lanes": [
            {
                "id": 1,
                "name": "Lane 1",
                "reader": "pcsc://Virtual%20PCD%2000%2000",
                "interface": "contact",
                "device": {
                    "name": "lane[1].reader", "state": "ready",
                    "since": "2025-11-22T08:00:03+01:00", "last_success": 1763794803.0,
                    "last_error": None, "last_error_at": None, "retry_attempt": 0,
                    "next_retry_in": None, "setups": 1, "failures": 0, "losses": 0,
                    "device": {"url": "pcsc://Virtual PCD 00 00", "state": "open",
                               "card_present": True, "powered": True},
                },
                "prompt": "PROCESSING",
                "payment": {"id": "pay-7f3a", "state": "AUTH_REQUESTED", "amount": 1250,
                            "currency": "EUR", "masked_pan": MASKED_PAN,
                            "started_at": "2025-11-22T10:45:01+01:00"},
            },
            {
                "id": 2,
                "name": "Lane 2",
                "reader": "pcsc://Virtual%20PCD%2000%2001",
                "interface": "contactless",
                "device": {
                    "name": "lane[2].reader", "state": "not_ready",
                    # 2025-11-22T10:42:00+01:00 as the drivers give it (epoch seconds)
                    "since": 1763804520.0, "last_success": 1763794803.0,
                    "last_error": "reader lost: ReaderRemoved: reader removed",
                    "last_error_at": 1763804520.0, "retry_attempt": 3, "next_retry_in": 4,
                    "setups": 1, "failures": 3, "losses": 1, "device": None,
                },
                "prompt": "IDLE",
                "payment": None,
            },
        ],
        "journal": {"payments_today": 12, "approved_today": 10, "declined_today": 2,
                    "refunds_today": 1, "outbox_backlog": 0, "awaiting_recovery": 0},
        "acquirer": {"url": "https://acquirer.example/v1", "reachable": True,
                     "last_error": None, "last_success": "2025-11-22T10:44:58+01:00"},
        "mqtt": {"enabled": True, "connected": True, "backlog": 0, "last_error": None,
                 "last_publish": "2025-11-22T10:44:30+01:00"},
    }


def malformed_snapshot() -> dict[str, Any]:
    """Every field missing, of the wrong type or nonsensical."""
    return {
        "shop": None,
        "ready": "perhaps",
        "now": "not a time",
        "started_at": 12,
        "lanes": [None, 5, "lane", {"device": "unplugged?", "payment": {"amount": "abc",
                                                                         "currency": 7,
                                                                         "state": ["x"]}},
                  {"id": {"nested": True}, "name": 3.5, "prompt": None,
                   "device": {"state": 42, "since": "yesterday", "last_error": {"a": 1}},
                   "payment": "soon"}],
        "journal": [1, 2, 3],
        "acquirer": "down",
        "mqtt": {"enabled": "yes", "connected": None, "backlog": -1.5},
    }


class SnapshotBox:
    """A snapshot source whose answer a test can change (or make fail) while serving."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.error: Exception | None = None
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return copy.deepcopy(self.snapshot)


@asynccontextmanager
async def serve(source: Any, **options: Any) -> AsyncIterator[str]:
    """Serve the status routes on a real socket on 127.0.0.1; yields the base URL."""
    app = web.Application()
    add_status_routes(app, source, **options)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
