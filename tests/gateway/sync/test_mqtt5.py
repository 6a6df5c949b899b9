"""MQTT 5 on a real mosquitto: PUBACK reason codes, the broker's Receive Maximum, persistent
sessions, message expiry, and head office's acknowledgements with the re-sending ledger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.journal import Journal
from gateway.sync import AckLedger, OutboxPublisher, acks_topic, sales_topic
from gateway.sync.client import SessionClient
from gateway.sync.window import PublishWindow, _join_queued, publish_head, publish_packet
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.journal_support import open_journal
from tests.gateway.sync_support import (
    FAST,
    PrivateBroker,
    complete_sale,
    eventually,
    factory,
    new_shop,
    private_broker,
    unsent_count,
)

__all__ = ["private_broker"]

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]


@pytest.fixture
def strict_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A mosquitto whose ACL lets anonymous clients publish status but not sales, and whose
    Receive Maximum (``max_inflight_messages``) is 5."""
    workdir = tmp_path / "strict"
    workdir.mkdir()
    # mosquitto started as root reads the ACL after dropping to its own user: a readable folder
    readable = Path(tempfile.mkdtemp(prefix="posgw-test-acl-"))
    readable.chmod(0o755)
    acl = readable / "acl"
    acl.write_text("topic readwrite posgw/+/status\ntopic readwrite posgw/+/acks\n"
                   "topic readwrite posgw/+/stock/#\ntopic read posgw/+/sales\n")  # fmt: skip
    acl.chmod(0o644)
    broker = PrivateBroker(workdir, extra=f"acl_file {acl}\nmax_inflight_messages 5\n")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(readable, ignore_errors=True)


def plain_publisher(journal: Journal, host: str, port: int, shop: str) -> OutboxPublisher:
    return OutboxPublisher(journal=journal, client_factory=factory(host, port, shop, "sales"),
                           shop=shop, poll_interval=0.05, backoff=FAST)  # fmt: skip


@contextlib.asynccontextmanager
async def running(publisher: OutboxPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run(), name="sync.publisher")
    try:
        yield task
    finally:
        publisher.stop()
        async with asyncio.timeout(10):
            await task


async def test_the_aiomqtt_internals_the_window_uses_are_there(mqtt_broker: MqttBroker) -> None:
    """gateway/sync/window.py and client.py use aiomqtt's paho client, its connection futures
    and lock, and paho's write queue and socket close."""
    make = factory(mqtt_broker.host, mqtt_broker.port, new_shop(), "sales")
    async with make() as client:
        assert isinstance(client, SessionClient)
        assert isinstance(client._client, paho.Client)
        assert isinstance(client._disconnected, asyncio.Future)
        assert not client._disconnected.done()
        assert client._client.protocol == paho.MQTTv5
        assert isinstance(client._connected, asyncio.Future)
        assert isinstance(client._lock, asyncio.Lock) and client._lock.locked()
        assert isinstance(client._client._out_packet, deque)
        assert callable(client._client._packet_write) and callable(client._client._sock_close)
        for name in ("_mid_generate", "_call_socket_register_write", "_raise_for_invalid_topic",
                     "_handle_pubackcomp"):  # fmt: skip
            assert callable(getattr(client._client, name)), name
        assert client.receive_maximum == 20  # mosquitto's default Receive Maximum


async def test_a_refused_puback_is_never_marked_sent(
    tmp_path: Path, strict_broker: PrivateBroker
) -> None:
    """MQTT 5 PUBACK 0x87 (not authorized): the sale stays unsent, the reason is shown."""
    shop = new_shop()
    db = tmp_path / "journal.db"
    async with open_journal(tmp_path) as journal:
        await complete_sale(journal)
        publisher = OutboxPublisher(
            journal=journal, client_factory=factory(strict_broker.host, strict_broker.port,
                                                    shop, "sales"),
            shop=shop, poll_interval=0.05, backoff=FAST,
        )  # fmt: skip
        async with running(publisher):
            await eventually(lambda: publisher.diagnostics()["failed"] >= 2)
            diag = publisher.diagnostics()
            assert unsent_count(db) == 1
    assert diag["published"] == 0
    assert "Not authorized (0x87)" in diag["last_error"]
    assert diag["connects"] >= 2  # refused, backed off, reconnected, refused again


async def test_the_window_keeps_below_the_brokers_receive_maximum(
    strict_broker: PrivateBroker,
) -> None:
    shop = new_shop()
    in_flight: list[int] = []
    async with factory(strict_broker.host, strict_broker.port, shop, "sales")() as client:
        window: PublishWindow[int] = PublishWindow(client, timeout=5)
        paho_mid = client._client._mid_generate

        def counting() -> int:  # the window takes an identifier for each PUBLISH it sends
            in_flight.append(len(window._waiting) + 1)
            return paho_mid()

        client._client._mid_generate = counting  # type: ignore[method-assign]
        for n in range(200):
            window.publish(f"posgw/{shop}/status", b'{"n": %d}' % n, n)
        acked: list[int] = []
        async with asyncio.timeout(20):
            while len(acked) < 200:
                await window.wait()
                settled = window.take()
                assert settled.refused == []
                acked += settled.acked
        window.close()
    assert window.limit == 5
    assert max(in_flight) == 5
    assert sorted(acked) == list(range(200))


async def test_the_window_joins_queued_packets_into_fewer_writes(mqtt_broker: MqttBroker) -> None:
    """Many QoS 1 messages go out in far fewer ``send()`` calls, every byte in order: a
    subscriber gets each message once, in the order published; their PUBACKs come in through
    far fewer ``recv()`` calls, and none is left unread (gateway/sync/window.py)."""
    shop = new_shop()
    topic = f"posgw/{shop}/status"
    count, received = 500, []
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as reader:  # fmt: skip
        await reader.subscribe(topic, qos=1)
        async with factory(mqtt_broker.host, mqtt_broker.port, shop, "sales")() as client:
            paho_client = client._client
            sends: list[int] = []
            plain_send = paho_client._sock_send

            def counting(data: bytes) -> int:
                sends.append(len(data))
                return plain_send(data)

            paho_client._sock_send = counting  # type: ignore[method-assign]
            reads: list[int] = []
            plain_recv = paho_client._sock_recv

            def counting_recv(size: int) -> bytes:
                data = plain_recv(size)
                reads.append(len(data))
                return data

            paho_client._sock_recv = counting_recv  # type: ignore[method-assign]
            window: PublishWindow[int] = PublishWindow(client, timeout=5)
            assert "_packet_write" in vars(paho_client)  # joining is on while the window is
            for n in range(count):
                window.publish(topic, b'{"n": %d}' % n, n)
            acked: list[int] = []
            async with asyncio.timeout(20):
                while len(acked) < count:
                    await window.wait()
                    acked += window.take().acked
            window.close()
            assert "_packet_write" not in vars(paho_client)  # and off once it is closed
            assert vars(paho_client)["_sock_recv"] is counting_recv  # reads: likewise
        async with asyncio.timeout(20):
            async for message in reader.messages:
                received.append(json.loads(message.payload)["n"])  # type: ignore[arg-type]
                if len(received) == count:
                    break
    assert sorted(acked) == list(range(count))
    assert received == list(range(count))
    assert len(sends) < count / 4, len(sends)
    assert len(reads) < count / 4, len(reads)  # paho alone: three recv() per PUBACK


def test_only_packets_paho_forgets_once_written_are_joined() -> None:
    """A QoS 0 PUBLISH (``on_publish`` fires on its write) and a DISCONNECT stay alone; the
    unsent rest of a half-written packet leads the joined one."""
    def packet(command: int, qos: int, data: bytes, pos: int = 0) -> dict[str, object]:
        return {"command": command, "mid": 1, "qos": qos, "pos": pos,
                "to_process": len(data) - pos, "packet": data, "info": None}  # fmt: skip

    queue = deque([packet(0x32, 1, b"AAAA", pos=2), packet(0x40, 0, b"BB"),
                   packet(0x30, 0, b"CC"), packet(0x32, 1, b"DD")])  # fmt: skip
    _join_queued(queue, 1024)
    assert [p["packet"] for p in queue] == [b"AABB", b"CC", b"DD"]
    assert (queue[0]["pos"], queue[0]["to_process"]) == (0, 4)
    queue = deque([packet(0xE0, 0, b"EE"), packet(0x32, 1, b"FF")])
    _join_queued(queue, 1024)
    assert [p["packet"] for p in queue] == [b"EE", b"FF"]
    queue = deque([packet(0x32, 1, b"x" * 10) for _ in range(5)])
    _join_queued(queue, 25)  # stops once the limit is reached
    assert [len(p["packet"]) for p in queue] == [30, 10, 10]


async def test_acknowledgements_sent_while_the_shop_is_away_are_delivered(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    """Clean Start off + Session Expiry Interval: the broker queues the shop's acks."""
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with open_journal(tmp_path) as journal:
        publisher = plain_publisher(journal, host, port, shop)
        async with running(publisher):
            await eventually(lambda: publisher.diagnostics()["connected"])
        # The shop is away; head office acknowledges two sales.
        async with HeadOffice(host=host, port=port, shop=shop) as office:
            body = {"schema": 1, "shop": shop, "ids": ["sale-a", "sale-b"]}
            await office.publish_raw(acks_topic(shop), json.dumps(body).encode())
        again = plain_publisher(journal, host, port, shop)
        async with running(again):
            await eventually(lambda: again.diagnostics()["acknowledged"] == 2)


async def test_an_expired_acknowledgement_is_not_delivered(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    """Message Expiry Interval: the broker drops a queued message once it is stale."""
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with open_journal(tmp_path) as journal:
        first = plain_publisher(journal, host, port, shop)
        async with running(first):
            await eventually(lambda: first.diagnostics()["connected"])
        async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5) as office:
            for ids, expiry in ((["stale"], 1), (["fresh-1", "fresh-2"], 3600)):
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.MessageExpiryInterval = expiry
                body = {"schema": 1, "shop": shop, "ids": ids}
                await office.publish(acks_topic(shop), json.dumps(body).encode(), qos=1,
                                     properties=properties)  # fmt: skip
        # Not a synchronisation: the time the first message needs to become stale.
        await asyncio.sleep(2.2)
        again = plain_publisher(journal, host, port, shop)
        async with running(again):
            await eventually(lambda: again.diagnostics()["acknowledged"] >= 2)
            assert again.diagnostics()["acknowledged"] == 2


async def test_the_ledger_resends_until_head_office_acknowledges(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with (
        HeadOffice(host=host, port=port, shop=shop, acknowledge=False) as silent,
        open_journal(tmp_path) as journal,
        await AckLedger.open(tmp_path / "acks.db") as ledger,
    ):
        sale = await complete_sale(journal)
        publisher = OutboxPublisher(
            journal=journal, client_factory=factory(host, port, shop, "sales"), shop=shop,
            poll_interval=0.05, backoff=FAST, ledger=ledger, ack_timeout=0.2,
        )  # fmt: skip
        async with running(publisher):
            async with asyncio.timeout(15):
                await silent.wait_for(lambda: silent.duplicates >= 2)  # re-sent, unacknowledged
            assert await ledger.count() == 1
            assert unsent_count(tmp_path / "journal.db") == 0  # the journal's part is done
            body = {"schema": 1, "shop": shop, "ids": [sale.id]}
            await silent.publish_raw(acks_topic(shop), json.dumps(body).encode())
            await eventually(lambda: publisher.diagnostics()["acknowledged"] == 1)
            assert await ledger.count() == 0
        diag = publisher.diagnostics()
    assert diag["published"] == 1
    assert diag["resent"] >= 1
    sales = [m for m in silent.received if m.topic == sales_topic(shop)]
    assert {json.loads(m.payload)["id"] for m in sales} == {sale.id}


async def test_a_connect_cancelled_at_shutdown_leaves_no_callback_error(
    tmp_path: Path, private_broker: PrivateBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon cancels the publisher while it waits for CONNACK (the broker is frozen):
    the half-open connection is closed then and there, and when the broker comes back and
    goes, no callback fails on the cancelled connect (aiomqtt's ``_on_disconnect`` used to
    raise ``CancelledError`` from the loop's reader: "Exception in callback")."""
    shop = new_shop()
    made: list[aiomqtt.Client] = []
    make = factory(private_broker.host, private_broker.port, shop, "sales")

    def recording() -> aiomqtt.Client:
        made.append(make())
        return made[-1]

    caplog.set_level("ERROR", logger="asyncio")
    async with open_journal(tmp_path) as journal:
        publisher = OutboxPublisher(journal=journal, client_factory=recording, shop=shop,
                                    backoff=FAST)  # fmt: skip
        private_broker.pause()  # TCP connects (the kernel's backlog); no CONNACK comes
        try:
            task = asyncio.create_task(publisher.run())
            await eventually(lambda: bool(made) and made[0]._client.socket() is not None)
            paho_client = made[0]._client
            task.cancel()  # as the daemon does on SIGTERM
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            private_broker.resume()
        private_broker.stop()  # the broker answers the CONNECT, then closes the connection
        private_broker.start()
        await eventually(lambda: paho_client.socket() is None)
        await asyncio.sleep(0)  # let any reader callback still queued run
    errors = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert errors == []
    assert made[0]._lock.locked() is False  # the client can be entered again


@pytest.mark.parametrize("size", [0, 1, 120, 121, 122, 16_380, 16_381, 70_000])
def test_the_windows_publish_packets_are_the_bytes_paho_makes(size: int) -> None:
    """The window builds its own QoS 1 PUBLISH (MQTT 5, 3.3); paho's encoder, an independent
    one, makes the same bytes for the same topic, packet identifier and payload, across the
    remaining length's one-, two- and three-byte forms (1.5.5). (No broker: paho queues the
    packet on a socket that cannot send, where it stays.)"""
    topic, mid = "posgw/shop-1/sales", 4660
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client._sock = _Unsendable()  # type: ignore[assignment]
    client._send_publish(mid, topic.encode(), payload, qos=1)
    expected = bytes(client._out_packet[0]["packet"])
    assert publish_packet(publish_head(topic), mid, payload) == expected


class _Unsendable:
    """A socket paho cannot send on (it has no ``send``): paho keeps the packet queued."""

    def close(self) -> None:
        return None


@pytest.mark.parametrize("topic", ["", "posgw/+/sales", "posgw/#", "x" * 65_536])
def test_the_window_refuses_a_topic_it_cannot_publish_on(topic: str) -> None:
    with pytest.raises(ValueError):
        publish_head(topic)
