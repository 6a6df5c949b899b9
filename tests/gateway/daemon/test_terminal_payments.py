"""End to end: the daemon with a smart-terminal lane (a Concert V2 virtual TPE on a pty).

The same payment session as a card reader's lane: the till posts a payment over HTTP, the lane
opens ``serial://...?protocol=concert-v2``, sees a :class:`drivers.SmartTerminal` and picks the
terminal adapter; the virtual terminal decides by the amount (simulator/tpe/rules.py: cents 13
declines). The journal must hold the same states as for a reader, AUTH_REQUESTED before the
terminal is asked, and the acquirer is never called (the terminal has its own host).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost
from simulator.tpe import Faults
from simulator.tpe.rules import TEST_PAN
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    make_config,
    running,
)

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
FAST = "ack_timeout=0.3&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=5"
MASKED = "497010******0014"


@pytest.fixture(autouse=True)
def _no_pan_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The virtual Concert V2 terminal sends the PAN in clear: it must reach no log line."""
    caplog.set_level(logging.DEBUG)
    yield
    assert TEST_PAN not in caplog.text


async def _terminal_daemon(tmp_path: Path, acquirer: AcquirerHost, tpe_factory: Any) -> Daemon:
    tpe = await tpe_factory(protocol="concert-v2")
    assert acquirer.url is not None
    lane = {"id": 1, "reader": f"serial://{tpe.path}?protocol=concert-v2&{FAST}"}
    config = make_config(tmp_path, acquirer.url, [], lanes=[lane])
    return Daemon(config, env=fixed_env, environ={})


async def _pay(daemon: Daemon, http: aiohttp.ClientSession, amount: int) -> dict[str, Any]:
    assert daemon.http_port is not None
    till = Till(http, daemon.http_port)
    status, body = await till.pay(1, amount, currency="EUR")
    assert status == 202 and body["state"] == "CREATED"
    result = await till.get(body["id"], wait=15)
    assert result["done"] is True, result
    return result


@pytest.mark.serial
async def test_terminal_approves_and_the_journal_completes_the_sale(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, tpe_factory: Any
) -> None:
    daemon = await _terminal_daemon(tmp_path, acquirer, tpe_factory)
    async with running(daemon):
        result = await _pay(daemon, http, 1250)
        assert result["state"] == "COMPLETED" and result["outcome"] == "approved", result
        assert result["interface"] == "terminal"
        assert result["masked_pan"] == MASKED
        assert result["auth_code"]
        events = await daemon.journal.events(result["id"])
        assert [event.to_state for event in events] == [
            S.CREATED,
            S.CARD_READ,
            S.AUTH_REQUESTED,
            S.APPROVED,
            S.COMPLETED,
        ]
        batch = await daemon.journal.claim_batch(10)
        assert [item.payment_id for item in batch] == [result["id"]]
        assert batch[0].body["amount"] == 1250
    assert acquirer.ledger == []  # the terminal's host moved the money, not ours


@pytest.mark.serial
async def test_terminal_declines_and_the_journal_declines(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, tpe_factory: Any
) -> None:
    daemon = await _terminal_daemon(tmp_path, acquirer, tpe_factory)
    async with running(daemon):
        result = await _pay(daemon, http, 1013)  # cents 13: the virtual issuer declines
        assert result["state"] == "DECLINED" and result["outcome"] == "declined", result
        assert result["reason"].startswith("declined by the terminal")
        events = await daemon.journal.events(result["id"])
        assert [event.to_state for event in events] == [
            S.CREATED,
            S.CARD_READ,
            S.AUTH_REQUESTED,
            S.DECLINED,
        ]
        assert await daemon.journal.claim_batch(10) == []
        lanes = await Till(http, daemon.http_port or 0).lanes()
        assert lanes["lanes"][0]["prompt"] == "IDLE"
    assert acquirer.ledger == []


@pytest.mark.serial
async def test_a_terminal_that_hangs_up_leaves_the_payment_in_doubt_for_its_own_recovery(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, tpe_factory: Any
) -> None:
    tpe = await tpe_factory(protocol="concert-v2", faults=Faults(disconnect=True))
    assert acquirer.url is not None
    lane = {"id": 1, "reader": f"serial://{tpe.path}?protocol=concert-v2&{FAST}"}
    config = make_config(tmp_path, acquirer.url, [], lanes=[lane])
    daemon = Daemon(config, env=fixed_env, environ={})
    async with running(daemon):
        result = await _pay(daemon, http, 1250)
        assert result["state"] == "UNKNOWN" and result["outcome"] == "unknown", result
        events = await daemon.journal.events(result["id"])
        assert [event.to_state for event in events] == [
            S.CREATED,
            S.CARD_READ,
            S.AUTH_REQUESTED,
            S.UNKNOWN,
        ]
        snapshot = (await daemon.snapshot()).to_json()
        assert snapshot["journal"]["awaiting_recovery"] == 0  # not the acquirer's to resolve
        assert (await daemon.journal.get(result["id"])).state is S.UNKNOWN
    restarted = Daemon(config, env=fixed_env, environ={})
    async with running(restarted):  # restart recovery leaves it to the terminal, too
        assert restarted.recovered_pending == 0
        assert (await restarted.journal.get(result["id"])).state is S.UNKNOWN
    assert acquirer.ledger == []


@pytest.mark.serial
async def test_a_sale_on_a_terminal_lane_is_voided_at_its_terminal_not_our_acquirer(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, tpe_factory: Any
) -> None:
    # Our acquirer never saw it: a reversal there would find nothing and call it voided while
    # the terminal's host keeps the money. The terminal cancels it (Concert V2 type 2).
    daemon = await _terminal_daemon(tmp_path, acquirer, tpe_factory)
    daemon.authorise = allow_as("manager:test")
    async with running(daemon):
        result = await _pay(daemon, http, 1250)
        assert result["state"] == "COMPLETED", result
        kept = await _pay(daemon, http, 1250)  # the same amount: only the one named goes
        base = f"http://127.0.0.1:{daemon.http_port}"
        url = f"{base}/api/payments/{result['id']}/void"
        async with http.post(url, json={}) as response:
            body = await response.json()
            assert (response.status, body["state"]) == (200, "VOIDED"), body
        assert (await daemon.journal.get(str(result["id"]))).state is S.VOIDED
        assert (await daemon.journal.get(str(kept["id"]))).state is S.COMPLETED
        # the day close leaves the terminal's sales out of our acquirer's reconciliation
        async with http.post(f"{base}/api/days/close", json={}) as response:
            day = await response.json()
            assert response.status == 201, day
        assert day["differences"] == 0 and day["record"]["journal_lines"] == []
        # Concert V2 has no end-of-day request: the lane is said unreconciled, the close is not
        [lane] = day["record"]["terminals"]
        assert (lane["reconciled"], lane["error"]) == (False, "terminal totals unavailable")
        assert "no end-of-day" in lane["reason"]
        assert lane["journal_lines"] == [
            {"currency": "EUR", "kind": "sales_net", "count": 1, "amount": 1250}
        ]
    assert acquirer.ledger == []
