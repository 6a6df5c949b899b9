"""Sixteen lanes paying at once through the till API, the status page polled beside them.

What a shop feels at load, on one machine:

* the daemon (``posgw``'s :class:`~gateway.app.Daemon`) runs in a child process of its own so
  its CPU time and peak RSS are its alone (``/proc/PID/stat``, ``VmHWM``); 16 ``sim://`` lanes,
  each with its virtual card left in the slot: contact online (``visa_credit``, 12.50: ARQC to
  the acquirer), contact offline (``visa_credit``, 5.00: below the floor limit, TC, sealed and
  forwarded later) and contactless (``ctls_mc_cda_online``, 12.50: tap, remove card, online);
  journal in SQLite WAL with ``synchronous=FULL``; the simulated acquirer host over real HTTP
  on loopback (in this process); the virtual cards answer on the daemon's event loop
  (``sim://...?inline=1``, the floor's way of calling them) or, with ``--sim-cards thread``, on
  each reader's device thread (a hop per APDU, as a real reader's library call);
* 16 tills (this process) pay back to back, one request per sale:
  ``POST /api/lanes/N/payments?wait=20`` answers the payment's end (``--till-flow two``: the
  ``POST`` then ``GET /api/payments/ID?wait=20``, the flow before the ``wait`` of the ``POST``;
  ``benchmarks/till_flow.py`` runs both in one daemon); the till-observed time of each payment
  is one sample; with ``--references`` each sale carries a new till reference, as a till
  that may resend its request sends it (the daemon looks the reference up before it starts);
* ``/status.json`` and ``/`` are each fetched once a second during the load; their
  ``*_handler_cpu`` figures are the CPU time of the daemon's handler alone for those fetches
  (``time.thread_time`` around it in the child: snapshot, scrub, view, HTML or JSON), their
  ``*_under_load`` figures what the poller waited (the loop's queue and the handler);
* the offline sales are forwarded by the daemon's forwarder after the till has its answer: the
  load is measured from an empty forward backlog, and ``daemon_cpu_per_payment_with_forwards``
  counts the daemon's CPU until the window's forwards are done too (``forward_drain``: how long
  after the load that took), so every payment's work is in it; ``daemon_cpu_per_payment`` is the
  CPU of the load's window alone, as before;
* the floor, in the same run: the same cards through the same kernel entry points in this
  process, no HTTP, no journal, no lane (the issuer's own CPU is taken out), weighted by the
  mix of payments the daemon made: ``daemon_over_kernel_cpu`` is daemon CPU per payment over
  that, measured after the load (30 transactions of each kind, the median), and
  ``daemon_minus_kernel_cpu`` the difference: what the daemon adds per payment. The kernel runs
  without its APDU trace there, as in the daemon (``trace=False``, :mod:`terminal.trace`);
  ``kernel_cpu_per_payment_with_trace`` is the floor with it, as the daemon ran the kernel
  before session 12, and ``kernel_trace_cpu_per_payment`` what the trace costs;
* the same floor sampled *during* the load, in a process of its own (one transaction every
  50 ms, each kind in turn, about 5 % of a core): ``daemon_over_kernel_cpu_during_load`` is
  the daemon's CPU over it, and ``kernel_floor_drift`` the floor after the load over the floor
  during it. The machine's speed can change between the window and the floor after it (a
  clean-clone CI run once measured the floor 60 % slower than the two runs before it, every
  kind and the card alike): a drift far from 1.00 says the after-load ratio is not to be read
  alone; the same floor is also measured *before* the load, on the quiet machine before the
  daemon starts (``kernel_cpu_per_payment_before_load``, ``daemon_over_kernel_cpu_before_load``,
  and ``kernel_floor_after_over_before``: near 1.00 when the machine kept its speed): three
  readings of one baseline, so a run whose machine changed speed shows it;
* the daemon logs as ``posgw run`` does by default (``--log-level info``,
  :func:`gateway.daemon.logs.configure_logging`), to a file in its work directory in place of
  stderr: ``daemon_log_lines_per_payment`` counts the window's lines, and
  ``daemon_log_card_data_lines`` the lines the journal's card-data guard would refuse (0);
  ``versus.py`` and ``event_loop.py`` run the child with logging off, on both sides alike;
* the page with a journal of ``--big`` payments (built with ``executemany`` in a temporary
  directory, a year of them, a few thousand today): ``/`` and ``/status.json`` of an idle
  one-lane daemon on that file, in this process.

Run: ``.venv/bin/python benchmarks/lanes.py [--seconds 20] [--big 1000000]
[--sim-cards inline|thread] [--till-flow one|two] [--references]
[--event-loop asyncio|uvloop] [--log-level info|warning|off]`` (about 1.5 min).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

SCRIPT = Path(__file__).resolve()  # this file, wherever it was copied to (below)
ROOT = SCRIPT.parent.parent
#: The code measured: this checkout, or the current directory when it is another checkout
#: (a copy of this script measures another branch: ``cd ../main && python /tmp/b/lanes.py``).
CODE = Path.cwd() if (Path.cwd() / "gateway").is_dir() else ROOT
sys.path[:0] = [str(ROOT), str(CODE)]

from benchmarks.figures import print_ms  # noqa: E402 - after the sys.path line
from benchmarks.lanes_support import (  # noqa: E402
    MIX,
    NextCardholder,
    bench_till,
    build_big_journal,
    daemon_config,
    fixed_env,
    floor_during,
    floor_per_kind,
    kernel_cpu_per_payment,
    weighted,
)

pc = time.perf_counter
#: Numbers the tills' references (``--references``): each sale has a new one.
_SALES = itertools.count(1)
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Load:
    """What the tills and the poller saw."""

    seconds: float
    latencies: list[float]
    states: dict[str, int]
    kinds: dict[str, int]
    status_json: list[float]
    page: list[float]


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` after the command name (proc(5): field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime (proc(5))


def _system_seconds(pid: int) -> float:
    """The process's CPU time in the Linux kernel (stime: sockets, ``fsync``, futexes)."""
    return int(_stat_fields(pid)[12]) / TICK


_SWITCHES = ("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")


def _context_switches(pid: int) -> int:
    """Context switches of all the process's threads so far, voluntary or not (proc(5))."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines()
                     if line.startswith(_SWITCHES))  # fmt: skip
    return total


def _thread_cpu(pid: int, names: Path) -> dict[str, float]:
    """CPU seconds per kind of thread: the event loop, the journal's worker, the reader
    devices' executors (where the virtual cards compute), the others; ``names`` is the
    child's map of native thread ids to thread names."""
    known = json.loads(names.read_text()) if names.exists() else {}
    out = {"event_loop": 0.0, "journal_worker": 0.0, "reader_threads": 0.0, "other_threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        name = str(known.get(task.name, ""))
        kind = ("event_loop" if task.name == str(pid) else "journal_worker"
                if name.startswith("posgw-journal") else "reader_threads"
                if "://" in name else "other_threads")  # fmt: skip
        out[kind] += (int(fields[11]) + int(fields[12])) / TICK
    return out


def _commits(names: Path) -> tuple[int, int]:
    """The daemon's journal (COMMITs of groups, requests in them), as last reported."""
    report = json.loads(names.read_text()) if names.exists() else {}
    commits, requests = report.get("commits", (0, 0))
    return int(commits), int(requests)


def _handler_cpu(names: Path, start: float, end: float) -> dict[str, list[float]]:
    """The CPU seconds of each ``/`` and ``/status.json`` handler call that ended between
    ``start`` and ``end`` (``time.monotonic()``, the same clock in both processes)."""
    report = json.loads(names.read_text()) if names.exists() else {}
    return {key: [cpu for at, cpu in values if start <= at <= end]
            for key, values in report.get("handler_cpu", {}).items()}  # fmt: skip


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


# -- the daemon child --------------------------------------------------------------------------


def _time_status_handlers(samples: dict[str, list[tuple[float, float]]]) -> None:
    """Record the CPU time (``time.thread_time``) of each ``/`` and ``/status.json`` handler
    call in ``samples``, with the ``time.monotonic()`` it ended at: the page's own work
    (snapshot, scrub, view, HTML or JSON), without the time it waited for the loop. The
    handlers do not suspend (``Daemon.snapshot`` reads memory only), so no other task's CPU is
    counted in them."""
    from gateway.web import status

    routes = status._StatusRoutes  # the benchmark's probe on the two handlers
    for name, key in (("page", "page"), ("status_json", "status_json")):
        handler = getattr(routes, name)

        async def timed(self: Any, request: Any, _handler: Any = handler, _key: str = key) -> Any:
            start = time.thread_time()
            response = await _handler(self, request)
            samples[_key].append((time.monotonic(), time.thread_time() - start))
            return response

        setattr(routes, name, timed)


def child_main(workdir: str, acquirer_url: str) -> None:
    """The daemon process: cards in the slots, then run until SIGTERM; print the port."""
    from benchmarks.rss import CONTACTLESS_ATR  # not tests/: pytest is 7 MB of the RSS
    from drivers import sim
    from gateway.daemon.daemon import Daemon

    level = os.environ.get("POSGW_BENCH_LOG_LEVEL", "off")
    if level == "off":  # versus.py, event_loop.py: both sides alike, no lines
        logging.disable(logging.WARNING)
    else:  # as ``posgw run`` logs, to a file the parent counts (stderr, under systemd)
        from gateway.daemon.logs import configure_logging

        configure_logging(level, open(Path(workdir) / LOG_NAME, "a", encoding="utf-8"))  # noqa: SIM115
    from gateway.daemon import event_loop

    inline = os.environ.get("POSGW_BENCH_SIM_CARDS", "inline") == "inline"
    loop = os.environ.get("POSGW_BENCH_EVENT_LOOP", "asyncio")
    config = daemon_config(
        Path(workdir), acquirer_url, slots=True, inline_cards=inline, event_loop=loop
    )
    for index, kind in enumerate(MIX, start=1):
        card = NextCardholder(kind.profile)
        atr = (CONTACTLESS_ATR,) if kind.contactless else ()
        sim.slot(f"bench-lanes-{index}").insert(card, *atr)
    daemon = Daemon(config, env=fixed_env, install_signals=True)
    handler_cpu: dict[str, list[tuple[float, float]]] = {"page": [], "status_json": []}
    _time_status_handlers(handler_cpu)

    async def run() -> None:
        task = asyncio.create_task(daemon.run())
        while not daemon.ready:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        print(f"PORT {daemon.http_port}", flush=True)
        names = Path(workdir) / "threads.json"
        while not task.done():  # which native thread is which, for the parent's CPU split
            threads = {str(t.native_id): t.name for t in threading.enumerate()}
            commits = getattr(daemon.journal, "commit_counts", lambda: (0, 0))()
            report = {**threads, "commits": commits, "handler_cpu": handler_cpu}
            names.write_text(json.dumps(report))
            await asyncio.wait([task], timeout=1.0)
        await task

    profile = os.environ.get("POSGW_BENCH_PROFILE")
    if not profile:  # the loop ``posgw run`` would run it on
        event_loop.run(run(), config.event_loop)
        return
    import cProfile  # the event loop's thread only: where the daemon's own Python runs

    with cProfile.Profile() as profiler:
        event_loop.run(run(), config.event_loop)
    profiler.dump_stats(profile)


# -- the tills ---------------------------------------------------------------------------------


async def pay(
    session: aiohttp.ClientSession, base: str, lane: int, flow: str, reference: str | None = None
) -> dict[str, Any]:
    """One sale on ``lane`` as a till makes it: ``flow`` ``one`` (``POST ...?wait=20``) or
    ``two`` (``POST``, then ``GET ...?wait=20``), with the till's ``reference`` if given; the
    payment as the till API answers it."""
    kind = MIX[lane - 1]
    query = "?wait=20" if flow == "one" else ""
    sale: dict[str, Any] = {"amount": kind.amount}
    if reference is not None:
        sale["reference"] = reference
    async with session.post(f"{base}/api/lanes/{lane}/payments{query}",
                            json=sale) as response:  # fmt: skip
        body: dict[str, Any] = await response.json()
        if response.status >= 300 and not (flow == "one" and response.status == 202):
            raise RuntimeError(f"lane {lane}: {response.status} {body}")
    if flow == "two" or not body.get("done"):
        async with session.get(f"{base}/api/payments/{body['id']}?wait=20") as response:
            body = await response.json()
    return body


async def _till(session: aiohttp.ClientSession, base: str, lane: int, until: float,
                latencies: list[float], states: dict[str, int], kinds: dict[str, int],
                flow: str, references: bool) -> None:  # fmt: skip
    kind = MIX[lane - 1]
    while pc() < until:
        start = pc()
        reference = f"L{lane}S{next(_SALES)}" if references else None  # new: never a replay
        result = await pay(session, base, lane, flow, reference)
        latencies.append(pc() - start)
        state = str(result.get("state"))
        states[state] = states.get(state, 0) + 1
        if state in kind.expected:
            kinds[kind.name] = kinds.get(kind.name, 0) + 1


async def _poll(session: aiohttp.ClientSession, url: str, until: float,
                samples: list[float]) -> None:
    while pc() < until:
        start = pc()
        async with session.get(url, headers={"Accept": "text/html"}) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
        samples.append(pc() - start)
        await asyncio.sleep(max(0.0, 1.0 - (pc() - start)))


async def load(
    base: str, seconds: float, headers: dict[str, str], flow: str, references: bool = False
) -> Load:
    """16 tills back to back for ``seconds``; the two pages once a second each."""
    latencies: list[float] = []
    states: dict[str, int] = {}
    kinds: dict[str, int] = {}
    status_json: list[float] = []
    page: list[float] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        until = pc() + seconds
        start = pc()
        async with asyncio.TaskGroup() as group:
            for lane in range(1, len(MIX) + 1):
                group.create_task(
                    _till(session, base, lane, until, latencies, states, kinds, flow, references)
                )
            group.create_task(_poll(session, f"{base}/status.json", until, status_json))
            group.create_task(_poll(session, f"{base}/", until, page))
        return Load(pc() - start, latencies, states, kinds, status_json, page)


async def _forwarded(base: str, headers: dict[str, str], limit: float = 120.0) -> int:
    """Wait (polling ``/status.json`` every 0.1 s) until nothing awaits the reconciler: the
    offline sales are forwarded. Returns how many still wait after ``limit`` seconds (0: none;
    the figures are then printed as incomplete rather than the run failing)."""
    start = pc()
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            async with session.get(f"{base}/status.json") as response:
                waiting = int((await response.json())["journal"]["awaiting_recovery"])
            if not waiting or pc() - start > limit:
                return waiting
            await asyncio.sleep(0.1)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child of this script (the measured code first on its
    path), with ``extra`` (the ``POSGW_BENCH_*`` settings the daemon child reads)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(CODE))), **extra}


#: The daemon child's log file in its work directory (``--log-level``).
LOG_NAME = "daemon.log"


def _log_lines(workdir: Path) -> int:
    """Lines the daemon child has logged so far (each record is flushed as it is written)."""
    try:
        with open(workdir / LOG_NAME, "rb") as log_file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: log_file.read(1 << 16), b""))
    except FileNotFoundError:  # logging off
        return 0


def _card_data_lines(workdir: Path) -> int:
    """The child's log lines that hold what the card-data guard calls a PAN or track 2."""
    from gateway.journal.guard import find_card_data

    path = workdir / LOG_NAME
    if not path.exists():
        return 0
    return sum(find_card_data(line) is not None for line in path.read_text().splitlines())


async def start_daemon_child(
    workdir: Path, acquirer_url: str, **extra: str
) -> asyncio.subprocess.Process:
    """The daemon child (:func:`child_main`) on ``workdir``: it prints its port
    (:func:`_wait_port`)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--daemon-child", str(workdir),
        acquirer_url, cwd=CODE, env=child_env(**extra), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _wait_port(child: asyncio.subprocess.Process) -> int:
    assert child.stdout is not None
    line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
    if not line.startswith("PORT "):
        raise SystemExit(f"daemon did not start: {line!r}")
    return int(line.split()[1])


async def loaded_run(seconds: float, warmup: float, flow: str, references: bool) -> None:
    """The daemon child under 16 tills; print the load figures and the kernel floor."""
    from simulator.acquirer_host import AcquirerHost

    before = await floor_per_kind()  # the quiet machine, before any load (no daemon yet)
    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-lanes-"))
    host = AcquirerHost()
    try:
        url = await host.start()
        headers = bench_till(workdir / "journal.db")
        child = await start_daemon_child(workdir, url)
        try:
            base = f"http://127.0.0.1:{await _wait_port(child)}"
            await load(base, warmup, headers, flow, references)
            await _forwarded(base, headers)  # the warm-up's forwards are not the window's
            names = workdir / "threads.json"
            commits_before = _commits(names)
            cpu_before, threads_before = _cpu_seconds(child.pid), _thread_cpu(child.pid, names)
            lines_before = _log_lines(workdir)
            system_before = _system_seconds(child.pid)
            switches_before = _context_switches(child.pid)
            window_start = time.monotonic()
            floor_child = await asyncio.create_subprocess_exec(  # ends about with the window
                sys.executable, __file__, "--floor-child", str(max(1.0, seconds - 2.0)),
                cwd=CODE, env=child_env(), stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                result = await load(base, seconds, headers, flow, references)
            except BaseException:
                floor_child.kill()  # no sampler left behind a failed load
                await floor_child.wait()
                raise
            window = (window_start, time.monotonic())
            cpu = _cpu_seconds(child.pid) - cpu_before
            lines = _log_lines(workdir) - lines_before
            system = _system_seconds(child.pid) - system_before
            switches = _context_switches(child.pid) - switches_before
            floor_out, _ = await floor_child.communicate()
            if floor_child.returncode != 0:
                raise RuntimeError(f"the floor's process failed: {floor_child.returncode}")
            floor_samples: dict[str, list[float]] = json.loads(floor_out.splitlines()[-1])
            drain_start = pc()
            still_waiting = await _forwarded(base, headers)
            drain = pc() - drain_start
            cpu_with_forwards = _cpu_seconds(child.pid) - cpu_before
            await asyncio.sleep(1.1)  # the child's next report of its commit counts
            commits = [after - before for after, before in zip(_commits(names), commits_before,
                                                                   strict=True)]  # fmt: skip
            handler_cpu = _handler_cpu(names, *window)
            threads = {name: value - threads_before.get(name, 0.0)
                       for name, value in _thread_cpu(child.pid, names).items()}  # fmt: skip
            rss = _peak_rss_mb(child.pid)
        finally:
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(child.wait(), 30)
        card_data_lines = _card_data_lines(workdir)
    finally:
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    done = len(result.latencies)
    print(f"lanes: {len(MIX)} lanes")
    print(f"till_requests_per_payment: {1 if flow == 'one' else 2} requests")
    print(f"till_references_per_payment: {1 if references else 0} references")
    print(f"payments: {done} payments")
    print(f"payments_per_s: {done / result.seconds:.1f} payments/s")
    for state, count in sorted(result.states.items()):
        print(f"payments_{state.lower()}: {count} payments")
    print_ms("till_payment", result.latencies, digits=1)
    daemon_cpu = cpu / done
    print(f"daemon_cpu_per_payment: {daemon_cpu * 1e3:.2f} ms")
    print(f"forward_drain: {drain:.1f} s")
    if still_waiting:  # the _with_forwards figures leave these out
        print(f"forward_drain_incomplete: {still_waiting} payments")
    print(f"daemon_cpu_per_payment_with_forwards: {cpu_with_forwards / done * 1e3:.2f} ms")
    kernel = await kernel_cpu_per_payment(result.kinds)
    print(f"kernel_cpu_per_payment: {kernel * 1e3:.2f} ms")
    print(f"daemon_over_kernel_cpu: {daemon_cpu / kernel:.2f} x")
    # what the daemon adds to the kernel's path: the part a faster kernel does not shrink
    print(f"daemon_minus_kernel_cpu: {(daemon_cpu - kernel) * 1e3:.2f} ms")
    print(f"daemon_over_kernel_cpu_with_forwards: {cpu_with_forwards / done / kernel:.2f} x")
    during = weighted({name: statistics.median(v) for name, v in floor_samples.items()},
                      result.kinds)  # fmt: skip
    print(f"kernel_cpu_per_payment_during_load: {during * 1e3:.2f} ms")
    print(f"kernel_floor_samples_during_load: {sum(map(len, floor_samples.values()))} transactions")
    print(f"daemon_over_kernel_cpu_during_load: {daemon_cpu / during:.2f} x")
    print(f"kernel_floor_drift: {kernel / during:.2f} x")
    quiet = weighted(before, result.kinds)
    print(f"kernel_cpu_per_payment_before_load: {quiet * 1e3:.2f} ms")
    print(f"daemon_over_kernel_cpu_before_load: {daemon_cpu / quiet:.2f} x")
    print(f"kernel_floor_after_over_before: {kernel / quiet:.2f} x")
    # the floor as the kernel ran in the daemon before session 12 (its APDU trace recorded)
    traced = weighted(await floor_per_kind(trace=True), result.kinds)
    print(f"kernel_cpu_per_payment_with_trace: {traced * 1e3:.2f} ms")
    print(f"kernel_trace_cpu_per_payment: {(traced - kernel) * 1e3:.2f} ms")
    print(f"daemon_cpu_utilisation: {cpu / result.seconds:.2f} cores")
    print(f"daemon_system_cpu_per_payment: {system / done * 1e3:.2f} ms")
    print(f"daemon_context_switches_per_payment: {switches / done:.1f} switches")
    print(f"daemon_log_level: {os.environ.get('POSGW_BENCH_LOG_LEVEL', 'off')}")
    print(f"daemon_log_lines_per_payment: {lines / done:.2f} lines")
    print(f"daemon_log_card_data_lines: {card_data_lines} lines")
    if commits[0]:  # the journal's group commit (absent before it)
        print(f"journal_commits_per_payment: {commits[0] / done:.2f} commits")
        print(f"journal_requests_per_commit: {commits[1] / commits[0]:.2f} requests")
        print(f"journal_requests_per_payment: {commits[1] / done:.2f} requests")
    for name, value in threads.items():
        print(f"daemon_cpu_per_payment_{name}: {value / done * 1e3:.2f} ms")
    print(f"daemon_peak_rss: {rss:.1f} MB")
    print_ms("status_json_under_load", result.status_json, digits=1)
    print_ms("status_page_under_load", result.page, digits=1)
    for key, name in (("status_json", "status_json_handler_cpu"),
                      ("page", "status_page_handler_cpu")):  # fmt: skip
        if handler_cpu.get(key):  # the handlers' own CPU in the daemon (thread_time)
            print_ms(name, handler_cpu[key], digits=2)


async def big_journal_page(payments: int, samples: int) -> None:
    """``/`` and ``/status.json`` of an idle daemon whose journal holds ``payments`` rows."""
    from gateway.daemon.daemon import Daemon
    from simulator.acquirer_host import AcquirerHost

    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-big-"))
    host = AcquirerHost()
    try:
        start = pc()
        today = await build_big_journal(workdir / "journal.db", payments)
        print(f"big_journal_build: {pc() - start:.1f} s")
        config = daemon_config(workdir, await host.start(), slots=False)
        daemon = Daemon(config, env=fixed_env)
        task = asyncio.create_task(daemon.run())
        try:
            start = pc()
            while not daemon.ready:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            print(f"big_journal_daemon_start: {(pc() - start) * 1e3:.0f} ms")
            base = f"http://127.0.0.1:{daemon.http_port}"
            timings: dict[str, list[float]] = {"/": [], "/status.json": []}
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/status.json") as response:
                    figures = (await response.json())["journal"]
                for _ in range(samples):
                    for path, values in timings.items():
                        begin = pc()
                        async with session.get(base + path) as response:
                            await response.read()
                        values.append(pc() - begin)
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, 30)
    finally:
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if figures["payments_today"] != today:
        raise SystemExit(f"payments_today {figures['payments_today']} != {today} built")
    print(f"big_journal_payments: {payments} payments")
    print(f"big_journal_payments_today: {today} payments")
    print_ms("big_journal_status_page", timings["/"], digits=2)
    print_ms("big_journal_status_json", timings["/status.json"], digits=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured load")
    parser.add_argument("--warmup", type=float, default=4.0, help="load before measuring")
    parser.add_argument("--big", type=int, default=1_000_000, help="payments in the big journal")
    parser.add_argument("--page-samples", type=int, default=50, help="big-journal page fetches")
    parser.add_argument("--sim-cards", choices=("inline", "thread"), default="inline",
                        help="virtual cards on the event loop, or on each reader's thread")
    parser.add_argument("--till-flow", choices=("one", "two"), default="one",
                        help="one request per sale (POST ?wait) or two (POST, then GET ?wait)")
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the daemon's event loop (its configuration's event_loop)")
    parser.add_argument("--log-level", choices=("info", "warning", "off"), default="info",
                        help="the daemon's logging (info: as posgw run logs by default)")
    parser.add_argument("--references", action="store_true",
                        help="each sale with a till reference of its own (a new one each time)")
    parser.add_argument("--daemon-child", nargs=2, metavar=("WORKDIR", "ACQUIRER"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--floor-child", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.daemon_child:
        child_main(*args.daemon_child)
        return
    if args.floor_child is not None:  # the floor sampled during the load: one JSON line
        logging.disable(logging.WARNING)
        print(json.dumps(asyncio.run(floor_during(args.floor_child))))
        return
    logging.disable(logging.WARNING)
    os.environ["POSGW_BENCH_SIM_CARDS"] = args.sim_cards  # read by the daemon child
    os.environ["POSGW_BENCH_LOG_LEVEL"] = args.log_level  # and this
    os.environ["POSGW_BENCH_EVENT_LOOP"] = args.event_loop  # so is this
    print(f"sim_cards: {args.sim_cards}")
    print(f"event_loop: {args.event_loop}")
    asyncio.run(loaded_run(args.seconds, args.warmup, args.till_flow, args.references))
    if args.big > 0:
        asyncio.run(big_journal_page(args.big, args.page_samples))


if __name__ == "__main__":
    main()
