"""Group commit: transitions due at the same moment share one COMMIT, and nothing is weakened.

The worker is held busy (a solo request waiting on a gate) while the lanes' calls queue up, so
the group is exactly the calls of the test; then:

* sixteen lanes' transitions share one COMMIT, and every one is in the file afterwards;
* no caller is told "committed" before the COMMIT: at the moment of the COMMIT no caller has
  its answer, and a second connection does not see the group's rows yet;
* a statement that fails (a real trigger refusing one outbox insert) fails its own caller only:
  its payment and events are as before, the others commit;
* a COMMIT that fails (a real deferred foreign key, checked by SQLite at COMMIT) fails every
  caller of the group, and none of the group's changes is in the file;
* a group runs once, with no savepoint, when none of its requests fails; when one fails, the
  group runs again with a savepoint per request, and each result comes from that run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.journal import (
    IllegalTransition,
    InvalidRecord,
    Journal,
    PaymentState,
    StorageError,
    VaultKey,
    VaultKeyError,
)
from gateway.journal.card_read import CardRead
from gateway.journal.worker import GroupCommitWorker
from tests.gateway.journal_support import AID, MASKED, drive_to, open_journal

S = PaymentState
LANES = 16


@contextlib.asynccontextmanager
async def worker_held(journal: Journal, queued: int) -> AsyncIterator[None]:
    """Keep the worker busy; on exit, once ``queued`` requests wait, let it take them at once."""
    async with held(journal._worker, queued):
        yield


@contextlib.asynccontextmanager
async def held(worker: GroupCommitWorker, queued: int) -> AsyncIterator[None]:
    """:func:`worker_held` on a worker of one's own."""
    started, gate = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        gate.wait(10)

    blocker = worker.submit(block, solo=True)
    try:
        assert await asyncio.to_thread(started.wait, 10)
        yield
        await asyncio.sleep(0)  # one turn of the loop: each caller's task submits its call
        assert worker._queue.qsize() == queued
    finally:
        gate.set()
        await blocker


def tasks_of(calls: list[Awaitable[Any]]) -> list[asyncio.Task[Any]]:
    async def run(call: Awaitable[Any]) -> Any:
        return await call

    return [asyncio.create_task(run(call)) for call in calls]


async def test_sixteen_lanes_due_together_share_one_commit(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sales = [await drive_to(journal, S.CREATED, lane=str(i)) for i in range(LANES)]
        commits, requests = journal.commit_counts()
        async with worker_held(journal, LANES):
            tasks = tasks_of(
                [
                    journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor=f"lane[{i}]")
                    for i, sale in enumerate(sales)
                ]
            )
        results = await asyncio.gather(*tasks)
        assert journal.commit_counts() == (commits + 1, requests + LANES)
    assert [payment.state for payment in results] == [S.CARD_READ] * LANES
    conn = sqlite3.connect(tmp_path / "journal.db")
    states = dict(conn.execute("SELECT id, state FROM payments").fetchall())
    events = conn.execute("SELECT count(*) FROM events WHERE to_state = 'CARD_READ'").fetchone()
    conn.close()
    assert all(states[sale.id] == "CARD_READ" for sale in sales) and events == (LANES,)


async def test_no_caller_hears_of_its_commit_before_the_commit(tmp_path: Path) -> None:
    seen: list[tuple[list[bool], int]] = []
    async with open_journal(tmp_path) as journal:
        sales = [await drive_to(journal, S.APPROVED, lane=str(i)) for i in range(4)]
        tasks: list[asyncio.Task[Any]] = []

        def at_commit(_conn: sqlite3.Connection) -> None:
            other = sqlite3.connect(tmp_path / "journal.db")
            try:
                visible = other.execute("SELECT count(*) FROM outbox").fetchone()[0]
            finally:
                other.close()
            seen.append(([task.done() for task in tasks], visible))

        journal._worker.before_commit = at_commit
        async with worker_held(journal, len(sales)):
            tasks += tasks_of([journal.complete(sale.id, actor="lane") for sale in sales])
        done = await asyncio.gather(*tasks)
        journal._worker.before_commit = None
    assert seen == [([False] * len(sales), 0)]  # one group; nobody answered, nothing visible
    assert [payment.state for payment in done] == [S.COMPLETED] * len(sales)


async def test_a_failing_statement_fails_its_own_caller_only(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sales = [await drive_to(journal, S.APPROVED, lane=str(i)) for i in range(3)]
    refused = sales[1].id
    conn = sqlite3.connect(tmp_path / "journal.db")
    conn.execute(
        "CREATE TRIGGER refuse_one BEFORE INSERT ON outbox"
        f" WHEN NEW.payment_id = '{refused}' BEGIN SELECT RAISE(ABORT, 'disk said no'); END"
    )
    conn.commit()
    conn.close()
    async with open_journal(tmp_path) as journal:
        commits, _ = journal.commit_counts()
        async with worker_held(journal, len(sales)):
            tasks = tasks_of([journal.complete(sale.id, actor="lane") for sale in sales])
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert journal.commit_counts()[0] == commits + 1
        after = await journal.get(refused)
        events = await journal.events(refused)
        batch = await journal.claim_batch(10)
    assert isinstance(outcomes[1], StorageError) and "disk said no" in str(outcomes[1])
    assert [outcomes[0].state, outcomes[2].state] == [S.COMPLETED, S.COMPLETED]  # type: ignore[union-attr]
    assert after.state is S.APPROVED and events[-1].to_state is S.APPROVED
    assert sorted(item.payment_id for item in batch) == sorted([sales[0].id, sales[2].id])


async def test_a_failing_commit_fails_the_whole_group_and_keeps_nothing(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sales = [await drive_to(journal, S.CREATED, lane=str(i)) for i in range(3)]
    conn = sqlite3.connect(tmp_path / "journal.db")
    conn.execute(
        "CREATE TABLE probe (payment_id TEXT REFERENCES payments(id)"
        " DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.commit()
    conn.close()
    async with open_journal(tmp_path) as journal:
        store = journal._s()

        def dangling() -> None:  # checked by SQLite at COMMIT only (a deferred foreign key)
            store.conn.execute("INSERT INTO probe VALUES ('pay_nobody')")

        async with worker_held(journal, len(sales) + 1):
            calls: list[Awaitable[Any]] = [
                journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="lane")
                for sale in sales
            ]
            calls.insert(1, journal._run(dangling))
            tasks = tasks_of(calls)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
        assert "FOREIGN KEY" in str(outcomes[0])
        states = [(await journal.get(sale.id)).state for sale in sales]
        assert states == [S.CREATED] * len(sales)
        # the journal goes on: the next group commits
        again = await journal.card_read(sales[0].id, masked_pan=MASKED, aid=AID, actor="lane")
    assert again.state is S.CARD_READ
    conn = sqlite3.connect(tmp_path / "journal.db")
    assert conn.execute("SELECT count(*) FROM probe").fetchone() == (0,)
    conn.close()


async def test_calls_after_close_are_refused_and_close_twice_is_fine(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path)
    await journal.close()
    await journal.close()
    with pytest.raises(Exception, match="closed"):
        await journal.get("pay_x")


async def test_a_recent_payment_is_read_from_memory_not_behind_the_queue(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await drive_to(journal, S.APPROVED)
        async with worker_held(journal, 0):
            async with asyncio.timeout(5):  # the worker is busy: only memory can answer
                assert await journal.get(sale.id) == sale
            assert journal.last_committed(sale.id) == sale
        assert await journal.get(sale.id) == sale


async def test_card_read_and_auth_request_share_one_commit_with_both_events(
    tmp_path: Path,
) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await journal.create_sale(lane="1", amount=1250, currency="EUR", actor="lane[1]")
        commits_before = journal.commit_counts()[0]
        asked = await journal.card_read_and_request_auth(
            sale.id, masked_pan=MASKED, aid=AID, actor="lane[1]", reason="cardholder's choice"
        )
        assert journal.commit_counts()[0] == commits_before + 1
        assert asked.state is S.AUTH_REQUESTED and asked.idempotency_key
        assert (asked.masked_pan, asked.aid) == (MASKED, AID)
        events = await journal.events(sale.id)
        assert [(e.from_state, e.to_state) for e in events] == [
            (None, S.CREATED), (S.CREATED, S.CARD_READ), (S.CARD_READ, S.AUTH_REQUESTED),
        ]  # fmt: skip
        assert events[1].reason == "cardholder's choice"
        noted = journal.last_committed(sale.id)  # both changes noted on the loop
        assert noted is not None and noted.state is S.AUTH_REQUESTED
        # a clear PAN is refused before anything is queued; the payment does not move
        other = await journal.create_sale(lane="2", amount=500, currency="EUR", actor="lane[2]")
        with pytest.raises(InvalidRecord):
            await journal.card_read_and_request_auth(
                other.id, masked_pan="4761730000000010", aid=AID, actor="lane[2]"
            )
        assert (await journal.get(other.id)).state is S.CREATED
        # from CARD_READ (a PIN tried again) it is an illegal transition: nothing half-done
        await journal.card_read(other.id, masked_pan=MASKED, aid=AID, actor="lane[2]")
        with pytest.raises(IllegalTransition):
            await journal.card_read_and_request_auth(
                other.id, masked_pan=MASKED, aid=AID, actor="lane[2]"
            )
        assert (await journal.get(other.id)).state is S.CARD_READ
        assert len(await journal.events(other.id)) == 2


async def test_an_offline_approval_from_created_is_one_commit_with_both_events(
    tmp_path: Path,
) -> None:
    read = CardRead(MASKED, AID, "contact", "lane[1]", "cardholder's choice")
    async with open_journal(tmp_path, key=VaultKey(bytes(range(32)))) as journal:
        sale = await journal.create_sale(lane="1", amount=500, currency="EUR", actor="lane[1]")
        commits_before = journal.commit_counts()[0]
        stored = await journal.store_for_forwarding(
            sale.id, request=b'{"pan":"x"}', response_code="Y1", actor="lane[1]", read=read
        )
        assert journal.commit_counts()[0] == commits_before + 1
        assert stored.state is S.STORED_FOR_FORWARDING
        assert (stored.masked_pan, stored.aid, stored.interface) == (MASKED, AID, "contact")
        events = await journal.events(sale.id)
        assert [(e.from_state, e.to_state) for e in events] == [
            (None, S.CREATED), (S.CREATED, S.CARD_READ), (S.CARD_READ, S.STORED_FOR_FORWARDING),
        ]  # fmt: skip
        assert events[1].reason == "cardholder's choice"
        assert await journal.forwarding_request(sale.id) == b'{"pan":"x"}'
        # under the limits: a refusal declines it in the same request, CARD_READ kept
        other = await journal.create_sale(lane="2", amount=900, currency="EUR", actor="lane[2]")
        seen: list[S] = []

        def refuse(payment: Any, _exposure: Any) -> str:
            seen.append(payment.state)
            return "count"

        declined, refusal = await journal.store_for_forwarding_within(
            other.id, request=b"{}", response_code="Y1", actor="lane[2]", admit=refuse,
            read=CardRead(MASKED, AID, "contactless", "lane[2]"),
        )  # fmt: skip
        assert (declined.state, refusal, seen) == (S.DECLINED, "count", [S.CARD_READ])
        assert declined.interface == "contactless"
        assert [e.to_state for e in await journal.events(other.id)] == [
            S.CREATED, S.CARD_READ, S.DECLINED,
        ]  # fmt: skip
        noted = journal.last_committed(other.id)  # both changes noted on the loop
        assert noted is not None and noted.state is S.DECLINED


async def test_a_failed_offline_store_from_created_writes_neither_step(tmp_path: Path) -> None:
    async with Journal.open(tmp_path / "nokey.db") as journal:  # no vault key: the store fails
        sale = await journal.create_sale(lane="1", amount=500, currency="EUR", actor="lane[1]")
        with pytest.raises(VaultKeyError):
            await journal.store_for_forwarding(
                sale.id, request=b"{}", response_code="Y1", actor="lane[1]",
                read=CardRead(MASKED, AID, "contact", "lane[1]"),
            )  # fmt: skip
        assert (await journal.get(sale.id)).state is S.CREATED
        assert len(await journal.events(sale.id)) == 1
        with pytest.raises(InvalidRecord):  # a clear PAN: refused before anything is queued
            await journal.store_for_forwarding(
                sale.id, request=b"{}", response_code="Y1", actor="lane[1]",
                read=CardRead("4761730000000010", AID, "contact", "lane[1]"),
            )  # fmt: skip
        assert len(await journal.events(sale.id)) == 1


async def _group_of(worker: GroupCommitWorker, calls: list[Callable[[], Any]]) -> list[Any]:
    """Submit ``calls`` while the worker is held, so that they run as one group; outcomes."""
    async with held(worker, len(calls)):
        futures = [worker.submit(call) for call in calls]
    return list(await asyncio.gather(*futures, return_exceptions=True))


async def test_a_group_runs_once_without_savepoints_and_again_with_them_if_one_fails(
    tmp_path: Path,
) -> None:
    worker = GroupCommitWorker("test-journal")
    statements: list[str] = []

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "group.db", isolation_level=None)
        conn.execute("CREATE TABLE t (v INTEGER UNIQUE)")
        conn.set_trace_callback(statements.append)
        return conn

    conn = await worker.submit(connect, solo=True)
    worker.conn = conn
    runs: collections.Counter[int] = collections.Counter()

    def insert(value: int) -> Callable[[], int]:
        def call() -> int:
            runs[value] += 1
            conn.execute("INSERT INTO t VALUES (?)", (value,))
            return value

        return call

    try:
        assert await _group_of(worker, [insert(1), insert(2), insert(3)]) == [1, 2, 3]
        assert runs == {1: 1, 2: 1, 3: 1} and worker.commits == 1
        assert not [sql for sql in statements if "SAVEPOINT" in sql]
        statements.clear()
        # 2 again breaks UNIQUE: the plain run is rolled back at 2, the careful run commits 4, 5
        outcomes = await _group_of(worker, [insert(4), insert(2), insert(5)])
        assert outcomes[0] == 4 and outcomes[2] == 5
        assert isinstance(outcomes[1], sqlite3.IntegrityError)
        assert runs == {1: 1, 2: 3, 3: 1, 4: 2, 5: 1} and worker.commits == 2
        savepoints = [sql for sql in statements if sql.startswith("SAVEPOINT")]
        assert savepoints == ["SAVEPOINT request"] * 3  # the careful run alone
        rows = await worker.submit(lambda: conn.execute("SELECT v FROM t ORDER BY v").fetchall())
        assert [v for (v,) in rows] == [1, 2, 3, 4, 5]  # 4 and 5 once each
    finally:
        await worker.submit(conn.close, solo=True)
        worker.stop()
