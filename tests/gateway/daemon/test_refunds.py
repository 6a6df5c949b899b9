"""End to end: refunds through the running daemon (sim:// lane, real acquirer host, real journal).

A card payment on a lane, then ``POST /api/payments/{id}/refunds`` on the daemon's till API;
the host down (202, then re-sent by the ``acquirer.refunds`` task); and restart recovery of a
refund the host made just before a crash: completed before ready, never reversed, never
refunded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.acquirer import AcquirerClient
from gateway.daemon.daemon import Daemon
from gateway.journal import Journal, PaymentState
from gateway.recovery.refunds import refund_key
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
    wait_state,
)
from tests.gateway.journal_support import AID, MASKED
from tests.gateway.refund_support import host_refunds

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
PAN = "4761739001010010"


@pytest.fixture(autouse=True)
def _no_pan_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert PAN not in caplog.text


def _daemon(tmp_path: Path, acquirer: AcquirerHost, slot: str) -> Daemon:
    assert acquirer.url is not None
    return Daemon(make_config(tmp_path, acquirer.url, [slot]), env=fixed_env, environ={})


async def _refund(till: Till, payment_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    url = f"{till.base}/api/payments/{payment_id}/refunds"
    async with till.session.post(url, json=body) as response:
        text = await response.text()
        assert PAN not in text
        return response.status, await response.json()


async def _paid(till: Till, slot: str) -> str:
    status, body = await till.pay(1, 1250, currency="EUR", reference="S-1")
    assert status == 202
    await till.wait_prompt(1, "PRESENT CARD")
    insert_card(slot)
    result = await till.get(body["id"], wait=10)
    assert result["state"] == "COMPLETED", result
    return str(body["id"])


async def test_refund_through_the_daemon_and_host_down(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, slot)) as daemon:
        assert daemon.http_port is not None and acquirer.url is not None
        till = Till(http, daemon.http_port)
        sale_id = await _paid(till, slot)
        status, body = await _refund(till, sale_id, {"amount": 500, "reference": "R-1"})
        assert status == 201 and body["state"] == "COMPLETED" and body["refund_of"] == sale_id
        assert body["masked_pan"] == MASKED
        assert (await _refund(till, sale_id, {"amount": 500, "reference": "R-1"}))[0] == 201
        journal = (await daemon.snapshot()).to_json()["journal"]  # sales and refunds today
        assert (journal["payments_today"], journal["approved_today"]) == (1, 1)
        assert journal["refunds_today"] == 1
        assert (await till.get(body["id"]))["state"] == "COMPLETED"
        port = int(acquirer.url.rsplit(":", 1)[1])
        await acquirer.stop()
        status, down = await _refund(till, sale_id, {"amount": 700, "reference": "R-2"})
        assert status == 202 and down["state"] == "UNKNOWN"
        await acquirer.start(port=port)
        await wait_state(daemon.journal, down["id"], S.COMPLETED)
        status, over = await _refund(till, sale_id, {"amount": 51, "reference": "R-3"})
        assert status == 409 and over["error"] == "not_refundable"
    assert [entry.amount for entry in host_refunds(acquirer)] == [500, 700]


async def test_restart_completes_a_refund_the_host_made_before_the_crash(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, slot)) as daemon:
        assert daemon.http_port is not None
        sale_id = await _paid(Till(http, daemon.http_port), slot)
    assert acquirer.url is not None
    async with (
        Journal.open(tmp_path / "journal.db") as journal,
        AcquirerClient(base_url=acquirer.url) as client,
    ):
        sale = await journal.get(sale_id)
        refund = await journal.create_refund(sale_id, lane="1", amount=300, actor="test")
        await journal.card_read(refund.id, masked_pan=MASKED, aid=AID, actor="test")
        await journal.request_auth(refund.id, actor="test")
        found = await client.status(sale.idempotency_key or "")
        await client.refund(
            found.id, amount=300, currency=978, idempotency_key=refund_key(refund.id)
        )
    async with running(_daemon(tmp_path, acquirer, slot)) as daemon:
        assert (await daemon.journal.get(refund.id)).state is S.COMPLETED  # before ready
        assert (await daemon.journal.get(sale_id)).state is S.COMPLETED
    assert [entry.amount for entry in host_refunds(acquirer)] == [300]
    assert [entry.kind for entry in acquirer.ledger].count("reversal") == 0
