"""Crash safety: a child process journals payments and is SIGKILLed at random points.

The child (this file run as a script) recovers what its predecessor left, then runs a random
mix of online sales, declines, timeouts, reversals, offline approvals, forwards, refunds and
outbox sends on the same database file, printing an acknowledgement after every awaited
commit. The parent kills it after a random number of acknowledgements plus a random few
hundred microseconds (so the kill lands inside SQLite's commit path as often as between
commits), 24 times, and after each kill reopens the file and checks the invariants:

* integrity and foreign keys are intact;
* every settled sale (COMPLETED, STORED_FOR_FORWARDING, FORWARDED) has exactly one outbox row,
  no other payment has one, and no outbox row lacks its payment;
* each payment's event log is an unbroken chain of legal transitions from CREATED to its state
  (a host approval journaled with the next step, :meth:`Journal.approve_then`, leaves both
  events or neither);
* vault rows exist exactly for STORED_FOR_FORWARDING payments;
* every acknowledged commit is in the file (durability), and no clear PAN is.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.journal import Action, HostApproval, Journal, PaymentState, load_vault_key
from gateway.journal.states import SETTLED, TRANSITIONS

S = PaymentState
ROOT = Path(__file__).resolve().parents[3]
PAN = "5413330089020011"
REQUEST = b"\x5a\x08" + bytes.fromhex(PAN) + b"\x9f\x26\x08\x01\x02\x03\x04\x05\x06\x07\x08"
KILLS = 24


# -- the child ----------------------------------------------------------------------------------


def _ack(*parts: object) -> None:
    # one write per line: with PYTHONUNBUFFERED print's pieces are separate writes, and a
    # SIGKILL between them would leave half a line
    sys.stdout.write(" ".join(map(str, parts)) + "\n")
    sys.stdout.flush()


async def _resolve(journal: Journal) -> None:
    """What a daemon does with the recovery plan (acquirer answers simulated)."""
    plan = await journal.recover()
    for item in plan.pending:
        pid, state = item.payment.id, item.payment.state
        if item.action is Action.CANCEL:
            _ack("S", pid, (await journal.cancel(pid, actor="recovery", reason="restart")).state)
            continue
        if item.action is Action.FORWARD:
            assert await journal.forwarding_request(pid) == REQUEST
            done = await journal.confirm_forwarded(pid, actor="recovery", response_code="00")
            _ack("S", pid, done.state)
            continue
        if state is S.AUTH_REQUESTED:
            _ack(
                "S",
                pid,
                (await journal.mark_unknown(pid, actor="recovery", reason="restart")).state,
            )
        if state is not S.REVERSAL_PENDING:
            pending = await journal.request_reversal(pid, actor="recovery", reason="unresolved")
            _ack("S", pid, pending.state)
        _ack("S", pid, (await journal.confirm_reversal(pid, actor="recovery")).state)


async def _one_payment(journal: Journal, rng: random.Random, settled: list[str]) -> None:
    sale = await journal.create_sale(
        lane=str(rng.randint(1, 4)),
        amount=rng.randint(100, 9999),
        currency="EUR",
        actor="lane",
        items=[{"sku": f"SKU{rng.randint(1, 50)}", "qty": 1}],
    )
    pid = sale.id
    _ack("S", pid, sale.state)
    _ack(
        "S",
        pid,
        (
            await journal.card_read(
                pid, masked_pan="541333******0011", aid="A0000000041010", actor="reader"
            )
        ).state,
    )
    roll = rng.random()
    if roll < 0.2:
        stored = await journal.store_for_forwarding(
            pid, request=REQUEST, response_code="Y1", actor="kernel"
        )
        _ack("S", pid, stored.state)
        settled.append(pid)
        if rng.random() < 0.5:
            assert await journal.forwarding_request(pid) == REQUEST
            _ack("S", pid, (await journal.confirm_forwarded(pid, actor="forwarder")).state)
        return
    _ack("S", pid, (await journal.request_auth(pid, actor="lane")).state)
    if roll < 0.3:
        _ack("S", pid, (await journal.decline(pid, response_code="05", actor="acq")).state)
        return
    if roll < 0.4:
        _ack("S", pid, (await journal.mark_unknown(pid, actor="lane", reason="timeout")).state)
        return  # left for the next run's recovery (or the next kill)
    if rng.random() < 0.5:  # APPROVED with the next step, one request (as a reader lane does)
        then = S.REVERSAL_PENDING if roll < 0.5 else S.COMPLETED
        approval = HostApproval(auth_code="AB12CD", actor="acq")
        ended = await journal.approve_then(pid, approval, then, actor="lane", reason="card")
        _ack("S", pid, S.APPROVED)
        _ack("S", pid, ended.state)
    else:
        _ack("S", pid, (await journal.approve(pid, auth_code="AB12CD", actor="acq")).state)
        if roll < 0.5:
            ended = await journal.request_reversal(pid, actor="lane", reason="AAC")
        else:
            ended = await journal.complete(pid, actor="lane")
        _ack("S", pid, ended.state)
    if ended.state is S.REVERSAL_PENDING:
        _ack("S", pid, (await journal.confirm_reversal(pid, actor="acq")).state)
        return
    settled.append(pid)


async def _child(db: str, key: str, seed: int, forever: bool) -> None:
    rng = random.Random(seed)
    async with Journal.open(db, vault_key=load_vault_key(key)) as journal:
        await _resolve(journal)
        _ack("R")
        settled: list[str] = []
        while forever:
            await _one_payment(journal, rng, settled)
            if settled and rng.random() < 0.15:
                refund = await journal.create_refund(
                    rng.choice(settled), lane="1", amount=1, actor="lane"
                )
                _ack("S", refund.id, refund.state)
            if rng.random() < 0.3:
                batch = await journal.claim_batch(rng.randint(1, 5), lease=600)
                await journal.mark_sent([item.id for item in batch])
                for item in batch:
                    _ack("O", item.id)


# -- the parent ---------------------------------------------------------------------------------


def _check_invariants(db: Path, acks: list[list[str]]) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        states = {pid: S(state) for pid, state in conn.execute("SELECT id, state FROM payments")}
        outbox: dict[str, int] = {}
        for (pid,) in conn.execute("SELECT payment_id FROM outbox"):
            outbox[pid] = outbox.get(pid, 0) + 1
        assert set(outbox) <= set(states), "outbox row without its payment"
        assert {pid for pid, s in states.items() if s in SETTLED} == set(outbox)
        assert all(count == 1 for count in outbox.values())
        vault = {pid for (pid,) in conn.execute("SELECT payment_id FROM vault")}
        assert vault == {pid for pid, s in states.items() if s is S.STORED_FOR_FORWARDING}
        chains: dict[str, list[tuple[str | None, str]]] = {}
        for pid, old, new in conn.execute(
            "SELECT payment_id, from_state, to_state FROM events ORDER BY seq"
        ):
            chains.setdefault(pid, []).append((old, new))
        assert set(chains) == set(states)
        for pid, chain in chains.items():
            assert chain[0] == (None, "CREATED"), pid
            for (_, previous), (old, new) in itertools.pairwise(chain):
                assert old == previous and S(new) in TRANSITIONS[S(old)], (pid, chain)
            assert chain[-1][1] == states[pid], pid
        reached = {(pid, new) for pid, chain in chains.items() for _, new in chain}
        sent = {rid for (rid,) in conn.execute("SELECT id FROM outbox WHERE sent_ms NOT NULL")}
        for ack in acks:
            if ack[0] == "S":
                assert (ack[1], ack[2]) in reached, f"acknowledged commit lost: {ack}"
            elif ack[0] == "O":
                assert int(ack[1]) in sent, f"acknowledged send lost: {ack}"
    finally:
        conn.close()


def _spawn(db: Path, key: Path, seed: int, forever: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, __file__, str(db), str(key), str(seed), "1" if forever else "0"]
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.timeout(60)
def test_sigkill_at_random_points_keeps_every_invariant(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    key = tmp_path / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    rng = random.Random(20240610)
    total_acks = 0
    for kill in range(KILLS):
        child = _spawn(db, key, seed=kill, forever=True)
        assert child.stdout is not None
        acks: list[list[str]] = []
        wanted = rng.randint(1, 60)
        try:
            while True:
                line = child.stdout.readline()
                if not line:
                    pytest.fail(f"child ended early: {child.stderr.read() if child.stderr else ''}")
                parts = line.split()
                if parts[0] == "R":
                    continue
                acks.append(parts)
                if len(acks) >= wanted:
                    break
            time.sleep(rng.random() * 0.0005)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
            if child.stderr is not None:
                child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        total_acks += len(acks)
        _check_invariants(db, acks)
    assert total_acks >= KILLS

    # A last clean run recovers everything the kills left; nothing needs action afterwards.
    final = _spawn(db, key, seed=KILLS, forever=False)
    out, err = final.communicate(timeout=30)
    assert final.returncode == 0, err
    _check_invariants(db, [line.split() for line in out.splitlines() if line.split()[0] != "R"])

    async def plan_after() -> tuple[int, int]:
        async with Journal.open(db, vault_key=load_vault_key(key)) as journal:
            plan = await journal.recover()
            return len(plan.pending), plan.outbox_unsent

    pending, _unsent = asyncio.run(plan_after())
    assert pending == 0
    conn = sqlite3.connect(db)
    counts = dict(conn.execute("SELECT state, count(*) FROM payments GROUP BY state").fetchall())
    conn.close()
    assert counts.get("COMPLETED", 0) > 0 and counts.get("REVERSED", 0) > 0
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*"))
    assert PAN.encode() not in raw and bytes.fromhex(PAN) not in raw


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"))
