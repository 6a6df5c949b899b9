"""The status snapshot's day figures come from memory and equal a fresh count of the journal.

The daemon with a sim:// lane and the real acquirer host takes a mixed day: an online approval,
an issuer decline, an offline approval (forwarded later), a refund through the till API; it is
stopped and started again on the same journal (the figures are rebuilt at start), and takes
more. After each step ``snapshot()["journal"]`` equals a count of the journal file written in
the test; a busy lane's payment state is the one its last COMMIT left, and the snapshot is
taken while the journal's worker is held busy (it reads nothing from the journal).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import aiohttp

from drivers import sim as drivers_sim
from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)
from tests.gateway.journal.test_figures import fresh_count

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState


async def _pay(till: Till, slot: str, amount: int) -> dict[str, Any]:
    status, body = await till.pay(1, amount)
    assert status == 202
    await till.wait_prompt(1, "PRESENT CARD")
    insert_card(slot)
    result = await till.get(str(body["id"]), wait=10)
    drivers_sim.slot(slot).remove()  # the cardholder takes the card back
    return result


async def _forwarded(daemon: Daemon, payment_id: str) -> S:
    async with asyncio.timeout(10):
        while True:  # the forwarder works behind the till's answer: poll, bounded
            state = (await daemon.journal.get(payment_id)).state
            if state is not S.STORED_FOR_FORWARDING:
                return state
            await asyncio.sleep(0.05)


async def _figures_match(daemon: Daemon, db: Path) -> dict[str, int]:
    shown = (await daemon.snapshot()).to_json()["journal"]
    counted = fresh_count(db, daemon.journal.figures.read().day_start_ms)
    assert (
        shown["payments_today"],
        shown["approved_today"],
        shown["declined_today"],
        shown["refunds_today"],
        shown["outbox_backlog"],
    ) == (
        counted.payments,
        counted.approved,
        counted.declined,
        counted.refunds,
        counted.outbox_backlog,
    ), (shown, counted)
    return dict(shown)


async def test_day_figures_equal_a_fresh_count_across_a_mixed_day_and_a_restart(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    assert acquirer.url is not None
    db = tmp_path / "journal.db"
    slot = slot_name()
    config = make_config(tmp_path, acquirer.url, [slot])
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        approved = await _pay(till, slot, 1250)
        assert approved["state"] == "COMPLETED"
        await _figures_match(daemon, db)
        acquirer.faults.decline_all = True
        assert (await _pay(till, slot, 1250))["state"] == "DECLINED"
        acquirer.faults.decline_all = False
        await _figures_match(daemon, db)
        offline = await _pay(till, slot, 500)
        assert offline["offline"] is True
        # forwarded: FORWARDED when the host charged it, FORWARD_DECLINED when it declined it
        # (the simulated issuer declines a forwarded TC today); the figures follow either
        kind = await _forwarded(daemon, str(offline["id"]))
        assert kind in (S.FORWARDED, S.FORWARD_DECLINED)
        await _figures_match(daemon, db)
        url = f"{till.base}/api/payments/{approved['id']}/refunds"
        async with http.post(url, json={"amount": 300, "reference": "R-1"}) as response:
            assert response.status == 201, await response.text()
        before = await _figures_match(daemon, db)
        # a busy lane: its payment's state is the one its last COMMIT left (CREATED here)
        status, busy = await till.pay(1, 700)
        assert status == 202
        await till.wait_prompt(1, "PRESENT CARD")
        # ... and the snapshot reads memory only: with the journal's worker held busy, it
        # still answers at once
        started, gate = threading.Event(), threading.Event()

        def hold() -> None:
            started.set()
            gate.wait(10)

        blocker = daemon.journal._worker.submit(hold, solo=True)
        try:
            assert await asyncio.to_thread(started.wait, 10)
            async with asyncio.timeout(2):
                snapshot = await daemon.snapshot()
        finally:
            gate.set()
            await blocker
        (lane,) = [item for item in snapshot.lanes if item.id == 1]
        assert lane.payment is not None and lane.payment.id == busy["id"]
        assert lane.payment.state == "CREATED"
        assert snapshot.journal.payments_today == 4
        assert await till.cancel(str(busy["id"])) == 202
        await till.get(str(busy["id"]), wait=10)
        before = await _figures_match(daemon, db)
    assert (before["payments_today"], before["approved_today"]) == (4, 2)
    assert (before["declined_today"], before["refunds_today"]) == (1, 1)

    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        assert await _figures_match(daemon, db) == before  # rebuilt at start
        till = Till(http, daemon.http_port)
        assert (await _pay(till, slot, 1250))["state"] == "COMPLETED"
        after = await _figures_match(daemon, db)
    assert after["payments_today"] == 5 and after["approved_today"] == 3
