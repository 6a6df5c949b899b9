"""The day in money kept in memory by the commits equals the page's old queries of the journal.

A mixed day in two currencies (online approvals, issuer declines, an answer that never came then
approved, offline approvals forwarded, a forward the bank declined then acknowledged and one left
waiting, a refund completed and one declined, a void, cancelled and reversed sales), a restart
in the middle, a day close with sales of the closed day finishing after it, and the local
midnight of a shop that never closed a day: after every step, the memory worded by
``money_summary`` equals ``day_summary`` of a fresh read of the file (the queries the page ran
on every view), and the held sales equal ``offline_exposure``. The queries at open read index
ranges, never the whole payments table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from gateway.day.summary import DECLINED_SHOWN, day_summary, money_summary
from gateway.journal import Journal, PaymentState
from gateway.journal.figures import local_midnight_ms
from gateway.journal.money import read_money
from gateway.journal.queries import (
    auth_durations_ms,
    day_payments,
    forward_declined,
    offline_exposure,
)
from tests.gateway.journal_support import Clock, drive_to, open_journal, step

S = PaymentState


class Ticking(Clock):
    """A clock that moves 3 ms at every reading: each change has its own time."""

    def __call__(self) -> float:
        self.now += 0.003
        return self.now


def fresh(db: Path, since_ms: int) -> dict[str, Any]:
    """The page's money part computed the old way: queries of the file, then ``day_summary``."""
    conn = sqlite3.connect(db)
    try:
        summary = day_summary(
            day_payments(conn, since_ms, 2**62),
            auth_ms=auth_durations_ms(conn, since_ms),
            declined=forward_declined(conn),
        )
        summary["offline"] = offline_exposure(conn)
    finally:
        conn.close()
    return summary


def auth_times(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return auth_durations_ms(conn, 0)
    finally:
        conn.close()


def kept(journal: Journal) -> dict[str, Any]:
    figures = journal.money.read()
    return {**money_summary(figures), "offline": figures.exposure}


def check(journal: Journal, db: Path) -> dict[str, Any]:
    now = kept(journal)
    assert now == fresh(db, journal.money.day_start_ms())
    return now


async def mixed_day(journal: Journal, db: Path, lane: str) -> list[str]:
    """Every outcome the page distinguishes, checked after each step; the completed sales."""
    completed = []
    for target, amount in ((S.COMPLETED, 1250), (S.DECLINED, 700), (S.CANCELLED, 300),
                           (S.REVERSED, 900), (S.COMPLETED, 4000)):  # fmt: skip
        sale = await drive_to(journal, target, amount=amount, lane=lane)
        check(journal, db)
        if target is S.COMPLETED:
            completed.append(sale.id)
    dollars = await journal.create_sale(lane=lane, amount=555, currency="USD", actor="test")
    for state in (S.CARD_READ, S.AUTH_REQUESTED, S.UNKNOWN, S.APPROVED, S.COMPLETED):
        await step(journal, dollars.id, state)  # the answer never came, the status said yes
        check(journal, db)
    offline = [await drive_to(journal, S.STORED_FOR_FORWARDING, amount=a, lane=lane)
               for a in (2100, 2200, 2300)]  # fmt: skip
    assert check(journal, db)["offline"]["EUR"].count >= 3
    await step(journal, offline[0].id, S.FORWARDED)
    check(journal, db)
    await step(journal, offline[1].id, S.FORWARD_DECLINED)
    assert [p["id"] for p in check(journal, db)["declined_forwards"]][-1] == offline[1].id
    await step(journal, offline[1].id, S.DECLINE_ACKNOWLEDGED)
    check(journal, db)
    await step(journal, offline[2].id, S.FORWARD_DECLINED)  # left waiting for a manager
    check(journal, db)
    refund = await journal.create_refund(completed[0], lane=lane, amount=250, actor="till")
    for state in (S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED):
        await step(journal, refund.id, state)
        check(journal, db)
    refused = await journal.create_refund(completed[0], lane=lane, amount=100, actor="till")
    for state in (S.CARD_READ, S.AUTH_REQUESTED, S.DECLINED):
        await step(journal, refused.id, state)
    check(journal, db)
    taken = check(journal, db)["takings"]["EUR"]
    # the 40.00 sale rung up by mistake: still taken while its void waits for the bank or the
    # terminal (the card stays charged if the void fails), off the takings once VOIDED
    await step(journal, completed[1], S.VOID_PENDING)
    assert check(journal, db)["takings"]["EUR"] == taken
    await step(journal, completed[1], S.VOIDED)
    assert check(journal, db)["takings"]["EUR"] == taken - 4000
    return completed


async def test_the_money_in_memory_equals_the_queries_through_a_day_a_restart_and_a_close(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    clock = Ticking(local_midnight_ms(1_700_000_000) / 1000 + 9 * 3600)  # 09:00 local
    async with open_journal(tmp_path, clock=clock) as journal:
        await mixed_day(journal, db, "1")
        in_flight = await drive_to(journal, S.APPROVED)  # the restart comes before COMPLETED
        held = await drive_to(journal, S.STORED_FOR_FORWARDING, amount=3100)
        asking = await drive_to(journal, S.AUTH_REQUESTED, amount=4400)  # answered after it
        before = check(journal, db)
    assert before["takings"] == {"EUR": 1250 - 250 + 2100 + 3100, "USD": 555}
    assert before["median_auth_ms"] is not None and before["median_auth_ms"] > 0
    assert before["declined_forwards"] and before["offline"]["EUR"].count == 1

    async with open_journal(tmp_path, clock=clock, seed=2) as journal:
        assert kept(journal) == before  # rebuilt at open from the journal
        await step(journal, in_flight.id, S.COMPLETED)
        check(journal, db)
        samples = journal.money.read().auth_samples
        for state in (S.APPROVED, S.COMPLETED):  # its request time was read at open
            await step(journal, asking.id, state)
            check(journal, db)
        assert journal.money.read().auth_samples == samples + 1 == len(auth_times(db))
        await mixed_day(journal, db, "2")
        late = await drive_to(journal, S.APPROVED)  # of the day being closed
        closed_ms = journal.now_ms()
        early = await drive_to(journal, S.COMPLETED, amount=777)  # of the next day already
        await journal.record_day_close(opened_ms=0, closed_ms=closed_ms, actor="manager:test",
                                       differences=0, record={"payments": 0})  # fmt: skip
        assert journal.money.day_start_ms() == closed_ms
        after_close = check(journal, db)
        assert after_close["takings"] == {"EUR": 777} and after_close["payments"] == 1
        assert after_close["last_payments"][0]["id"] == early.id
        # sales of the closed day finishing now: the held and declined lists move, the day not
        await step(journal, late.id, S.COMPLETED)
        await step(journal, held.id, S.FORWARDED)
        after = check(journal, db)
        assert after["takings"] == {"EUR": 777} and "EUR" not in after["offline"]
        assert len(after["declined_forwards"]) == 2  # one per mixed day, any day
        await mixed_day(journal, db, "3")
        last = check(journal, db)
    async with open_journal(tmp_path, clock=clock, seed=3) as journal:
        assert journal.money.read().close is not None
        assert kept(journal) == last


async def test_a_shop_that_never_closed_sees_today_and_starts_again_at_midnight(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    midnight = local_midnight_ms(1_700_000_000, days_after=1)
    clock = Ticking(midnight / 1000 - 60)  # 23:59 local
    async with open_journal(tmp_path, clock=clock) as journal:
        yesterday = await drive_to(journal, S.APPROVED)
        await drive_to(journal, S.COMPLETED)
        assert check(journal, db)["takings"] == {"EUR": 1250}
        clock.now = midnight / 1000 + 1
        assert journal.money.day_start_ms() == midnight
        assert check(journal, db)["takings"] == {}
        await step(journal, yesterday.id, S.COMPLETED)  # created yesterday: not today's sale
        await drive_to(journal, S.COMPLETED, amount=99)
        assert check(journal, db)["takings"] == {"EUR": 99}
    async with open_journal(tmp_path, clock=clock, seed=2) as journal:
        today = check(journal, db)  # the open reads today only, not the journal since ever
    assert today["payments"] == 1 and today["takings"] == {"EUR": 99}


async def test_the_reads_at_open_are_index_ranges_not_scans_of_the_table(tmp_path: Path) -> None:
    async with open_journal(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "journal.db")
    plans: list[str] = []
    real_execute = conn.execute

    class Explaining:
        """The connection, explaining each statement ``read_money`` runs before running it."""

        def execute(self, sql: str, params: Any = ()) -> Any:
            plan = real_execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            plans.append(" | ".join(str(row[3]) for row in plan))
            return real_execute(sql, params)

    try:
        read_money(Explaining(), 1_700_000_000_000)  # type: ignore[arg-type]
    finally:
        conn.close()
    assert len(plans) >= 6
    # the last close is ``ORDER BY id DESC LIMIT 1`` on the rowid: one row
    assert [plan for plan in plans if "SCAN" in plan] == ["SCAN days"], plans
    assert any("payments_by_created (created_ms>?)" in plan for plan in plans), plans


async def test_the_page_lists_the_oldest_declined_forwards_and_counts_the_others(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    async with open_journal(tmp_path, clock=Ticking()) as journal:
        declined = [await drive_to(journal, S.FORWARD_DECLINED, amount=100 + i)
                    for i in range(DECLINED_SHOWN + 3)]  # fmt: skip
        await step(journal, declined[0].id, S.DECLINE_ACKNOWLEDGED)
        money = check(journal, db)
    assert [p["id"] for p in money["declined_forwards"]] == [
        p.id for p in declined[1 : DECLINED_SHOWN + 1]
    ]
    assert money["declined_forwards_more"] == 2
