"""The simulated acquirer's batch totals (``POST /v1/batches/close``, docs/acquirer-api.md).

A real aiohttp server; the ledger is filled by authorising, reversing and refunding through the
gateway's own client, then the batch is closed: totals per currency and kind, net sales, the
same answer for the same key (never a second batch), an empty next batch, and a bad merchant id
refused with the field named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from gateway.acquirer import AcquirerClient
from gateway.acquirer.batches import BatchLine, close_batch
from simulator.acquirer_host import AcquirerHost, LedgerEntry


@pytest_asyncio.fixture(name="host")
async def host_fixture() -> AsyncIterator[AcquirerHost]:
    host = AcquirerHost()
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def test_close_batch_totals_are_idempotent_and_per_batch(host: AcquirerHost) -> None:
    assert host.url is not None
    host.ledger.extend([
        LedgerEntry("charge", "a1", 1250, 978, "k1"),
        LedgerEntry("charge", "a2", 2000, 978, "k2"),
        LedgerEntry("reversal", "a2", 2000, 978, "rev-k2"),
        LedgerEntry("refund", "r1", 300, 978, "rf1"),
        LedgerEntry("decline", "a3", 900, 978, "k3"),
        LedgerEntry("charge", "a4", 5000, 756, "k4"),
    ])  # fmt: skip
    async with AcquirerClient(base_url=host.url, max_attempts=1) as client:
        first = await close_batch(client, merchant_id="SHOP0001", idempotency_key="day-1-0")
        again = await close_batch(client, merchant_id="SHOP0001", idempotency_key="day-1-0")
        host.ledger.append(LedgerEntry("charge", "a5", 700, 978, "k5"))
        second = await close_batch(client, merchant_id="SHOP0001", idempotency_key="day-2-1")
    assert (first.batch, first.entries) == (1, 6)
    lines = {(line.currency, line.kind): line for line in first.lines}
    assert lines[("EUR", "charge")] == BatchLine("EUR", "charge", 2, 3250)
    assert lines[("EUR", "sales_net")] == BatchLine("EUR", "sales_net", 1, 1250)
    assert lines[("EUR", "refund")] == BatchLine("EUR", "refund", 1, 300)
    assert lines[("EUR", "decline")] == BatchLine("EUR", "decline", 1, 900)
    assert lines[("CHF", "sales_net")] == BatchLine("CHF", "sales_net", 1, 5000)
    assert again == first  # a replay, not a second close
    assert (second.batch, second.entries) == (2, 1)
    assert len(host.batches.closed) == 2


async def test_close_batch_refuses_a_bad_merchant_id(host: AcquirerHost) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{host.url}/v1/batches/close",
        json={"merchant_id": ""},
        headers={"Idempotency-Key": "day-x"},
    ) as response:
        body = await response.json()
        assert response.status == 400
    assert (body["error"], body["field"]) == ("invalid_request", "merchant_id")
