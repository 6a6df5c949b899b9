"""A manager settles by hand the Concert V2 payment its terminal cannot tell about.

A virtual Concert V2 terminal on a pty charges 42.00, then the link is cut before its answer
(fault ``cut``). Concert V2 has no "last transaction" request, so the payment stays UNKNOWN,
flagged for the manager (docs/tpe.md). The manager reads the terminal's receipt and settles it
through ``POST /api/payments/{id}/settle``: a till may not, a payment the terminal settled may
not be, and the manager is the journaled actor. Real parts: the pty, the daemon's HTTP API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from gateway.journal import PaymentState
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost
from simulator.tpe.rules import TEST_PAN
from tests.gateway.daemon.test_tpe_lanes import lane_ready, pay, tpe_daemon
from tests.gateway.daemon_support import Till, acquirer_fixture, http_fixture, running
from tests.gateway.tpe_support import start_rig

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState


async def _settle(till: Till, payment_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with till.session.post(f"{till.base}/api/payments/{payment_id}/settle",
                                 json=body) as response:  # fmt: skip
        return response.status, await response.json()


async def test_the_manager_settles_a_concert_v2_payment_from_its_receipt(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    rig = await start_rig("pty-concert-v2", answer_timeout=0.8)
    try:
        rig.faults.cut = 1
        (tmp_path / "shop").mkdir()
        daemon = tpe_daemon(tmp_path / "shop", acquirer, rig.url, token_dir=tmp_path)
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            await lane_ready(till)
            cut = await pay(till, 4200)
            done = await pay(till, 1500)
            assert cut["state"] == "UNKNOWN"
            assert (await till.lanes())["lanes"][0]["for_manager"] == [cut["id"]]
            receipt = {"outcome": "approved", "auth_code": "A1B2C3",
                       "reason": "terminal receipt: 42,00 EUR accepted"}  # fmt: skip
            as_till = await _settle(till, cut["id"], receipt)
            daemon.authorise = allow_as("manager:claire")
            no_reason = await _settle(till, cut["id"], {"outcome": "approved"})
            code_on_decline = await _settle(till, cut["id"], {**receipt, "outcome": "declined"})
            pan_reason = await _settle(till, cut["id"], {**receipt, "reason": f"card {TEST_PAN}"})
            not_flagged = await _settle(till, done["id"], receipt)
            unknown = await _settle(till, "pay_nope", receipt)
            settled = await _settle(till, cut["id"], receipt)
            again = await _settle(till, cut["id"], receipt)
            after = await daemon.journal.get(cut["id"])
            events = await daemon.journal.events(cut["id"])
            lanes = (await till.lanes())["lanes"]
            batch = await daemon.journal.claim_batch(10)
    finally:
        await rig.tpe.stop()
    assert (as_till[0], as_till[1]["error"]) == (403, "manager_login_required")
    assert (no_reason[0], no_reason[1]["field"]) == (400, "reason")
    assert (code_on_decline[0], code_on_decline[1]["field"]) == (400, "auth_code")
    assert (pan_reason[0], pan_reason[1]["field"]) == (400, "reason")  # not a 503
    assert TEST_PAN not in str(pan_reason[1])
    assert (not_flagged[0], not_flagged[1]["error"]) == (409, "not_for_manager")
    assert unknown[0] == 404
    assert settled == (200, {"id": cut["id"], "state": "COMPLETED", "by": "manager:claire"})
    assert (again[0], again[1]["error"]) == (409, "not_for_manager")
    assert (after.state, after.auth_code) == (S.COMPLETED, "A1B2C3")
    assert [(e.to_state, e.actor) for e in events[-2:]] == [
        (S.APPROVED, "manager:claire"), (S.COMPLETED, "manager:claire")]
    assert "terminal receipt" in events[-1].reason
    assert lanes[0]["for_manager"] == []
    assert cut["id"] in [item.payment_id for item in batch]  # head office hears of the sale
    assert [c.amount for c in rig.brain.charges] == [4200, 1500]  # the journal agrees now
