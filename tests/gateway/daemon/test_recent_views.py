"""A payment still waiting for its card keeps its view however many payments the other lanes
make meanwhile: its till can still cancel it and wait on it (gateway.daemon.Daemon.remember).

The daemon keeps :data:`~gateway.daemon.daemon.RECENT` views; here it is lowered to 3 so that
a few payments on lane 2 are "many" (a busy shop makes 256 in about a second)."""

from __future__ import annotations

import aiohttp
import pytest

import gateway.daemon.daemon as daemon_module
from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)

__all__ = ["acquirer_fixture", "http_fixture"]


async def test_a_slow_lanes_payment_outlives_the_busy_lanes_views(
    tmp_path: pytest.TempPathFactory,
    acquirer: AcquirerHost,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(daemon_module, "RECENT", 3)
    slow, busy = slot_name(), slot_name()
    assert acquirer.url is not None
    config = make_config(tmp_path, acquirer.url, [slow, busy])  # type: ignore[arg-type]
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, waiting = await till.pay(1, 1250)  # lane 1: the customer has not tapped yet
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(busy)  # left in lane 2's reader: its payments go back to back
        done = []
        for n in range(6):  # lane 2 makes twice RECENT payments meanwhile
            status, body = await till.pay(2, 1300 + n)  # above the floor limit: online
            assert status == 202
            done.append(await till.get(str(body["id"]), wait=10))
        assert [sale["state"] for sale in done] == ["COMPLETED"] * 6
        assert daemon.view(str(done[0]["id"])) is None  # the oldest finished one went
        # lane 1's payment is still known to the lane: its till cancels it
        assert await till.cancel(str(waiting["id"])) == 202
        result = await till.get(str(waiting["id"]), wait=5)
        assert result["state"] == "CANCELLED"
