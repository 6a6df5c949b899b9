"""The daemon's CPU per sale on uvloop and on asyncio's own loop, side by side in one run.

Two daemon children of ``benchmarks/lanes.py`` run at once, the same configuration but for
``event_loop`` (``asyncio``, the default, and ``uvloop``): 16 ``sim://`` lanes, virtual cards on
the loop, ``synchronous=FULL``, one acquirer host on loopback in this process. Windows of 16
tills paying back to back (one request per sale) alternate between them (``uvloop`` first in
odd rounds, ``asyncio`` in even ones), so a machine changing speed weighs on both; the idle one
waits. Each window's CPU (``/proc``, utime + stime of the loaded child) is counted until its
offline sales are forwarded too, over the payments the tills saw end. Printed: each loop's
median over the rounds, the per-round ratio's median, the till-observed p99 of each, and each
child's peak RSS (``VmHWM``) after the same load.

Run: ``.venv/bin/python benchmarks/event_loop.py [--rounds 6] [--seconds 4]`` (about 1.5 min).
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
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CODE = Path.cwd() if (Path.cwd() / "gateway").is_dir() else ROOT
sys.path[:0] = [str(ROOT), str(CODE)]

from benchmarks.lanes import (  # noqa: E402 - after the sys.path line
    _cpu_seconds,
    _forwarded,
    _peak_rss_mb,
    _wait_port,
    pay,
    start_daemon_child,
)
from benchmarks.lanes_support import MIX, bench_till  # noqa: E402

pc = time.perf_counter
LOOPS = ("uvloop", "asyncio")


async def _window(session: aiohttp.ClientSession, base: str, seconds: float) -> list[float]:
    """16 tills paying back to back for ``seconds``: each ended payment's till-observed time."""
    times: list[float] = []
    until = pc() + seconds

    async def till(lane: int) -> None:
        while pc() < until:
            start = pc()
            body = await pay(session, base, lane, "one")
            if not body.get("done"):
                raise RuntimeError(f"lane {lane}: the payment had not ended: {body}")
            times.append(pc() - start)

    async with asyncio.TaskGroup() as group:
        for lane in range(1, len(MIX) + 1):
            group.create_task(till(lane))
    return times


class _Child:
    """One daemon child on ``loop``, its own journal, the bench till registered in it."""

    def __init__(self, loop: str, acquirer_url: str) -> None:
        self.loop, self.url = loop, acquirer_url
        self.workdir = Path(tempfile.mkdtemp(prefix=f"posgw-bench-loop-{loop}-"))
        self.headers = bench_till(self.workdir / "journal.db")
        self.process: asyncio.subprocess.Process | None = None
        self.base = ""

    async def start(self) -> None:
        self.process = await start_daemon_child(
            self.workdir, self.url, POSGW_BENCH_EVENT_LOOP=self.loop, POSGW_BENCH_SIM_CARDS="inline"
        )
        self.base = f"http://127.0.0.1:{await _wait_port(self.process)}"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)
        shutil.rmtree(self.workdir, ignore_errors=True)


async def run(rounds: int, seconds: float) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """CPU seconds per payment of each loop, one sample per round; the till times and RSS."""
    from simulator.acquirer_host import AcquirerHost

    host = AcquirerHost()
    samples: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    times: dict[str, list[float]] = {loop: [] for loop in LOOPS}
    rss: dict[str, float] = {}
    url = await host.start()
    children = {loop: _Child(loop, url) for loop in LOOPS}
    try:
        for child in children.values():
            await child.start()
        sessions = {loop: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                                headers=children[loop].headers)
                    for loop in LOOPS}  # fmt: skip
        try:
            for loop in LOOPS:  # warm-up: every path taken once under load
                await _window(sessions[loop], children[loop].base, 2.0)
            for index in range(rounds):
                for loop in LOOPS if index % 2 == 0 else reversed(LOOPS):
                    child = children[loop]
                    assert child.process is not None
                    if await _forwarded(child.base, child.headers):
                        raise RuntimeError("offline sales still wait to be forwarded")
                    before = _cpu_seconds(child.process.pid)
                    ended = await _window(sessions[loop], child.base, seconds)
                    if await _forwarded(child.base, child.headers):
                        raise RuntimeError("offline sales still wait to be forwarded")
                    samples[loop].append((_cpu_seconds(child.process.pid) - before) / len(ended))
                    times[loop].extend(ended)
            for loop, child in children.items():
                assert child.process is not None
                rss[loop] = _peak_rss_mb(child.process.pid)
        finally:
            for session in sessions.values():
                await session.close()
    finally:
        for child in children.values():
            await child.stop()
        await host.stop()
    return samples, {"times": times, "rss": rss}


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="windows on each loop")
    parser.add_argument("--seconds", type=float, default=4.0, help="each window's load")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    samples, extra = asyncio.run(run(args.rounds, args.seconds))
    uv, aio = (statistics.median(samples[loop]) for loop in LOOPS)
    ratios = [u / a for u, a in zip(samples["uvloop"], samples["asyncio"], strict=True)]
    print(f"event_loop_rounds: {args.rounds} rounds")
    print(f"daemon_cpu_per_payment_uvloop: {uv * 1e3:.2f} ms")
    print(f"daemon_cpu_per_payment_asyncio: {aio * 1e3:.2f} ms")
    print(f"asyncio_minus_uvloop_cpu: {(aio - uv) * 1e3:.2f} ms")
    print(f"uvloop_over_asyncio_cpu: {uv / aio:.3f} x")
    print(f"uvloop_over_asyncio_cpu_per_round_median: {statistics.median(ratios):.3f} x")
    for loop in LOOPS:
        print(f"till_payment_p99_{loop}: {_p99(extra['times'][loop]) * 1e3:.1f} ms")
    for loop in LOOPS:
        print(f"daemon_peak_rss_{loop}: {extra['rss'][loop]:.1f} MB")


if __name__ == "__main__":
    main()
