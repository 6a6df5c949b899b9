"""The simulated acquirer host over raw HTTP (docs/acquirer-api.md), and ``posgw-sim acquirer``.

The wire contract seen from outside, without the gateway's client: request validation naming
the field (and never echoing the PAN), idempotent replays, conflicts, concurrent requests with
one key charged once, 5xx answers not stored, the status query, the standalone command.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.cli_pay import _SyncChannel, fixed_environment, kernel_config
from simulator.pinpad import VirtualPinPad
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.environment import TransactionRequest

_BODY: dict[str, Any] = {}
_PAN: list[str] = []


async def _body() -> dict[str, Any]:
    """A valid authorisation body with a real ARQC (visa_credit through the kernel, once)."""
    if not _BODY:
        seen: list[OnlineRequest] = []

        async def capture(request: OnlineRequest) -> OnlineResponse | None:
            seen.append(request)
            return None

        await run_contact_transaction(
            _SyncChannel(VirtualCard.from_profile("visa_credit")), config=kernel_config(),
            request=TransactionRequest(amount=1250), env=fixed_environment(),
            online=capture, pinpad=VirtualPinPad("1234"),
        )
        request = seen[0]
        assert request.pan is not None
        _PAN.append(request.pan)
        _BODY.update(
            amount=request.amount, currency=request.currency, transaction_type="00",
            icc_data=request.icc_data.hex(), card={"pan": request.pan}, terminal_id="LANE0001",
            merchant_id="SHOP0001", stan=1, local_datetime="2026-11-25T12:00:00",
        )
    copied: dict[str, Any] = json.loads(json.dumps(_BODY))
    return copied


@pytest_asyncio.fixture(name="served")
async def served_fixture() -> AsyncIterator[tuple[AcquirerHost, aiohttp.ClientSession]]:
    """The host on a free port and a raw HTTP session to it."""
    host = AcquirerHost()
    url = await host.start()
    try:
        async with aiohttp.ClientSession(base_url=url) as session:
            yield host, session
    finally:
        await host.stop()


async def _post(
    session: aiohttp.ClientSession,
    body: Any,
    key: str | None = "k1",
    path: str = "/v1/authorisations",
) -> tuple[int, dict[str, Any], bool]:
    headers = {"Idempotency-Key": key} if key else {}
    async with session.post(path, json=body, headers=headers) as response:
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return response.status, await response.json(), replayed


async def test_authorise_replay_and_conflict(served: tuple[AcquirerHost, Any]) -> None:
    host, session = served
    body = await _body()
    status, first, replayed = await _post(session, body)
    assert (status, first["status"], first["response_code"]) == (201, "approved", "00")
    assert not replayed
    assert first["issuer_response"].startswith("8906")  # 89 authorisation code, then 8A, 91
    status, again, replayed = await _post(session, body)
    assert (status, replayed) == (200, True) and again == first
    status, conflict, _ = await _post(session, body | {"stan": 2})
    assert status == 409 and conflict == {
        "error": "idempotency_conflict", "field": "Idempotency-Key",
        "message": "key already used with another request",
    }
    assert len(host.charges) == 1 and host.issuer_calls == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 1251}, "amount"),  # differs from 9F02
        ({"currency": "EUR"}, "currency"),
        ({"card": {"pan": "4761-7390"}}, "card.pan"),
        ({"icc_data": "9F26"}, "icc_data"),
        ({"icc_data": "zz"}, "icc_data"),
        ({"terminal_id": ""}, "terminal_id"),
        ({"stan": 0}, "stan"),
        ({"pin": {"block": "00", "ksn": "FF", "format": 0}}, "pin.block"),
        ({"pin": {"block": "00" * 8, "ksn": "FF", "format": 3}}, "pin.format"),
    ],
)
async def test_bad_requests_name_the_field_and_hide_the_pan(
    served: tuple[AcquirerHost, Any], change: dict[str, Any], field: str
) -> None:
    host, session = served
    status, answer, _ = await _post(session, await _body() | change)
    assert status == 400 and answer["error"] == "invalid_request" and answer["field"] == field
    assert _PAN[0] not in json.dumps(answer)
    assert host.ledger == []


async def test_missing_key_or_not_an_object(served: tuple[AcquirerHost, Any]) -> None:
    _host, session = served
    status, answer, _ = await _post(session, await _body(), key=None)
    assert status == 400 and answer["field"] == "Idempotency-Key"
    status, answer, _ = await _post(session, [1, 2])
    assert status == 400 and answer["error"] == "invalid_request"


async def test_concurrent_requests_with_one_key_charge_once(
    served: tuple[AcquirerHost, Any],
) -> None:
    host, session = served
    host.faults.delay_s = 0.1
    body = await _body()
    answers = await asyncio.gather(*(_post(session, body, key="k-par") for _ in range(4)))
    assert len({answer["id"] for _, answer, _ in answers}) == 1
    assert sorted(replayed for _, _, replayed in answers) == [False, True, True, True]
    assert len(host.charges) == 1 and host.issuer_calls == 1


async def test_5xx_is_not_stored_and_status_query(served: tuple[AcquirerHost, Any]) -> None:
    host, session = served
    host.faults.server_errors = 1
    body = await _body()
    assert (await _post(session, body, key="k-5"))[0] == 503
    async with session.get("/v1/authorisations", params={"idempotency_key": "k-5"}) as response:
        assert response.status == 404 and (await response.json()) == {"error": "not_found"}
    status, answer, replayed = await _post(session, body, key="k-5")
    assert (status, replayed) == (201, False)
    async with session.get("/v1/authorisations", params={"idempotency_key": "k-5"}) as response:
        assert response.status == 200 and (await response.json())["id"] == answer["id"]


async def test_refund_and_reversal_rules(served: tuple[AcquirerHost, Any]) -> None:
    host, session = served
    _, auth, _ = await _post(session, await _body(), key="k-a")
    refund = {"authorisation_id": auth["id"], "amount": 1250, "currency": 978}
    assert (await _post(session, refund, key="k-rf", path="/v1/refunds"))[0] == 201
    more = refund | {"amount": 1}
    status, answer, _ = await _post(session, more, key="k-rf2", path="/v1/refunds")
    assert (status, answer["error"]) == (409, "refund_exceeds_amount")
    path = f"/v1/authorisations/{auth['id']}/reversal"
    status, reversed_, _ = await _post(session, {}, key="k-rv", path=path)
    assert status == 200 and reversed_["reversed"] and reversed_["refunded_amount"] == 1250
    status, _, _ = await _post(session, {}, key="k-rv2", path="/v1/authorisations/auth_9/reversal")
    assert status == 404
    assert [e.kind for e in host.ledger] == ["charge", "refund", "reversal"]


def test_cli_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli_acquirer", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]

        async def query() -> int:
            async with aiohttp.ClientSession() as session:
                get = session.get(f"{url}/v1/authorisations", params={"idempotency_key": "x"})
                async with get as response:
                    return response.status

        assert asyncio.run(query()) == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


async def test_status_waits_for_a_request_in_flight(served: tuple[AcquirerHost, Any]) -> None:
    host, session = served
    host.faults.issuer_delay_s = 0.2  # the issuer is slow: the request is in flight
    body = await _body()
    post = asyncio.create_task(_post(session, body, key="k-flight"))
    for _ in range(1000):  # until the request has reached the host (5 s at most)
        if "k-flight" in host._locks:
            break
        await asyncio.sleep(0.005)
    else:
        pytest.fail("the request never reached the host")
    async with session.get("/v1/authorisations", params={"idempotency_key": "k-flight"}) as got:
        assert got.status == 200  # not a 404: the query waited for the decision
        assert (await got.json())["status"] == "approved"
    assert (await post)[0] == 201
