"""The daemon runs the kernel without its masked APDU trace (``trace=False``,
:mod:`terminal.trace`): nothing in the daemon reads it, and masking each exchange cost 0.2-0.45
ms of CPU a payment. A contact and a contactless payment end as before, the kernel's exchanges
counted and none recorded."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from terminal.trace import NoTrace, Tracer
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


@pytest.mark.parametrize(("profile", "contactless"),
                         [("visa_credit", False), ("ctls_mc_cda_online", True)])  # fmt: skip
async def test_a_payment_records_no_apdu_trace(
    tmp_path: Path,
    acquirer: AcquirerHost,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    contactless: bool,
) -> None:
    assert acquirer.url is not None
    recorded, counted = [0], [0]
    record, count = Tracer.hook, NoTrace.hook

    def recording(self: Tracer, capdu: bytes, rapdu: bytes, seconds: float) -> None:
        recorded[0] += 1
        record(self, capdu, rapdu, seconds)

    def counting(self: NoTrace, capdu: bytes, rapdu: bytes, seconds: float) -> None:
        counted[0] += 1
        count(self, capdu, rapdu, seconds)

    monkeypatch.setattr(Tracer, "hook", recording)
    monkeypatch.setattr(NoTrace, "hook", counting)
    slot = slot_name()
    daemon = Daemon(make_config(tmp_path, acquirer.url, [slot]), env=fixed_env, environ={})
    async with running(daemon):
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot, profile, contactless=contactless)
        result = await till.get(str(body["id"]), wait=10)
        assert result["state"] == "COMPLETED", result
    assert recorded[0] == 0
    assert counted[0] >= 8  # SELECT, GPO, records, GENERATE AC...: the kernel did run
    assert len(acquirer.charges) == 1
