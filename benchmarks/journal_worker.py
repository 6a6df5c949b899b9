"""The journal's worker against its floor: what the thread, the hop and the group cost.

In ``lanes.py`` the journal's worker thread takes 0.8-1.0 ms of CPU per payment, about a fifth
of the daemon's. This benchmark splits that figure, on a real file under ``synchronous=FULL``:

* **the journal**: ``--lanes`` tasks paying at once through :class:`gateway.journal.Journal`,
  the payment path's calls as a reader lane makes them: the sale with its till's audit row;
  online (two of three), CARD_READ with AUTH_REQUESTED, then APPROVED with COMPLETED; offline
  (one of three), CARD_READ with STORED_FOR_FORWARDING and its sealed request. The worker
  thread's CPU and the loop's (the hop, the futures, what each commit notes in memory), per
  payment, and the ``COMMIT`` s it took;
* **the floor**, in the same process: the same :class:`gateway.journal.store.Store` calls in
  one thread, no worker, no hop, no savepoint, in transactions of the size the journal's groups
  had (so as many ``COMMIT`` s, as many ``fsync`` s): what SQLite and the store's own Python
  cost. ``journal_over_floor_cpu`` is the journal's CPU per payment over the floor's.

With one lane every request is a group of its own (the per-``COMMIT`` cost shows); with 16 the
groups are large (the per-request cost shows). Prints ``name: value unit`` lines.

    .venv/bin/python benchmarks/journal_worker.py [--payments 2000] [--lanes 1 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.journal import HostApproval, Journal, PaymentKind, PaymentState, VaultKey
from gateway.journal.audit import AuditNote
from gateway.journal.card_read import CardRead
from gateway.journal.schema import configure, migrate
from gateway.journal.store import Store, Via

S = PaymentState
MASKED, AID = "476173******0119", "A0000000031010"
#: What a forward carries, sealed (the size of a real request's JSON, no card data needed here).
REQUEST = b'{"amount":500,"currency":978,"icc_data":"' + b"9F" * 120 + b'"}'


def _thread_cpu(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _audit(lane: int) -> AuditNote:
    return AuditNote("till:bench", "payment.start", "ok", "", {"lane": lane, "amount": 1250})


async def _lane(journal: Journal, lane: int, payments: int) -> None:
    actor = f"lane[{lane}]"
    for index in range(payments):
        sale = await journal.create_sale(
            lane=str(lane), amount=1250, currency="EUR", actor="till:bench", audit=_audit(lane)
        )
        if index % 3 == 2:
            await journal.store_for_forwarding(
                sale.id, request=REQUEST, response_code="Y1", actor=actor,
                read=CardRead(MASKED, AID, "contact", actor),
            )  # fmt: skip
            continue
        await journal.card_read_and_request_auth(
            sale.id, masked_pan=MASKED, aid=AID, actor=actor, interface="contact"
        )
        await journal.approve_then(sale.id, HostApproval("123456"), S.COMPLETED, actor=actor)


async def journal_run(path: Path, key: VaultKey, lanes: int, per_lane: int) -> dict[str, float]:
    """The journal under ``lanes`` paying tasks: CPU per payment, commits, requests."""
    async with Journal.open(path, vault_key=key) as journal:
        worker = next(t for t in threading.enumerate() if t.name == "posgw-journal")
        assert worker.native_id is not None
        await asyncio.gather(*(_lane(journal, lane, 3) for lane in range(lanes)))  # warm
        commits, requests = journal.commit_counts()
        worker_cpu, loop_cpu = _thread_cpu(worker.native_id), time.thread_time()
        await asyncio.gather(*(_lane(journal, lane, per_lane) for lane in range(lanes)))
        worker_cpu = _thread_cpu(worker.native_id) - worker_cpu
        loop_cpu = time.thread_time() - loop_cpu
        after = journal.commit_counts()
    done = lanes * per_lane
    return {
        "worker": worker_cpu / done,
        "loop": loop_cpu / done,
        "commits": (after[0] - commits) / done,
        "requests": (after[1] - requests) / done,
    }


def _payment_calls(store: Store, index: int) -> list[Callable[[], Any]]:
    """One payment's requests as the journal queues them (each a call on the store)."""
    actor = "lane[1]"
    created: list[str] = []

    def create() -> None:
        sale = store.create(kind=PaymentKind.SALE, lane="1", amount=1250, currency="EUR",
                            actor="till:bench", items=None, refund_of=None)  # fmt: skip
        _audit(1).append_to(store.conn, at_ms=store.now_ms(), subject=sale.id,
                            keys=store.audit_keys)  # fmt: skip
        created.append(sale.id)

    def read_and(new: PaymentState, **extra: Any) -> Callable[[], None]:
        def both() -> None:  # CARD_READ passed through, as the journal's calls do
            read = Via(S.CARD_READ, actor, "", CardRead(MASKED, AID, "contact", actor).updates())
            store.transition(created[0], new, actor=actor, via=read, **extra)

        return both

    if index % 3 == 2:
        return [create, read_and(S.STORED_FOR_FORWARDING, updates={"response_code": "Y1"},
                                 vault_plaintext=REQUEST)]  # fmt: skip

    def approve_then_complete() -> None:
        approved = Via(S.APPROVED, "acquirer", "", {"auth_code": "123456", "response_code": "00"})
        store.transition(created[0], S.COMPLETED, actor=actor, via=approved)

    return [create, read_and(S.AUTH_REQUESTED, new_key=True), approve_then_complete]


def floor_run(path: Path, key: VaultKey, payments: int, group: float) -> float:
    """The same store calls on this thread in transactions of ``group`` requests on average;
    CPU seconds per payment."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    configure(conn)
    migrate(conn)
    store = Store(conn, clock=time.time, random_bytes=os.urandom, vault_key=key)
    calls = [call for index in range(payments) for call in _payment_calls(store, index)]
    start = time.thread_time()
    done, owed = 0, 0.0
    while done < len(calls):
        owed += group
        take = max(1, int(owed))
        owed -= take
        conn.execute("BEGIN IMMEDIATE")
        for call in calls[done : done + take]:
            call()
        conn.execute("COMMIT")
        done += take
    cpu = time.thread_time() - start
    conn.close()
    return cpu / payments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000, help="payments per run")
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    key = VaultKey(os.urandom(32))
    for lanes in args.lanes:
        with tempfile.TemporaryDirectory(prefix="posgw-bench-journal-") as tmp:
            per_lane = max(1, args.payments // lanes)
            got = asyncio.run(journal_run(Path(tmp) / "journal.db", key, lanes, per_lane))
            group = got["requests"] / got["commits"]
            floor = floor_run(Path(tmp) / "floor.db", key, lanes * per_lane, group)
        total = got["worker"] + got["loop"]
        name = f"journal_{lanes}_lanes"
        print(f"{name}_requests_per_commit: {group:.2f} requests")
        print(f"{name}_commits_per_payment: {got['commits']:.2f} commits")
        print(f"{name}_worker_cpu_per_payment: {got['worker'] * 1e3:.3f} ms")
        print(f"{name}_loop_cpu_per_payment: {got['loop'] * 1e3:.3f} ms")
        print(f"{name}_floor_cpu_per_payment: {floor * 1e3:.3f} ms")
        print(f"{name}_over_floor_cpu: {total / floor:.2f} x")


if __name__ == "__main__":
    main()
