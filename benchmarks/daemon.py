"""What the daemon adds to a payment: the till's request to the journaled outcome, end to end.

Side by side in one process, interleaved in rounds:

* ``daemon``: the till API (``POST /api/lanes/1/payments`` then ``GET ...?wait``) of a running
  :class:`gateway.daemon.daemon.Daemon` with one ``sim://`` chip lane (the virtual Visa card
  stays in the slot, virtual PIN pad), the EMV kernel, the acquirer host over real HTTP (ARQC
  checked, ARPC back), the journal (SQLite WAL, ``synchronous=FULL``: every state change is on disk
  before the next step) and the outbox, until the payment is COMPLETED;
* ``kernel``: the same card, kernel and PIN pad in process with the simulator's issuer host
  called directly: no HTTP, no journal, no lane (the floor);
* ``journal``: the five journal transitions of one approved sale alone
  (CREATED ... COMPLETED with its outbox row), on the same disk.

Prints medians and p99 (ms, wall clock) and the daemon's ratio to the kernel. Run:
``.venv/bin/python benchmarks/daemon.py [--n 200] [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures import print_ms  # noqa: E402 - after the sys.path line
from drivers import sim  # noqa: E402
from gateway.daemon.config import parse_config  # noqa: E402
from gateway.daemon.daemon import Daemon  # noqa: E402
from gateway.journal import Journal, VaultKey  # noqa: E402
from gateway.security import CredentialStore, new_token  # noqa: E402
from simulator.acquirer_host import AcquirerHost  # noqa: E402
from simulator.card import VirtualCard  # noqa: E402
from simulator.issuer import IssuerHost  # noqa: E402
from simulator.keys import DEFAULT_KEYS_DIR  # noqa: E402
from simulator.pinpad import VirtualPinPad  # noqa: E402
from terminal import (  # noqa: E402  # noqa: E402
    CapkStore,
    Decision,
    Environment,
    OnlineRequest,
    OnlineResponse,
    TerminalConfig,
    TransactionRequest,
    encode,
    run_contact_transaction,
)

PROFILE = "visa_credit"
AMOUNT = 1250
SLOT = "bench-daemon-lane1"
pc = time.perf_counter


def _config(workdir: Path, acquirer_url: str) -> Any:
    key = workdir / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    return parse_config(
        {
            "shop": "bench",
            # plain HTTP on loopback, as configured: the series measures the payment path
            "http": {"host": "127.0.0.1", "port": 0, "tls": False, "status_login": False},
            "journal": {"path": str(workdir / "journal.db")},
            "vault": {"key_file": str(key)},
            "acquirer": {"url": acquirer_url, "merchant_id": "BENCH001", "terminal_id": "LANE0001"},
            "terminal": {"extra_ca_keys": [str(DEFAULT_KEYS_DIR / "capk_sim.json")]},
            "lanes": [{"id": 1, "reader": f"sim://{SLOT}", "interface": "contact",
                       "pin_pad": "virtual:1234"}],
        },
        source="bench",
    )  # fmt: skip


class DaemonSeries:
    """Payments through a running daemon's till API."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def __call__(self, n: int) -> list[float]:
        samples = []
        for _ in range(n):
            start = pc()
            async with self.session.post(
                f"{self.base}/api/lanes/1/payments", json={"amount": AMOUNT}
            ) as response:
                created = await response.json()
            async with self.session.get(f"{self.base}/api/payments/{created['id']}?wait=20") as r:
                result = await r.json()
            samples.append(pc() - start)
            if result.get("state") != "COMPLETED":
                raise SystemExit(f"daemon payment ended {result.get('state')}")
        return samples


class InProcessCard:
    """The virtual card as the kernel's channel, with no transport at all."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    async def transceive(self, capdu: bytes) -> bytes:
        return self.card.process(capdu)


class KernelSeries:
    """The same card and kernel in process, the issuer called directly."""

    def __init__(self, terminal: TerminalConfig, capk: CapkStore) -> None:
        self.terminal, self.capk, self.issuer = terminal, capk, IssuerHost()
        self.count = 0

    async def _online(self, request: OnlineRequest) -> OnlineResponse | None:
        pan = encode(0x5A, bytes.fromhex(request.pan or ""))
        answer = self.issuer.authorise(request.icc_data + pan)
        if answer is None:
            return None
        return OnlineResponse(approved=answer.approved, authorisation_response_code=answer.arc,
                              issuer_authentication_data=answer.issuer_auth_data or None,
                              scripts=answer.scripts or None)  # fmt: skip

    async def __call__(self, n: int) -> list[float]:
        samples = []
        for _ in range(n):
            self.count += 1
            card = InProcessCard(VirtualCard.from_profile(PROFILE))
            env = Environment.fixed(datetime(2026, 11, 25, 12), self.count.to_bytes(4, "big"))
            start = pc()
            result = await run_contact_transaction(
                card, config=self.terminal, request=TransactionRequest(amount=AMOUNT), env=env,
                online=self._online, pinpad=VirtualPinPad("1234"), capk=self.capk,
                trace=False,  # as the daemon runs it (terminal.trace)
            )  # fmt: skip
            samples.append(pc() - start)
            if result.decision is not Decision.APPROVED:
                raise SystemExit(f"kernel payment ended {result.decision}")
        return samples


class JournalSeries:
    """The journal's part of one approved sale: five transitions, each durable."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def __call__(self, n: int) -> list[float]:
        samples, journal = [], self.journal
        for _ in range(n):
            start = pc()
            sale = await journal.create_sale(lane="1", amount=AMOUNT, currency="EUR", actor="b")
            await journal.card_read(sale.id, masked_pan="476173******0010",
                                    aid="A0000000031010", actor="b")  # fmt: skip
            await journal.request_auth(sale.id, actor="b")
            await journal.approve(sale.id, auth_code="000001", actor="b")
            await journal.complete(sale.id, actor="b")
            samples.append(pc() - start)
        return samples


async def measure(n: int, rounds: int) -> dict[str, list[float]]:
    """Warm every series up, then run them interleaved in ``rounds``."""
    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-daemon-"))
    host = AcquirerHost()
    try:
        config = _config(workdir, await host.start())
        token = new_token()  # the bench till's credential, as `posgw till add` makes one
        store = CredentialStore.open(config.journal.path)
        store.add_till("bench", token=token, actor="bench")
        store.close()
        daemon = Daemon(config)
        task = asyncio.create_task(daemon.run(), name="bench.daemon")
        try:
            async with asyncio.timeout(20):
                while not daemon.ready:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.02)
            sim.slot(SLOT).insert(VirtualCard.from_profile(PROFILE))
            terminal = TerminalConfig.default()
            capk = CapkStore()
            capk.load_file(DEFAULT_KEYS_DIR / "capk_sim.json")
            async with (
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
                Journal.open(workdir / "bench.db", vault_key=VaultKey(os.urandom(32))) as journal,
            ):
                base = f"http://127.0.0.1:{daemon.http_port}"
                series: dict[str, Callable[[int], Awaitable[list[float]]]] = {
                    "daemon": DaemonSeries(session, base),
                    "kernel": KernelSeries(terminal, capk),
                    "journal": JournalSeries(journal),
                }
                for run in series.values():
                    await run(max(5, n // 20))
                samples: dict[str, list[float]] = {name: [] for name in series}
                items = list(series.items())
                per_round = max(1, n // rounds)
                for index in range(rounds):
                    shift = index % len(items)
                    for name, run in items[shift:] + items[:shift]:
                        samples[name] += await run(per_round)
                return samples
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, 20)
    finally:
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="payments per series")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the daemon's per-payment INFO lines are not the subject
    samples = asyncio.run(measure(args.n, args.rounds))
    medians = {name: print_ms(f"{name}_payment" if name != "journal" else "journal_sale", values)
               for name, values in samples.items()}  # fmt: skip
    print(f"daemon_over_kernel_ratio: {medians['daemon'] / medians['kernel']:.2f} x")
    print(f"journal_share_of_daemon: {medians['journal'] / medians['daemon']:.2f} ratio")
    print(f"payments_per_series: {len(samples['daemon'])} payments")


if __name__ == "__main__":
    main()
