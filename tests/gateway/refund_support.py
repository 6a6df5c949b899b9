"""Helpers of the refund tests (no tests here): a journal, a client, and a sale settled for real.

* ``journal``: a :class:`gateway.journal.Journal` on a real SQLite file in ``tmp_path``.
* ``client``: an open :class:`gateway.acquirer.AcquirerClient` to the ``host`` fixture (the
  simulated acquirer over HTTP on 127.0.0.1), backoff waits recorded, not slept.
* :func:`settled_sale`: a sale journaled CREATED → CARD_READ → AUTH_REQUESTED, authorised by
  the host under the journal's idempotency key (the kernel's real ARQC), then APPROVED →
  COMPLETED: exactly what a lane leaves behind.
* :func:`host_refunds`: the refunds the host made (its ledger), to count them.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from gateway.acquirer import AcquirerClient
from gateway.journal import Journal, Payment
from simulator.acquirer_host import AcquirerHost, LedgerEntry
from tests.gateway.acquirer_support import make_client, wire_request
from tests.gateway.journal_support import AID, MASKED, open_journal

__all__ = [
    "SALE_AMOUNT",
    "host_refunds",
    "journal_fixture",
    "refund_client_fixture",
    "sale_pan",
    "settled_sale",
]

#: The captured kernel request's amount (9F02), hence every test sale's amount.
SALE_AMOUNT = 1250
_stan = itertools.count(1)


@pytest_asyncio.fixture(name="journal")
async def journal_fixture(tmp_path: Path) -> AsyncIterator[Journal]:
    """A journal on a real file in ``tmp_path``."""
    async with open_journal(tmp_path) as opened:
        yield opened


@pytest_asyncio.fixture(name="client")
async def refund_client_fixture(host: AcquirerHost) -> AsyncIterator[AcquirerClient]:
    """An open client of ``host`` (short time-outs, backoff not slept)."""
    assert host.url is not None
    async with make_client(host.url, []) as opened:
        yield opened


async def settled_sale(journal: Journal, client: AcquirerClient) -> Payment:
    """A COMPLETED sale of :data:`SALE_AMOUNT` EUR, approved by the host under its key."""
    sale = await journal.create_sale(lane="1", amount=SALE_AMOUNT, currency="EUR", actor="test")
    await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="test")
    sale = await journal.request_auth(sale.id, actor="test")
    assert sale.idempotency_key is not None
    answer = await client.authorise(
        await wire_request(stan=next(_stan)), idempotency_key=sale.idempotency_key
    )
    assert answer.approved and answer.authorisation_code is not None
    await journal.approve(sale.id, auth_code=answer.authorisation_code, actor="test")
    return await journal.complete(sale.id, actor="test")


async def sale_pan() -> str:
    """The full PAN of the test card (to check that no answer ever holds it)."""
    return (await wire_request()).pan


def host_refunds(host: AcquirerHost) -> list[LedgerEntry]:
    """The ``refund`` entries of the host's ledger."""
    return [entry for entry in host.ledger if entry.kind == "refund"]
