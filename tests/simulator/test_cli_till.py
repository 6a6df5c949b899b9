"""``posgw-sim till`` driving the daemon: pay (following the lane's events), refund, cancel;
void (a refunded sale: refused) and close-day (a manager's action: refused to a till); the
bearer token sent.

The daemon runs in process with a ``sim://`` lane and the simulator's acquirer host
(tests/gateway/daemon_support.py); the till is a real ``posgw-sim till`` process talking HTTP
and Server-Sent Events to it; the card is inserted when the till prints "Present card".
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    running,
    slot_name,
    till_token,
)
from tests.gateway.security.tls_support import tls_config
from tests.simulator.sandbox_support import SIM, env, run_sim

__all__ = ["acquirer_fixture", "http_fixture"]


class TillProcess:
    """``posgw-sim till ... pay`` as a process whose output lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> TillProcess:
        proc = await asyncio.create_subprocess_exec(
            SIM, "till", *args, env=env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def until(self, text: str, within: float = 20) -> str:
        """Read lines until one contains ``text``; returns it."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    err = await self.proc.stderr.read() if self.proc.stderr else b""
                    raise AssertionError(f"till ended: {self.lines} {err.decode()}")
                self.lines.append(line.rstrip("\n"))
                if text in line:
                    return line

    async def finish(self, within: float = 30) -> int:
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            rest = await self.proc.stdout.read()
            self.lines += rest.decode().splitlines()
            return await self.proc.wait()


async def test_till_cli_pays_refunds_and_cancels_on_the_daemon(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    slot = slot_name()
    assert acquirer.url is not None
    daemon = Daemon(tls_config(tmp_path, acquirer.url, [slot]), env=fixed_env, environ={})
    async with running(daemon):
        # over TLS, trusting the daemon's self-signed certificate, with the test till's token
        url = f"https://127.0.0.1:{daemon.http_port}"
        target = ["--url", url, "--token", till_token(tmp_path), "--ca-file",
                  str(tmp_path / "http.crt")]  # fmt: skip

        # a payment, human output: the prompts as the customer reads them, then the outcome
        till = await TillProcess.start(*target, "pay", "--lane", "1", "--amount", "12.50",
                                       "--reference", "R-1")  # fmt: skip
        await till.until("Present card")
        insert_card(slot)
        assert await till.finish() == 0, till.lines
        assert "Processing, please wait" in till.lines
        assert any(line.startswith("APPROVED") for line in till.lines), till.lines
        assert not any("4761739001010010" in line for line in till.lines)
        sale_id = next(line.split()[1].rstrip(":") for line in till.lines
                       if line.startswith("payment "))  # fmt: skip
        drivers_remove(slot)

        # the same reference again: the sale is replayed, nothing charged twice
        code, out, _ = await run_sim("till", *target, "--json", "pay", "--lane", "1",
                                     "--amount", "12.50", "--reference", "R-1")  # fmt: skip
        assert code == 0
        assert json.loads(out.splitlines()[-1])["result"]["id"] == sale_id
        assert len(acquirer.charges) == 1

        # a refund of part of it
        code, out, err = await run_sim("till", *target, "--json", "refund", sale_id,
                                       "--amount", "5.00")  # fmt: skip
        assert code == 0, err
        refund = json.loads(out)["result"]
        assert (refund["state"], refund["amount"]) == ("COMPLETED", 500)
        assert [e.kind for e in acquirer.ledger] == ["charge", "refund"]

        # a payment cancelled while the lane waits for the card, JSON lines output
        till = await TillProcess.start(*target, "--json", "pay", "--lane", "1",
                                       "--amount", "3.00")  # fmt: skip
        created = json.loads(await till.until('"created"'))
        await till.until('"PRESENT CARD"')
        code, _, err = await run_sim("till", *target, "cancel", created["payment"])
        assert code == 0, err
        assert await till.finish() == 1
        events = [json.loads(line) for line in till.lines]
        assert events[-1]["result"]["outcome"] == "cancelled"
        assert next(e["prompt"] for e in events if e.get("event") == "prompt") == "PRESENT CARD"

        # status, and the day routes: a refunded sale is not voided (it was refunded), and
        # closing the day is a manager's action, refused to a till
        code, out, _ = await run_sim("till", *target, "--json", "status", sale_id)
        assert (code, json.loads(out)["result"]["outcome"]) == (0, "approved")
        code, _, err = await run_sim("till", *target, "void", sale_id)
        assert code == 2 and "refunded" in err, err
        code, _, err = await run_sim("till", *target, "close-day")
        assert code == 2 and "manager_login_required" in err, err
        code, _, err = await run_sim("till", *target, "pay", "--lane", "9", "--amount", "1")
        assert code == 2 and "not_found" in err


def drivers_remove(slot: str) -> None:
    from drivers import sim as drivers_sim

    drivers_sim.slot(slot).remove()


async def test_till_cli_sends_the_bearer_token_and_reports_an_absent_daemon() -> None:
    seen: list[str | None] = []

    async def lanes(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"lanes": [{"id": 1, "prompt": "IDLE"}]})

    app = web.Application()
    app.router.add_get("/api/lanes", lanes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        code, out, err = await run_sim("till", "--url", f"http://127.0.0.1:{port}", "--token",
                                       "t0ken", "--json", "lanes")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["lanes"][0]["id"] == 1
        assert seen == ["Bearer t0ken"]
    finally:
        await runner.cleanup()
    code, _, err = await run_sim("till", "--url", f"http://127.0.0.1:{port}", "lanes")
    assert code == 3 and "no daemon" in err
