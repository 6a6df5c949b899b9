"""The acquirer client against the simulated acquirer host over real HTTP on 127.0.0.1.

docs/acquirer-api.md: approve, decline, idempotent replay (charged once), 409 on key reuse,
retries only in the safe cases (refused, 5xx) with the same key, the answer lost after
processing resolved by status query, time-outs, host down, reversal and refund.
"""

from __future__ import annotations

import itertools

import pytest
from aiohttp import web

from gateway.acquirer import (
    AcquirerClient,
    AcquirerProtocolError,
    AcquirerRejected,
    AcquirerServerError,
    AcquirerTimeout,
    AcquirerUnreachable,
    AcquirerUsageError,
    AnswerLost,
    IdempotencyConflict,
    NotFound,
    Outcome,
)
from simulator.acquirer_host import AcquirerHost
from terminal.tlv import decode, encode, flatten
from tests.gateway.acquirer_support import (
    client_fixture,  # noqa: F401 - fixture "client"
    client_sleeps_fixture,  # noqa: F401 - fixture "client_sleeps"
    free_port,
    host_fixture,  # noqa: F401 - fixture "host"
    make_client,
    wire_request,
)


async def test_approve_with_arpc(host: AcquirerHost, client: AcquirerClient) -> None:
    answer = await client.authorise(await wire_request(), idempotency_key="k-approve")
    assert answer.approved and answer.response_code == "00"
    assert answer.authorisation_code is not None and len(answer.authorisation_code) == 6
    assert answer.id.startswith("auth_") and not answer.replayed
    kernel = answer.to_online_response()
    assert kernel.authorisation_response_code == b"00"
    assert kernel.issuer_authentication_data is not None
    # CVN 10, method 1 (EMV 4.4 Book 2, 8.2.1): ARPC (8) | ARC (2)
    assert len(kernel.issuer_authentication_data) == 10
    assert kernel.issuer_authentication_data.endswith(b"00")
    assert [entry.kind for entry in host.ledger] == ["charge"]


async def test_decline_all_still_answers_a_valid_arpc(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    host.faults.decline_all = True
    answer = await client.authorise(await wire_request(), idempotency_key="k-decline")
    assert not answer.approved and answer.response_code == "05"
    assert answer.authorisation_code is None
    assert answer.to_online_response().issuer_authentication_data is not None
    assert host.charges == [] and [e.kind for e in host.ledger] == ["decline"]


async def test_a_forged_arqc_is_declined(host: AcquirerHost, client: AcquirerClient) -> None:
    request = await wire_request()
    values = flatten(decode(request.icc_data))
    values[0x9F26] = bytes(8)
    forged = b"".join(encode(tag, value) for tag, value in values.items())
    answer = await client.authorise(await wire_request(icc_data=forged), idempotency_key="k-forged")
    assert not answer.approved and answer.response_code == "05"
    assert host.charges == []


async def test_same_key_replays_the_answer_and_charges_once(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    request = await wire_request()
    first = await client.authorise(request, idempotency_key="k-same")
    again = await client.authorise(request, idempotency_key="k-same")
    assert again.replayed and not first.replayed
    assert (again.id, again.issuer_response, again.authorisation_code) == (
        first.id, first.issuer_response, first.authorisation_code,
    )
    assert len(host.charges) == 1 and host.issuer_calls == 1


async def test_same_key_with_another_body_is_a_conflict(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    await client.authorise(await wire_request(stan=1), idempotency_key="k-reused")
    with pytest.raises(IdempotencyConflict) as caught:
        await client.authorise(await wire_request(stan=2), idempotency_key="k-reused")
    assert caught.value.status == 409 and caught.value.idempotency_key == "k-reused"
    assert len(host.charges) == 1


async def test_answer_lost_after_processing_is_found_by_status(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    host.faults.drop_after_processing = 1
    with pytest.raises(AnswerLost) as caught:
        await client.authorise(await wire_request(), idempotency_key="k-lost")
    assert not isinstance(caught.value, AcquirerTimeout)
    assert caught.value.attempts == 1  # a POST whose answer was lost is not blindly resent
    resolution = await client.resolve_unknown("k-lost")
    assert resolution.outcome is Outcome.APPROVED
    assert resolution.authorisation is not None
    assert resolution.authorisation.id == host.charges[0].id
    # The sale was abandoned: the caller reverses what the host found.
    reversed_ = await client.reverse(resolution.authorisation, idempotency_key="k-lost-rev")
    assert reversed_.reversed
    assert [entry.kind for entry in host.ledger] == ["charge", "reversal"]


async def test_resolve_unknown_never_guesses(host: AcquirerHost, client: AcquirerClient) -> None:
    resolution = await client.resolve_unknown("k-never-sent")
    assert resolution.outcome is Outcome.NOT_FOUND and resolution.authorisation is None
    with pytest.raises(NotFound):
        await client.status("k-never-sent")
    assert host.ledger == []


async def test_5xx_is_retried_with_the_same_key(
    host: AcquirerHost, client: AcquirerClient, client_sleeps: list[float]
) -> None:
    host.faults.server_errors = 2
    answer = await client.authorise(await wire_request(), idempotency_key="k-5xx")
    assert answer.approved
    assert client_sleeps == [pytest.approx(0.075), pytest.approx(0.15)]  # d/2 + 0.5 * d/2
    assert len(host.charges) == 1


async def test_5xx_on_every_attempt_is_a_typed_error_then_the_key_still_works(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    host.faults.server_errors = 3
    with pytest.raises(AcquirerServerError) as caught:
        await client.authorise(await wire_request(), idempotency_key="k-5xx-all")
    assert caught.value.status == 503 and caught.value.attempts == 3
    assert host.ledger == []
    assert (await client.authorise(await wire_request(), idempotency_key="k-5xx-all")).approved


async def test_host_down_is_unreachable_after_bounded_retries() -> None:
    sleeps: list[float] = []
    jitter = itertools.cycle([0.0, 0.999])
    async with make_client(
        f"http://127.0.0.1:{free_port()}", sleeps, random=lambda: next(jitter)
    ) as down:
        with pytest.raises(AcquirerUnreachable) as caught:
            await down.authorise(await wire_request(), idempotency_key="k-down")
        assert caught.value.attempts == 3 and caught.value.idempotency_key == "k-down"
        assert isinstance(caught.value.__cause__, OSError)
        resolve_error = None
        try:
            await down.resolve_unknown("k-down")
        except AcquirerUnreachable as exc:
            resolve_error = exc
        assert resolve_error is not None  # unknown stays unknown: no NOT_FOUND guessed
    assert sleeps[:2] == [pytest.approx(0.05), pytest.approx(0.2 * 0.9995)]


async def test_refused_then_host_up_during_backoff() -> None:
    port = free_port()
    server = AcquirerHost()
    sleeps: list[float] = []
    up = make_client(f"http://127.0.0.1:{port}", sleeps)

    async def start_host(delay: float) -> None:
        sleeps.append(delay)
        if server.url is None:
            await server.start(port=port)

    up._sleep = start_host  # the host comes back while the client waits to retry
    try:
        async with up:
            answer = await up.authorise(await wire_request(), idempotency_key="k-back")
        assert answer.approved and len(sleeps) == 1 and len(server.charges) == 1
    finally:
        await server.stop()


async def test_total_timeout_is_an_unknown_outcome_then_resolved(host: AcquirerHost) -> None:
    host.faults.delay_s = 0.6
    async with make_client(host.url or "", [], total_timeout=0.2) as slow:
        with pytest.raises(AcquirerTimeout) as caught:
            await slow.authorise(await wire_request(), idempotency_key="k-slow")
        assert isinstance(caught.value, AnswerLost) and caught.value.attempts == 1
        resolution = await slow.resolve_unknown("k-slow")
    assert resolution.outcome is Outcome.APPROVED and len(host.charges) == 1


async def test_reversal_and_refund(host: AcquirerHost, client: AcquirerClient) -> None:
    auth = await client.authorise(await wire_request(), idempotency_key="k-sale")
    refund = await client.refund(auth, amount=500, currency=978, idempotency_key="k-r1")
    again = await client.refund(auth, amount=500, currency=978, idempotency_key="k-r1")
    assert again.replayed and again.id == refund.id and refund.amount == 500
    with pytest.raises(AcquirerRejected) as too_much:
        await client.refund(auth.id, amount=800, currency=978, idempotency_key="k-r2")
    assert too_much.value.code == "refund_exceeds_amount" and too_much.value.status == 409
    assert (await client.status("k-sale")).refunded_amount == 500
    reversal = await client.reverse(auth.id, idempotency_key="k-rev", reason="abandoned")
    assert reversal.reversed and reversal.id == auth.id
    replay = await client.reverse(auth.id, idempotency_key="k-rev", reason="abandoned")
    assert replay.replayed and replay.reversed
    assert (await client.status("k-sale")).reversed
    assert [e.kind for e in host.ledger] == ["charge", "refund", "reversal"]


async def test_reverse_by_original_key_and_declined_not_reversible(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    auth = await client.authorise(await wire_request(), idempotency_key="k-orig")
    done = await client.reverse(original_idempotency_key="k-orig", idempotency_key="k-orig-rev")
    assert done.id == auth.id and done.reversed
    with pytest.raises(NotFound):
        await client.reverse(original_idempotency_key="k-none", idempotency_key="k-none-rev")
    host.faults.decline_all = True
    declined = await client.authorise(await wire_request(stan=7), idempotency_key="k-dec")
    with pytest.raises(AcquirerRejected) as caught:
        await client.reverse(declined, idempotency_key="k-dec-rev")
    assert caught.value.code == "not_reversible"
    with pytest.raises(AcquirerUsageError):
        await client.reverse(idempotency_key="k-nothing")


async def test_unreadable_answer_is_a_protocol_error() -> None:
    async def garbage(_request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy error</html>", status=200)

    app = web.Application()
    app.router.add_route("*", "/v1/authorisations", garbage)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with make_client(url, []) as odd:
            with pytest.raises(AcquirerProtocolError) as caught:
                await odd.authorise(await wire_request(), idempotency_key="k-odd")
    finally:
        await runner.cleanup()
    assert caught.value.field == "body" and caught.value.idempotency_key == "k-odd"


async def test_lifecycle_and_configuration_errors(host: AcquirerHost) -> None:
    with pytest.raises(AcquirerUsageError):
        AcquirerClient(base_url="http://acquirer.example.com")  # card data in clear: refused
    with pytest.raises(AcquirerUsageError):
        AcquirerClient(base_url="https://acquirer.example.com", max_attempts=0)
    AcquirerClient(base_url="https://acquirer.example.com")  # https anywhere is fine
    fresh = make_client(host.url or "", [])
    with pytest.raises(AcquirerUsageError):
        await fresh.status("k")
    async with fresh:
        assert "open" in repr(fresh)
    await fresh.aclose()  # twice is fine
    with pytest.raises(AcquirerUsageError):
        await fresh.open()


async def test_successive_requests_share_one_keep_alive_connection(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    for n in range(4):
        await client.authorise(await wire_request(stan=n + 1), idempotency_key=f"k-pool-{n}")
    await client.status("k-pool-0")
    assert client.connections_opened == 1 and len(host.charges) == 4
    async with AcquirerClient(base_url=host.url or "", keepalive_s=0) as one_each:
        for n in range(3):
            await one_each.status(f"k-pool-{n}")
        assert one_each.connections_opened == 3  # keepalive_s=0: one connection per request
    with pytest.raises(AcquirerUsageError):
        AcquirerClient(base_url=host.url or "", keepalive_s=-1)


async def test_answer_lost_on_a_pooled_connection_is_not_resent(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    await client.authorise(await wire_request(stan=1), idempotency_key="k-warm")
    host.faults.drop_after_processing = 1  # the next answer is lost after the charge
    with pytest.raises(AnswerLost) as caught:
        await client.authorise(await wire_request(stan=2), idempotency_key="k-pooled-lost")
    assert caught.value.attempts == 1  # sent on the pooled connection: never resent
    resolution = await client.resolve_unknown("k-pooled-lost")
    assert resolution.outcome is Outcome.APPROVED and resolution.authorisation is not None
    assert [entry.id for entry in host.charges][1] == resolution.authorisation.id
    assert len(host.charges) == 2  # charged once under that key
    assert client.connections_opened == 2  # the dropped connection was not reused


async def test_a_pooled_connection_the_host_closed_is_not_a_lost_answer() -> None:
    port = free_port()
    server = AcquirerHost()
    await server.start(port=port)
    try:
        async with make_client(f"http://127.0.0.1:{port}", []) as pooled:
            await pooled.authorise(await wire_request(stan=1), idempotency_key="k-before")
            await server.stop()  # closes the pooled connection from the host's side
            await server.start(port=port)
            answer = await pooled.authorise(await wire_request(stan=2), idempotency_key="k-after")
            assert answer.approved and pooled.connections_opened == 2
        assert [entry.kind for entry in server.ledger] == ["charge", "charge"]  # one per key
    finally:
        await server.stop()
