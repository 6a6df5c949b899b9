"""The daemon: the process around the parts, one asyncio TaskGroup, and the status snapshot.

Start-up order (ARCHITECTURE.md, "restart recovery runs before the daemon says it is ready"):
open the journal → build the parts (:func:`gateway.daemon.wiring.build_parts`) → restart
recovery, one bounded pass → the till API and the status page listen → ``READY=1`` to systemd
(:mod:`gateway.daemon.sdnotify`) → the tasks run. Tasks, each named (mitmproxy's main loop):
``lane[N].reader`` (device supervisor), ``lane[N].payments``, ``acquirer.reconciler``,
``acquirer.forwarder``, ``acquirer.refunds``, ``sd.watchdog`` (when ``$WATCHDOG_USEC`` is set),
``sync.outbox`` / ``sync.stock`` (when ``[mqtt]`` is configured), ``journal.prune`` and
``main.stop``. SIGTERM/SIGINT, or :meth:`Daemon.request_stop` from any thread, cancel them all;
the TaskGroup leaves no orphan, then the HTTP server, the journal and the acquirer client close.

The daemon itself only runs that lifecycle, answers what the till routes ask (lanes, recent
payment views) and takes the typed status snapshot (:mod:`gateway.daemon.snapshot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from drivers import open_device
from gateway.acquirer import AcquirerClient, AcquirerHealth
from gateway.daemon.config import DaemonConfig
from gateway.daemon.event_loop import running_loop_name
from gateway.daemon.listener import Listener
from gateway.daemon.manager_work import manager_work_provider
from gateway.daemon.sdnotify import Notifier, watchdog, watchdog_interval
from gateway.daemon.snapshot import (
    AcquirerStatus,
    JournalFigures,
    LaneSnapshot,
    MqttStatus,
    PaymentInProgress,
    Snapshot,
    StockStatus,
)
from gateway.daemon.wiring import (
    Parts,
    all_of,
    build_parts,
    kernel_config,
    open_sync,
    previous_vault_keys,
    report_previous_vault_keys,
    vault_key,
    web_app,
)
from gateway.day.close import DayCloser
from gateway.day.limits import OfflineGate
from gateway.day.summary import iso_ms, money_summary
from gateway.journal import Journal, Payment
from gateway.journal.lock import journal_lock
from gateway.payments import Lane, LaneView
from gateway.recovery.voids import VoidService
from gateway.security.service import SecurityService
from gateway.till.authority import Authorise, secured
from gateway.till.day import day_json
from gateway.till.hub import LaneEventHubs
from terminal import Environment

__all__ = ["Daemon", "kernel_config"]

log = logging.getLogger("gateway.daemon")

#: Finished payments kept for ``GET /api/payments/{id}`` (the journal has them all); payments
#: still in progress are always kept (at most one per lane), whatever their age.
RECENT = 256


@functools.cache
def _version() -> str:
    try:
        return version("posgw")
    except PackageNotFoundError:
        return "0+unknown"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class Daemon:
    """The posgw daemon (see the module docstring).

    Args:
        config: The validated configuration.
        environ: Environment for ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC``, credentials.
        clock: Wall clock (journal, diagnostics).
        random_bytes: Source of payment ids and idempotency keys.
        env: The kernel's clock and randomness, one per transaction.
        open_reader: Opens a device URL (default: :func:`drivers.open_device`).
        install_signals: The daemon owns the process (the main thread of ``posgw run``): handle
            SIGTERM/SIGINT, and take the start-up's objects out of the garbage collector's
            full collections once ready (:func:`gc.freeze`; docs/performance.md, "Memory").
    """

    def __init__(
        self,
        config: DaemonConfig,
        *,
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        env: Callable[[], Environment] = Environment.system,
        open_reader: Callable[[str], Awaitable[Any]] = open_device,
        install_signals: bool = False,
    ) -> None:
        self.config = config
        self.default_currency = config.currency
        self._environ = dict(os.environ if environ is None else environ)
        self._clock = clock
        self._random_bytes = random_bytes
        self._env = env
        self._open_reader = open_reader
        self._install_signals = install_signals
        self.notifier = Notifier(self._environ)
        self.health = AcquirerHealth(config.acquirer.url, clock)
        self.ready = False
        self.started_at: float | None = None
        self.http_port: int | None = None
        #: ``https`` or ``http``, and the listener certificate's SHA-256 (what tills pin).
        self.http_scheme = "https" if config.http.tls else "http"
        self.tls_fingerprint: str | None = None
        self.security: SecurityService | None = None
        #: The HTTP listener of the current run (its limiter's counters: diagnostics, tests).
        self.listener: Listener | None = None
        self.recovered_pending: int | None = None
        self.journal: Journal = None  # type: ignore[assignment]  # set in run()
        self._lanes: dict[int, Lane] = {}
        self._views: OrderedDict[str, LaneView] = OrderedDict()
        self._parts: Parts | None = None
        #: The lanes' event hubs (``GET /api/lanes/{id}/events``), and their options.
        self.hubs: LaneEventHubs | None = None
        self.event_options: dict[str, Any] = {}
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready_event = threading.Event()
        self._stop_requested = False
        #: Who may do what on the day routes (void: a till; day close, acknowledging a declined
        #: forward: a logged-in manager): the security part's checks (gateway/till/authority.py).
        self.authorise: Authorise = secured

    # -- what the till API reads ------------------------------------------------------------

    def lane(self, lane_id: int) -> Lane | None:
        """The lane with this id."""
        return self._lanes.get(lane_id)

    def all_lanes(self) -> list[Lane]:
        """Every lane, in configuration order."""
        return list(self._lanes.values())

    def view(self, payment_id: str) -> LaneView | None:
        """The lane's view of a recent payment."""
        return self._views.get(payment_id)

    def remember(self, view: LaneView) -> None:
        """Keep a payment's view for the till: every one in progress, and the most recent
        finished ones up to :data:`RECENT` in all. (Evicting by age alone dropped a payment
        still waiting for its card on a slow lane once the busy lanes had made RECENT more:
        its till could no longer cancel it, and its long poll no longer waited.)"""
        views = self._views
        views[view.id] = view
        while len(views) > RECENT:
            finished = next((key for key, kept in views.items() if kept.done.is_set()), None)
            if finished is None:
                return  # all in progress: bounded by the lanes
            del views[finished]

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def refunds(self) -> Any:
        """The refund service (the till's refund routes), once running."""
        return None if self._parts is None else self._parts.refunds

    @property
    def voids(self) -> VoidService | None:
        """The void service (``POST /api/payments/{id}/void``), once running."""
        return None if self._parts is None else self._parts.voids

    @property
    def day_closer(self) -> DayCloser | None:
        """The day close (``POST /api/days/close``), once running."""
        return None if self._parts is None else self._parts.day_closer

    @property
    def offline_gate(self) -> OfflineGate | None:
        """The store-and-forward limits, when configured, once running."""
        return None if self._parts is None else self._parts.offline_gate

    def request_stop(self) -> None:
        """Ask the daemon to stop; safe from any thread and from a signal handler."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    def wait_ready(self, timeout: float) -> bool:
        """Block (another thread) until ready; True when ready."""
        return self._ready_event.wait(timeout)

    async def run(self) -> None:
        """Run until stopped (see the module docstring for the order of things).

        Raises:
            gateway.journal errors when the journal cannot be opened; the vault key errors;
            MissingDependency when a configured part's library is not installed.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        cfg = self.config
        key = vault_key(cfg, self._environ)
        previous_keys = previous_vault_keys(cfg)
        client = AcquirerClient(
            base_url=cfg.acquirer.url,
            connect_timeout=cfg.acquirer.connect_timeout,
            total_timeout=cfg.acquirer.total_timeout,
            max_attempts=cfg.acquirer.max_attempts,
            keepalive_s=cfg.acquirer.keepalive,
        )
        journal_open = Journal.open(
            cfg.journal.path,
            vault_key=key,
            previous_vault_keys=previous_keys,
            clock=self._clock,
            random_bytes=self._random_bytes,
        )
        # The owner lock: ``posgw restore`` never replaces the journal of a running daemon.
        with self._signals(), journal_lock(cfg.journal.path):
            async with journal_open as journal, client:
                self.journal = journal
                await report_previous_vault_keys(cfg, journal, previous_keys)
                self.security = await SecurityService.open(
                    cfg.journal.path,
                    clock=self._clock,
                    audit_keys=[k.audit_key() for k in (key, *previous_keys) if k is not None],
                )
                # audit rows through the journal's worker: one writer, one group commit
                self.security.attach_journal(journal)
                try:
                    await self._serve(journal, client)
                finally:
                    self.ready = False
                    if "STOPPING=1" not in self.notifier.sent:
                        self.notifier.stopping()
                    await self.security.close()
        log.info("posgw stopped")

    async def _serve(self, journal: Journal, client: AcquirerClient) -> None:
        cfg = self.config
        parts = build_parts(
            cfg,
            journal,
            client,
            self.health,
            env=self._env,
            clock=self._clock,
            open_reader=self._open_reader,
        )
        self._parts, self._lanes = parts, parts.lanes
        self.recovered_pending = await parts.recover()
        stack = contextlib.AsyncExitStack()
        assert self.security is not None
        # the manager page's lists: declined forwards, terminal payments left for a manager
        work = manager_work_provider(lambda: self.journal, self.all_lanes)
        listener = self.listener = Listener(cfg, self.security, work=work)
        app, self.hubs = web_app(
            self,
            self.snapshot,
            self.event_options,
            app=listener.application(),
            locale=cfg.http.locale,
        )
        parts.reconciler.on_forward_declined = self._forward_declined
        runner = listener.runner(app)
        await runner.setup()
        try:
            parts.sync, parts.stock = await open_sync(cfg, journal, stack)
            wakers = [w.notify for _n, w in parts.sync if callable(getattr(w, "notify", None))]
            if wakers:  # the publisher and the stock follower
                parts.services.on_settled = all_of(wakers)
            for _name, worker in parts.sync:
                day_closed = getattr(worker, "day_closed", None)
                if callable(day_closed):
                    parts.day_closer.on_closed = day_closed
            self.http_port = await listener.start(runner)
            self.tls_fingerprint = listener.fingerprint
            head = await self.security.record(
                actor="daemon",
                action="daemon.start",
                outcome="ok",
                detail={"port": self.http_port, "tls": cfg.http.tls},
            )
            # the chain head in the system log too: a copy outside the journal file
            log.info("audit chain: %d rows, head %s", head.seq, head.hash)
            await self._run_tasks(parts)
        finally:
            listener.stop()
            await runner.cleanup()
            await stack.aclose()

    def _forward_declined(self, payment: Payment) -> None:
        """A forward the bank declined: tell the lane's till, send the record on to head office."""
        hub = None if self.hubs is None else self.hubs.get(int(payment.lane))
        if hub is not None:
            hub.publish(
                "forward_declined",
                payment=payment.id,
                state=payment.state.value,
                amount=payment.amount,
                currency=payment.currency,
                masked_pan=payment.masked_pan,
                response_code=payment.response_code,
            )
        if self._parts is not None:
            self._parts.services.on_settled()  # the re-queued sale record goes out now

    async def day_snapshot(self) -> dict[str, Any] | None:
        """The money part of the snapshot: the day, takings, limits, declined forwards.

        From memory kept by the journal's commits (:class:`gateway.journal.money.DayMoney`,
        docs/performance.md): nothing waits behind the journal's writes, nothing grows with it
        (a coroutine for its callers; it never suspends).
        """
        journal = self.journal
        if journal is None or journal.closed:
            return None
        figures = journal.money.read()
        summary = money_summary(figures)
        gate = self.offline_gate
        exposure = figures.exposure
        summary["offline"] = (
            gate.snapshot(exposure)
            if gate is not None
            else {c: {"count": e.count, "amount": e.amount} for c, e in exposure.items()}
        )
        last = figures.close
        # ``since``: where the takings start (the last close, or local midnight when no day
        # was ever closed: docs/journal.md, "The day in money")
        day: dict[str, Any] = {
            "opened": None if last is None else iso_ms(last.closed_ms),
            "since": iso_ms(figures.day_start_ms),
            "last_close": None,
        }
        if last is not None:
            day["last_close"] = {**day_json(last, full=False), "closed": iso_ms(last.closed_ms)}
            record = last.record
            found = list(record.get("acquirer", {}).get("differences", []))
            unavailable: list[str] = []
            for entry in record.get("terminals", []):  # TPE lanes (gateway.day.terminals)
                found += entry.get("differences", [])
                if not entry.get("reconciled"):
                    unavailable.append(str(entry.get("lane")))
            day["last_differences"] = found
            day["terminals_unavailable"] = unavailable
        summary["day"] = day
        return summary

    async def _run_tasks(self, parts: Parts) -> None:
        assert self._stop is not None
        frozen = self._install_signals
        if frozen:
            # Every module, table and part built so far lives as long as the process: a full
            # collection under load walked them all and stopped the loop for 50-170 ms
            # (benchmarks/rss.py, gc_pause_gen2_max), the pages' worst latencies.
            gc.collect()
            gc.freeze()
        try:
            await self._run_parts(parts)
        finally:
            if frozen:
                gc.unfreeze()

    async def _run_parts(self, parts: Parts) -> None:
        assert self._stop is not None
        self.started_at = self._clock()
        self.ready = True
        self._ready_event.set()
        self.notifier.ready(f"{len(self._lanes)} lane(s), listening on port {self.http_port}")
        log.info("posgw ready: shop %s, port %s, event loop %s", self.config.shop,
                 self.http_port, running_loop_name())  # fmt: skip
        jobs: list[tuple[str, Coroutine[Any, Any, None]]] = parts.jobs()
        interval = watchdog_interval(self._environ)
        if interval is not None and self.notifier.enabled:
            jobs.append(("sd.watchdog", watchdog(self.notifier, interval)))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(job, name=name) for name, job in jobs]
            group.create_task(self._stopper(tasks), name="main.stop")

    async def _stopper(self, tasks: list[asyncio.Task[None]]) -> None:
        assert self._stop is not None
        await self._stop.wait()
        log.info("stopping: cancelling %d tasks", len(tasks))
        self.ready = False
        self.notifier.stopping()
        for task in tasks:
            task.cancel()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if self._install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    # -- the snapshot ------------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """The typed status the status page and metrics read (docs/daemon.md); masked only."""
        # From memory only (docs/performance.md): a busy lane's payment as its last COMMIT left
        # it, and the day's figures kept by the commits; nothing waits behind the journal.
        journal = self.journal
        lanes = []
        for lane in self._lanes.values():
            entry = lane.snapshot()
            payment = entry.pop("payment")
            in_progress = None if payment is None else PaymentInProgress(**payment)
            journaled = None if in_progress is None or journal is None else (
                journal.last_committed(in_progress.id)
            )
            if in_progress is not None and journaled is not None:
                in_progress.state = journaled.state.value
                in_progress.masked_pan = journaled.masked_pan
            lanes.append(LaneSnapshot(**entry, payment=in_progress))
        figures = None if journal is None or journal.closed else journal.figures.read()
        parts = self._parts
        return Snapshot(
            shop=self.config.shop,
            version=_version(),
            ready=self.ready,
            started_at=_iso(self.started_at),
            now=_iso(self._clock()),
            lanes=lanes,
            journal=JournalFigures(
                payments_today=0 if figures is None else figures.payments,
                approved_today=0 if figures is None else figures.approved,
                declined_today=0 if figures is None else figures.declined,
                refunds_today=0 if figures is None else figures.refunds,
                outbox_backlog=0 if figures is None else figures.outbox_backlog,
                awaiting_recovery=0 if parts is None else parts.reconciler.pending,
            ),
            acquirer=AcquirerStatus(
                url=self.health.url,
                reachable=self.health.reachable,
                last_error=self.health.last_error,
                last_success=_iso(self.health.last_success),
            ),
            mqtt=_mqtt_status([] if parts is None else parts.sync),
            stock=await self._stock_status(),
            money=await self.day_snapshot(),
        )

    # -- what the stock routes read ----------------------------------------------------------

    @property
    def stock(self) -> Any:
        """The local stock store (None without ``[mqtt]``, or before it is open)."""
        return None if self._parts is None else self._parts.stock

    def low_stock_threshold(self) -> int:
        """A SKU at or below this level is low (``[mqtt] low_stock``)."""
        return self.config.mqtt.low_stock if self.config.mqtt is not None else 0

    async def _stock_status(self) -> StockStatus:
        store = self.stock
        if store is None:
            return StockStatus()
        threshold = self.low_stock_threshold()
        levels: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # a status page never fails on the stock file
            levels = await store.levels()
        low = [{"sku": sku, "level": row["level"]} for sku, row in levels.items()
               if row["level"] <= threshold]  # fmt: skip
        return StockStatus(enabled=True, skus=len(levels), low_threshold=threshold, low=low)


def _mqtt_status(workers: list[tuple[str, Any]]) -> MqttStatus:
    diagnostics: list[dict[str, Any]] = []
    for _name, worker in workers:
        with contextlib.suppress(Exception):  # a status page never fails on a worker
            entry = dict(worker.diagnostics())
            if "connected" in entry:  # the MQTT links, not the stock follower
                diagnostics.append(entry)
    publisher = diagnostics[0] if diagnostics else {}
    errors = [d.get("last_error") for d in diagnostics if d.get("last_error")]
    return MqttStatus(
        enabled=bool(workers),
        connected=bool(diagnostics) and all(d.get("connected") for d in diagnostics),
        backlog=publisher.get("backlog", 0),
        last_error=errors[0] if errors else None,
        last_publish=publisher.get("last_publish"),
    )
