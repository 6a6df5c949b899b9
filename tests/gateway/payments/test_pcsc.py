"""A lane on a real PC/SC reader: pcscd with vsmartcard's vpcd, a virtual ICC attached.

The daemon opens ``pcsc://<vpcd slot>`` through the drivers registry (pyscard → pcscd), waits
for the card the test attaches, and runs the payment to COMPLETED against the acquirer host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    make_config,
    running,
    slot_name,
)

__all__ = ["acquirer_fixture", "http_fixture"]

pytestmark = [pytest.mark.pcsc, pytest.mark.both_loops]  # the daemon's two event loops


async def test_pcsc_lane_end_to_end(
    tmp_path: Path,
    acquirer: AcquirerHost,
    http: aiohttp.ClientSession,
    attach_icc: Any,
    vpcd_readers: list[Any],
) -> None:
    assert acquirer.url is not None
    config = make_config(tmp_path, acquirer.url, [slot_name()])
    lane = config.lanes[0].model_copy(update={"reader": f"pcsc://{vpcd_readers[0].name}"})
    config = config.model_copy(update={"lanes": [lane]})
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        await attach_icc(VirtualCard.from_profile("visa_credit"))
        result = await till.get(str(body["id"]), wait=20)
        assert result["state"] == "COMPLETED", result
        assert result["interface"] == "contact"
        assert result["masked_pan"] == "476173******0010"
        snapshot = (await daemon.snapshot()).to_json()
        assert snapshot["lanes"][0]["device"]["state"] == "ready"
    assert len(acquirer.charges) == 1
