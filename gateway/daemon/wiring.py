"""Wiring: every part of the daemon built once, in one place, from the configuration.

:func:`build_parts` makes the acquirer's health, the reconciler, the refund service and one
lane per ``[[lanes]]`` entry around an open journal and acquirer client; :func:`web_app` mounts
the till routes and the status page; :func:`open_sync` the head-office workers. An optional
part that is configured (the status page always is; sync when ``[mqtt]`` is) but whose library
is not installed stops the start-up with :class:`gateway.errors.MissingDependency` naming the
module: a shop never runs silently without what its configuration asks for.
:attr:`Parts.jobs` lists the named tasks the daemon's TaskGroup runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from drivers import parse_url
from gateway.acquirer import AcquirerClient, AcquirerHealth
from gateway.daemon.config import DaemonConfig, KernelConfig
from gateway.day.close import DayCloser
from gateway.day.limits import OfflineGate, limits_from_config
from gateway.errors import MissingDependency
from gateway.journal import Journal, JournalError, Recovery, VaultKey, load_vault_key
from gateway.payments import Lane, LaneServices
from gateway.payments.smart_terminal import TERMINAL_SCHEMES, on_terminal_lanes
from gateway.payments.terminal_day import end_of_day
from gateway.payments.terminal_refunds import TerminalRefunds
from gateway.payments.terminal_voids import TerminalVoids
from gateway.recovery.reconciler import FORWARDING, RESOLVING, Reconciler
from gateway.recovery.refunds import RefundService, sales_only
from gateway.recovery.voids import VoidService
from gateway.till.contract import add_contract_route
from gateway.till.day import add_day_routes
from gateway.till.doubt import add_doubt_routes
from gateway.till.events import add_event_routes
from gateway.till.hub import LaneEventHubs
from gateway.till.payments import add_till_routes
from gateway.till.refunds import add_refund_routes
from gateway.till.stock import add_stock_routes
from gateway.till.terminal import add_terminal_routes
from terminal import DEFAULT_CONFIG_FILE, Environment, TerminalConfig

__all__ = [
    "PRUNE_INTERVAL",
    "Parts",
    "build_parts",
    "kernel_config",
    "open_sync",
    "previous_vault_keys",
    "vault_key",
    "web_app",
]

log = logging.getLogger("gateway.daemon")

PRUNE_INTERVAL = 3600.0  # seconds between outbox pruning passes

Job = tuple[str, Coroutine[Any, Any, None]]


def kernel_config(config: KernelConfig) -> TerminalConfig:
    """The kernel configuration: the configured (or shipped) file plus the extra CA key files."""
    terminal = TerminalConfig.load(config.config) if config.config else TerminalConfig.default()
    keys = list(terminal.ca_keys or [str(DEFAULT_CONFIG_FILE.parent / "capk_test.json")])
    keys += [str(path) for path in config.extra_ca_keys if str(path) not in keys]
    return terminal.model_copy(update={"ca_keys": keys})


def vault_key(config: DaemonConfig, environ: Mapping[str, str]) -> VaultKey | None:
    """The store-and-forward key: a file, or a systemd credential (``$CREDENTIALS_DIRECTORY``)."""
    vault = config.vault
    if vault.key_file is not None:
        return load_vault_key(vault.key_file)
    if vault.credential is not None:
        directory = environ.get("CREDENTIALS_DIRECTORY")
        if directory is None:
            return load_vault_key(credential=vault.credential)
        return load_vault_key(os.path.join(directory, vault.credential))
    return None


def previous_vault_keys(config: DaemonConfig) -> list[VaultKey]:
    """The retired vault keys, read once at start (journal and the start-up report share them)."""
    return [load_vault_key(path) for path in config.vault.previous_key_files]


async def report_previous_vault_keys(
    config: DaemonConfig, journal: Journal, keys: list[VaultKey]
) -> None:
    """Log what each retired vault key still holds (0: it can be removed)."""
    if not keys:
        return
    rows = await journal.vault_rows_by_key()
    for path, key in zip(config.vault.previous_key_files, keys, strict=True):
        held = rows.get(key.key_id.hex(), 0)
        log.info("vault: previous key %s still seals %d row(s)%s", path, held,
                 "; it can be removed" if held == 0 else "")  # fmt: skip


@dataclass(slots=True)
class Parts:
    """Everything the daemon runs, built once by :func:`build_parts`."""

    config: DaemonConfig
    journal: Journal
    health: AcquirerHealth
    reconciler: Reconciler
    refunds: RefundService
    services: LaneServices
    lanes: dict[int, Lane]
    #: The shop's day (docs/day.md): voids, the day close, the store-and-forward limits.
    voids: VoidService
    day_closer: DayCloser
    offline_gate: OfflineGate | None = None
    #: Head-office workers (``sync.outbox``, ``sync.stock``, ``sync.stock_follow``,
    #: ``sync.days``), once
    #: :func:`open_sync` ran.
    sync: list[tuple[str, Any]] = field(default_factory=list)
    #: The local stock store (``GET /api/stock``), once :func:`open_sync` ran with ``[mqtt]``.
    stock: Any = None

    async def recover(self) -> int:
        """Restart recovery, before ready: one bounded pass; returns what is still pending."""
        cfg = self.config
        recovery = await self.journal.recover()
        readers = {lane.id: lane.reader for lane in cfg.lanes}
        acquirer_side, terminal_side = on_terminal_lanes(sales_only(recovery), readers)
        for item in terminal_side.pending:
            log.warning("recovery: payment %s on a terminal lane left for the terminal's "
                        "recovery (%s)", item.payment.id, item.payment.state.value)  # fmt: skip
        pending = await self.reconciler.recover(acquirer_side, within=cfg.timeouts.recovery)
        pending += await self.refunds.recover(recovery, within=cfg.timeouts.recovery)
        _log_recovery(recovery, pending)
        return pending

    def jobs(self) -> list[Job]:
        """The named tasks of the TaskGroup (the watchdog and the stopper are the daemon's)."""
        jobs: list[Job] = []
        for lane in self.lanes.values():
            jobs.append((f"{lane.actor}.reader", lane.supervisor.run()))
            jobs.append((f"{lane.actor}.payments", lane.run_payments()))
        jobs.append(("acquirer.reconciler", self.reconciler.run(RESOLVING)))
        jobs.append(("acquirer.forwarder", self.reconciler.run(FORWARDING)))
        jobs.append(("acquirer.refunds", self.refunds.run()))
        jobs.extend((name, worker.run()) for name, worker in self.sync)
        retention = self.config.journal.outbox_retention_days * 86400.0
        jobs.append(("journal.prune", prune_outbox(self.journal, retention)))
        return jobs


def _log_recovery(recovery: Recovery, pending: int) -> None:
    log.info(
        "recovery: %d unfinished, %d still pending, %d outbox rows unsent",
        len(recovery.pending),
        pending,
        recovery.outbox_unsent,
    )


def build_parts(
    config: DaemonConfig,
    journal: Journal,
    client: AcquirerClient,
    health: AcquirerHealth,
    *,
    env: Callable[[], Environment],
    clock: Callable[[], float],
    open_reader: Callable[[str], Awaitable[Any]],
) -> Parts:
    """The reconciler, the refund service and the lanes around ``journal`` and ``client``."""
    retry = config.acquirer.retry_interval
    reconciler = Reconciler(journal=journal, client=client, health=health, retry_interval=retry)
    refunds = RefundService(journal=journal, client=client, health=health, retry_interval=retry)
    gate = None
    if config.store_and_forward:  # without the section: only the kernel's floor limits
        gate = OfflineGate(
            limits_from_config(config.store_and_forward), clock_ms=lambda: round(clock() * 1000)
        )
    services = LaneServices(
        journal=journal,
        client=client,
        health=health,
        reconciler=reconciler,
        kernel_config=kernel_config(config.terminal),
        merchant_id=config.acquirer.merchant_id,
        terminal_id=config.acquirer.terminal_id,
        timeouts=config.timeouts,
        env=env,
        clock=clock,
        open_reader=open_reader,
        offline_gate=gate,
    )
    lanes = {lane.id: Lane(lane, services) for lane in config.lanes}
    refunds.terminals = TerminalRefunds(lanes)  # a TPE lane's refunds go to its terminal
    terminal_lanes = frozenset(
        str(x.id) for x in config.lanes if parse_url(x.reader).scheme in TERMINAL_SCHEMES
    )
    voids = VoidService(
        journal=journal,
        client=client,
        health=health,
        reconciler=reconciler,
        terminal_lanes=terminal_lanes,
        terminals=TerminalVoids(lanes),  # a TPE lane's voids are its terminal's cancellations
    )
    closer = DayCloser(
        journal=journal,
        client=client,
        merchant_id=config.acquirer.merchant_id,
        lane_interfaces={str(x.id): x.interface for x in config.lanes if x.interface != "auto"},
        terminal_lanes=terminal_lanes,
        ask_terminal=lambda lane, actor: end_of_day(lanes[int(lane)], actor=actor),
    )
    return Parts(
        config, journal, health, reconciler, refunds, services, lanes, voids, closer, gate
    )


def web_app(
    backend: Any,
    snapshot: Callable[[], Awaitable[Any]],
    event_options: Mapping[str, Any],
    *,
    app: web.Application | None = None,
    locale: str | None = None,
) -> tuple[web.Application, LaneEventHubs]:
    """The till API, its event streams (one hub per lane) and the status page, on ``app``
    (the listener's, with the security middlewares; a bare one by default); ``locale`` forces
    the status page's (``[http] locale``).

    Raises:
        MissingDependency: The status page's library (prometheus_client) is not installed.
    """
    app = web.Application() if app is None else app
    add_till_routes(app, backend)
    add_refund_routes(app, backend)
    add_stock_routes(app, backend)
    add_contract_route(app)
    add_day_routes(app, backend)
    add_doubt_routes(app, backend)
    add_terminal_routes(app, backend)
    hubs = add_event_routes(app, backend, **event_options)
    try:
        from gateway.web import add_status_routes
    except ImportError as exc:
        raise MissingDependency("the status page", exc.name or "gateway.web") from exc
    # the status page links to the manager's page when the listener mounted it (status_login)
    manager_page = any(resource.canonical == "/manager" for resource in app.router.resources())
    add_status_routes(app, snapshot, locale=locale, manager_link=manager_page)
    return app, hubs


async def open_sync(
    config: DaemonConfig, journal: Journal, stack: contextlib.AsyncExitStack
) -> tuple[list[tuple[str, Any]], Any]:
    """The head-office workers and the local stock store when ``[mqtt]`` is configured
    (docs/sync.md). The stock follower catches up with the journal here, before ready.

    Raises:
        MissingDependency: ``[mqtt]`` is configured but aiomqtt is not installed.
        TlsConfigError: A configured CA, certificate or key cannot be used.
    """
    mqtt = config.mqtt
    if mqtt is None:
        return [], None
    try:
        sync = importlib.import_module("gateway.sync")
        stock_module = importlib.import_module("gateway.sync.stock_store")
        follow_module = importlib.import_module("gateway.sync.stock_follow")
        days_module = importlib.import_module("gateway.sync.days")
    except ImportError as exc:
        raise MissingDependency("head-office sync ([mqtt])", exc.name or "gateway.sync") from exc
    factory_of = sync.mqtt_client_factory
    options: dict[str, Any] = {"host": mqtt.host, "port": mqtt.port, "shop": config.shop,
                               "session_expiry": mqtt.session_expiry}  # fmt: skip
    if mqtt.username is not None:
        options["username"] = mqtt.username
    if mqtt.password_file is not None:
        options["password"] = mqtt.password_file.read_text(encoding="utf-8").strip()
    if mqtt.tls:  # a CA, certificate or key that cannot be used stops the daemon here
        options["tls_context"] = sync.client_tls_context(
            ca_file=mqtt.ca_file, cert_file=mqtt.cert_file, key_file=mqtt.key_file
        )
    stock_path = mqtt.stock_path or config.journal.path.with_name("stock.db")
    ledger = None
    if mqtt.acknowledgements:
        ledger = await sync.AckLedger.open(stock_path.with_name("acks.db"))
        stack.push_async_callback(ledger.close)
    publisher = sync.OutboxPublisher(
        journal=journal, client_factory=factory_of(role="sales", **options), shop=config.shop,
        ledger=ledger, ack_timeout=mqtt.ack_timeout,
    )  # fmt: skip
    store = await stock_module.StockStore.open(stock_path)
    stack.push_async_callback(store.close)
    stock = sync.StockSync(
        stock=store, client_factory=factory_of(role="stock", **options), shop=config.shop
    )
    follower = follow_module.StockFollower(journal=journal, stock=store)
    caught_up = await follower.catch_up()
    if caught_up:
        log.info("stock: %d settled payment(s) applied on start", caught_up)
    days = days_module.DayPublisher(
        journal=journal, client_factory=factory_of(role="days", **options), shop=config.shop
    )
    workers = [
        ("sync.outbox", publisher),
        ("sync.stock", stock),
        ("sync.stock_follow", follower),
        ("sync.days", days),
    ]
    return workers, store


def all_of(calls: list[Callable[[], None]]) -> Callable[[], None]:
    """One callback that calls each of ``calls`` (a settled payment wakes every sync worker)."""

    def call_all() -> None:
        for call in calls:
            call()

    return call_all


async def prune_outbox(journal: Journal, retention: float) -> None:
    """Every hour, drop outbox records head office acknowledged long ago (the journal keeps the
    payments; ``journal.outbox_retention_days``)."""
    while True:
        try:
            pruned = await journal.prune_outbox(older_than=retention)
        except JournalError as exc:
            log.error("outbox pruning failed: %s", exc)
        else:
            if pruned:
                log.info("outbox: %d acknowledged record(s) pruned", pruned)
        await asyncio.sleep(PRUNE_INTERVAL)
