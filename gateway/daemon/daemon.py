"""The daemon: one asyncio TaskGroup running the lanes, the reconciler, the HTTP API and sync.

Start-up order (ARCHITECTURE.md, "restart recovery runs before the daemon says it is ready"):
open the journal → ``journal.recover()`` and one bounded pass of the reconciler over what it
found → the till API and the status page listen → ``READY=1`` to systemd → the tasks run.
Tasks, each named (mitmproxy's main loop): ``lane[N].reader`` (device supervisor),
``lane[N].payments``, ``acquirer.reconciler``, ``acquirer.forwarder``, ``sd.watchdog`` (when
``$WATCHDOG_USEC`` is set), ``sync.outbox`` / ``sync.stock`` (when ``[mqtt]`` is configured and
:mod:`gateway.sync` is installed) and ``main.stop``. SIGTERM/SIGINT, or
:meth:`Daemon.request_stop` from any thread, cancel them all; the TaskGroup leaves no orphan,
then the HTTP server, the journal and the acquirer client close.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from drivers import open_device
from gateway.acquirer import AcquirerClient, AcquirerHealth
from gateway.daemon.config import DaemonConfig, KernelConfig
from gateway.daemon.sdnotify import Notifier, watchdog_interval
from gateway.daemon.stats import JournalStats
from gateway.journal import Journal, JournalError, VaultKey, load_vault_key
from gateway.payments import (
    Lane,
    LaneServices,
    LaneView,
)
from gateway.payments.smart_terminal import on_terminal_lanes
from gateway.recovery.reconciler import FORWARDING, RESOLVING, Reconciler
from gateway.recovery.refunds import RefundService, sales_only
from gateway.till.events import add_event_routes
from gateway.till.hub import LaneEventHubs
from gateway.till.payments import add_till_routes
from gateway.till.refunds import add_refund_routes
from terminal import DEFAULT_CONFIG_FILE, Environment, TerminalConfig

__all__ = ["Daemon", "kernel_config"]

log = logging.getLogger("gateway.daemon.daemon")

#: Recent payments kept for ``GET /api/payments/{id}`` (the journal has them all).
RECENT = 256
PRUNE_INTERVAL = 3600.0  # seconds between outbox pruning passes


def kernel_config(config: KernelConfig) -> TerminalConfig:
    """The kernel configuration: the configured (or shipped) file plus the extra CA key files."""
    terminal = TerminalConfig.load(config.config) if config.config else TerminalConfig.default()
    keys = list(terminal.ca_keys or [str(DEFAULT_CONFIG_FILE.parent / "capk_test.json")])
    keys += [str(path) for path in config.extra_ca_keys if str(path) not in keys]
    return terminal.model_copy(update={"ca_keys": keys})


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
        install_signals: Handle SIGTERM/SIGINT (the main thread of ``posgw run``).
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
        self.recovered_pending: int | None = None
        self.journal: Journal = None  # type: ignore[assignment]  # set in run()
        self._lanes: dict[int, Lane] = {}
        self._views: OrderedDict[str, LaneView] = OrderedDict()
        self._reconciler: Reconciler | None = None
        self.refunds: RefundService | None = None
        #: The lanes' event hubs (``GET /api/lanes/{id}/events``), and their options.
        self.hubs: LaneEventHubs | None = None
        self.event_options: dict[str, Any] = {}
        self._stats: JournalStats | None = None
        self._sync: list[Any] = []
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready_event = threading.Event()
        self._stop_requested = False

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
        """Keep a payment's view for the till (the most recent :data:`RECENT`)."""
        self._views[view.id] = view
        while len(self._views) > RECENT:
            self._views.popitem(last=False)

    # -- lifecycle ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the daemon to stop; safe from any thread and from a signal handler."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    def wait_ready(self, timeout: float) -> bool:
        """Block (another thread) until ready; True when ready."""
        return self._ready_event.wait(timeout)

    def _vault_key(self) -> VaultKey | None:
        vault = self.config.vault
        if vault.key_file is not None:
            return load_vault_key(vault.key_file)
        if vault.credential is not None:
            directory = self._environ.get("CREDENTIALS_DIRECTORY")
            if directory is None:
                return load_vault_key(credential=vault.credential)
            return load_vault_key(os.path.join(directory, vault.credential))
        return None

    async def run(self) -> None:
        """Run until stopped (see the module docstring for the order of things).

        Raises:
            gateway.journal errors when the journal cannot be opened; the vault key errors.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        cfg = self.config
        vault_key = self._vault_key()
        previous_keys = [load_vault_key(path) for path in cfg.vault.previous_key_files]
        terminal = kernel_config(cfg.terminal)
        client = AcquirerClient(
            base_url=cfg.acquirer.url,
            connect_timeout=cfg.acquirer.connect_timeout,
            total_timeout=cfg.acquirer.total_timeout,
            max_attempts=cfg.acquirer.max_attempts,
        )
        journal_open = Journal.open(
            cfg.journal.path,
            vault_key=vault_key,
            previous_vault_keys=previous_keys,
            clock=self._clock,
            random_bytes=self._random_bytes,
        )
        with self._signals():
            async with journal_open as journal, client:
                self.journal = journal
                await self._report_previous_vault_keys(journal, previous_keys)
                self._stats = JournalStats(cfg.journal.path, self._clock)
                try:
                    await self._serve(journal, client, terminal)
                finally:
                    self.ready = False
                    if "STOPPING=1" not in self.notifier.sent:
                        self.notifier.stopping()
                    await self._stats.close()
        log.info("posgw stopped")

    async def _serve(
        self, journal: Journal, client: AcquirerClient, terminal: TerminalConfig
    ) -> None:
        cfg = self.config
        reconciler = Reconciler(
            journal=journal,
            client=client,
            health=self.health,
            retry_interval=cfg.acquirer.retry_interval,
        )
        self._reconciler = reconciler
        self.refunds = RefundService(
            journal=journal,
            client=client,
            health=self.health,
            retry_interval=cfg.acquirer.retry_interval,
        )
        services = LaneServices(
            journal=journal,
            client=client,
            health=self.health,
            reconciler=reconciler,
            kernel_config=terminal,
            merchant_id=cfg.acquirer.merchant_id,
            terminal_id=cfg.acquirer.terminal_id,
            timeouts=cfg.timeouts,
            env=self._env,
            clock=self._clock,
            open_reader=self._open_reader,
        )
        self._lanes = {lane.id: Lane(lane, services) for lane in cfg.lanes}
        recovery = await journal.recover()
        readers = {lane.id: lane.reader for lane in cfg.lanes}
        acquirer_side, terminal_side = on_terminal_lanes(sales_only(recovery), readers)
        for item in terminal_side.pending:
            log.warning("recovery: payment %s on a terminal lane left for the terminal's "
                        "recovery (%s)", item.payment.id, item.payment.state.value)  # fmt: skip
        self.recovered_pending = await reconciler.recover(
            acquirer_side, within=cfg.timeouts.recovery
        )
        self.recovered_pending += await self.refunds.recover(recovery, within=cfg.timeouts.recovery)
        log.info(
            "recovery: %d unfinished, %d still pending, %d outbox rows unsent",
            len(recovery.pending),
            self.recovered_pending,
            recovery.outbox_unsent,
        )
        stack = contextlib.AsyncExitStack()
        runner = web.AppRunner(self._web_app(), handle_signals=False, access_log=None)
        await runner.setup()
        try:
            self._sync = await _open_sync(cfg, journal, stack)
            for _name, worker in self._sync:
                notify = getattr(worker, "notify", None)
                if callable(notify):
                    services.on_settled = notify
            site = web.TCPSite(runner, cfg.http.host, cfg.http.port)
            await site.start()
            addresses = runner.addresses
            self.http_port = int(addresses[0][1]) if addresses else cfg.http.port
            await self._run_tasks(reconciler)
        finally:
            await runner.cleanup()
            await stack.aclose()

    async def _run_tasks(self, reconciler: Reconciler) -> None:
        assert self._stop is not None
        self.started_at = self._clock()
        self.ready = True
        self._ready_event.set()
        self.notifier.ready(f"{len(self._lanes)} lane(s), listening on port {self.http_port}")
        log.info("posgw ready: shop %s, port %s", self.config.shop, self.http_port)
        jobs: list[tuple[str, Coroutine[Any, Any, None]]] = []
        for lane in self._lanes.values():
            jobs.append((f"{lane.actor}.reader", lane.supervisor.run()))
            jobs.append((f"{lane.actor}.payments", lane.run_payments()))
        jobs.append(("acquirer.reconciler", reconciler.run(RESOLVING)))
        jobs.append(("acquirer.forwarder", reconciler.run(FORWARDING)))
        if self.refunds is not None:
            jobs.append(("acquirer.refunds", self.refunds.run()))
        interval = watchdog_interval(self._environ)
        if interval is not None and self.notifier.enabled:
            jobs.append(("sd.watchdog", self._watchdog(interval)))
        jobs.extend(self._sync_jobs())
        jobs.append(("journal.prune", self._prune_outbox()))
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

    async def _report_previous_vault_keys(self, journal: Journal, keys: list[VaultKey]) -> None:
        """Log what each retired vault key still holds (0: it can be removed)."""
        if not keys:
            return
        rows = await journal.vault_rows_by_key()
        for path, key in zip(self.config.vault.previous_key_files, keys, strict=True):
            held = rows.get(key.key_id.hex(), 0)
            log.info("vault: previous key %s still seals %d row(s)%s", path, held,
                     "; it can be removed" if held == 0 else "")  # fmt: skip

    async def _prune_outbox(self) -> None:
        """Every hour, drop outbox records head office acknowledged long ago (the journal
        keeps the payments; ``journal.outbox_retention_days``)."""
        retention = self.config.journal.outbox_retention_days * 86400.0
        while True:
            try:
                pruned = await self.journal.prune_outbox(older_than=retention)
            except JournalError as exc:
                log.error("outbox pruning failed: %s", exc)
            else:
                if pruned:
                    log.info("outbox: %d acknowledged record(s) pruned", pruned)
            await asyncio.sleep(PRUNE_INTERVAL)

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _sync_jobs(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """Head-office sync tasks (opened by :func:`_open_sync` before ready)."""
        return [(name, worker.run()) for name, worker in self._sync]

    @contextlib.contextmanager
    def _signals(self) -> Any:
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

    def _web_app(self) -> web.Application:
        app = web.Application()
        add_till_routes(app, self)
        add_refund_routes(app, self)
        # one event hub per lane (the lane's listener), closed on shutdown
        self.hubs = add_event_routes(app, self, **self.event_options)
        try:
            from gateway.web import add_status_routes
        except ImportError:
            log.info("status page not installed (gateway.web missing)")
        else:
            add_status_routes(app, self.snapshot)
        return app

    # -- the snapshot ------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """The JSON-safe state the status page and metrics read (docs/daemon.md); masked only."""
        lanes = []
        for lane in self._lanes.values():
            entry = lane.snapshot()
            payment = entry.get("payment")
            if payment is not None and self.journal is not None:
                with contextlib.suppress(JournalError):
                    journaled = await self.journal.get(payment["id"])
                    payment["state"] = journaled.state.value
                    payment["masked_pan"] = journaled.masked_pan
            lanes.append(entry)
        stats = await self._stats.read() if self._stats is not None else {}
        pending = self._reconciler.pending if self._reconciler is not None else 0
        return {
            "shop": self.config.shop,
            "version": _version(),
            "ready": self.ready,
            "started_at": _iso(self.started_at),
            "now": _iso(self._clock()),
            "lanes": lanes,
            "journal": {
                "payments_today": stats.get("payments_today", 0),
                "approved_today": stats.get("approved_today", 0),
                "declined_today": stats.get("declined_today", 0),
                "refunds_today": stats.get("refunds_today", 0),
                "outbox_backlog": stats.get("outbox_backlog", 0),
                "awaiting_recovery": pending,
            },
            "acquirer": {
                "url": self.health.url,
                "reachable": self.health.reachable,
                "last_error": self.health.last_error,
                "last_success": _iso(self.health.last_success),
            },
            "mqtt": self._mqtt_snapshot(),
        }

    def _mqtt_snapshot(self) -> dict[str, Any]:
        diagnostics: list[dict[str, Any]] = []
        for _name, worker in self._sync:
            with contextlib.suppress(Exception):  # a status page never fails on a worker
                diagnostics.append(dict(worker.diagnostics()))
        publisher = diagnostics[0] if diagnostics else {}
        errors = [d.get("last_error") for d in diagnostics if d.get("last_error")]
        return {
            "enabled": bool(self._sync),
            "connected": bool(diagnostics) and all(d.get("connected") for d in diagnostics),
            "backlog": publisher.get("backlog", 0),
            "last_error": errors[0] if errors else None,
            "last_publish": publisher.get("last_publish"),
        }


async def _open_sync(
    config: DaemonConfig, journal: Journal, stack: contextlib.AsyncExitStack
) -> list[tuple[str, Any]]:
    """The sync workers (imported lazily: without :mod:`gateway.sync` the feature is off)."""
    mqtt = config.mqtt
    if mqtt is None:
        return []
    try:
        sync = importlib.import_module("gateway.sync")
        stock_module = importlib.import_module("gateway.sync.stock_store")
        factory_of = sync.mqtt_client_factory
    except (ImportError, AttributeError) as exc:
        log.warning("[mqtt] is configured but head-office sync is not available: %s", exc)
        return []
    options: dict[str, Any] = {"host": mqtt.host, "port": mqtt.port, "shop": config.shop}
    if mqtt.username is not None:
        options["username"] = mqtt.username
    if mqtt.password_file is not None:
        options["password"] = mqtt.password_file.read_text(encoding="utf-8").strip()
    if mqtt.tls:  # a CA, certificate or key that cannot be used stops the daemon here
        options["tls_context"] = sync.client_tls_context(
            ca_file=mqtt.ca_file, cert_file=mqtt.cert_file, key_file=mqtt.key_file
        )
    publisher = sync.OutboxPublisher(
        journal=journal, client_factory=factory_of(role="sales", **options), shop=config.shop
    )
    stock_path = mqtt.stock_path or config.journal.path.with_name("stock.db")
    store = await stock_module.StockStore.open(stock_path)
    stack.push_async_callback(store.close)
    stock = sync.StockSync(
        stock=store, client_factory=factory_of(role="stock", **options), shop=config.shop
    )
    return [("sync.outbox", publisher), ("sync.stock", stock)]
