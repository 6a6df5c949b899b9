"""The simulated head office: an MQTT 5 peer for a fleet of shops (sales in, stock out).

It speaks the wire format of docs/sync.md from the other side (the simulator never imports the
gateway, so the topic names are restated here; the contract tests prove the two sides agree):

* subscribes to ``posgw/{shop}/sales`` of every shop of its fleet (QoS 1) and records each
  sale once by its ``id``: QoS 1 is at-least-once, and the gateway re-sends a record whose
  acknowledgement it did not record, so duplicates are counted, never stored twice; a later
  ``revision`` of a sale (voided, or its forward declined) replaces the record;
* acknowledges each stored sale by id on ``posgw/{shop}/acks`` (QoS 1, batched, with a Message
  Expiry Interval: an acknowledgement older than the shop's session is stale), duplicates too,
  so a lost acknowledgement is made good by the shop's re-send;
* counts every sale and refund into its :class:`~simulator.stock_book.StockBook`, and
  publishes ``posgw/{shop}/stock/{sku}`` snapshots (QoS 1, retained, optionally expiring) with
  the version and the quantity of the shop's own sales it had counted;
* subscribes to ``posgw/{shop}/status`` and records the retained online/offline states.

It keeps an MQTT 5 persistent session by default (Clean Start off, a Session Expiry Interval;
MQTT 5, 3.1.2.4 and 3.1.2.11.2): the broker queues the QoS 1 sales published while head office
is away, which is what makes "PUBACK from the broker" mean "head office will get it".

Every raw message received is kept in :attr:`HeadOffice.received`, so tests can scan all that
reached head office for card data.

Usage::

    async with HeadOffice(host="127.0.0.1", port=1883, shops=["shop-001", "shop-002"]) as office:
        await office.publish_stock("SKU-1", level=40, shop="shop-001")
        async with asyncio.timeout(5):
            sales = await office.wait_for_sales(3)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulator.stock_book import StockBook

__all__ = ["HeadOffice", "ReceivedMessage"]

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TOPIC = re.compile(r"posgw/([A-Za-z0-9._-]{1,64})/(sales|status)")
#: Seconds the broker keeps head office's session while it is away.
SESSION_EXPIRY = 7 * 86400
#: Most ids per acknowledgement message (docs/sync.md).
MAX_ACK_IDS = 1000
#: Seconds between reconnection attempts after the broker went away.
RETRY = 0.2
#: Seconds a graceful disconnect may take when the head office stops.
STOP_TIMEOUT = 5.0
#: Seconds after which a task that outlived its cancellation is cancelled again.
CANCEL_AGAIN = 0.5


def _properties(packet: int, **values: int) -> Properties:
    properties = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(properties, name, value)
    return properties


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One MQTT message as head office got it."""

    topic: str
    payload: bytes
    retain: bool


class HeadOffice:
    """A head-office peer for one shop or a fleet (use as an async context manager).

    Args:
        host: Broker host. port: Broker port.
        shop: One shop id (one topic level); or ``shops``: every shop of the fleet.
        identifier: MQTT client id (default ``head-office-{first shop}``).
        persistent: Keep the MQTT session (see the module docstring).
        acknowledge: Publish acknowledgements of stored sales on ``posgw/{shop}/acks``.
        ack_expiry: Message Expiry Interval of the acknowledgements, in seconds.
        stock_expiry: Message Expiry Interval of stock snapshots (None: they never expire;
            a head office that sets one must republish its levels at least that often).
        auto_push: Publish a new snapshot of each SKU a sale or refund moved, as it arrives.
        clock: Seconds since the epoch (stock versions are its milliseconds).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        shop: str | None = None,
        shops: Sequence[str] | None = None,
        identifier: str | None = None,
        persistent: bool = True,
        acknowledge: bool = True,
        ack_expiry: int = 86400,
        stock_expiry: int | None = None,
        auto_push: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        fleet = list(shops or ()) + ([shop] if shop is not None else [])
        if not fleet:
            raise ValueError("shop: give shop= or shops=")
        for name in fleet:
            if not _NAME.fullmatch(name):
                raise ValueError("shop: expected 1-64 of A-Z a-z 0-9 . _ -")
        self.shop = fleet[0]
        self.shops = fleet
        self._client_options: dict[str, Any] = {
            "hostname": host,
            "port": port,
            "identifier": identifier or f"head-office-{self.shop}",
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": not persistent,
            "properties": _properties(
                PacketTypes.CONNECT, SessionExpiryInterval=SESSION_EXPIRY if persistent else 0
            ),
            "timeout": 10,
        }
        self._client = self._new_client()
        self._acknowledge = acknowledge
        self._ack_expiry = ack_expiry
        self._stock_expiry = stock_expiry
        self._auto_push = auto_push
        self._tasks: list[asyncio.Task[None]] = []
        self._outgoing: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._changed = asyncio.Condition()
        #: Head office's stock accounting for every shop.
        self.book = StockBook(clock=clock)
        #: Every message received, in order (for card-data scans).
        self.received: list[ReceivedMessage] = []
        #: Sales by id, first delivery kept (every shop).
        self.sales: dict[str, dict[str, Any]] = {}
        #: Sales by shop, then id.
        self.sales_by_shop: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in fleet}
        #: Deliveries of an id already recorded.
        self.duplicates = 0
        #: Messages on a sales topic that were not a JSON object with a string ``id``.
        self.malformed = 0
        #: Sale ids acknowledged so far (duplicates acknowledged again are counted again).
        self.acknowledged = 0
        #: Status payloads received, decoded, in order.
        self.statuses: list[dict[str, Any]] = []
        #: Connections made (1 + reconnections).
        self.connects = 0

    async def __aenter__(self) -> HeadOffice:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.stop()

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(**self._client_options)
        client.pending_calls_threshold = 10_000
        return client

    async def start(self) -> None:
        """Connect, subscribe to every shop's sales and status, and start recording.

        Raises ``aiomqtt.MqttError`` when the broker cannot be reached now; once started, a
        lost connection is re-established (the persistent session's queued sales then
        arrive). After :meth:`stop`, starting again reconnects under the same client id with
        the same records and stock book.
        """
        if self._tasks:
            return
        await self._connect()
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"head-office[{self.shop}].in"),
            asyncio.create_task(self._send(), name=f"head-office[{self.shop}].out"),
        ]

    async def _connect(self) -> None:
        self._client = self._new_client()
        await self._client.__aenter__()
        for shop in self.shops:
            await self._client.subscribe(f"posgw/{shop}/sales", qos=1)
            await self._client.subscribe(f"posgw/{shop}/status", qos=1)
        self.connects += 1

    async def _supervise(self) -> None:
        """Receive; after a lost connection, reconnect every ``RETRY`` seconds."""
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._receive()
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)
            while True:
                await asyncio.sleep(RETRY)  # a reconnect schedule, not a synchronisation
                try:
                    await self._connect()
                    break
                except aiomqtt.MqttError:
                    continue

    async def stop(self) -> None:
        """Stop recording and disconnect; a second call does nothing."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        pending = set(tasks)
        while pending:
            # Cancel again what is still running: Python 3.11's wait_for (under aiomqtt's
            # connect and subscribe) drops a cancellation that races with its result.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN)
        for task in tasks:
            if not task.cancelled():
                with contextlib.suppress(aiomqtt.MqttError):
                    task.result()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._client.__aexit__(None, None, None)
        except aiomqtt.MqttError:
            pass
        except TimeoutError:
            # aiomqtt 2.5 waits for ever on a client whose connect was cancelled half-way (the
            # reconnect loop stopped mid-connect): paho's own close frees it (socket, reader)
            paho_client = self._client._client
            if paho_client.socket() is not None:
                paho_client._sock_close()

    async def _receive(self) -> None:
        async for message in self._client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            topic = str(message.topic)
            self.received.append(ReceivedMessage(topic, data, bool(message.retain)))
            match = _TOPIC.fullmatch(topic)
            if match is not None and match.group(2) == "sales":
                self._record_sale(match.group(1), data)
            elif match is not None:
                with contextlib.suppress(ValueError):
                    status = json.loads(data)
                    if isinstance(status, dict):
                        self.statuses.append(status)
            async with self._changed:
                self._changed.notify_all()

    def _record_sale(self, shop: str, data: bytes) -> None:
        try:
            sale = json.loads(data)
        except ValueError:
            self.malformed += 1
            return
        if not isinstance(sale, dict) or not isinstance(sale.get("id"), str):
            self.malformed += 1
            return
        sale_id = sale["id"]
        known = self.sales_by_shop.setdefault(shop, {}).get(sale_id)
        if known is not None and _revision(sale) <= _revision(known):
            self.duplicates += 1
        else:  # new, or a later revision (docs/sync.md): it replaces the record
            self.sales[sale_id] = sale
            self.sales_by_shop[shop][sale_id] = sale
            for sku in self.book.count(shop, sale):
                if self._auto_push:
                    self._outgoing.put_nowait(("stock", shop, sku))
        if self._acknowledge:
            self._outgoing.put_nowait(("ack", shop, sale_id))

    async def _send(self) -> None:
        """Publish acknowledgements (batched per shop) and automatic snapshots, in order."""
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < MAX_ACK_IDS:
                batch.append(self._outgoing.get_nowait())
            acks: dict[str, list[str]] = {}
            pushes: list[tuple[str, str]] = []
            for kind, shop, value in batch:
                if kind == "ack":
                    acks.setdefault(shop, []).append(value)
                elif (shop, value) not in pushes:
                    pushes.append((shop, value))
            try:
                for shop, ids in acks.items():
                    await self._publish_acks(shop, ids)
                for shop, sku in pushes:
                    await self._publish_snapshot(shop, sku, None)
            except aiomqtt.MqttError:
                # The broker went away: lost acknowledgements are made good by the shops'
                # re-sends; the snapshots are pushed again once reconnected.
                for shop, sku in pushes:
                    self._outgoing.put_nowait(("stock", shop, sku))
                await asyncio.sleep(RETRY)

    async def _publish_acks(self, shop: str, ids: list[str]) -> None:
        body = {"schema": 1, "shop": shop, "ids": ids}
        properties = _properties(PacketTypes.PUBLISH, MessageExpiryInterval=self._ack_expiry)
        await self._client.publish(f"posgw/{shop}/acks", json.dumps(body).encode(), qos=1,
                                   properties=properties)  # fmt: skip
        self.acknowledged += len(ids)

    async def _publish_snapshot(self, shop: str, sku: str, version: int | None) -> int:
        snapshot = self.book.snapshot(shop, sku, version=version)
        properties = None
        if self._stock_expiry is not None:
            properties = _properties(PacketTypes.PUBLISH,
                                     MessageExpiryInterval=self._stock_expiry)  # fmt: skip
        await self._client.publish(
            f"posgw/{shop}/stock/{sku}", json.dumps(snapshot.body()).encode(), qos=1,
            retain=True, properties=properties,
        )  # fmt: skip
        return snapshot.version

    async def publish_stock(
        self, sku: str, *, level: int, version: int | None = None, shop: str | None = None
    ) -> int:
        """Set and publish the level of ``sku`` (QoS 1, retained); returns the version used.

        ``level`` is what the shop holds now, as far as head office knows (a delivery or a
        count). Without ``version``, the next one is the larger of (last + 1) and the clock in
        ms. ``shop`` defaults to the first shop.
        """
        if not _NAME.fullmatch(sku):
            raise ValueError("sku: expected 1-64 of A-Z a-z 0-9 . _ -")
        shop = shop or self.shop
        self.book.set_level(shop, sku, level)
        return await self._publish_snapshot(shop, sku, version)

    async def deliver(self, sku: str, qty: int, *, shop: str | None = None) -> int:
        """A delivery of ``qty`` units to ``shop``: head office's level moves, and the new
        snapshot is published (whether or not head office has the shop's latest sales yet);
        returns the version."""
        if not _NAME.fullmatch(sku):
            raise ValueError("sku: expected 1-64 of A-Z a-z 0-9 . _ -")
        shop = shop or self.shop
        self.book.deliver(shop, sku, qty)
        return await self._publish_snapshot(shop, sku, None)

    async def push_stock(self, shop: str | None = None, skus: Sequence[str] | None = None) -> None:
        """Publish head office's current snapshot of ``skus`` (default: all) of ``shop``."""
        shop = shop or self.shop
        for sku in skus if skus is not None else self.book.skus(shop):
            await self._publish_snapshot(shop, sku, None)

    async def publish_raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish anything (QoS 1): malformed or replayed messages for tests."""
        await self._client.publish(topic, payload, qos=1, retain=retain)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checked now and after each message received.

        Bound it with ``asyncio.timeout``: it waits as long as it takes.
        """
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_sales(self, n: int, *, shop: str | None = None) -> dict[str, dict[str, Any]]:
        """Wait until at least ``n`` distinct sales (of ``shop``, or of all) were recorded."""
        if shop is None:
            await self.wait_for(lambda: len(self.sales) >= n)
            return dict(self.sales)
        await self.wait_for(lambda: len(self.sales_by_shop.get(shop, {})) >= n)
        return dict(self.sales_by_shop[shop])

    async def wait_for_status(self, state: str) -> dict[str, Any]:
        """Wait for a status message whose ``state`` is ``state``; returns the latest such."""
        await self.wait_for(lambda: any(s.get("state") == state for s in self.statuses))
        return next(s for s in reversed(self.statuses) if s.get("state") == state)


def _revision(sale: dict[str, Any]) -> int:
    """A sale record's revision (1 when absent or not an integer)."""
    revision = sale.get("revision")
    return revision if isinstance(revision, int) and not isinstance(revision, bool) else 1
