"""The daemon's CPU per sale for the till's two ways to pay, side by side in one daemon.

* ``one``: ``POST /api/lanes/N/payments?wait=20``, whose answer is the payment's end;
* ``two``: ``POST /api/lanes/N/payments``, then ``GET /api/payments/ID?wait=20``.

The daemon child of ``benchmarks/lanes.py`` (16 ``sim://`` lanes, virtual cards on its loop,
``synchronous=FULL``, the acquirer host on loopback in this process) runs windows of 16 tills
paying back to back, the two flows alternated (``one`` first in odd rounds, ``two`` in even
ones) so that a machine changing speed weighs on both. Each window's CPU (``/proc``, utime +
stime of the whole daemon) is counted until the window's offline sales are forwarded too, over
the payments the tills saw end. Printed: each flow's median over the rounds, their difference
and their ratio, and the median of the per-round differences.

Run: ``.venv/bin/python benchmarks/till_flow.py [--rounds 6] [--seconds 4]`` (about 1.5 min).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CODE = Path.cwd() if (Path.cwd() / "gateway").is_dir() else ROOT
sys.path[:0] = [str(ROOT), str(CODE)]

from benchmarks.lanes import (  # noqa: E402 - after the sys.path line
    _cpu_seconds,
    _forwarded,
    _wait_port,
    pay,
    start_daemon_child,
)
from benchmarks.lanes_support import MIX, bench_till  # noqa: E402

pc = time.perf_counter
FLOWS = ("one", "two")


async def _window(session: aiohttp.ClientSession, base: str, seconds: float, flow: str) -> int:
    """16 tills paying back to back for ``seconds`` with ``flow``; the payments that ended."""
    ended = 0
    until = pc() + seconds

    async def till(lane: int) -> None:
        nonlocal ended
        while pc() < until:
            body = await pay(session, base, lane, flow)
            if not body.get("done"):
                raise RuntimeError(f"lane {lane}: the payment had not ended: {body}")
            ended += 1

    async with asyncio.TaskGroup() as group:
        for lane in range(1, len(MIX) + 1):
            group.create_task(till(lane))
    return ended


async def run(rounds: int, seconds: float) -> dict[str, list[float]]:
    """CPU seconds per payment of each flow, one sample per round."""
    from simulator.acquirer_host import AcquirerHost

    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-flow-"))
    host = AcquirerHost()
    samples: dict[str, list[float]] = {flow: [] for flow in FLOWS}
    try:
        url = await host.start()
        headers = bench_till(workdir / "journal.db")
        child = await start_daemon_child(workdir, url)
        try:
            base = f"http://127.0.0.1:{await _wait_port(child)}"
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
                for flow in FLOWS:  # warm-up: every path taken once under load
                    await _window(session, base, 2.0, flow)
                for index in range(rounds):
                    for flow in FLOWS if index % 2 else reversed(FLOWS):
                        if await _forwarded(base, headers):  # the previous window's forwards
                            raise RuntimeError("offline sales still wait to be forwarded")
                        before = _cpu_seconds(child.pid)
                        ended = await _window(session, base, seconds, flow)
                        if await _forwarded(base, headers):
                            raise RuntimeError("offline sales still wait to be forwarded")
                        samples[flow].append((_cpu_seconds(child.pid) - before) / ended)
        finally:
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(child.wait(), 30)
    finally:
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="windows of each flow")
    parser.add_argument("--seconds", type=float, default=4.0, help="each window's load")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    samples = asyncio.run(run(args.rounds, args.seconds))
    one, two = (statistics.median(samples[flow]) for flow in FLOWS)
    differences = [b - a for a, b in zip(samples["one"], samples["two"], strict=True)]
    print(f"till_flow_rounds: {args.rounds} rounds")
    print(f"daemon_cpu_per_payment_one_request: {one * 1e3:.2f} ms")
    print(f"daemon_cpu_per_payment_two_requests: {two * 1e3:.2f} ms")
    print(f"two_requests_minus_one_cpu: {(two - one) * 1e3:.2f} ms")
    print(f"two_requests_minus_one_cpu_per_round_median: "
          f"{statistics.median(differences) * 1e3:.2f} ms")  # fmt: skip
    print(f"one_request_over_two_cpu: {one / two:.3f} x")


if __name__ == "__main__":
    main()
