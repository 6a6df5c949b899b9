"""A void survives a SIGKILL between its journal entry and the reversal.

1. A card sale is completed by the daemon in process (virtual card, simulated acquirer).
2. ``posgw run`` is started as a subprocess on the same journal; the till voids the sale. The
   void is journaled (VOID_PENDING) before the reversal is sent; the acquirer answers the
   reversal with 503 (a server error: nothing reversed, nothing stored), so the void stays
   pending (202) with the reconciler's retry far away.
3. The daemon is killed with SIGKILL.
4. A new daemon starts on the journal: restart recovery finds VOID_PENDING and sends the
   reversal under the same key (``rev-<payment id>``). The sale ends VOIDED and the acquirer's
   ledger shows one charge and one reversal of the same amount: charged zero.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.journal import PaymentState
from simulator.acquirer_host import AcquirerHost
from tests.gateway.acquirer_support import free_port
from tests.gateway.daemon_support import running, slot_name, vault_key_file
from tests.gateway.day.day_support import day_daemon, pay, till_session, wait_until

S = PaymentState
REPO = Path(__file__).resolve().parents[3]


class ReversalsFailFirst(AcquirerHost):
    """The simulated host, answering the first ``failures`` reversal requests with 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reversal_calls = 0
        super().__init__()

    async def _route_reverse(self, request: web.Request) -> web.StreamResponse:
        self.reversal_calls += 1
        if self.failures > 0:
            self.failures -= 1
            return web.json_response({"error": "unavailable"}, status=503)
        return await super()._route_reverse(request)


def _state(journal: Path, payment_id: str) -> str:
    conn = sqlite3.connect(journal)
    try:
        return str(
            conn.execute("SELECT state FROM payments WHERE id = ?", (payment_id,)).fetchone()[0]
        )
    finally:
        conn.close()


async def test_void_after_sigkill_is_resolved_and_charges_nothing(tmp_path: Path) -> None:
    host = ReversalsFailFirst(failures=1)
    url = await host.start()
    slot = slot_name()
    try:
        # 1. a completed sale
        async with till_session(tmp_path) as http:
            async with running(day_daemon(tmp_path, url, [slot])) as daemon:
                sale = await pay(daemon, http, slot, 1300)
            assert sale["state"] == "COMPLETED"
            payment_id = str(sale["id"])
            assert [(e.kind, e.amount) for e in host.ledger] == [("charge", 1300)]

            # 2. posgw run as a subprocess; the void is journaled, its reversal fails
            port = free_port()
            config = tmp_path / "posgw.toml"
            config.write_text(
                f"""shop = "shop-void"
[http]
port = {port}
tls = false
status_login = false
[journal]
path = "journal.db"
[vault]
key_file = "{vault_key_file(tmp_path)}"
[acquirer]
url = "{url}"
merchant_id = "SHOP0001"
max_attempts = 1
retry_interval = 3600
[[lanes]]
id = 1
reader = "sim://{slot_name()}"
"""
            )
            log = tmp_path / "posgw-run.log"
            with log.open("w") as stderr_file:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.daemon.cli", "run", "--config", str(config),
                    cwd=REPO, env={**os.environ}, stdout=asyncio.subprocess.DEVNULL,
                    stderr=stderr_file,
                )  # fmt: skip
            try:
                base = f"http://127.0.0.1:{port}"

                async def up() -> bool:
                    try:
                        async with http.get(f"{base}/api/days/current") as response:
                            return response.status == 200
                    except aiohttp.ClientError:
                        return False

                await wait_until(up, within=30, step=0.1)
                void_url = f"{base}/api/payments/{payment_id}/void"
                async with http.post(void_url, json={}) as response:
                    body = await response.json()
                    assert response.status == 202, body
                assert (body["outcome"], body["state"]) == ("pending", "VOID_PENDING")
                assert _state(tmp_path / "journal.db", payment_id) == "VOID_PENDING"
                assert host.reversal_calls == 1 and [e.kind for e in host.ledger] == ["charge"]

                # 3. SIGKILL: no clean stop, no retry had the time to run
                process.send_signal(signal.SIGKILL)
                async with asyncio.timeout(20):
                    await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.returncode == -signal.SIGKILL, log.read_text()

            # 4. restart: recovery re-sends the reversal under the same key, before ready
            async with running(day_daemon(tmp_path, url, [slot_name()])) as daemon:
                final = await daemon.journal.get(payment_id)
                events = await daemon.journal.events(payment_id)
        assert final.state is S.VOIDED
        assert [e.to_state for e in events][-2:] == [S.VOID_PENDING, S.VOIDED]
        assert events[-2].actor == "till:test-till"  # the till its credential names
        kinds = [(e.kind, e.amount) for e in host.ledger]
        assert kinds == [("charge", 1300), ("reversal", 1300)]
        charged = sum(e.amount for e in host.ledger if e.kind == "charge") - sum(
            e.amount for e in host.ledger if e.kind == "reversal"
        )
        assert charged == 0
        assert host.ledger[1].idempotency_key == f"rev-{payment_id}"
    finally:
        await host.stop()
