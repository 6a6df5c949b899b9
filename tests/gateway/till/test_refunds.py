"""``POST /api/payments/{id}/refunds`` over real HTTP, with the real acquirer host behind it.

The till API (gateway/till_api.py) and the refund route (gateway/till_refunds.py) are mounted on
one aiohttp server on 127.0.0.1, as the daemon mounts them, over a real journal file: 201 with
the refund when the host answered, 202 while pending, GET of a refund through
``/api/payments/{id}``, 409 beyond the sale, the same reference once at the host, 400 naming
the field, 404, and no card data in any answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from gateway.acquirer import AcquirerClient
from gateway.journal import Journal
from gateway.journal.guard import find_card_data
from gateway.payments import Lane, LaneView
from gateway.recovery.refunds import RefundService
from gateway.security.guard import TILL
from gateway.security.store import TillCredential
from gateway.till.payments import add_till_routes
from gateway.till.refunds import add_refund_routes
from simulator.acquirer_host import AcquirerHost
from tests.gateway.acquirer_support import host_fixture  # noqa: F401 - fixture "host"
from tests.gateway.journal_support import MASKED
from tests.gateway.refund_support import (
    SALE_AMOUNT,
    host_refunds,
    journal_fixture,  # noqa: F401 - fixture "journal"
    refund_client_fixture,  # noqa: F401 - fixture "client"
    sale_pan,
    settled_sale,
)


@dataclass
class Backend:
    """The daemon's side, as the till API and the refund route read it (no lanes here)."""

    journal: Journal
    refunds: RefundService | None
    default_currency: str = "EUR"
    views: dict[str, LaneView] = field(default_factory=dict)

    def lane(self, lane_id: int) -> Lane | None:
        return None

    def all_lanes(self) -> list[Lane]:
        return []

    def view(self, payment_id: str) -> LaneView | None:
        return self.views.get(payment_id)

    def remember(self, view: LaneView) -> None:
        self.views[view.id] = view


class Till:
    """The till: every answer's text is kept, to scan for card data."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.texts: list[str] = []

    async def refund(self, payment_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, str) else json.dumps(body)
        async with self.session.post(
            f"{self.base}/api/payments/{payment_id}/refunds",
            data=data,
            headers={"Content-Type": "application/json"},
        ) as response:
            text = await response.text()
            self.texts.append(text)
            return response.status, json.loads(text)

    async def get(self, payment_id: str) -> tuple[int, dict[str, Any]]:
        async with self.session.get(f"{self.base}/api/payments/{payment_id}") as response:
            text = await response.text()
            self.texts.append(text)
            return response.status, json.loads(text)


@pytest.fixture(name="backend")
def backend_fixture(journal: Journal, client: AcquirerClient) -> Backend:
    return Backend(journal, RefundService(journal=journal, client=client))


#: The till these route tests act as (the daemon's bearer-token middleware is tested in
#: tests/gateway/security; here a middleware stands in for it, since these routes are mounted
#: on a bare application).
ROUTE_TILL = TillCredential(
    name="route-test",
    lanes=None,
    refunds=True,
    refund_limit=None,
    has_certificate=False,
    created_ms=0,
    revoked_ms=None,
)


@web.middleware
async def _as_till(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request[TILL] = ROUTE_TILL
    return await handler(request)


@pytest_asyncio.fixture(name="till")
async def till_fixture(backend: Backend) -> AsyncIterator[Till]:
    app = web.Application(middlewares=[_as_till])
    add_till_routes(app, backend)
    add_refund_routes(app, backend)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            till = Till(session, f"http://127.0.0.1:{port}")
            yield till
        pan = await sale_pan()
        for text in till.texts:  # every test: no answer ever holds card data
            assert pan not in text and find_card_data(text) is None, text
    finally:
        await runner.cleanup()


async def test_full_refund_is_201_and_readable_by_get(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, till: Till
) -> None:
    sale = await settled_sale(journal, client)
    status, body = await till.refund(sale.id, {"amount": SALE_AMOUNT, "reference": "R-1"})
    assert status == 201, body
    assert body["state"] == "COMPLETED" and body["refund_of"] == sale.id
    assert (body["amount"], body["currency"], body["kind"]) == (SALE_AMOUNT, "EUR", "refund")
    assert body["masked_pan"] == MASKED and body["pending"] is False
    status, got = await till.get(body["id"])
    assert status == 200 and got["state"] == "COMPLETED" and got["amount"] == SALE_AMOUNT
    assert (got["kind"], got["refund_of"], got["reference"]) == ("refund", sale.id, "R-1")
    assert len(host_refunds(host)) == 1


async def test_partial_refunds_then_409(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, till: Till
) -> None:
    sale = await settled_sale(journal, client)
    assert (await till.refund(sale.id, {"amount": 1000, "reference": "R-1"}))[0] == 201
    assert (await till.refund(sale.id, {"amount": 250, "reference": "R-2"}))[0] == 201
    status, body = await till.refund(sale.id, {"amount": 1, "reference": "R-3"})
    assert status == 409 and body["error"] == "not_refundable"
    assert [entry.amount for entry in host_refunds(host)] == [1000, 250]


async def test_same_reference_twice_one_refund_at_the_host(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, till: Till
) -> None:
    sale = await settled_sale(journal, client)
    status, first = await till.refund(sale.id, {"amount": 500, "reference": "R-9"})
    again_status, again = await till.refund(sale.id, {"amount": 500, "reference": "R-9"})
    assert (status, again_status) == (201, 201)
    assert again["id"] == first["id"] and again["replayed"] is True
    status, body = await till.refund(sale.id, {"amount": 400, "reference": "R-9"})
    assert status == 409 and body["error"] == "reference_conflict"
    assert len(host_refunds(host)) == 1


async def test_host_down_is_202_then_completed(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, till: Till, backend: Backend
) -> None:
    sale = await settled_sale(journal, client)
    assert host.url is not None and backend.refunds is not None
    port = int(host.url.rsplit(":", 1)[1])
    await host.stop()
    status, body = await till.refund(sale.id, {"amount": 700, "reference": "R-1"})
    assert status == 202 and body["state"] == "UNKNOWN" and body["pending"] is True
    await host.start(port=port)
    assert await backend.refunds.resolve_pending_refunds() == 0
    status, got = await till.get(body["id"])
    assert got["state"] == "COMPLETED"
    assert len(host_refunds(host)) == 1


async def test_declined_refund_is_201_declined(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, till: Till
) -> None:
    sale = await settled_sale(journal, client)
    await client.reverse(original_idempotency_key=sale.idempotency_key, idempotency_key="rev-t")
    status, body = await till.refund(sale.id, {"amount": 100, "reference": "R-1"})
    assert status == 201 and body["state"] == "DECLINED"
    assert host_refunds(host) == []


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"reference": "R-1"}, "amount"),
        ({"amount": 0, "reference": "R-1"}, "amount"),
        ({"amount": -5, "reference": "R-1"}, "amount"),
        ({"amount": True, "reference": "R-1"}, "amount"),
        ({"amount": "500", "reference": "R-1"}, "amount"),
        ({"amount": 10**12, "reference": "R-1"}, "amount"),
        ({"amount": 500}, "reference"),
        ({"amount": 500, "reference": ""}, "reference"),
        ({"amount": 500, "reference": "x" * 65}, "reference"),
        ({"amount": 500, "reference": "R\n1"}, "reference"),
        ({"amount": 500, "reference": "4761739001010010"}, "reference"),
        ({"amount": 500, "reference": "R-1", "currency": "eur"}, "currency"),
        ({"amount": 500, "reference": "R-1", "currency": "GBP"}, "currency"),
        ({"amount": 500, "reference": "R-1", "tip": 1}, "tip"),
        ([500], "body"),
        ("{not json", "body"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    host: AcquirerHost,
    journal: Journal,
    client: AcquirerClient,
    till: Till,
    body: Any,
    field_name: str,
) -> None:
    sale = await settled_sale(journal, client)
    status, answer = await till.refund(sale.id, body)
    assert status == 400, answer
    assert answer["error"] == "invalid_request" and answer["field"] == field_name
    assert host_refunds(host) == []


async def test_unknown_sale_is_404_and_unsettled_is_409(
    host: AcquirerHost, journal: Journal, till: Till
) -> None:
    status, body = await till.refund("pay_nosuchsale", {"amount": 1, "reference": "R-1"})
    assert status == 404 and body["error"] == "not_found"
    sale = await journal.create_sale(lane="1", amount=100, currency="EUR", actor="test")
    status, body = await till.refund(sale.id, {"amount": 1, "reference": "R-1"})
    assert status == 409 and body["error"] == "not_refundable"
    assert host.ledger == []


async def test_503_until_the_service_is_started(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, till: Till, backend: Backend
) -> None:
    sale = await settled_sale(journal, client)
    backend.refunds = None
    status, body = await till.refund(sale.id, {"amount": 1, "reference": "R-1"})
    assert status == 503 and body["error"] == "unavailable"
