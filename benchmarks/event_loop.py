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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


class DaemonSide:
    """A daemon child with a work directory of its own (its journal); :meth:`stop` ends the
    child and removes the directory."""

    def __init__(self, prefix: str, acquirer_url: str) -> None:
        self.url = acquirer_url
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
        #: Set by :meth:`start`: the child, its base URL, the bench till's headers.
        self.process: asyncio.subprocess.Process | None = None
        self.base = ""
        self.headers: dict[str, str] = {}

    async def start(self) -> None:
        """Start the child (a subclass's way), then :meth:`_started` with it."""
        raise NotImplementedError

    async def _started(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{await _wait_port(process)}"

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)
        shutil.rmtree(self.workdir, ignore_errors=True)


class _Child(DaemonSide):
    """One daemon child on ``loop``, its own journal, the bench till registered in it."""

    def __init__(self, loop: str, acquirer_url: str) -> None:
        super().__init__(f"posgw-bench-loop-{loop}-", acquirer_url)
        self.loop = loop
        self.headers = bench_till(self.workdir / "journal.db")

    async def start(self) -> None:
        await self._started(await start_daemon_child(
            self.workdir, self.url, POSGW_BENCH_EVENT_LOOP=self.loop, POSGW_BENCH_SIM_CARDS="inline"
        ))  # fmt: skip


@dataclass
class Alternated:
    """What :func:`alternate` measured, per side: CPU seconds per payment of each round, every
    till-observed payment time, and the peak RSS after the load."""

    cpu: dict[str, list[float]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)

    def print_sides(self) -> None:
        """Each side's till-observed p99, then each side's peak RSS."""
        for name, times in self.times.items():
            print(f"till_payment_p99_{name}: {_p99(times) * 1e3:.1f} ms")
        for name, rss in self.rss.items():
            print(f"daemon_peak_rss_{name}: {rss:.1f} MB")


async def alternate(sides: Mapping[str, DaemonSide], rounds: int, seconds: float) -> Alternated:
    """Warm each side up (2 s), then ``rounds`` windows of ``seconds`` each, the sides in their
    order in even rounds and reversed in odd ones; each window's CPU counted until its offline
    sales are forwarded, over the payments the tills saw end."""
    found = Alternated({name: [] for name in sides}, {name: [] for name in sides})
    names = list(sides)
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                            headers=side.headers)
                for name, side in sides.items()}  # fmt: skip
    try:
        for name in names:  # warm-up: every path taken once under load
            await _window(sessions[name], sides[name].base, 2.0)
        for index in range(rounds):
            for name in names if index % 2 == 0 else reversed(names):
                side = sides[name]
                assert side.process is not None
                if await _forwarded(side.base, side.headers):
                    raise RuntimeError("offline sales still wait to be forwarded")
                before = _cpu_seconds(side.process.pid)
                ended = await _window(sessions[name], side.base, seconds)
                if await _forwarded(side.base, side.headers):
                    raise RuntimeError("offline sales still wait to be forwarded")
                found.cpu[name].append((_cpu_seconds(side.process.pid) - before) / len(ended))
                found.times[name].extend(ended)
        for name, side in sides.items():
            assert side.process is not None
            found.rss[name] = _peak_rss_mb(side.process.pid)
    finally:
        for session in sessions.values():
            await session.close()
    return found


async def run_sides(
    make: Callable[[str, str], DaemonSide], names: tuple[str, ...], rounds: int, seconds: float
) -> Alternated:
    """One acquirer host on loopback; ``make(name, acquirer_url)`` for each of ``names``,
    started, then :func:`alternate`; every side stopped whatever happens."""
    from simulator.acquirer_host import AcquirerHost

    host = AcquirerHost()
    url = await host.start()
    sides = {name: make(name, url) for name in names}
    try:
        for side in sides.values():
            await side.start()
        return await alternate(sides, rounds, seconds)
    finally:
        for side in sides.values():
            await side.stop()
        await host.stop()


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="windows on each loop")
    parser.add_argument("--seconds", type=float, default=4.0, help="each window's load")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    found = asyncio.run(run_sides(_Child, LOOPS, args.rounds, args.seconds))
    samples = found.cpu
    uv, aio = (statistics.median(samples[loop]) for loop in LOOPS)
    ratios = [u / a for u, a in zip(samples["uvloop"], samples["asyncio"], strict=True)]
    print(f"event_loop_rounds: {args.rounds} rounds")
    print(f"daemon_cpu_per_payment_uvloop: {uv * 1e3:.2f} ms")
    print(f"daemon_cpu_per_payment_asyncio: {aio * 1e3:.2f} ms")
    print(f"asyncio_minus_uvloop_cpu: {(aio - uv) * 1e3:.2f} ms")
    print(f"uvloop_over_asyncio_cpu: {uv / aio:.3f} x")
    print(f"uvloop_over_asyncio_cpu_per_round_median: {statistics.median(ratios):.3f} x")
    found.print_sides()


if __name__ == "__main__":
    main()
