"""A daemon SIGKILLed while its tills pay leaves no payment start without its audit row.

The child (:mod:`tests.gateway.security.audit_child`) is a real daemon (sim:// lanes, the
acquirer host, its journal) whose tills start, cancel and restart payments on three lanes at
once, so the journal's worker commits the sales (each with its ``payment.start`` audit row,
``Journal.create_sale(audit=...)``) and the cancels' rows in groups. The test kills it
(SIGKILL) after a random number of answered starts plus a random fraction of a millisecond,
several times on the same journal, then checks the file:

* every sale a till created (its CREATED event's actor is ``till:...``) has exactly one
  ``payment.start`` row naming it, and every such row names a sale: atomic, in both directions;
* every start the till was answered for (``S <id>``) is in the file;
* the chain verifies (``posgw audit verify``'s check) with its anchor.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

from gateway.journal import audit
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import acquirer_fixture, slot_name

__all__ = ["acquirer_fixture"]

REPO = Path(__file__).resolve().parents[3]
KILLS = 8
LANES = 3

pytestmark = pytest.mark.timeout(120)


async def _run_and_kill(tmp: Path, url: str, slots: list[str], rng: random.Random) -> list[str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.gateway.security.audit_child", str(tmp), url, *slots,
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    answered: list[str] = []
    wanted = rng.randint(3, 40)
    try:
        async with asyncio.timeout(60):
            while len(answered) < wanted:
                line = (await child.stdout.readline()).decode().split()
                assert line, "the child ended before it was killed"
                if line[0] == "S":
                    answered.append(line[1])
        await asyncio.sleep(rng.random() * 0.03)  # a random point in a pay cycle, not a sync
    finally:
        child.kill()  # SIGKILL
        rest = await child.stdout.read()
        await child.wait()
    # only whole lines: the kill may cut the child's last write short
    whole = rest.decode().split("\n")[:-1]
    answered += [line.split()[1] for line in whole if len(line.split()) == 2 and line[0] == "S"]
    assert child.returncode == -9
    return answered


async def test_sigkill_while_tills_pay_leaves_every_sale_with_its_audit_row(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    assert acquirer.url is not None
    slots = [slot_name() for _ in range(LANES)]
    rng = random.Random(20261205)
    answered: list[str] = []
    for _ in range(KILLS):
        answered += await _run_and_kill(tmp_path, acquirer.url, slots, rng)
    conn = sqlite3.connect(tmp_path / "journal.db")
    try:
        till_sales = {
            row[0]
            for row in conn.execute(
                "SELECT payment_id FROM events WHERE to_state = 'CREATED' AND actor LIKE 'till:%'"
            )
        }
        rows = Counter(
            row[0]
            for row in conn.execute("SELECT subject FROM audit WHERE action = 'payment.start'")
        )
        verdict = audit.verify(conn)
    finally:
        conn.close()
    assert set(answered) <= till_sales, "a start answered 202 is missing from the journal"
    assert set(rows) == till_sales, "a sale without its audit row, or a row without its sale"
    assert set(rows.values()) == {1}, "a sale audited twice"
    assert verdict.ok, verdict.reason
    assert len(till_sales) >= KILLS * 3
