"""The sales publisher: the journal's outbox to head office over MQTT 5, at least once.

:class:`OutboxPublisher` claims batches of sale records from the journal outbox
(docs/journal.md, "Outbox"), publishes them on ``posgw/{shop}/sales`` with QoS 1 through a
:class:`~gateway.sync.window.PublishWindow` (many messages in flight, so the backlog drains at
the broker's pace), and marks a record sent only once the broker's PUBACK for it came back
with a success reason code (MQTT 5, 4.3.2 and 3.4.2.1). Records are marked sent in groups as
their acknowledgements arrive, while the next batch is already in flight. A record whose
publish failed or was refused is released with ``mark_failed`` and claimed again after
reconnecting; a crash between PUBACK and ``mark_sent`` re-sends it after restart, so head
office deduplicates by ``id``.

Head office acknowledges the sales it stored on ``posgw/{shop}/acks``. With an
:class:`~gateway.sync.ledger.AckLedger`, every PUBACKed sale is kept until that acknowledgement
and published again after ``ack_timeout`` without one (end-to-end delivery even through a
broker that lost its queue); without a ledger, the acknowledgements are only counted.

When the broker is unreachable the publisher keeps the backlog in the journal (nothing is held
only in memory), reconnects with jittered exponential backoff, and exposes ``diagnostics()``
for the status page: connected, backlog, last error, last publish, acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiomqtt

from drivers.lifecycle import Backoff
from gateway.journal.records import OutboxItem
from gateway.sync.client import ClientFactory
from gateway.sync.errors import CardDataRefused, MessageError, PublishRefused, SyncError
from gateway.sync.ledger import AckLedger
from gateway.sync.messages import (
    acks_topic,
    check_name,
    parse_acks,
    sale_message,
    sales_topic,
    status_payload,
    status_topic,
)
from gateway.sync.window import PublishWindow, Settled

__all__ = ["Outbox", "OutboxPublisher"]

log = logging.getLogger("posgw.gateway.sync.publisher")


class Outbox(Protocol):
    """The part of :class:`gateway.journal.Journal` the publisher uses."""

    async def claim_batch(self, n: int, *, lease: float = ...) -> list[OutboxItem]: ...
    async def mark_sent(self, ids: Sequence[int]) -> int: ...
    async def mark_failed(self, ids: Sequence[int], *, error: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Sent:
    """One message in the window: an outbox record (``outbox_id``) or a re-send (None)."""

    outbox_id: int | None
    sale_id: str
    payload: bytes


def _journal_backlog(journal: object) -> Callable[[], Awaitable[int]] | None:
    """The journal's own count of unsent records: its ``outbox_backlog()``, or the figures it
    keeps with every commit (:class:`gateway.journal.figures.DayFigures`, O(1)); None if
    neither."""
    counter = getattr(journal, "outbox_backlog", None)
    if callable(counter):
        return counter  # type: ignore[no-any-return]
    figures = getattr(journal, "figures", None)
    read = getattr(figures, "read", None)
    if not callable(read):
        return None

    async def from_figures() -> int:
        return int(read().outbox_backlog)

    return from_figures


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
        batch_size: Records claimed at a time; the next batch is claimed while fewer than this
            many are in flight, so up to twice this many are outstanding. Order is not kept
            across a reconnect (head office orders by ``time``).
        lease: Seconds a claim lasts (a crashed publisher's claims come back after this).
        poll_interval: Seconds between outbox checks when idle; :meth:`notify` wakes it early.
        backoff: Reconnect schedule (jittered exponential, as for devices).
        backlog: Optional ``async () -> int`` counting unsent records; defaults to the
            journal's own count (its ``outbox_backlog()``, or its day figures'
            ``outbox_backlog``), else the backlog is reported as None.
        ledger: Keeps PUBACKed sales until head office acknowledges them (None: PUBACK is the
            whole contract and acknowledgements are only counted).
        ack_timeout: Seconds after which a sale without head office's acknowledgement is
            published again (with a ledger).
        clock: Seconds since the epoch (injected). random: Uniform [0, 1) for the jitter.
    """

    def __init__(
        self,
        *,
        journal: Outbox,
        client_factory: ClientFactory,
        shop: str,
        batch_size: int = 256,
        lease: float = 60.0,
        poll_interval: float = 2.0,
        backoff: Backoff | None = None,
        backlog: Callable[[], Awaitable[int]] | None = None,
        ledger: AckLedger | None = None,
        ack_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size: expected >= 1")
        self._journal = journal
        self._factory = client_factory
        self._shop = check_name("shop", shop)
        self._batch_size = batch_size
        self._lease = lease
        self._poll = poll_interval
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self._backlog_fn = backlog or _journal_backlog(journal)
        self._ledger = ledger
        self._ack_timeout = ack_timeout
        self._clock = clock
        self._random = random
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = False
        self._since = clock()
        self._backlog: int | None = None
        self._unacknowledged: int | None = None
        self._last_error: str | None = None
        self._last_publish: float | None = None
        self._last_ack: float | None = None
        self._next_resend = 0.0
        self._published = 0
        self._failed = 0
        self._refused = 0
        self._connects = 0
        self._acknowledged = 0
        self._resent = 0

    # -- control -----------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake the publisher now (call after a sale enters the outbox); thread-unsafe, cheap."""
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to finish what is in flight, publish ``offline`` (clean), return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish the outbox until :meth:`stop`; reconnect with backoff on failure.

        Never raises ``aiomqtt.MqttError`` or a :class:`SyncError` (they are recorded in
        :meth:`diagnostics`); cancelling the task releases the claimed records before it ends.
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
            except (aiomqtt.MqttError, SyncError) as exc:
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
            "acknowledged": self._acknowledged,
            "unacknowledged": self._unacknowledged,
            "resent": self._resent,
            "last_ack": None if self._last_ack is None else _iso(self._last_ack),
        }

    # -- internals ---------------------------------------------------------------------------

    def _set_connected(self, connected: bool) -> None:
        if connected != self._connected:
            self._connected = connected
            self._since = self._clock()
            if connected:
                self._connects += 1

    async def _refresh_backlog(self) -> None:
        if self._ledger is not None:
            with contextlib.suppress(SyncError):
                self._unacknowledged = await self._ledger.count()
        if self._backlog_fn is None:
            return
        try:
            self._backlog = await self._backlog_fn()
        except Exception as exc:  # noqa: BLE001 - a diagnostics read must not stop publishing
            self._backlog = None
            log.warning("outbox backlog unavailable: %s", _describe(exc))

    async def _session(self, client: aiomqtt.Client) -> None:
        """Drain the outbox while connected; a lost connection ends it with ``MqttError``."""
        await client.subscribe(acks_topic(self._shop), qos=1)
        window: PublishWindow[_Sent] = PublishWindow(client, timeout=client.timeout)
        watcher = asyncio.create_task(self._watch(client), name=f"sync[{self._shop}].acks")
        try:
            await self._drain(window, watcher)
        except BaseException as exc:
            await self._abandon(window, exc)
            raise
        finally:
            window.close()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watcher

    async def _drain(self, window: PublishWindow[_Sent], watcher: asyncio.Task[None]) -> None:
        exhausted = False
        while True:
            if watcher.done():
                watcher.result()  # raises the MqttError of the lost connection
            stopping = self._stopping.is_set()
            if not stopping and not exhausted and window.outstanding < self._batch_size:
                batch = await self._journal.claim_batch(self._batch_size, lease=self._lease)
                exhausted = len(batch) < self._batch_size
                await self._send(window, batch)
                await self._resend_due(window)
            settled = window.take()
            if settled:
                await self._settle(settled)
                continue
            if window.outstanding:
                await window.wait()
                continue
            if stopping:
                return
            if exhausted:
                await self._refresh_backlog()
                await self._idle(watcher)
                exhausted = False

    async def _idle(self, watcher: asyncio.Task[None]) -> None:
        """Wait for :meth:`notify`, the poll interval or a lost connection."""
        self._wake.clear()
        waiter = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({waiter, watcher}, timeout=self._poll,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            waiter.cancel()

    async def _send(self, window: PublishWindow[_Sent], batch: list[OutboxItem]) -> None:
        """Hand a claimed batch to the window (records that look like card data are refused).

        If the client refuses a message (the connection just dropped), the records not yet
        handed over are released at once, so no claim waits for its lease to expire.
        """
        topic = sales_topic(self._shop)
        for n, item in enumerate(batch):
            try:
                payload = sale_message(item, shop=self._shop)
            except CardDataRefused as exc:
                self._refused += 1
                self._last_error = str(exc)
                log.error("outbox record %d not published: %s", item.id, exc)
                await self._journal.mark_failed([item.id], error=str(exc))
                continue
            try:
                window.publish(topic, payload, _Sent(item.id, item.payment_id, payload))
            except aiomqtt.MqttError as exc:
                # this record is in the window's queue (abandon() releases it); the rest is not
                rest = [later.id for later in batch[n + 1 :]]
                if rest:
                    await self._journal.mark_failed(rest, error=_describe(exc))
                raise

    async def _resend_due(self, window: PublishWindow[_Sent]) -> None:
        """Publish again the sales head office has not acknowledged within ``ack_timeout``."""
        if self._ledger is None or self._clock() < self._next_resend:
            return
        self._next_resend = self._clock() + self._ack_timeout / 2
        due = await self._ledger.due(older_than=self._ack_timeout, limit=self._batch_size)
        topic = sales_topic(self._shop)
        for sale_id, payload in due:
            window.publish(topic, payload, _Sent(None, sale_id, payload))

    async def _settle(self, settled: Settled[_Sent]) -> None:
        """Record what the broker acknowledged; raise :class:`PublishRefused` for refusals."""
        if settled.acked:
            if self._ledger is not None:
                await self._ledger.record_sent([(s.sale_id, s.payload) for s in settled.acked])
            records = [s.outbox_id for s in settled.acked if s.outbox_id is not None]
            if records:
                await self._journal.mark_sent(records)
            self._published += len(records)
            self._resent += len(settled.acked) - len(records)
            self._last_publish = self._clock()
        if settled.refused:
            reason = settled.refused[0][1]
            error = PublishRefused(reason, len(settled.refused))
            # count and reason together, before any await: diagnostics never show one alone
            self._failed += len(settled.refused)
            self._last_error = str(error)
            ids = [s.outbox_id for s, _ in settled.refused if s.outbox_id is not None]
            await self._journal.mark_failed(ids, error=self._last_error)
            raise error

    async def _abandon(self, window: PublishWindow[_Sent], exc: BaseException) -> None:
        """After a failure: keep what was acknowledged, release every other claim."""
        settled = window.take()
        lost = window.abandon() + [s for s, _ in settled.refused]
        stopped = isinstance(exc, asyncio.CancelledError)
        error = "publisher stopped" if stopped else _describe(exc)
        with contextlib.suppress(SyncError):
            settled.refused.clear()
            await self._settle(settled)
        ids = [s.outbox_id for s in lost if s.outbox_id is not None]
        if ids and not stopped:
            self._failed += len(ids)
            self._last_error = error
        if ids:
            await self._journal.mark_failed(ids, error=error)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Take head office's acknowledgements; raise ``MqttError`` when the connection drops."""
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload
            try:
                if not isinstance(payload, bytes | bytearray):
                    raise MessageError(topic, "payload", "expected bytes")
                ids = parse_acks(topic, bytes(payload), shop=self._shop)
            except MessageError as exc:
                self._last_error = str(exc)[:200]
                log.warning("acknowledgement refused: %s", self._last_error)
                continue
            self._acknowledged += len(ids)
            self._last_ack = self._clock()
            if self._ledger is not None:
                await self._ledger.acknowledge(ids)
