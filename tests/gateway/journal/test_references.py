"""The till's reference in the journal (schema version 3): kept with sales and refunds, one
refund per (sale, reference) across restarts, checked for card data, migrated from version 2;
the references of recent sales kept in memory, so that a new one is known new without a read."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.journal import CardDataRejected, DuplicateReference, Journal, PaymentState
from gateway.journal.sale_references import REFERENCE_MEMORY_S, SaleReferences
from gateway.journal.schema import MIGRATIONS, SCHEMA_VERSION, configure, migrate
from gateway.till.payments import REFERENCE_WINDOW
from tests.gateway.journal_support import AID, MASKED, Clock, open_journal

S = PaymentState


async def _completed_sale(journal: Journal, reference: str | None = None) -> str:
    sale = await journal.create_sale(
        lane="1", amount=1000, currency="EUR", actor="test", till_reference=reference
    )
    await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="test")
    await journal.request_auth(sale.id, actor="test")
    await journal.approve(sale.id, auth_code="123456", actor="test")
    await journal.complete(sale.id, actor="test")
    return sale.id


async def test_sale_reference_is_journaled_and_sent_to_head_office(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale_id = await _completed_sale(journal, "T-2026-0001")
        sale = await journal.get(sale_id)
        assert sale.till_reference == "T-2026-0001"
        assert sale.sale_record(offline=False)["reference"] == "T-2026-0001"
        [item] = await journal.claim_batch(5)
        assert item.body["reference"] == "T-2026-0001"


async def test_one_refund_per_sale_and_reference_across_a_restart(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale_id = await _completed_sale(journal)
        other_id = await _completed_sale(journal)
        first = await journal.create_refund(
            sale_id, lane="1", amount=200, actor="test", till_reference="R-1"
        )
        with pytest.raises(DuplicateReference) as caught:
            await journal.create_refund(
                sale_id, lane="1", amount=200, actor="test", till_reference="R-1"
            )
        assert caught.value.existing_id == first.id
        # a reference is per sale; no reference means no check
        await journal.create_refund(
            other_id, lane="1", amount=200, actor="test", till_reference="R-1"
        )
        await journal.create_refund(sale_id, lane="1", amount=100, actor="test")
        await journal.create_refund(sale_id, lane="1", amount=100, actor="test")
    async with open_journal(tmp_path, seed=2) as journal:  # the daemon restarted
        found = await journal.find_refund(sale_id, "R-1")
        assert found is not None and found.id == first.id and found.amount == 200
        assert await journal.find_refund(sale_id, "R-2") is None
        with pytest.raises(DuplicateReference):
            await journal.create_refund(
                sale_id, lane="1", amount=50, actor="test", till_reference="R-1"
            )


async def test_the_database_refuses_a_second_refund_under_a_reference(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale_id = await _completed_sale(journal)
        await journal.create_refund(sale_id, lane="1", amount=200, actor="test", till_reference="R")
    conn = sqlite3.connect(tmp_path / "journal.db")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(
            "INSERT INTO payments (id, kind, refund_of, lane, amount, currency, state,"
            " created_ms, updated_ms, till_reference)"
            " VALUES ('pay_dup', 'refund', ?, '1', 1, 'EUR', 'CREATED', 1, 1, 'R')",
            (sale_id,),
        )
    conn.close()


async def test_a_reference_that_looks_like_a_pan_is_refused(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        with pytest.raises(CardDataRejected, match="till_reference"):
            await journal.create_sale(
                lane="1", amount=100, currency="EUR", actor="test",
                till_reference="4761739001010010",
            )  # fmt: skip


def test_version_2_journal_gains_the_reference_column(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    assert migrate(conn, MIGRATIONS[:2]) == 0
    conn.execute(
        "INSERT INTO payments (id, kind, lane, amount, currency, state, created_ms, updated_ms)"
        " VALUES ('pay_v2', 'sale', '1', 500, 'EUR', 'COMPLETED', 1, 1)"
    )
    assert migrate(conn) == 2
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    row = conn.execute("SELECT till_reference, amount FROM payments WHERE id = 'pay_v2'").fetchone()
    assert row == (None, 500)
    conn.close()


async def test_find_sale_by_reference_within_a_window_and_only_if_it_charges(
    tmp_path: Path,
) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        sale_id = await _completed_sale(journal, "T-1")
        assert (found := await journal.find_sale("T-1", within=60)) is not None
        assert found.id == sale_id
        cancelled = await journal.create_sale(
            lane="1", amount=300, currency="EUR", actor="test", till_reference="T-2"
        )
        await journal.cancel(cancelled.id, actor="test", reason="till")
        assert await journal.find_sale("T-2", within=60) is None  # took no money
        assert await journal.find_sale("T-3", within=60) is None
        clock.now += 3600
        assert await journal.find_sale("T-1", within=60) is None  # outside the window
        assert await journal.find_sale("T-1", within=7200) is not None


# -- the references of recent sales, in memory (gateway/journal/sale_references.py) -----------


def _requests(journal: Journal) -> int:
    """Requests the journal's worker has committed (a read in its group counts)."""
    return journal.commit_counts()[1]


async def test_a_reference_no_sale_carries_is_answered_without_reading_the_file(
    tmp_path: Path,
) -> None:
    async with open_journal(tmp_path) as journal:
        sale_id = await _completed_sale(journal, "T-1")
        before = _requests(journal)
        assert await journal.find_sale("T-new", within=REFERENCE_WINDOW) is None
        assert _requests(journal) == before  # known new: no request to the worker
        found = await journal.find_sale("T-1", within=REFERENCE_WINDOW)
        assert found is not None and found.id == sale_id
        assert _requests(journal) == before + 1  # held: read from the file, as before


async def test_the_memory_is_read_back_at_open_and_reaches_48_hours(tmp_path: Path) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        old_id = await _completed_sale(journal, "T-old")
        clock.now += 47 * 3600
        recent_id = await _completed_sale(journal, "T-recent")
    clock.now += 2 * 3600  # T-old is 49 h old, T-recent 2 h
    async with open_journal(tmp_path, clock=clock, seed=2) as journal:  # a restart
        before = _requests(journal)
        found = await journal.find_sale("T-recent", within=REFERENCE_WINDOW)
        assert found is not None and found.id == recent_id
        assert await journal.find_sale("T-old", within=REFERENCE_WINDOW) is None
        assert _requests(journal) == before + 1  # only T-recent was read
        # a look-back beyond the memory's reach reads the file
        found = await journal.find_sale("T-old", within=REFERENCE_MEMORY_S + 3600)
        assert found is not None and found.id == old_id
        assert _requests(journal) == before + 2


async def test_a_sale_being_created_is_found_by_the_same_reference(tmp_path: Path) -> None:
    """The reference is noted before the creation is submitted: a look-up that comes while it
    is written reads the file, behind the write, and finds the sale."""
    async with open_journal(tmp_path) as journal:
        creating = asyncio.create_task(journal.create_sale(
            lane="1", amount=100, currency="EUR", actor="test", till_reference="T-busy"
        ))  # fmt: skip
        await asyncio.sleep(0)  # the creation has been submitted, not answered
        assert not creating.done()
        found = await journal.find_sale("T-busy", within=REFERENCE_WINDOW)
        assert found is not None and found.id == (await creating).id


async def test_a_creation_that_wrote_nothing_is_forgotten(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        with pytest.raises(CardDataRejected):  # refused by the store, on the worker
            await journal.create_sale(
                lane="1", amount=100, currency="EUR", actor="test", till_reference="T-x",
                items=[{"sku": "4761739001010010"}],
            )  # fmt: skip
        before = _requests(journal)
        assert await journal.find_sale("T-x", within=REFERENCE_WINDOW) is None
        assert _requests(journal) == before


def test_sale_references_count_each_sale_and_expire_by_age() -> None:
    hour = 3600 * 1000
    now = 100 * hour
    memory = SaleReferences()
    memory.note("A", now - 50 * hour)  # beyond the reach: expires at the next look-up
    memory.note("B", now - 2 * hour)
    memory.note("B", now - hour)
    memory.note("C", now)
    assert memory.may_hold("B", now - 24 * hour, now) and len(memory) == 2
    assert not memory.may_hold("A", now - 24 * hour, now)
    assert memory.may_hold("A", now - 49 * hour, now)  # further back than it reaches: unsure
    memory.forget("B")
    assert memory.may_hold("B", now - 24 * hour, now)  # one sale still carries it
    memory.forget("B")
    memory.forget("C")
    assert len(memory) == 0
    assert not memory.may_hold("B", now - 24 * hour, now)
