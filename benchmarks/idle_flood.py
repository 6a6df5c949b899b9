"""Benchmark: a till's payment over TLS, quiet versus with 1,000 idle sockets held open.

The daemon runs in process with TLS (its self-signed certificate, pinned by the client as a till
pins it), a till credential, one ``sim://`` lane with the card left in the slot, and the
simulated acquirer. Two series run interleaved in the same process: ``quiet`` (nothing else
connected) and ``flood`` (before each round, 1,000 plain TCP sockets from loopback connect and
stay silent; the listener's per-client cap closes the oldest idle ones). Each sample is one
payment: POST, then GET with ``wait`` until COMPLETED. Prints ``name_median`` / ``name_p99`` in
ms, the ratio flood/quiet, and what the connection limiter did.

``.venv/bin/python benchmarks/idle_flood.py [--n 60] [--rounds 6] [--idle 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import print_ms
from drivers import sim
from gateway.daemon.config import parse_config
from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore, new_token
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.keys import DEFAULT_KEYS_DIR

SLOT = "bench-flood-lane1"
pc = time.perf_counter


def _config(workdir: Path, acquirer_url: str) -> Any:
    key = workdir / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    return parse_config(
        {
            "shop": "bench",
            "http": {"host": "127.0.0.1", "port": 0, "tls": True},
            "journal": {"path": str(workdir / "journal.db")},
            "vault": {"key_file": str(key)},
            "acquirer": {"url": acquirer_url, "merchant_id": "BENCH001", "terminal_id": "LANE0001"},
            "terminal": {"extra_ca_keys": [str(DEFAULT_KEYS_DIR / "capk_sim.json")]},
            "lanes": [{"id": 1, "reader": f"sim://{SLOT}", "interface": "contact"}],
        },
        source="bench",
    )  # fmt: skip


async def _payments(session: aiohttp.ClientSession, base: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = pc()
        async with session.post(f"{base}/api/lanes/1/payments", json={"amount": 1250}) as r:
            created = await r.json()
        async with session.get(f"{base}/api/payments/{created['id']}?wait=20") as r:
            result = await r.json()
        samples.append(pc() - start)
        if result.get("state") != "COMPLETED":
            raise SystemExit(f"payment ended {result.get('state')}")
    return samples


async def _hold_idle(port: int, count: int) -> list[socket.socket]:
    loop = asyncio.get_running_loop()
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        held.append(sock)
    return held


async def measure(n: int, rounds: int, idle: int) -> tuple[dict[str, list[float]], Any]:
    """Both series, interleaved; the daemon's connection limiter for its counters."""
    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-flood-"))
    host = AcquirerHost()
    try:
        config = _config(workdir, await host.start())
        token = new_token()
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
            sim.slot(SLOT).insert(VirtualCard.from_profile("visa_credit"))
            assert daemon.tls_fingerprint is not None
            assert daemon.http_port is not None
            pin = aiohttp.Fingerprint(bytes.fromhex(daemon.tls_fingerprint.replace(":", "")))
            base = f"https://127.0.0.1:{daemon.http_port}"
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=pin),
                headers={"Authorization": f"Bearer {token}"},
            ) as session:
                await _payments(session, base, 3)  # warm up
                samples: dict[str, list[float]] = {"quiet": [], "flood": []}
                per_round = max(1, n // rounds)
                for index in range(rounds):
                    order = ["quiet", "flood"] if index % 2 == 0 else ["flood", "quiet"]
                    for name in order:
                        held = await _hold_idle(daemon.http_port, idle) if name == "flood" else []
                        try:
                            samples[name] += await _payments(session, base, per_round)
                        finally:
                            for sock in held:
                                sock.close()
                return samples, daemon.listener.limiter if daemon.listener else None
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, 20)
    finally:
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="payments per series")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--idle", type=int, default=1000, help="idle sockets per flood round")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    samples, limiter = asyncio.run(measure(args.n, args.rounds, args.idle))
    quiet = print_ms("tls_payment_quiet", samples["quiet"])
    flood = print_ms(f"tls_payment_with_{args.idle}_idle_sockets", samples["flood"])
    print(f"flood_over_quiet_ratio: {flood / quiet:.2f} x")
    if limiter is not None:
        print(f"idle_connections_evicted: {limiter.evicted} connections")
        print(f"connections_refused: {limiter.refused} connections")
    print(f"payments_per_series: {len(samples['quiet'])} payments")


if __name__ == "__main__":
    main()
