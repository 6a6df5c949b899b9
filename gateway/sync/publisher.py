"""The sales publisher: the journal's outbox to head office over MQTT, at least once.

:class:`OutboxPublisher` claims batches of sale records from the journal outbox
(docs/journal.md, "Outbox"), publishes each on ``posgw/{shop}/sales`` with QoS 1, and marks a
record sent only once the broker has acknowledged it: aiomqtt's ``publish(qos=1)`` returns when
paho's ``on_publish`` fires, which for QoS 1 is on PUBACK (MQTT 3.1.1, 4.3.2), and raises
``MqttError`` when no PUBACK comes within the client's timeout. A record whose publish failed
is released with ``mark_failed`` and claimed again after reconnecting; a crash between PUBACK
and ``mark_sent`` re-sends it after restart, so head office deduplicates by ``id``.

When the broker is unreachable the publisher keeps the backlog in the journal (nothing is held
only in memory), reconnects with jittered exponential backoff, and exposes ``diagnostics()``
for the status page: connected, backlog, last error, last publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import aiomqtt

from drivers.lifecycle import Backoff
from gateway.journal.records import OutboxItem
from gateway.sync.client import ClientFactory
from gateway.sync.errors import CardDataRefused
from gateway.sync.messages import (
    check_name,
    sale_message,
    sales_topic,
    status_payload,
    status_topic,
)

__all__ = ["Outbox", "OutboxPublisher"]

log = logging.getLogger("posgw.gateway.sync.publisher")


class Outbox(Protocol):
    """The part of :class:`gateway.journal.Journal` the publisher uses."""

    async def claim_batch(self, n: int, *, lease: float = ...) -> list[OutboxItem]: ...
    async def mark_sent(self, ids: Sequence[int]) -> int: ...
    async def mark_failed(self, ids: Sequence[int], *, error: str) -> None: ...


def _iso(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).isoformat(timespec="seconds")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


class OutboxPublisher:
    """Publishes the journal's outbox on ``posgw/{shop}/sales`` (QoS 1) and the shop status.

    Args:
        journal: The journal (or anything with ``claim_batch``/``mark_sent``/``mark_failed``).
        client_factory: Returns a fresh ``aiomqtt.Client``; see :mod:`gateway.sync.client`
            (its ``sales`` role carries the retained offline last will).
        shop: Shop id, one topic level.
        batch_size: Records claimed per batch; published concurrently, so order within a
            batch is not kept (head office orders by ``time``).
        lease: Seconds a claim lasts (a crashed publisher's claims come back after this).
        poll_interval: Seconds between outbox checks when idle; :meth:`notify` wakes it early.
        backoff: Reconnect schedule (jittered exponential, as for devices).
        backlog: Optional ``async () -> int`` counting unsent records; defaults to the
            journal's ``outbox_backlog`` when it has one, else the backlog is reported as None.
        clock: Seconds since the epoch (injected). random: Uniform [0, 1) for the jitter.
    """

    def __init__(
        self,
        *,
        journal: Outbox,
        client_factory: ClientFactory,
        shop: str,
        batch_size: int = 20,
        lease: float = 60.0,
        poll_interval: float = 2.0,
        backoff: Backoff | None = None,
        backlog: Callable[[], Awaitable[int]] | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._journal = journal
        self._factory = client_factory
        self._shop = check_name("shop", shop)
        self._batch_size = batch_size
        self._lease = lease
        self._poll = poll_interval
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self._backlog_fn = backlog or getattr(journal, "outbox_backlog", None)
        self._clock = clock
        self._random = random
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = False
        self._since = clock()
        self._backlog: int | None = None
        self._last_error: str | None = None
        self._last_publish: float | None = None
        self._published = 0
        self._failed = 0
        self._refused = 0
        self._connects = 0

    # -- control -----------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake the publisher now (call after a sale enters the outbox); thread-unsafe, cheap."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to publish ``offline`` (clean), disconnect and return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish the outbox until :meth:`stop`; reconnect with backoff on failure.

        Never raises ``aiomqtt.MqttError`` (it is recorded in :meth:`diagnostics`); cancelling
        the task releases any claimed records before it ends.
        """
        attempt = 0
        while not self._stopping.is_set():
            try:
                async with self._factory() as client:
                    self._set_connected(True)
                    attempt = 0
                    await client.publish(
                        status_topic(self._shop),
                        status_payload(self._shop, online=True),
                        qos=1,
                        retain=True,
                    )
                    try:
                        await self._session(client)
                    except asyncio.CancelledError:
                        # The daemon cancels its tasks on shutdown. The disconnect that follows
                        # is graceful, so the broker will not fire the will: say offline first.
                        await self._goodbye(client)
                        raise
                    await self._goodbye(client)
                self._set_connected(False)
                return
            except aiomqtt.MqttError as exc:
                self._set_connected(False)
                self._last_error = _describe(exc)
                log.warning("head office MQTT: %s", self._last_error)
            await self._refresh_backlog()
            delay = self._backoff.delay(attempt, self._random())
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """Publish the retained clean ``offline`` status (best effort: the will covers a crash)."""
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                status_topic(self._shop),
                status_payload(self._shop, online=False, clean=True),
                qos=1,
                retain=True,
                timeout=5.0,
            )
        self._set_connected(False)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe state for the status page (the snapshot's ``mqtt`` entry)."""
        return {
            "enabled": True,
            "connected": self._connected,
            "since": _iso(self._since),
            "backlog": self._backlog,
            "last_error": self._last_error,
            "last_publish": None if self._last_publish is None else _iso(self._last_publish),
            "published": self._published,
            "failed": self._failed,
            "refused": self._refused,
            "connects": self._connects,
        }

    # -- internals ---------------------------------------------------------------------------

    def _set_connected(self, connected: bool) -> None:
        if connected != self._connected:
            self._connected = connected
            self._since = self._clock()
            if connected:
                self._connects += 1

    async def _refresh_backlog(self) -> None:
        if self._backlog_fn is None:
            return
        try:
            self._backlog = await self._backlog_fn()
        except Exception as exc:  # noqa: BLE001 - a diagnostics read must not stop publishing
            self._backlog = None
            log.warning("outbox backlog unavailable: %s", _describe(exc))

    async def _session(self, client: aiomqtt.Client) -> None:
        """Drain the outbox while connected; a lost connection ends it with ``MqttError``."""
        watcher = asyncio.create_task(_watch(client), name=f"sync[{self._shop}].watch")
        try:
            while not self._stopping.is_set():
                if watcher.done():
                    watcher.result()  # raises the MqttError of the lost connection
                batch = await self._journal.claim_batch(self._batch_size, lease=self._lease)
                if batch and await self._publish_batch(client, batch):
                    continue
                await self._refresh_backlog()
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait({waiter, watcher}, timeout=self._poll,
                                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                finally:
                    waiter.cancel()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watcher

    async def _publish_batch(self, client: aiomqtt.Client, batch: list[OutboxItem]) -> bool:
        """Publish one claimed batch; True when at least one record was acknowledged."""
        ready: list[tuple[OutboxItem, bytes]] = []
        for item in batch:
            try:
                ready.append((item, sale_message(item, shop=self._shop)))
            except CardDataRefused as exc:
                self._refused += 1
                self._last_error = str(exc)
                log.error("outbox record %d not published: %s", item.id, exc)
                await self._journal.mark_failed([item.id], error=str(exc))
        topic = sales_topic(self._shop)
        try:
            results = await asyncio.gather(
                *(client.publish(topic, payload, qos=1) for _, payload in ready),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            await self._journal.mark_failed([i.id for i, _ in ready], error="publisher stopped")
            raise
        outcomes = [(item.id, r) for (item, _), r in zip(ready, results, strict=True)]
        sent = [i for i, r in outcomes if r is None]
        failed = [(i, r) for i, r in outcomes if r is not None]
        if sent:
            await self._journal.mark_sent(sent)
            self._published += len(sent)
            self._last_publish = self._clock()
        if failed:
            first = failed[0][1]
            # count and reason together, before any await: diagnostics never show one alone
            self._failed += len(failed)
            self._last_error = _describe(first)
            await self._journal.mark_failed([i for i, _ in failed], error=self._last_error)
            raise first  # MqttError: reconnect in run(); anything else is a bug and fails loudly
        return bool(sent)


async def _watch(client: aiomqtt.Client) -> None:
    """Return never; raise ``MqttError`` when the connection drops (aiomqtt's message iterator)."""
    async for _ in client.messages:
        pass
