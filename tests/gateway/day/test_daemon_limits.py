"""Store-and-forward limits through the daemon: 500 card payments with the acquirer down.

Four ``sim://`` lanes pay at once; the acquirer's port is closed, so every sale is approved by
the card offline ("unable to go online", EMV 4.4 Book 3, 10.7) and offered to the store-and-
forward limits. Each phase of 125 payments meets one limit, and the daemon must stop taking
offline sales *exactly* there, whatever the interleaving of the lanes (the check and the store
are one journal call):

1. count: ``max_count = 30`` -> 30 stored, 95 declined (8A Z3, reason ``count``);
2. total: room for 25 more sales of 12.00 -> 25 stored, 100 declined (``total_amount``);
3. per-sale maximum 15.00: sales of 15.00 and 15.01 alternate -> 63 stored, 62 declined;
4. age: the oldest held sale is older than ``max_age`` -> nothing stored.

Once a limit is reached the lane asks the card for no offline approval (the kernel runs with no
floor limit: the Default action codes decline, EMV 4.4 Book 3, 10.6.1 and 10.7); an approval
that still comes is refused at the store. Phases 2-4 change the limits in the running daemon's
gate (the same object the configuration built), and phase 4 moves the daemon's injected clock
two hours on. Then the acquirer comes back and the queue drains: every stored sale is forwarded
exactly once (one ledger entry each), the vault is empty, and all 500 payments are accounted for.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp

from gateway.daemon.daemon import Daemon
from gateway.day.limits import OfflineLimits
from gateway.journal import PaymentState
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import fixed_env, make_config, running, slot_name
from tests.gateway.day.day_support import pay, till_session, wait_until

S = PaymentState
LANES = 4
HOUR_MS = 3_600_000


class Clock:
    """The daemon's clock, movable by the test (seconds since the epoch)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def _phase(
    daemon: Daemon, http: aiohttp.ClientSession, slots: list[str], amounts: list[int]
) -> list[dict[str, object]]:
    """Pay ``amounts`` over the lanes at once (each lane one payment at a time)."""
    queues: list[list[int]] = [amounts[i::LANES] for i in range(LANES)]

    async def lane_run(index: int) -> list[dict[str, object]]:
        return [
            await pay(daemon, http, slots[index], amount, lane=index + 1)
            for amount in queues[index]
        ]

    results = await asyncio.gather(*(lane_run(i) for i in range(LANES)))
    return [r for lane in results for r in lane]


def _split(results: list[dict[str, object]]) -> tuple[int, dict[str, int]]:
    stored = sum(1 for r in results if r["state"] == "STORED_FOR_FORWARDING")
    refused: dict[str, int] = {}
    for r in results:
        if r["state"] == "STORED_FOR_FORWARDING":
            continue
        assert r["state"] == "DECLINED" and r["response_code"] == "Z3", r
        reason = str(r["reason"])
        assert reason.startswith("offline limit: "), reason
        kind = reason.removeprefix("offline limit: ").split(":", 1)[0]
        refused[kind] = refused.get(kind, 0) + 1
    return stored, refused


async def test_500_payments_stop_offline_exactly_at_each_limit_then_drain(
    tmp_path: Path,
) -> None:
    down = AcquirerHost()
    url = await down.start()
    port = int(url.rsplit(":", 1)[1])
    await down.stop()
    slots = [slot_name() for _ in range(LANES)]
    limits = {"max_transaction": "100.00", "max_total": "100000.00", "max_count": 30,
              "max_age_hours": 24}  # fmt: skip
    config = make_config(
        tmp_path, url, slots, store_and_forward={"EUR": limits},
        acquirer={"retry_interval": 0.2},
    )  # fmt: skip
    clock = Clock()
    daemon = Daemon(config, env=fixed_env, environ={}, clock=clock)
    total_results: list[dict[str, object]] = []
    async with till_session(tmp_path) as http, running(daemon):
        gate = daemon.offline_gate
        assert gate is not None and gate.limits["EUR"].max_count == 30

        results = await _phase(daemon, http, slots, [1000] * 125)
        assert _split(results) == (30, {"count": 95})
        total_results += results
        assert (await daemon.day_snapshot())["offline"]["EUR"]["stopped"] == "count"

        gate.limits["EUR"] = OfflineLimits(
            "EUR", 10_000, 30 * 1000 + 25 * 1200, 10_000, 24 * HOUR_MS
        )
        results = await _phase(daemon, http, slots, [1200] * 125)
        assert _split(results) == (25, {"total_amount": 100})
        total_results += results

        gate.limits["EUR"] = OfflineLimits("EUR", 1500, 10**9, 10_000, 24 * HOUR_MS)
        results = await _phase(daemon, http, slots, [1500, 1501] * 62 + [1500])
        stored, refused = _split(results)
        assert (stored, refused) == (63, {"transaction_maximum": 62})
        assert all(r["amount"] == 1500 for r in results if r["state"] == "STORED_FOR_FORWARDING")
        total_results += results

        gate.limits["EUR"] = OfflineLimits("EUR", 10_000, 10**9, 10_000, HOUR_MS)
        clock.offset = 2 * 3600.0
        results = await _phase(daemon, http, slots, [1000] * 125)
        assert _split(results) == (0, {"age": 125})
        total_results += results
        money = (await daemon.day_snapshot())
        assert money["offline"]["EUR"]["count"] == 118
        assert money["offline"]["EUR"]["stopped"] == "age"

        # the acquirer is back: the queue drains, nothing lost, nothing sent twice
        host = AcquirerHost()
        await host.start(port=port)
        try:

            async def drained() -> bool:
                return not await daemon.journal.offline_exposure()

            await wait_until(drained, within=60)
            forwarded_ids = {str(r["id"]) for r in total_results
                             if r["state"] == "STORED_FOR_FORWARDING"}  # fmt: skip
            assert len(forwarded_ids) == 118
            assert len(host.ledger) == 118  # one forward each, charge or decline
            assert len({e.idempotency_key for e in host.ledger}) == 118
            finals = {pid: (await daemon.journal.get(pid)).state for pid in forwarded_ids}
            assert set(finals.values()) <= {S.FORWARDED, S.FORWARD_DECLINED}
            assert await daemon.journal.vault_rows_by_key() == {}
        finally:
            await host.stop()
    assert len(total_results) == 500
    # The EMV way: once a limit is reached the lane runs the kernel with no floor limit, the
    # Default action codes ask for an AAC and the card declines; a card whose codes still allow
    # a TC (or a race between lanes before the store) is refused at the store.
    by_card = [r for r in total_results if "card declined at completion" in str(r["reason"])]
    assert len(by_card) > 300
    conn = sqlite3.connect(tmp_path / "journal.db")
    try:
        states = dict(conn.execute("SELECT state, count(*) FROM payments GROUP BY state"))
    finally:
        conn.close()
    assert sum(states.values()) == 500
    assert states.get("DECLINED") == 382
    assert states.get("FORWARDED", 0) + states.get("FORWARD_DECLINED", 0) == 118
