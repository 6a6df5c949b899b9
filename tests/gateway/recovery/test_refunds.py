"""The refund service against the simulated acquirer host over HTTP, on a real journal file.

gateway/refunds.py: AUTH_REQUESTED committed before the request, COMPLETED with an outbox record,
partial refunds up to the sale, the same reference never refunded twice (counted at the host),
the host down (UNKNOWN) then re-sent under the same key, a crash after the host refunded
(recovery replays it, one refund at the host), a declined refund, and what is not refundable.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.acquirer import AcquirerClient
from gateway.journal import Journal, PaymentKind, PaymentState
from gateway.journal.guard import find_card_data
from gateway.recovery.refunds import (
    RefundRejected,
    RefundService,
    SaleNotFound,
    refund_key,
    sales_only,
)
from simulator.acquirer_host import AcquirerHost
from tests.gateway.acquirer_support import host_fixture  # noqa: F401 - fixture "host"
from tests.gateway.daemon_support import wait_state
from tests.gateway.journal_support import AID, MASKED, open_journal
from tests.gateway.refund_support import (
    SALE_AMOUNT,
    host_refunds,
    journal_fixture,  # noqa: F401 - fixture "journal"
    refund_client_fixture,  # noqa: F401 - fixture "client"
    sale_pan,
    settled_sale,
)

S = PaymentState


@pytest.fixture(name="service")
def service_fixture(journal: Journal, client: AcquirerClient) -> RefundService:
    return RefundService(journal=journal, client=client, retry_interval=0.05)


async def test_full_refund_commits_before_sending_and_completes(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    result = await service.refund(sale.id, amount=SALE_AMOUNT, reference="R-1")
    refund = result.payment
    assert refund.kind is PaymentKind.REFUND and refund.refund_of == sale.id
    assert refund.state is S.COMPLETED and result.answered and not result.replayed
    assert refund.currency == "EUR" and refund.masked_pan == MASKED
    states = [event.to_state for event in await journal.events(refund.id)]
    assert states == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED]
    [made] = host_refunds(host)
    assert (made.amount, made.currency, made.idempotency_key) == (1250, 978, refund_key(refund.id))
    records = {item.payment_id: item.body for item in await journal.claim_batch(10)}
    assert records[refund.id]["type"] == "refund"
    assert records[refund.id]["refund_of"] == sale.id
    assert service.pending == 0


async def test_partial_refunds_up_to_the_sale_then_not_refundable(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    first = await service.refund(sale.id, amount=500, reference="R-a")
    second = await service.refund(sale.id, amount=750, reference="R-b")
    assert first.payment.state is S.COMPLETED and second.payment.state is S.COMPLETED
    with pytest.raises(RefundRejected) as caught:
        await service.refund(sale.id, amount=1, reference="R-c")
    assert caught.value.code == "not_refundable"
    assert [entry.amount for entry in host_refunds(host)] == [500, 750]
    status = await client.status(sale.idempotency_key or "")
    assert status.refunded_amount == SALE_AMOUNT


async def test_same_reference_twice_is_one_refund_at_the_host(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    first = await service.refund(sale.id, amount=300, reference="R-1")
    again = await service.refund(sale.id, amount=300, reference="R-1")
    assert again.replayed and again.payment.id == first.payment.id
    assert again.payment.state is S.COMPLETED
    both = await asyncio.gather(
        service.refund(sale.id, amount=200, reference="R-2"),
        service.refund(sale.id, amount=200, reference="R-2"),
    )
    assert both[0].payment.id == both[1].payment.id
    assert sorted(result.replayed for result in both) == [False, True]
    assert [entry.amount for entry in host_refunds(host)] == [300, 200]
    with pytest.raises(RefundRejected) as caught:
        await service.refund(sale.id, amount=100, reference="R-1")
    assert caught.value.code == "reference_conflict"
    other = await settled_sale(journal, client)  # a reference is per sale
    assert not (await service.refund(other.id, amount=300, reference="R-1")).replayed
    assert len(host_refunds(host)) == 3


async def test_same_reference_after_a_restart_is_still_one_refund(
    host: AcquirerHost, tmp_path: Path, client: AcquirerClient
) -> None:
    # The till retries a refund after the daemon restarted (a new service, the journal
    # reopened): the reference is journaled, so the answer is the refund already made.
    async with open_journal(tmp_path, name="restart.db") as journal:
        sale = await settled_sale(journal, client)
        first = await RefundService(journal=journal, client=client).refund(
            sale.id, amount=400, reference="R-9"
        )
    async with open_journal(tmp_path, name="restart.db", seed=2) as journal:
        again = await RefundService(journal=journal, client=client).refund(
            sale.id, amount=400, reference="R-9"
        )
    assert again.replayed and again.payment.id == first.payment.id
    assert again.payment.state is S.COMPLETED
    assert [entry.amount for entry in host_refunds(host)] == [400]


async def test_host_down_unknown_then_resent_once_host_is_back(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    assert host.url is not None
    port = int(host.url.rsplit(":", 1)[1])
    await host.stop()
    result = await service.refund(sale.id, amount=400, reference="R-down")
    assert result.payment.state is S.UNKNOWN and not result.answered
    assert service.pending == 1
    assert await service.resolve_pending_refunds() == 1  # still down: still pending
    assert (await journal.get(result.payment.id)).state is S.UNKNOWN
    await host.start(port=port)
    assert await service.resolve_pending_refunds() == 0
    assert (await journal.get(result.payment.id)).state is S.COMPLETED
    [made] = host_refunds(host)
    assert made.idempotency_key == refund_key(result.payment.id)
    again = await service.refund(sale.id, amount=400, reference="R-down")
    assert again.replayed and again.payment.state is S.COMPLETED
    assert len(host_refunds(host)) == 1


async def test_till_asking_again_resends_a_pending_refund(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    assert host.url is not None
    port = int(host.url.rsplit(":", 1)[1])
    await host.stop()
    first = await service.refund(sale.id, amount=100, reference="R-again")
    assert first.payment.state is S.UNKNOWN
    await host.start(port=port)
    again = await service.refund(sale.id, amount=100, reference="R-again")
    assert again.replayed and again.payment.state is S.COMPLETED
    assert service.pending == 0 and len(host_refunds(host)) == 1


async def test_run_resolves_in_the_background(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    assert host.url is not None
    port = int(host.url.rsplit(":", 1)[1])
    await host.stop()
    result = await service.refund(sale.id, amount=100, reference="R-bg")
    await host.start(port=port)
    task = asyncio.create_task(service.run(), name="test.refunds")
    try:
        await wait_state(journal, result.payment.id, S.COMPLETED)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(host_refunds(host)) == 1


async def test_crash_after_the_host_refunded_is_replayed_not_repeated(
    host: AcquirerHost, tmp_path: Path, client: AcquirerClient
) -> None:
    async with open_journal(tmp_path, name="crash.db") as journal:
        sale = await settled_sale(journal, client)
        refund = await journal.create_refund(sale.id, lane="1", amount=600, actor="test")
        await journal.card_read(refund.id, masked_pan=MASKED, aid=AID, actor="test")
        await journal.request_auth(refund.id, actor="test")
        # The daemon sent it, the host refunded, then the daemon died before journaling.
        status = await client.status(sale.idempotency_key or "")
        key = refund_key(refund.id)
        await client.refund(status.id, amount=600, currency=978, idempotency_key=key)
        left = await journal.create_refund(sale.id, lane="1", amount=100, actor="test")
    async with open_journal(tmp_path, name="crash.db", seed=2) as journal:
        recovery = await journal.recover()
        assert {p.payment.id for p in sales_only(recovery).pending}.isdisjoint({refund.id, left.id})
        service = RefundService(journal=journal, client=client)
        assert await service.recover(recovery, within=5.0) == 0
        assert (await journal.get(refund.id)).state is S.COMPLETED
        assert (await journal.get(left.id)).state is S.CANCELLED  # nothing was sent
    assert [entry.amount for entry in host_refunds(host)] == [600]


async def test_declined_by_the_host(
    host: AcquirerHost, journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    sale = await settled_sale(journal, client)
    await client.reverse(original_idempotency_key=sale.idempotency_key, idempotency_key="rev-t")
    result = await service.refund(sale.id, amount=SALE_AMOUNT, reference="R-x")
    assert result.payment.state is S.DECLINED and result.answered
    events = await journal.events(result.payment.id)
    assert "not_refundable" in events[-1].reason
    assert host_refunds(host) == [] and service.pending == 0


@pytest.mark.parametrize("state", [S.DECLINED, S.CANCELLED, S.STORED_FOR_FORWARDING])
async def test_unsettled_or_unforwarded_sales_are_not_refundable(
    host: AcquirerHost, journal: Journal, service: RefundService, state: PaymentState
) -> None:
    sale = await journal.create_sale(lane="1", amount=100, currency="EUR", actor="test")
    if state is S.CANCELLED:
        await journal.cancel(sale.id, actor="test", reason="t")
    else:
        await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="test")
        if state is S.DECLINED:
            await journal.decline(sale.id, response_code="Z1", actor="test")
        else:
            await journal.store_for_forwarding(
                sale.id, request=b"sealed", response_code="Y1", actor="test"
            )
    with pytest.raises(RefundRejected) as caught:
        await service.refund(sale.id, amount=50, reference="R-1")
    assert caught.value.code == "not_refundable"
    assert host.ledger == []


async def test_unknown_sale_and_refund_of_a_refund(
    journal: Journal, client: AcquirerClient, service: RefundService
) -> None:
    with pytest.raises(SaleNotFound):
        await service.refund("pay_nosuchsale", amount=1, reference="R-1")
    sale = await settled_sale(journal, client)
    refund = await service.refund(sale.id, amount=10, reference="R-1")
    with pytest.raises(RefundRejected):
        await service.refund(refund.payment.id, amount=1, reference="R-2")


async def test_no_card_data_in_logs(
    journal: Journal,
    client: AcquirerClient,
    service: RefundService,
    caplog: pytest.LogCaptureFixture,
    host: AcquirerHost,
) -> None:
    caplog.set_level(logging.DEBUG)
    sale = await settled_sale(journal, client)
    await service.refund(sale.id, amount=10, reference="R-1")
    await host.stop()
    await service.refund(sale.id, amount=10, reference="R-2")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "refund" in text
    assert await sale_pan() not in text and find_card_data(text) is None
