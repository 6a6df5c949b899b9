"""Crash safety of group commit: a child with eight concurrent writers is SIGKILLed inside groups.

The child (this file run as a script) recovers what its predecessor left, then runs eight
writers at once (the random payments of :mod:`tests.gateway.journal.test_crash`: online sales,
declines, timeouts, reversals, offline approvals, forwards, refunds, outbox sends), so the
journal's worker commits their transitions in groups. Just before each group's COMMIT the
worker's test seam prints the group: every (payment, state) its transaction added to the event
log. After each acknowledged commit the writer prints an acknowledgement. The parent kills the
child after a random number of acknowledgements plus a random few hundred microseconds, 16
times, and after each kill checks, besides every invariant of the single-writer crash test:

* every acknowledged transition is in the file (no caller was told before its COMMIT);
* every group but the last one printed is in the file whole, and the last one is there whole
  or not at all: no partial group;
* groups of more than one request did happen (the test exercises what it claims to).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.journal import Journal, load_vault_key
from tests.gateway.journal import test_crash as single

ROOT = Path(__file__).resolve().parents[3]
KILLS = 16
WRITERS = 8


# -- the child ----------------------------------------------------------------------------------


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")  # one write: lines from two threads never interleave
    sys.stdout.flush()


async def _child(db: str, key: str, seed: int) -> None:
    single._ack = lambda *parts: _line(" ".join(str(part) for part in parts))
    async with Journal.open(db, vault_key=load_vault_key(key)) as journal:
        await single._resolve(journal)
        store = journal._s()
        newest = "SELECT coalesce(max(seq), 0) FROM events"
        last = await journal._run(lambda: int(store.conn.execute(newest).fetchone()[0]))
        seen = [last]

        def print_group(conn: sqlite3.Connection) -> None:
            rows = conn.execute(
                "SELECT seq, payment_id, to_state FROM events WHERE seq > ? ORDER BY seq",
                (seen[0],),
            ).fetchall()
            if rows:
                seen[0] = rows[-1][0]
                _line("G " + " ".join(f"{pid}:{state}" for _, pid, state in rows))

        journal._worker.before_commit = print_group
        _line("R")

        async def writer(index: int) -> None:
            rng = random.Random(seed * 100 + index)
            settled: list[str] = []
            while True:
                await single._one_payment(journal, rng, settled)
                if settled and rng.random() < 0.15:
                    refund = await journal.create_refund(
                        rng.choice(settled), lane="1", amount=1, actor="lane"
                    )
                    single._ack("S", refund.id, refund.state)
                if rng.random() < 0.2:
                    batch = await journal.claim_batch(rng.randint(1, 5), lease=600)
                    await journal.mark_sent([item.id for item in batch])
                    for item in batch:
                        single._ack("O", item.id)

        await asyncio.gather(*(writer(index) for index in range(WRITERS)))


# -- the parent ---------------------------------------------------------------------------------


def _check_groups(db: Path, groups: list[list[tuple[str, str]]]) -> None:
    conn = sqlite3.connect(db)
    try:
        reached = set(conn.execute("SELECT payment_id, to_state FROM events").fetchall())
    finally:
        conn.close()
    for number, group in enumerate(groups):
        present = [change in reached for change in group]
        if number < len(groups) - 1:
            assert all(present), f"a committed group lost changes: {group}"
        else:
            assert all(present) or not any(present), f"a partial group in the file: {group}"


def _spawn(db: Path, key: Path, seed: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, __file__, str(db), str(key), str(seed)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.timeout(90)
def test_sigkill_inside_groups_loses_no_acknowledged_commit_and_no_group_half(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.db"
    key = tmp_path / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    rng = random.Random(20261205)
    largest_group = 0
    for kill in range(KILLS):
        child = _spawn(db, key, seed=kill)
        assert child.stdout is not None
        acks: list[list[str]] = []
        groups: list[list[tuple[str, str]]] = []
        wanted = rng.randint(5, 120)
        try:
            while len(acks) < wanted:
                line = child.stdout.readline()
                if not line:
                    pytest.fail(f"child ended early: {child.stderr.read() if child.stderr else ''}")
                parts = line.split()
                if parts[0] == "G":
                    groups.append([tuple(item.split(":")) for item in parts[1:]])  # type: ignore[misc]
                elif parts[0] != "R":
                    acks.append(parts)
            time.sleep(rng.random() * 0.0005)
        finally:
            child.send_signal(signal.SIGKILL)
            # what the child printed before it died: groups whose COMMIT may have begun
            rest, _ = child.communicate()
        for line in rest.splitlines():
            parts = line.split()
            if parts and parts[0] == "G":
                groups.append([tuple(item.split(":")) for item in parts[1:]])  # type: ignore[misc]
            elif parts and parts[0] != "R":
                acks.append(parts)
        assert child.returncode == -signal.SIGKILL
        single._check_invariants(db, acks)
        _check_groups(db, groups)
        largest_group = max([largest_group, *(len(group) for group in groups)])
    assert largest_group > 1, "no group of several transitions was ever committed"


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2], int(sys.argv[3])))
