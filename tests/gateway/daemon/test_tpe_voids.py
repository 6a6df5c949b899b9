"""Voids of sales taken on TPE lanes: the terminal's own cancellation, journaled first.

Real parts: virtual Concert V2 and Caisse-AP terminals on ptys and over TCP
(tests/gateway/tpe_support.py), the daemon with its till API over HTTP, and for the crash test
``posgw run`` as a subprocess killed with SIGKILL. The virtual terminal cancels the debit the
void names (amount and reference) and counts what stays taken from cards
(``TerminalBrain.net_charged``), which must end at zero after a void, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway.journal import PaymentState
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost
from tests.gateway.acquirer_support import free_port
from tests.gateway.daemon.test_tpe_lanes import pay, states, tpe_daemon
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    http_fixture,
    running,
    till_token,
    vault_key_file,
)
from tests.gateway.day.day_support import wait_until
from tests.gateway.tpe_support import KINDS, Rig, start_rig

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
REPO = Path(__file__).resolve().parents[3]


@pytest_asyncio.fixture(params=KINDS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    made = await start_rig(request.param)
    try:
        yield made
    finally:
        await made.tpe.stop()


async def void(http: aiohttp.ClientSession, base: str, payment_id: str) -> tuple[int, Any]:
    async with http.post(f"{base}/api/payments/{payment_id}/void",
                         json={"reason": "wrong amount"}) as response:
        return response.status, await response.json()


async def test_a_void_is_the_terminal_s_cancellation_of_the_debit(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, rig: Rig) -> None:
    daemon = tpe_daemon(tmp_path, acquirer, rig.url)
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        sale = await pay(till, 1250)
        other = await pay(till, 700)  # stays taken
        status, body = await void(http, till.base, sale["id"])
        again, refused = await void(http, till.base, sale["id"])
        events = await daemon.journal.events(sale["id"])
        other_state = (await daemon.journal.get(other["id"])).state
        eod_status = 0
        if rig.kind != "pty-concert-v2":  # Caisse-AP's remittance: the void left the totals
            async with http.post(f"{till.base}/api/lanes/1/end-of-day", json={}) as response:
                eod_status, eod = response.status, await response.json()
    assert status == 200, body
    assert (body["outcome"], body["state"], body["amount"]) == ("voided", "VOIDED", 1250)
    assert [e.to_state for e in events][-3:] == [S.COMPLETED, S.VOID_PENDING, S.VOIDED]
    assert events[-2].actor.startswith("till:") and "wrong amount" in events[-2].reason
    assert events[-1].reason == "cancelled by the terminal"
    assert (again, refused["error"]) == (409, "not_voidable")  # VOIDED: nothing sent again
    assert [p.amount for p in rig.brain.cancelled] == [1250]
    assert [p.action for p in rig.brain.processed].count("cancellation") == 1
    assert rig.brain.net_charged == 700 and other_state is S.COMPLETED
    if eod_status:
        assert eod_status == 200, eod
        assert (eod["transactions"], eod["debits"]) == (1, 700)
    assert acquirer.ledger == []  # the terminal's host, never ours


async def test_a_void_the_terminal_refuses_leaves_the_sale_standing(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    rig = await start_rig("tcp-caisse-ap")
    try:
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        daemon.authorise = allow_as("manager:alice")
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            sale = await pay(till, 1250)
            # the terminal remitted its day: a remitted debit cannot be cancelled, only refunded
            async with http.post(f"{till.base}/api/lanes/1/end-of-day", json={}) as response:
                assert response.status == 200
            status, body = await void(http, till.base, sale["id"])
            after = await daemon.journal.get(sale["id"])
            events = await daemon.journal.events(sale["id"])
            async with http.post(f"{till.base}/api/days/close", json={}) as response:
                day = await response.json()
                assert response.status == 201, day
            batch = await daemon.journal.claim_batch(10)
    finally:
        await rig.tpe.stop()
    assert (status, body["error"]) == (409, "void_refused"), body
    assert "refused by the terminal" in body["message"]
    assert after.state is S.COMPLETED
    assert [e.to_state for e in events][-3:] == [S.COMPLETED, S.VOID_PENDING, S.COMPLETED]
    assert rig.brain.net_charged == 1250 and rig.brain.cancelled == []
    # the sale counts as taken again: the day's totals have it, once, and head office one record
    totals = {t["kind"]: (t["count"], t["amount"])
              for t in day["record"]["totals"] if t["dimension"] == "all"}  # fmt: skip
    assert totals["sales"] == (1, 1250) and "voids" not in totals
    assert [item.payment_id for item in batch] == [sale["id"]]


def _state(journal: Path, payment_id: str) -> str:
    conn = sqlite3.connect(journal)
    try:
        return str(conn.execute("SELECT state FROM payments WHERE id = ?",
                                (payment_id,)).fetchone()[0])  # fmt: skip
    finally:
        conn.close()


@pytest.mark.parametrize(("kind", "moment"), [
    ("tcp-caisse-ap", "before_the_terminal_acts"),
    ("tcp-caisse-ap", "after_the_terminal_acted"),
    ("pty-concert-v2", "after_the_terminal_acted"),
])
async def test_a_tpe_void_after_sigkill_is_settled_from_the_terminal_and_charges_nothing(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, kind: str,
        moment: str) -> None:
    """``posgw run`` journals the void (VOID_PENDING) and is SIGKILLed before the terminal's
    answer is journaled: either the terminal never acted on the cancellation (it is silent, as
    if the request had not been sent), or it cancelled the debit and the answer died with the
    process. The restarted daemon settles the void from the terminal (Caisse-AP duplicate, CD 3):
    VOIDED, sent once or not again, the card charged zero. Concert V2 cannot tell after a
    restart: the cancellation sent again is refused (the debit is gone), and the void stays
    VOID_PENDING for the manager, never guessed; the card is charged zero all the same."""
    rig = await start_rig(kind)
    try:
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        async with running(daemon):
            sale = await pay(Till(http, daemon.http_port or 0), 1250)
        payment_id = str(sale["id"])
        port = free_port()
        config = tmp_path / "posgw.toml"
        config.write_text(f"""shop = "shop-test"
[http]
host = "127.0.0.1"
port = {port}
tls = false
status_login = false
[journal]
path = "{tmp_path / 'journal.db'}"
[vault]
key_file = "{vault_key_file(tmp_path)}"
[acquirer]
url = "{acquirer.url}"
merchant_id = "SHOP0001"
max_attempts = 1
[timeouts]
transaction = 10.0
[[lanes]]
id = 1
reader = "{rig.url}"
""")
        assert till_token(tmp_path)  # the till registered in this journal by tpe_daemon
        log = tmp_path / "posgw-run.log"
        with log.open("w") as stderr_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.daemon.cli", "run", "--config", str(config),
                cwd=REPO, env={**os.environ}, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr_file)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"

            async def up() -> bool:
                try:
                    async with http.get(f"{base}/api/days/current") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(up, within=30, step=0.1)
            if moment == "before_the_terminal_acts":
                rig.tpe.faults.silent = True  # takes the request, never acts on it
                status, body = await void(http, base, payment_id)
                assert status == 202, body  # sent, no answer: in doubt
                assert (body["outcome"], body["state"]) == ("pending", "VOID_PENDING")
            else:
                def kill_when_decided(stage: str) -> None:
                    if stage == "decided":  # cancelled at the terminal, answer not out yet
                        process.send_signal(signal.SIGKILL)

                rig.brain.on_stage = kill_when_decided
                with contextlib.suppress(aiohttp.ClientError):
                    await void(http, base, payment_id)  # the daemon dies under it
            assert _state(tmp_path / "journal.db", payment_id) == "VOID_PENDING"
            process.send_signal(signal.SIGKILL)
            async with asyncio.timeout(20):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == -signal.SIGKILL, log.read_text()
        rig.brain.on_stage = None
        rig.tpe.faults.silent = False
        cancelled_before = len(rig.brain.cancelled)

        restarted = tpe_daemon(tmp_path, acquirer, rig.url)
        async with running(restarted):
            till = Till(http, restarted.http_port or 0)

            async def settled() -> bool:
                if (await restarted.journal.get(payment_id)).state is S.VOIDED:
                    return True
                return payment_id in (await till.lanes())["lanes"][0]["for_manager"]

            await wait_until(settled, within=20)
            trail = await states(restarted, payment_id)
            events = await restarted.journal.events(payment_id)
            for_manager = (await till.lanes())["lanes"][0]["for_manager"]
            if kind == "pty-concert-v2":  # the manager reads the cancellation on the roll
                restarted.authorise = allow_as("manager:alice")
                async with http.post(f"{till.base}/api/payments/{payment_id}/settle", json={
                        "outcome": "approved", "reason": "cancellation on the receipt roll",
                }) as response:  # fmt: skip
                    by_hand = response.status, await response.json()
                by_hand_events = await restarted.journal.events(payment_id)
    finally:
        await rig.tpe.stop()
    assert cancelled_before == (0 if moment == "before_the_terminal_acts" else 1)
    assert [p.amount for p in rig.brain.cancelled] == [1250]  # cancelled once, never twice
    assert rig.brain.net_charged == 0
    assert acquirer.ledger == []
    sent = [p.action for p in rig.brain.processed].count("cancellation")
    if kind == "pty-concert-v2":
        assert trail[-2:] == [S.COMPLETED, S.VOID_PENDING] and for_manager == [payment_id]
        assert sent == 2  # sent again after the restart, refused: nothing left to cancel
        assert by_hand == (200, {"id": payment_id, "state": "VOIDED", "by": "manager:alice"})
        assert (by_hand_events[-1].to_state, by_hand_events[-1].actor) == (S.VOIDED,
                                                                          "manager:alice")
        return
    assert trail[-3:] == [S.COMPLETED, S.VOID_PENDING, S.VOIDED] and for_manager == []
    assert events[-1].actor == "terminal-recovery"
    assert sent == 1
