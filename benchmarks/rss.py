"""The daemon's resident memory, part by part: imports, 16 idle lanes, 16 busy lanes.

Where the megabytes of ``daemon_peak_rss`` (``benchmarks/lanes.py``) come from:

* ``rss_import_*``: a fresh interpreter imports what ``posgw run`` imports, one top-level
  dependency after the other in the daemon's own order, and reads ``VmRSS`` of
  ``/proc/self/status`` (proc(5)) after each: the value is cumulative, ``_delta`` the step's
  share; ``import_ms_*`` are the same packages' own import times from ``python -X importtime``
  (self time summed per top-level package); ``daemon_loads_*`` says whether a module the daemon
  must not load at start (jsonschema, playwright; aiomqtt/paho without ``[mqtt]``) is loaded;
* ``rss_daemon_ready``: the daemon of ``benchmarks/lanes.py`` (16 ``sim://`` lanes, a card in
  each slot, SQLite WAL ``synchronous=FULL``) in a child process, ready and idle;
* ``rss_daemon_after_load`` / ``rss_daemon_peak``: after ``--seconds`` of the 16 tills paying
  back to back (``benchmarks.lanes.load``), ``VmRSS`` and ``VmHWM`` (the peak), with the anonymous
  and file-backed parts (``RssAnon``, ``RssFile``) and the thread count;
* ``event_loop_lag``: how late a 10 ms timer of the child's event loop fired during the load
  (the least any request waited for the loop: the floor of the pages' latency);
* ``gc_*``: the collections of the garbage collector in the child during the load and their
  pauses (the event loop stops for each; a full collection walks every object of the imports
  unless they were frozen, ``gc_objects_frozen``);
* ``--tracemalloc N``: the child traces Python allocations and, after the load, prints the ``N``
  lines of code whose allocations grew most since ready (what the load keeps);
* ``--arena-max N``: the child starts with ``MALLOC_ARENA_MAX=N`` in its environment (glibc
  mallopt(3)); ``--arena-max 0`` leaves the variable unset.

Run: ``.venv/bin/python benchmarks/rss.py [--seconds 15] [--tracemalloc 15]`` (about 40 s).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = Path.cwd() if (Path.cwd() / "gateway").is_dir() else ROOT
sys.path[:0] = [str(ROOT), str(CODE)]

#: What ``posgw run`` loads, in the order it first loads it (the step's name, its modules).
IMPORT_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stdlib_asyncio_ssl_sqlite", ("asyncio", "ssl", "sqlite3", "json", "logging")),
    ("pydantic", ("pydantic",)),
    ("cryptography", ("cryptography.hazmat.primitives.ciphers.aead",)),
    ("argon2", ("argon2",)),
    ("aiohttp", ("aiohttp", "aiohttp.web")),
    ("babel", ("babel.numbers", "babel.dates")),
    ("iso4217", ("iso4217",)),
    ("terminal", ("terminal",)),
    ("drivers", ("drivers",)),
    ("gateway_daemon", ("gateway.daemon.cli", "gateway.daemon.daemon")),
)
#: The ATR of a contactless card in a PC/SC reader (PC/SC Part 3, 3.1.3.2.3: ISO 14443-4), the
#: bench children's contactless slots (here, not from tests/: that module loads pytest, 7 MB).
CONTACTLESS_ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")
#: Modules the daemon must not load at start (lazy: only the paths that use them).
NOT_AT_START = ("jsonschema", "playwright", "aiomqtt", "paho")

_DAEMON_IMPORT = "import gateway.daemon.cli, gateway.daemon.daemon"
_STEP_CHILD = """
import importlib, json, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
out = [('interpreter', rss())]
for name, modules in json.loads(sys.argv[1]):
    for module in modules:
        importlib.import_module(module)
    out.append((name, rss()))
loaded = {m.split('.')[0] for m in sys.modules}
print(json.dumps({'steps': out, 'loaded': sorted(loaded)}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(CODE)))}


def import_figures() -> None:
    """Print the cumulative RSS after each import step, and the import times per package."""
    result = subprocess.run(
        [sys.executable, "-c", _STEP_CHILD, json.dumps(IMPORT_STEPS)],
        cwd=CODE, env=_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout)
    previous = None
    for name, value in report["steps"]:
        print(f"rss_import_{name}: {value:.1f} MB")
        if previous is not None:
            print(f"rss_import_{name}_delta: {value - previous:.1f} MB")
        previous = value
    for module in NOT_AT_START:
        print(f"daemon_loads_{module}: {int(module in report['loaded'])} yes")
    timed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _DAEMON_IMPORT],
        cwd=CODE, env=_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    own: collections.Counter[str] = collections.Counter()
    for line in timed.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)", line)
        if match:
            own[match.group(3).split(".")[0].lstrip("_")] += int(match.group(1))
    print(f"import_ms_total: {sum(own.values()) / 1e3:.0f} ms")
    for package, micros in own.most_common(12):
        print(f"import_ms_{package}: {micros / 1e3:.0f} ms")


# -- the daemon child --------------------------------------------------------------------------


def _status(pid: int) -> dict[str, float]:
    """``VmRSS``, ``VmHWM``, ``RssAnon``, ``RssFile`` (MB) and ``Threads`` of ``pid``."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            values[key] = float(value)
    return values


def _mappings(pid: int, top: int) -> list[tuple[float, str]]:
    """The ``top`` largest resident parts of ``pid`` (``/proc/PID/smaps``, proc(5)), by file,
    anonymous mappings in one sum (``[anon]``: the Python heap, malloc arenas, SQLite caches)."""
    sizes: collections.Counter[str] = collections.Counter()
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = fields[5] if len(fields) > 5 else "[anon]"
        elif fields and fields[0] == "Rss:":
            sizes[Path(name).name if name.startswith("/") else name] += int(fields[1])
    return [(kb / 1024, part) for part, kb in sizes.most_common(top)]


def child_main(workdir: str, acquirer_url: str, top: int) -> None:
    """The daemon of ``benchmarks/lanes.py``. On SIGUSR1 it writes ``WORKDIR/report.json``: the
    pauses of the garbage collector since ready (per generation) and, with ``top``, the lines
    of code whose traced allocations grew most since ready."""
    import gc
    import time
    import tracemalloc

    from benchmarks.lanes_support import MIX, NextCardholder, daemon_config, fixed_env
    from drivers import sim
    from gateway.daemon import event_loop
    from gateway.daemon.daemon import Daemon

    logging.disable(logging.WARNING)
    if top:
        tracemalloc.start(1)
    config = daemon_config(Path(workdir), acquirer_url, slots=True)
    for index, kind in enumerate(MIX, start=1):
        atr = (CONTACTLESS_ATR,) if kind.contactless else ()
        sim.slot(f"bench-lanes-{index}").insert(NextCardholder(kind.profile), *atr)
    daemon = Daemon(config, env=fixed_env, install_signals=True)
    pauses: dict[str, list[float]] = {"0": [], "1": [], "2": []}
    started = [0.0]

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[str(info["generation"])].append(time.perf_counter() - started[0])

    async def run() -> None:
        task = asyncio.create_task(daemon.run())
        while not daemon.ready:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        ready = tracemalloc.take_snapshot() if top else None
        for values in pauses.values():
            values.clear()
        gc.callbacks.append(gc_timer)
        lags: list[float] = []

        async def lag() -> None:  # how late a 10 ms timer fires: what any request waits at least
            while True:
                start = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - start - 0.01)

        lag_task = asyncio.create_task(lag())

        def dump() -> None:
            lines: list[str] = []
            if ready is not None:
                stats = tracemalloc.take_snapshot().compare_to(ready, "lineno")[:top]
                lines = [f"{s.size_diff / 1024:+.0f} KiB {s.count_diff:+d} {s.traceback}"
                         for s in stats]  # fmt: skip
            lag_task.cancel()
            report = {"gc": pauses, "traced": lines, "frozen": gc.get_freeze_count(),
                      "lags": lags}  # fmt: skip
            (Path(workdir) / "report.json").write_text(json.dumps(report))

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
        print(f"PORT {daemon.http_port}", flush=True)
        await task

    event_loop.run(run(), config.event_loop)  # as ``posgw run`` runs it


async def daemon_figures(seconds: float, arena_max: int, top: int, maps: int) -> None:
    """The daemon child ready, then under the 16 tills; print its memory at each stage."""
    from benchmarks.figures import print_ms
    from benchmarks.lanes import _wait_port, load
    from benchmarks.lanes_support import bench_till
    from simulator.acquirer_host import AcquirerHost

    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-rss-"))
    host = AcquirerHost()
    env = _env()
    env.pop("MALLOC_ARENA_MAX", None)
    if arena_max:
        env["MALLOC_ARENA_MAX"] = str(arena_max)
    try:
        url = await host.start()
        headers = bench_till(workdir / "journal.db")
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--daemon-child", str(workdir), url, str(top),
            cwd=CODE, env=env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{await _wait_port(child)}"
            await asyncio.sleep(1.0)  # the lanes' devices open, the first card is seen
            ready = _status(child.pid)
            result = await load(base, seconds, headers, "one")
            after = _status(child.pid)
            parts = _mappings(child.pid, maps)
            child.send_signal(signal.SIGUSR1)
            written = workdir / "report.json"
            for _ in range(600):  # the snapshot of a traced process takes a while
                if written.exists():
                    break
                await asyncio.sleep(0.1)
            report = json.loads(written.read_text())
        finally:
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(child.wait(), 30)
    finally:
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"malloc_arena_max: {arena_max or 'unset'}")
    print(f"payments: {len(result.latencies)} payments")
    print(f"rss_daemon_ready: {ready['VmRSS']:.1f} MB")
    print(f"rss_daemon_ready_anon: {ready['RssAnon']:.1f} MB")
    print(f"rss_daemon_ready_file: {ready['RssFile']:.1f} MB")
    print(f"rss_daemon_peak_at_ready: {ready['VmHWM']:.1f} MB")
    print(f"threads_daemon_ready: {ready['Threads']:.0f} threads")
    print(f"rss_daemon_after_load: {after['VmRSS']:.1f} MB")
    print(f"rss_daemon_after_load_anon: {after['RssAnon']:.1f} MB")
    print(f"rss_daemon_after_load_file: {after['RssFile']:.1f} MB")
    print(f"threads_daemon_after_load: {after['Threads']:.0f} threads")
    print(f"rss_daemon_peak: {after['VmHWM']:.1f} MB")
    print(f"rss_daemon_load_growth: {after['VmHWM'] - ready['VmRSS']:.1f} MB")
    print_ms("event_loop_lag", report["lags"], digits=1)
    print(f"event_loop_lag_max: {max(report['lags']) * 1e3:.1f} ms")
    print(f"gc_objects_frozen: {report['frozen']} objects")
    for generation, values in report["gc"].items():
        print(f"gc_collections_gen{generation}: {len(values)} collections")
        if values:
            print(f"gc_pause_gen{generation}_max: {max(values) * 1e3:.1f} ms")
            print(f"gc_pause_gen{generation}_total: {sum(values) * 1e3:.0f} ms")
    for size, part in parts:
        print(f"# resident after load: {size:6.1f} MB {part}")
    for line in report["traced"]:
        print(f"# tracemalloc since ready: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load")
    parser.add_argument("--arena-max", type=int, default=0, help="MALLOC_ARENA_MAX of the child")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="top N growths")
    parser.add_argument("--maps", type=int, default=0, metavar="N", help="top N mappings")
    parser.add_argument("--no-imports", action="store_true", help="skip the import figures")
    parser.add_argument("--daemon-child", nargs=3, metavar=("WORKDIR", "ACQUIRER", "TOP"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.daemon_child:
        workdir, url, top = args.daemon_child
        child_main(workdir, url, int(top))
        return
    logging.disable(logging.WARNING)
    if not args.no_imports:
        import_figures()
    asyncio.run(daemon_figures(args.seconds, args.arena_max, args.tracemalloc, args.maps))


if __name__ == "__main__":
    main()
