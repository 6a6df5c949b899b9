"""The simulated head office: an MQTT peer that receives a shop's sales and sends stock levels.

It speaks the wire format of docs/sync.md from the other side (the simulator never imports the
gateway, so the topic names are restated here; the sync tests prove the two sides agree):

* subscribes to ``posgw/{shop}/sales`` (QoS 1) and records each sale once by its ``id``:
  QoS 1 is at-least-once, and the gateway re-sends a record whose acknowledgement it did not
  record, so duplicates are counted, never stored twice;
* subscribes to ``posgw/{shop}/status`` and records the retained online/offline states;
* publishes ``posgw/{shop}/stock/{sku}`` (QoS 1, retained) with a version that grows.

Every raw message received is kept in :attr:`HeadOffice.received`, so tests can scan all that
reached head office for card data.

Usage::

    async with HeadOffice(host="127.0.0.1", port=1883, shop="shop-001") as office:
        await office.publish_stock("SKU-1", level=40)
        async with asyncio.timeout(5):
            sales = await office.wait_for_sales(3)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiomqtt

__all__ = ["HeadOffice", "ReceivedMessage"]

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One MQTT message as head office got it."""

    topic: str
    payload: bytes
    retain: bool


class HeadOffice:
    """A head-office peer for one shop (use as an async context manager).

    Args:
        host: Broker host. port: Broker port. shop: The shop id (one topic level).
        identifier: MQTT client id (default ``head-office-{shop}``).
        persistent: Keep the MQTT session (``clean_session=False``, MQTT 3.1.1, 3.1.2.4), so
            the broker queues QoS 1 sales published while head office is away; this is what
            makes "PUBACK from the broker" mean "head office will get it".
        clock: Seconds since the epoch; default stock versions are its milliseconds, so they
            keep growing across restarts of the simulator.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        shop: str,
        identifier: str | None = None,
        persistent: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not _NAME.fullmatch(shop):
            raise ValueError("shop: expected 1-64 of A-Z a-z 0-9 . _ -")
        self.shop = shop
        self._client = aiomqtt.Client(
            hostname=host,
            port=port,
            identifier=identifier or f"head-office-{shop}",
            clean_session=not persistent,
            timeout=10,
        )
        self._clock = clock
        self._versions: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        #: Every message received, in order (for card-data scans).
        self.received: list[ReceivedMessage] = []
        #: Sales by id, first delivery kept.
        self.sales: dict[str, dict[str, Any]] = {}
        #: Deliveries of an id already recorded.
        self.duplicates = 0
        #: Messages on the sales topic that were not a JSON object with a string ``id``.
        self.malformed = 0
        #: Status payloads received, decoded, in order.
        self.statuses: list[dict[str, Any]] = []

    async def __aenter__(self) -> HeadOffice:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.stop()

    async def start(self) -> None:
        """Connect, subscribe to sales and status, and start recording."""
        await self._client.__aenter__()
        await self._client.subscribe(f"posgw/{self.shop}/sales", qos=1)
        await self._client.subscribe(f"posgw/{self.shop}/status", qos=1)
        self._task = asyncio.create_task(self._receive(), name=f"head-office[{self.shop}]")

    async def stop(self) -> None:
        """Stop recording and disconnect; a second call does nothing."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _receive(self) -> None:
        async for message in self._client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            topic = str(message.topic)
            self.received.append(ReceivedMessage(topic, data, bool(message.retain)))
            if topic.endswith("/sales"):
                self._record_sale(data)
            elif topic.endswith("/status"):
                with contextlib.suppress(ValueError):
                    status = json.loads(data)
                    if isinstance(status, dict):
                        self.statuses.append(status)
            async with self._changed:
                self._changed.notify_all()

    def _record_sale(self, data: bytes) -> None:
        try:
            sale = json.loads(data)
        except ValueError:
            self.malformed += 1
            return
        if not isinstance(sale, dict) or not isinstance(sale.get("id"), str):
            self.malformed += 1
            return
        if sale["id"] in self.sales:
            self.duplicates += 1
        else:
            self.sales[sale["id"]] = sale

    async def publish_stock(self, sku: str, *, level: int, version: int | None = None) -> int:
        """Publish the level of ``sku`` (QoS 1, retained); returns the version used.

        Without ``version``, the next one is the larger of (last + 1) and the clock in ms.
        """
        if not _NAME.fullmatch(sku):
            raise ValueError("sku: expected 1-64 of A-Z a-z 0-9 . _ -")
        if version is None:
            version = max(self._versions.get(sku, 0) + 1, int(self._clock() * 1000))
        self._versions[sku] = max(version, self._versions.get(sku, 0))
        body = {"sku": sku, "level": level, "version": version}
        await self._client.publish(
            f"posgw/{self.shop}/stock/{sku}", json.dumps(body).encode(), qos=1, retain=True
        )
        return version

    async def publish_raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish anything (QoS 1): malformed or replayed messages for tests."""
        await self._client.publish(topic, payload, qos=1, retain=retain)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checked now and after each message received.

        Bound it with ``asyncio.timeout``: it waits as long as it takes.
        """
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_sales(self, n: int) -> dict[str, dict[str, Any]]:
        """Wait until at least ``n`` distinct sales were recorded; returns them by id."""
        await self.wait_for(lambda: len(self.sales) >= n)
        return dict(self.sales)

    async def wait_for_status(self, state: str) -> dict[str, Any]:
        """Wait for a status message whose ``state`` is ``state``; returns the latest such."""
        await self.wait_for(lambda: any(s.get("state") == state for s in self.statuses))
        return next(s for s in reversed(self.statuses) if s.get("state") == state)
