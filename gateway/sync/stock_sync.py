"""Stock in from head office: subscribe to ``posgw/{shop}/stock/+`` and apply each level once.

:class:`StockSync` keeps one MQTT session (persistent, so QoS 1 updates sent while it was away
are delivered on return; MQTT 3.1.1, 3.1.2.4) and hands every update to
:meth:`gateway.sync.stock_store.StockStore.apply_update`, which keeps it only when its version
is newer than the stored one. Duplicates (QoS 1 is at-least-once), retained messages replayed on
every subscribe and reordered deliveries are therefore harmless. A malformed message is counted and
recorded in ``diagnostics()``; it never stops the subscriber.

Sales go the other way through :meth:`StockSync.apply_sale`, which the daemon calls when a sale
completes (a thin pass-through to the store, so the daemon holds one object for stock).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import random as _random
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt

from drivers.lifecycle import Backoff
from gateway.sync.client import ClientFactory
from gateway.sync.errors import MessageError
from gateway.sync.messages import check_name, parse_stock_update, stock_filter
from gateway.sync.stock_store import StockError, StockLevel, StockStore

__all__ = ["StockSync"]

log = logging.getLogger("posgw.gateway.sync.stock")


def _iso(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).isoformat(timespec="seconds")


class StockSync:
    """Applies head office's stock levels to the local store; passes sales through to it.

    Args:
        stock: The local stock store.
        client_factory: Returns a fresh ``aiomqtt.Client`` (role ``"stock"`` of
            :func:`gateway.sync.client.mqtt_client_factory`: persistent session).
        shop: Shop id, one topic level.
        backoff: Reconnect schedule. clock: Seconds since the epoch. random: Jitter source.
    """

    def __init__(
        self,
        *,
        stock: StockStore,
        client_factory: ClientFactory,
        shop: str,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._stock = stock
        self._factory = client_factory
        self._shop = check_name("shop", shop)
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self._clock = clock
        self._random = random
        self._stopping = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._connected = False
        self._since = clock()
        self._last_error: str | None = None
        self._last_update: float | None = None
        self._applied = 0
        self._ignored = 0
        self._rejected = 0

    def stop(self) -> None:
        """Ask :meth:`run` to disconnect and return."""
        self._stopping.set()

    async def wait_subscribed(self) -> None:
        """Return once the subscription is in place (for start-up ordering and tests)."""
        await self._subscribed.wait()

    async def run(self) -> None:
        """Subscribe and apply updates until :meth:`stop`; reconnect with backoff on failure."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                async with self._factory() as client:
                    await client.subscribe(stock_filter(self._shop), qos=1)
                    self._set_connected(True)
                    self._subscribed.set()
                    attempt = 0
                    await self._consume(client)
                self._set_connected(False)
                return
            except aiomqtt.MqttError as exc:
                self._set_connected(False)
                self._last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("head office MQTT (stock): %s", self._last_error)
            delay = self._backoff.delay(attempt, self._random())
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _consume(self, client: aiomqtt.Client) -> None:
        stopping = asyncio.create_task(self._stopping.wait())
        messages = aiter(client.messages)
        nxt: asyncio.Future[aiomqtt.Message] | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({nxt, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await nxt
                    return
                await self.handle(str(nxt.result().topic), nxt.result().payload)
        finally:
            stopping.cancel()
            # Cancelled from outside (shutdown): the pending read must not outlive us and end,
            # unretrieved, with the disconnection's MqttError.
            if nxt is not None:
                if not nxt.done():
                    nxt.cancel()
                elif not nxt.cancelled():
                    nxt.exception()

    async def handle(self, topic: str, payload: object) -> bool:
        """Apply one stock message; True when it changed a level.

        Malformed messages are counted as rejected and recorded as ``last_error``.
        """
        try:
            if not isinstance(payload, bytes | bytearray):
                raise MessageError(topic, "payload", "expected bytes")
            update = parse_stock_update(topic, bytes(payload), shop=self._shop)
            applied = await self._stock.apply_update(
                update.sku, level=update.level, version=update.version, counted=update.counted
            )
        except (MessageError, StockError) as exc:
            self._rejected += 1
            self._last_error = str(exc)[:200]
            log.warning("stock message refused: %s", self._last_error)
            return False
        if applied:
            self._applied += 1
            self._last_update = self._clock()
        else:
            self._ignored += 1
        return applied

    async def apply_sale(
        self, items: Sequence[Any] | None, *, sale_id: str | None = None
    ) -> dict[str, int]:
        """Take a completed sale off local stock (see :meth:`StockStore.apply_sale`)."""
        return await self._stock.apply_sale(items, sale_id=sale_id)

    async def levels(self) -> dict[str, StockLevel]:
        """Every known SKU with its level and head office version."""
        return await self._stock.levels()

    def _set_connected(self, connected: bool) -> None:
        if connected != self._connected:
            self._connected = connected
            self._since = self._clock()

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe state: connected, counters of applied/ignored/rejected, last error."""
        return {
            "connected": self._connected,
            "since": _iso(self._since),
            "applied": self._applied,
            "ignored_stale": self._ignored,
            "rejected": self._rejected,
            "last_error": self._last_error,
            "last_update": None if self._last_update is None else _iso(self._last_update),
        }
