"""Helpers of the shop-day daemon tests: pay with a virtual card, post to the day routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from drivers import sim as drivers_sim
from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import Till, fixed_env, insert_card, make_config, till_token

__all__ = ["day_daemon", "pay", "post", "till_session", "wait_until"]


def day_daemon(tmp_path: Path, url: str, slots: list[str], **kw: Any) -> Daemon:
    """A daemon on the simulated acquirer at ``url`` with the fixed kernel clock."""
    return Daemon(make_config(tmp_path, url, slots, **kw), env=fixed_env, environ={})


async def pay(
    daemon: Daemon,
    http: aiohttp.ClientSession,
    slot: str,
    amount: int,
    *,
    lane: int = 1,
    currency: str = "EUR",
) -> dict[str, Any]:
    """One card payment on ``lane`` (its sim slot ``slot``), to its end."""
    assert daemon.http_port is not None
    till = Till(http, daemon.http_port)
    status, body = await till.pay(lane, amount, currency=currency)
    assert status == 202, body
    await till.wait_prompt(lane, "PRESENT CARD", within=10)
    insert_card(slot)
    try:
        return await till.get(str(body["id"]), wait=15)
    finally:
        drivers_sim.slot(slot).remove()  # the cardholder takes the card back


async def post(
    daemon: Daemon, http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST to the daemon; (status, JSON)."""
    url = f"http://127.0.0.1:{daemon.http_port}{path}"
    async with http.post(url, json={} if body is None else body) as response:
        return response.status, await response.json()


async def wait_until(probe: Any, *, within: float = 15.0, step: float = 0.05) -> Any:
    """Poll ``await probe()`` until it returns something truthy (bounded); return it."""
    async with asyncio.timeout(within):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(step)


def host_url(host: AcquirerHost) -> str:
    """The started host's URL."""
    assert host.url is not None
    return host.url


def till_session(directory: Path) -> aiohttp.ClientSession:
    """An HTTP session sending the test till's token (``make_config(directory, ...)``)."""
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {till_token(directory)}"})
