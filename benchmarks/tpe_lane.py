"""TPE lane benchmark: a payment on a virtual terminal, the driver alone and through the daemon.

Prints ``name: value unit`` lines (medians and p99 in ms) for a whole payment, from the call to
the approved result:

* ``driver_pty_concert_v2``: the ``serial://`` driver on a pty, Concert V2 (8N1);
* ``driver_pty_caisse_ap``: the ``serial://`` driver on a pty, Caisse-AP in Concert frames;
* ``driver_tcp_caisse_ap``: the ``tcp://`` driver, Caisse-AP over IP;

and the same through the daemon, on the same virtual terminals:

* ``daemon_*``: the till's POST to ``/api/lanes/N/payments`` up to the final answer of
  ``GET /api/payments/{id}?wait=`` (HTTP, the journal's durable steps CREATED, CARD_READ,
  AUTH_REQUESTED, APPROVED, COMPLETED with its outbox row, the driver, the terminal);
* ``daemon_over_driver_*``: the ratio of the medians.

The three terminals are the same objects in both phases (a pty takes one opener at a time, so
the driver-alone phase closes its lines before the daemon opens them); within a phase the
three series are interleaved so the shared machine's noise falls on all of them alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from benchmarks.figures import print_ms
from drivers import Money
from drivers.serial import create as create_serial
from drivers.smart_terminal import SmartTerminal
from drivers.tcp_backend import create as create_tcp
from gateway.daemon.config import parse_config
from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore, new_token
from simulator.tpe import TerminalBrain, VirtualSerialTpe, VirtualTcpTpe

N = 150
EUR = "978"

Payer = Callable[[int], Awaitable[None]]


def _payer(term: SmartTerminal) -> Payer:
    async def pay(i: int) -> None:
        result = await term.pay(Money(1000 + 100 * i, EUR), reference=f"B{i}")
        if not result.approved:
            raise RuntimeError(f"benchmark payment {i} not approved: {result.status}")
    return pay


class Terminals:
    """The three virtual terminals and their URLs (8N1 on the ptys)."""

    def __init__(self) -> None:
        self.concert = VirtualSerialTpe(TerminalBrain(protocol="concert-v2"), seven_bit=False)
        self.caisse = VirtualSerialTpe(TerminalBrain(protocol="caisse-ap"), seven_bit=False)
        self.tcp = VirtualTcpTpe()
        self.urls: dict[str, str] = {}

    async def start(self) -> None:
        opts = "framing=8N1&keepalive=0"
        concert, caisse = await self.concert.start(), await self.caisse.start()
        await self.tcp.start()
        self.urls = {
            "pty_concert_v2": f"serial://{concert}?{opts}",
            "pty_caisse_ap": f"serial://{caisse}?protocol=caisse-ap&{opts}",
            "tcp_caisse_ap": f"tcp://127.0.0.1:{self.tcp.port}?protocol=caisse-ap&keepalive=0",
        }

    async def stop(self) -> None:
        for tpe in (self.concert, self.caisse, self.tcp):
            await tpe.stop()


async def driver_series(terminals: Terminals, n: int = N) -> dict[str, list[float]]:
    """Interleaved payments through the driver alone on the three virtual terminals."""
    terms = {kind: create_serial(url) if url.startswith("serial") else create_tcp(url)
             for kind, url in terminals.urls.items()}
    samples: dict[str, list[float]] = {kind: [] for kind in terms}
    try:
        for term in terms.values():
            await term.open()
        payers = {kind: _payer(term) for kind, term in terms.items()}
        for i in range(n):
            for kind, pay in payers.items():
                t0 = time.perf_counter()
                await pay(i)
                samples[kind].append(time.perf_counter() - t0)
    finally:
        for term in terms.values():
            await term.close()
    return samples


async def daemon_series(terminals: Terminals, n: int = N) -> dict[str, list[float]]:
    """Interleaved payments through the daemon's three TPE lanes on the same terminals."""
    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-tpe-"))
    key = workdir / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    kinds = list(terminals.urls)
    config = parse_config({
        "shop": "bench-tpe",
        "http": {"host": "127.0.0.1", "port": 0, "tls": False, "status_login": False},
        "journal": {"path": str(workdir / "journal.db")},
        "vault": {"key_file": str(key)},
        "acquirer": {"url": "http://127.0.0.1:9", "merchant_id": "BENCH001"},
        "lanes": [{"id": i, "reader": terminals.urls[kind]}
                  for i, kind in enumerate(kinds, start=1)],
    }, source="bench")
    token = new_token()  # the bench till's credential, as `posgw till add` makes one
    store = CredentialStore.open(config.journal.path)
    try:
        store.add_till("bench", token=token, actor="bench")
    finally:
        store.close()
    daemon = Daemon(config, environ={})
    task = asyncio.create_task(daemon.run(), name="bench.daemon")
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        async with asyncio.timeout(30):
            while not daemon.ready:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{daemon.http_port}"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            for i in range(n + 5):  # five warm-up rounds, not counted
                for lane, kind in enumerate(kinds, start=1):
                    t0 = time.perf_counter()
                    async with session.post(f"{base}/api/lanes/{lane}/payments", json={
                            "amount": 1000 + 100 * i, "currency": "EUR"}) as response:
                        created = await response.json()
                    async with session.get(
                            f"{base}/api/payments/{created['id']}?wait=20") as response:
                        result = await response.json()
                    elapsed = time.perf_counter() - t0
                    if result.get("state") != "COMPLETED":
                        raise RuntimeError(f"{kind} payment {i}: {result}")
                    if i >= 5:
                        samples[kind].append(elapsed)
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 20)
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


async def measure() -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Both phases on the same three terminals."""
    terminals = Terminals()
    await terminals.start()
    try:
        return await driver_series(terminals), await daemon_series(terminals)
    finally:
        await terminals.stop()


def main() -> None:
    """Run the series and print their figures."""
    logging.disable(logging.WARNING)  # the daemon's per-payment INFO lines are not the subject
    driver, daemon = asyncio.run(measure())
    for kind in driver:
        alone = print_ms(f"driver_{kind}", driver[kind])
        through = print_ms(f"daemon_{kind}", daemon[kind])
        print(f"daemon_over_driver_{kind}: {through / alone:.2f} x")
    print(f"payments_per_series: {N} count")


if __name__ == "__main__":
    main()
