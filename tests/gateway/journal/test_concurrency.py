"""Many asyncio writers through the journal's one worker thread.

All SQLite work runs on a single thread that is not the event loop's (the connection refuses
any other thread), calls are serialised, and races between writers resolve to exactly one
winner: one of two conflicting transitions, and refunds never exceeding their sale.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.journal import IllegalTransition, PaymentState, RefundNotAllowed
from tests.gateway.journal_support import AID, MASKED, drive_to, open_journal

S = PaymentState


async def test_many_concurrent_sales_all_land(tmp_path: Path) -> None:
    async def sale(journal_lane: int) -> str:
        lane = str(journal_lane % 8)
        payment = await journal.create_sale(
            lane=lane, amount=100 + journal_lane, currency="EUR", actor=f"lane[{lane}]"
        )
        await journal.card_read(payment.id, masked_pan=MASKED, aid=AID, actor="reader")
        await journal.request_auth(payment.id, actor="lane")
        await journal.approve(payment.id, auth_code="X1", actor="acq")
        await journal.complete(payment.id, actor="lane")
        return payment.id

    async with open_journal(tmp_path) as journal:
        ids = await asyncio.gather(*(sale(n) for n in range(60)))
        items = await journal.claim_batch(100)
        states = {(await journal.get(pid)).state for pid in ids}
        event_counts = {len(await journal.events(pid)) for pid in ids}
    assert len(set(ids)) == 60
    assert states == {S.COMPLETED}
    assert event_counts == {5}
    assert sorted(item.payment_id for item in items) == sorted(ids)
    assert sorted(item.body["amount"] for item in items) == list(range(100, 160))


async def test_sqlite_runs_on_one_thread_that_is_not_the_loop(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        threads = await asyncio.gather(*(journal._run(threading.get_ident) for _ in range(50)))
        names = await journal._run(lambda: threading.current_thread().name)
        payment = await drive_to(journal, S.CREATED)
        # The connection belongs to the worker: used from the loop thread it refuses.
        with pytest.raises(sqlite3.ProgrammingError, match="thread"):
            journal._s().get(payment.id)
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()
    assert names.startswith("posgw-journal")


async def test_conflicting_transitions_have_exactly_one_winner(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        approved = [await drive_to(journal, S.APPROVED) for _ in range(10)]
        results = await asyncio.gather(
            *(
                call
                for payment in approved
                for call in (
                    journal.complete(payment.id, actor="lane"),
                    journal.request_reversal(payment.id, actor="lane", reason="race"),
                )
            ),
            return_exceptions=True,
        )
        finals = [(await journal.get(p.id)).state for p in approved]
        outbox = await journal.claim_batch(100)
    for pair in zip(results[::2], results[1::2], strict=True):
        winners = [r for r in pair if not isinstance(r, BaseException)]
        losers = [r for r in pair if isinstance(r, IllegalTransition)]
        assert len(winners) == 1 and len(losers) == 1
    assert finals == [S.COMPLETED] * 10  # submission order: complete was queued first
    assert len(outbox) == 10


async def test_concurrent_refunds_never_exceed_the_sale(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await drive_to(journal, S.COMPLETED, amount=1000)
        results = await asyncio.gather(
            *(journal.create_refund(sale.id, lane="1", amount=150, actor="t") for _ in range(12)),
            return_exceptions=True,
        )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RefundNotAllowed)]
    assert (len(created), len(refused)) == (6, 6)
    assert sum(r.amount for r in created) == 900
