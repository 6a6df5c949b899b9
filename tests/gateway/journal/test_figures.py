"""The day's figures kept in memory by the commits equal a fresh count of the journal.

A mixed day (online approvals, issuer declines, offline approvals forwarded later, cancelled
sales, refunds completed and declined, outbox sends), with a restart in the middle, checked
against a count written here independently of the journal's after every step; the figures
survive a cancelled caller; they start again at local midnight; the count at open is an index
range (no scan of the table).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gateway.journal import Journal, PaymentState
from gateway.journal.figures import DayCounts, local_midnight_ms
from tests.gateway.journal.test_group_commit import tasks_of, worker_held
from tests.gateway.journal_support import Clock, drive_to, open_journal, step

S = PaymentState


def fresh_count(db: Path, day_start_ms: int) -> DayCounts:
    """Today's figures counted from the file (the query the status page used to run)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            """SELECT COALESCE(SUM(kind = 'sale'), 0),
                      COALESCE(SUM(kind = 'sale' AND state IN
                          ('COMPLETED', 'STORED_FOR_FORWARDING', 'FORWARDED', 'VOID_PENDING',
                           'VOIDED', 'FORWARD_DECLINED', 'DECLINE_ACKNOWLEDGED')), 0),
                      COALESCE(SUM(kind = 'sale' AND state = 'DECLINED'), 0),
                      COALESCE(SUM(kind = 'refund' AND state = 'COMPLETED'), 0)
               FROM payments WHERE created_ms >= ?""",
            (day_start_ms,),
        ).fetchone()
        unsent = conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_ms IS NULL").fetchone()[0]
    finally:
        conn.close()
    payments, approved, declined, refunds = (int(value) for value in row)
    return DayCounts(day_start_ms, payments, approved, declined, refunds, int(unsent))


async def mixed_payments(journal: Journal, db: Path, round_: int) -> list[str]:
    """One of each kind of outcome; the figures are checked after each step. Settled ids."""
    settled = []

    def check() -> None:
        assert journal.figures.read() == fresh_count(db, journal.figures.read().day_start_ms)

    for target in (S.COMPLETED, S.DECLINED, S.STORED_FOR_FORWARDING, S.CANCELLED, S.REVERSED):
        sale = await drive_to(journal, target, lane=str(round_))
        check()
        if target in (S.COMPLETED, S.STORED_FOR_FORWARDING):
            settled.append(sale.id)
    await step(journal, settled[1], S.FORWARDED)  # the offline one is forwarded: no change
    check()
    refund = await journal.create_refund(settled[0], lane="1", amount=100, actor="till")
    check()
    for state in (S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED):
        await step(journal, refund.id, state)
        check()
    refused = await journal.create_refund(settled[0], lane="1", amount=100, actor="till")
    for state in (S.CARD_READ, S.AUTH_REQUESTED, S.DECLINED):
        await step(journal, refused.id, state)
    check()
    batch = await journal.claim_batch(2)
    await journal.mark_sent([item.id for item in batch])
    await journal.mark_sent([item.id for item in batch])  # twice: counted once
    check()
    return settled


async def test_figures_equal_a_fresh_count_through_a_mixed_day_and_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    clock = Clock(local_midnight_ms(1_700_000_000) / 1000 + 9 * 3600)  # 09:00 local
    async with open_journal(tmp_path, clock=clock) as journal:
        await mixed_payments(journal, db, 1)
        in_flight = await drive_to(journal, S.APPROVED)  # the restart comes before COMPLETED
        before = journal.figures.read()
    async with open_journal(tmp_path, clock=clock, seed=2) as journal:
        assert journal.figures.read() == before  # rebuilt at open from the journal
        await step(journal, in_flight.id, S.COMPLETED)
        assert journal.figures.read() == fresh_count(db, before.day_start_ms)
        await mixed_payments(journal, db, 2)
        after = journal.figures.read()
    assert (after.payments, after.approved, after.declined, after.refunds) == (11, 5, 2, 2)
    assert after.outbox_backlog == fresh_count(db, after.day_start_ms).outbox_backlog > 0


async def test_a_cancelled_caller_s_commit_is_still_counted(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with open_journal(tmp_path) as journal:
        sale = await drive_to(journal, S.APPROVED)
        async with worker_held(journal, 1):
            (task,) = tasks_of([journal.complete(sale.id, actor="lane")])
            await asyncio.sleep(0)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        events = await journal.events(sale.id)  # queued after the complete: its group is done
        assert events[-1].to_state is S.COMPLETED
        assert (await journal.get(sale.id)).state is S.COMPLETED
        figures = journal.figures.read()
    assert figures.approved == 1 and figures == fresh_count(db, figures.day_start_ms)


async def test_the_figures_start_again_at_local_midnight(tmp_path: Path) -> None:
    midnight = local_midnight_ms(1_700_000_000, days_after=1)
    clock = Clock(midnight / 1000 - 60)  # 23:59 local
    async with open_journal(tmp_path, clock=clock) as journal:
        late = await drive_to(journal, S.APPROVED)
        await drive_to(journal, S.COMPLETED)
        assert journal.figures.read().approved == 1
        clock.now = midnight / 1000 + 1
        assert journal.figures.read() == DayCounts(midnight, outbox_backlog=1)
        await step(journal, late.id, S.COMPLETED)  # created yesterday: not today's sale
        await drive_to(journal, S.DECLINED)
        today = journal.figures.read()
    assert today == DayCounts(midnight, payments=1, declined=1, outbox_backlog=2)
    assert today == fresh_count(tmp_path / "journal.db", midnight)


async def test_the_count_at_open_reads_an_index_range_not_the_table(tmp_path: Path) -> None:
    async with open_journal(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "journal.db")
    plan = " ".join(
        str(row[3])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT kind, state, count(*) FROM payments"
            " WHERE created_ms >= ? GROUP BY kind, state",
            (0,),
        )
    )
    conn.close()
    assert "USING COVERING INDEX payments_by_created (created_ms>?)" in plan, plan
