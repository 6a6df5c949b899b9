"""One request per sale: ``POST /api/lanes/{id}/payments?wait=S`` answers the payment's end
(docs/daemon.md, "Till API"). A real daemon with a sim:// lane, the acquirer host on loopback,
the journal in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from drivers import sim as drivers_sim
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

pytestmark = pytest.mark.both_loops  # the daemon's two event loops

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState


@asynccontextmanager
async def _lane(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[Daemon, Till, str]]:
    """A running daemon with one sim:// lane: the daemon, its till, the lane's slot."""
    assert acquirer.url is not None
    slot = slot_name()
    config = make_config(tmp_path, acquirer.url, [slot])
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        yield daemon, Till(http, daemon.http_port), slot


async def _pay(till: Till, query: str, **body: Any) -> tuple[int, dict[str, Any]]:
    url = f"{till.base}/api/lanes/1/payments{query}"
    async with till.session.post(url, json={"amount": 1250, **body}) as response:
        return response.status, await response.json()


async def test_one_request_pays_and_answers_the_end(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    async with _lane(tmp_path, acquirer, http) as (daemon, till, slot):
        insert_card(slot)  # the card is in the slot before the till asks
        status, body = await _pay(till, "?wait=10", reference="W-1")
        assert status == 200, body
        assert body["state"] == "COMPLETED" and body["done"] is True
        assert body["outcome"] == "approved" and body["reference"] == "W-1"
        assert body["masked_pan"] == "476173******0010" and body["response_code"] == "00"
        assert body["href"] == f"/api/payments/{body['id']}" and "replayed" not in body
        # the same answer as the GET a two-request till makes after its POST
        again = await till.get(body["id"])
        assert {k: v for k, v in body.items() if k != "href"} == again
        events = [event.to_state for event in await daemon.journal.events(body["id"])]
        assert events == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED]
    assert len(acquirer.charges) == 1


async def test_a_wait_that_runs_out_answers_202_with_the_payment_running(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    async with _lane(tmp_path, acquirer, http) as (_daemon, till, _slot):
        status, body = await _pay(till, "?wait=0.2")  # no card comes
        assert status == 202, body
        assert body["state"] == "CREATED" and body["done"] is False and body["outcome"] is None
        assert (await _pay(till, ""))[0] == 409  # the lane still runs that payment
        assert await till.cancel(body["id"]) == 202
        assert (await till.get(body["id"], wait=5))["state"] == "CANCELLED"
    assert acquirer.charges == []


async def test_a_bad_wait_is_refused_before_any_payment_starts(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    async with _lane(tmp_path, acquirer, http) as (daemon, till, _slot):
        status, body = await _pay(till, "?wait=soon")
        assert status == 400 and body["field"] == "wait"
        assert (await daemon.snapshot()).to_json()["journal"]["payments_today"] == 0
        status, started = await _pay(till, "")  # the lane was left free
        assert status == 202 and started["state"] == "CREATED"
        assert await till.cancel(started["id"]) == 202


async def test_a_repeated_reference_with_wait_answers_the_ended_sale(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    # the till's first request was answered but the answer was lost: it sends it again
    async with _lane(tmp_path, acquirer, http) as (_daemon, till, slot):
        insert_card(slot)
        status, first = await _pay(till, "?wait=10", reference="W-2")
        assert status == 200 and first["state"] == "COMPLETED"
        drivers_sim.slot(slot).remove()
        status, again = await _pay(till, "?wait=10", reference="W-2")
        assert status == 200 and again["replayed"] is True and again["done"] is True
        assert again["id"] == first["id"] and again["state"] == "COMPLETED"
        assert again["auth_code"] == first["auth_code"]
    assert len(acquirer.charges) == 1


async def test_odd_waits_are_clamped_or_refused_never_a_500(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    # GET and POST read ``wait`` the same way (_wait_seconds); an unknown payment answers at
    # once, so a clamped wait shows as 404 and a refused one as 400
    async with _lane(tmp_path, acquirer, http) as (_daemon, till, _slot):
        odd = {"": 400, "soon": 400, "0x10": 400, "1,5": 400, "nan": 404, "inf": 404,
               "-1": 404, "1e309": 404, "9" * 5000: 404, "\u0661": 404, " 2 ": 404}  # fmt: skip
        for value, expected in odd.items():
            url = f"{till.base}/api/payments/pay_nothing"
            async with http.get(url, params={"wait": value}) as response:
                body = await response.json()
                assert response.status == expected, (value, body)
                if expected == 400:
                    assert body["field"] == "wait"
