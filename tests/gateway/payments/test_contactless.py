"""A contactless tap through the daemon: the lane tells the interface from the ATR, shows
REMOVE CARD before the online request (EMV Contactless Book A, 9.4), and the host decides."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
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

S = PaymentState


async def test_contactless_online_tap_prompts_remove_card_then_completes(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    assert acquirer.url is not None
    slot = slot_name()
    daemon = Daemon(make_config(tmp_path, acquirer.url, [slot]), env=fixed_env, environ={})
    async with running(daemon):
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        lane = daemon.lane(1)
        assert lane is not None
        insert_card(slot, "ctls_mc_cda_online", contactless=True)
        result = await till.get(str(body["id"]), wait=10)
        prompts = [prompt.value for _, prompt, pid in lane.prompt_history if pid == body["id"]]
        assert result["interface"] == "contactless"
        assert result["state"] == "COMPLETED", result
        assert result["masked_pan"] == "541333******1539"
        assert prompts == ["PRESENT CARD", "PROCESSING", "REMOVE CARD", "IDLE"]
    assert len(acquirer.charges) == 1
