"""A window of QoS 1 publishes in flight, settled by the broker's PUBACKs (MQTT 5, 4.3.2).

The outbox publisher hands a whole claimed batch to the client at once and learns, message by
message, which ones the broker acknowledged. Awaiting ``aiomqtt.Client.publish`` per message
would cost an ``asyncio.Event`` and a ``wait_for`` per sale, and would hide the PUBACK's reason
code: in MQTT 5 a PUBACK may *refuse* a message (reason code 0x80 or above, 3.4.2.1: not
authorized, quota exceeded, payload format invalid...), and such a message must not be marked
sent. So this window publishes on the paho client under aiomqtt (the same connection, on the same
event loop: aiomqtt drives paho's socket from the loop), writing its own PUBLISH packets and
settling their PUBACKs itself, while aiomqtt's own ``publish`` (the retained status) keeps
working through paho as before.

paho's ``publish`` costs a dozen objects and calls a message (an ``MQTTMessage``, an
``MQTTMessageInfo`` with its ``threading.Condition``, a logging call, a topic check), as much
as the rest of the drain. The window builds each QoS 1 PUBLISH itself (MQTT 5, 3.3: fixed
header, remaining length, topic, packet identifier, properties, payload; the topic's bytes
checked and made once per topic), takes its packet identifier from paho's own counter, so no
identifier is used twice on the connection, and puts it on paho's write queue, which writes it
as any packet (and keeps the keep-alive clock). paho does not track these messages, so it would
not send them again after a reconnect; none is made on this client anyway: the publisher
connects with a new client each time, releases what the window left unsettled to the outbox
(the store of record) and publishes it again, as it did when paho tracked them.

At most ``limit`` messages are unacknowledged at once (the client factory's ``inflight``,
lowered by the broker's Receive Maximum, MQTT 5, 3.2.2.3.3); the rest wait in this window's
queue, in order, and each PUBACK lets the next one go as it is settled, so the broker is
kept busy without a round trip of the event loop per message: the backlog drains at the
broker's pace. (Queuing them in paho instead costs a scan of all its queued messages on every
PUBACK.)

paho writes each queued packet with its own ``send()`` system call; at thousands of PUBLISH a
second that call is one of the largest costs of the drain. While the window is open, the
client's packet writer first joins the run of queued packets into one buffer (at most
:data:`COALESCE_BYTES`) and hands paho that, so one ``send()`` carries many messages; what a
short write leaves is kept and sent next, as paho does for one packet. Only packets that paho
does nothing with once written are joined (not a QoS 0 PUBLISH, whose ``on_publish`` fires on
write, nor a DISCONNECT); a reconnect drops paho's write queue either way, so joining changes
what goes on the wire in what ``send()``, never which bytes or in what order.

paho reads each incoming packet with three ``recv()`` calls (its type, its length, its
body): a 4-byte PUBACK costs three system calls. While the window is open, reads go through a
buffer filled by one ``recv()`` of up to :data:`READ_BYTES`, and the client's ``loop_read``
goes on until that buffer is empty (paho stops after a set number of packets, and the socket
would then not wake the loop for bytes already in the buffer). The messages those PUBACKs let
go are written at the end of that same ``loop_read``, in one joined ``send()``, instead of
registering the loop's writer (two ``epoll_ctl`` calls and a turn of the loop per batch); the
writer is registered as before if the socket takes less than everything, if a writer was
already registered (aiomqtt adds it later, from the loop: it then writes what was queued), or
if a DISCONNECT or a QoS 0 PUBLISH is queued (paho acts when it is written).

paho decodes every PUBACK into a ``ReasonCode`` and a ``Properties`` object before it calls
``on_publish``. The window settles its own PUBACKs from their bytes: the run of them found in
the read buffer at a packet boundary that carry no properties and a success (2 bytes, or 3 with
a reason code below 0x80, MQTT 5, 3.4.2.1) is settled in one go (paho never reads them), and
any other PUBACK for one of its identifiers (a refusal, 0x80 and above, or one with properties)
is read by paho and settled in its PUBACK handler, which the window takes over for its own
identifiers and passes every other one on to paho.

This module relies on two attributes of aiomqtt 2.5 (``_client``, the paho client, and
``_disconnected``, the future set when the connection ends) and on paho-mqtt 2.2's write
queue (``_out_packet``, ``_packet_write``, ``_registered_write``,
``_call_socket_register_write``, ``_mid_generate``, ``_raise_for_invalid_topic``), its reads
(``_sock``, ``_sock_recv``, ``_packet_read``, ``_in_packet``, ``_last_bytes_received``,
``_msgtime_mutex``) and its PUBACK handler (``_handle_pubackcomp``);
the exact versions are pinned in constraints.txt and
``tests/gateway/sync/test_mqtt5.py`` fails if they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import VariableByteIntegers
from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "COALESCE_BYTES", "READ_BYTES", "PublishWindow", "Settled", "buffer_reads", "coalesce_writes",
    "publish_head", "publish_packet",
]

#: Most bytes joined into one ``send()`` (a few TCP segments' worth).
COALESCE_BYTES = 64 * 1024
#: Most bytes taken by one ``recv()`` while the window is open.
READ_BYTES = 64 * 1024
_PUBLISH, _DISCONNECT = 0x30, 0xE0

T = TypeVar("T")
#: QoS 1 PUBLISH, no DUP, no RETAIN (MQTT 5, 3.3.1).
_PUBLISH_QOS1 = _PUBLISH | 0x02
#: An empty property list (MQTT 5, 3.3.2.3: Property Length 0).
_NO_PROPERTIES = b"\x00"


class Settled(Generic[T]):
    """What the broker said about the window's messages since the last :meth:`take`.

    Attributes:
        acked: Tokens of messages acknowledged with a success reason code.
        refused: Tokens with the reason the broker gave (``"Not authorized (0x87)"``).
    """

    __slots__ = ("acked", "refused")

    def __init__(self) -> None:
        self.acked: list[T] = []
        self.refused: list[tuple[T, str]] = []

    def __bool__(self) -> bool:
        return bool(self.acked or self.refused)


def _override(client: paho.Client, **methods: Callable[..., Any]) -> Callable[[], None]:
    """Set ``methods`` on the ``client`` instance; returns what puts the previous ones back."""
    saved = {name: client.__dict__.get(name) for name in methods}
    client.__dict__.update(methods)

    def restore() -> None:
        for name, previous in saved.items():
            if previous is None:
                client.__dict__.pop(name, None)
            else:
                client.__dict__[name] = previous

    return restore


def _joinable(packet: Any) -> bool:
    """Whether paho does nothing with ``packet`` once written (see the module docstring)."""
    kind = packet["command"] & 0xF0
    return kind != _DISCONNECT and not (kind == _PUBLISH and packet["qos"] == 0)


def _join_queued(queue: Any, limit: int) -> None:
    """Replace the leading run of joinable packets in paho's write queue with one packet."""
    if len(queue) < 2 or not _joinable(queue[0]):
        return
    first = queue.popleft()
    parts = [first["packet"][first["pos"] :]]
    size = len(parts[0])
    while queue and size < limit and _joinable(queue[0]):
        packet = queue.popleft()
        chunk = packet["packet"][packet["pos"] :]
        parts.append(chunk)
        size += len(chunk)
    joined = b"".join(parts)
    queue.appendleft({**first, "pos": 0, "to_process": len(joined), "packet": joined})


def coalesce_writes(client: paho.Client, *, limit: int = COALESCE_BYTES) -> Callable[[], None]:
    """Make ``client`` send its queued packets in joined writes; returns the undo.

    Raises:
        TypeError: This paho client has no write queue this function knows (another version).
    """
    queue = getattr(client, "_out_packet", None)
    write = getattr(client, "_packet_write", None)
    if not isinstance(queue, deque) or write is None:
        raise TypeError("paho-mqtt's write queue changed: see gateway/sync/window.py")

    def packet_write() -> Any:
        _join_queued(client._out_packet, limit)
        return write()

    return _override(client, _packet_write=packet_write)


def publish_head(topic: str) -> bytes:
    """The topic name as a PUBLISH carries it (MQTT 5, 3.3.2.1: 2-byte length, UTF-8).

    Raises:
        ValueError: Not a valid topic to publish on (empty, a wildcard, too long).
    """
    encoded = topic.encode()
    if not encoded:
        raise ValueError("Invalid topic: empty")
    paho.Client._raise_for_invalid_topic(encoded)
    return len(encoded).to_bytes(2, "big") + encoded


def publish_packet(head: bytes, mid: int, payload: bytes) -> bytes:
    """One QoS 1 PUBLISH (MQTT 5, 3.3): fixed header, remaining length (a Variable Byte
    Integer, 1.5.5, paho's encoder), topic ``head``, packet identifier, no properties (a
    Property Length of 0, 3.3.2.3), payload."""
    size = len(head) + 3 + len(payload)
    length: bytes = VariableByteIntegers.encode(size)  # type: ignore[no-untyped-call]
    return b"".join((bytes((_PUBLISH_QOS1,)), length, head, mid.to_bytes(2, "big"),
                     _NO_PROPERTIES, payload))  # fmt: skip


class _ReadBuffer:
    """Bytes received from one socket and not yet handed to paho."""

    __slots__ = ("data", "pos", "sock")

    def __init__(self) -> None:
        self.sock: object = None
        self.data = b""
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos


def buffer_reads(
    client: paho.Client, *, size: int = READ_BYTES, take: Callable[[bytes, int], int] | None = None
) -> Callable[[], None]:
    """Make ``client`` read its socket in chunks of up to ``size`` bytes; returns the undo.

    The undo leaves the buffering on if bytes are still buffered (none are between two runs of
    the loop's reader: ``loop_read`` returns only once the buffer is empty or the connection
    failed).

    Args:
        client: The paho client.
        size: Most bytes per ``recv()``.
        take: Called with the buffer and the position of the next whole packet whenever paho
            is about to read one: it handles the packets it recognises there and returns the
            position after them (the position it was given: none taken).

    Raises:
        TypeError: This paho client reads in a way this function does not know.
    """
    plain_recv = getattr(client, "_sock_recv", None)
    plain_loop_read = getattr(client, "loop_read", None)
    plain_packet_read = getattr(client, "_packet_read", None)
    in_packet = getattr(client, "_in_packet", None)
    if plain_recv is None or plain_loop_read is None or plain_packet_read is None or \
            not isinstance(in_packet, dict) or not hasattr(client, "_sock"):  # fmt: skip
        raise TypeError("paho-mqtt's reads changed: see gateway/sync/window.py")
    buffer = _ReadBuffer()

    def sock_recv(wanted: int) -> bytes:
        if client._sock is not buffer.sock:  # a new connection: nothing buffered is its
            buffer.sock, buffer.data, buffer.pos = client._sock, b"", 0
        if not len(buffer):
            data: bytes = plain_recv(max(wanted, size))  # raises as paho's own would
            if not data:
                return data
            buffer.data, buffer.pos = data, 0
        chunk = buffer.data[buffer.pos : buffer.pos + wanted]
        buffer.pos += len(chunk)
        return chunk

    def loop_read(max_packets: int = 1) -> Any:
        sock, registered = client._sock, client._registered_write
        client._registered_write = True  # what the PUBACKs let go is written below, at once
        try:
            while True:
                result = plain_loop_read(max_packets)
                if result != paho.MQTT_ERR_SUCCESS or not len(buffer) or client._sock is None:
                    break
        finally:
            if client._sock is sock:  # (a closed socket: paho already unregistered its writer)
                client._registered_write = registered
        queued = client._out_packet
        if registered or not queued or client._sock is None:
            return result  # (a writer registered before: it writes what was queued)
        if all(_joinable(packet) for packet in queued):
            client.loop_write()  # registers the loop's writer if the socket took less
        else:  # a DISCONNECT (or QoS 0) is written by the loop's writer, as paho does
            client._call_socket_register_write()
        return result

    def packet_read() -> Any:
        # at a packet boundary (paho holds no part of one) with bytes of this socket buffered
        if take is not None and client._in_packet["command"] == 0 and len(buffer) \
                and client._sock is buffer.sock:  # fmt: skip
            start = buffer.pos
            buffer.pos = take(buffer.data, start)
            if buffer.pos != start:
                return paho.MQTT_ERR_SUCCESS
        return plain_packet_read()

    methods: dict[str, Callable[..., Any]] = {"_sock_recv": sock_recv, "loop_read": loop_read}
    if take is not None:
        methods["_packet_read"] = packet_read
    restore = _override(client, **methods)

    def undo() -> None:
        if not len(buffer):
            restore()

    return undo


class PublishWindow(Generic[T]):
    """QoS 1 publishes on a connected aiomqtt client, each tagged with a caller's token.

    Args:
        client: A connected ``aiomqtt.Client`` (inside its ``async with``).
        timeout: Seconds without any PUBACK, while messages are outstanding, after which
            :meth:`wait` raises ``aiomqtt.MqttError("Operation timed out")``.
        limit: Most messages in flight (default: the paho client's ``max_inflight_messages``
            and the broker's Receive Maximum when the client recorded it).
        clock: Monotonic seconds (injected for tests).
    """

    def __init__(
        self,
        client: aiomqtt.Client,
        *,
        timeout: float,
        limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._paho: paho.Client = client._client
        self._uncoalesce = coalesce_writes(self._paho)
        self._unbuffer = buffer_reads(self._paho, take=self._take_pubacks)
        self._unhook_puback = _override(self._paho, _handle_pubackcomp=self._on_puback_packet)
        self._timeout = timeout
        self._clock = clock
        receive_maximum = int(getattr(client, "receive_maximum", 65535))
        self._limit = max(1, min(limit or self._paho.max_inflight_messages, receive_maximum))
        self._queue: deque[tuple[str, bytes, T]] = deque()
        self._heads: dict[str, bytes] = {}
        self._waiting: dict[int, T] = {}
        self._settled: Settled[T] = Settled()
        self._changed = asyncio.Event()
        self._progress = clock()

    @property
    def limit(self) -> int:
        """Most messages in flight at once."""
        return self._limit

    @property
    def outstanding(self) -> int:
        """Messages handed to the window and not yet settled (queued or in flight)."""
        return len(self._waiting) + len(self._queue)

    def publish(self, topic: str, payload: bytes, token: T) -> None:
        """Queue one QoS 1 message; it is settled later (see :meth:`take`).

        Raises:
            ValueError: ``topic`` is not one to publish on.
            aiomqtt.MqttCodeError: The client is not connected.
        """
        if topic not in self._heads:
            self._heads[topic] = publish_head(topic)
        self._queue.append((topic, payload, token))
        self._pump()

    def _pump(self) -> None:
        """Send queued messages while fewer than ``limit`` are in flight.

        Each goes on paho's write queue as a PUBLISH built here, with a packet identifier
        from paho's own counter (so none is in use twice on the connection), and is written by
        paho's writer like any packet. paho does not track it: its PUBACK is settled by this
        window, and after a lost connection the window's owner sends it again, as for every
        message the window abandons.
        """
        client = self._paho
        queue, waiting = self._queue, self._waiting
        if not queue or len(waiting) >= self._limit:
            return
        if client._sock is None:
            raise aiomqtt.MqttCodeError(paho.MQTT_ERR_NO_CONN, "Could not publish message")
        out = client._out_packet
        if not waiting:
            self._progress = self._clock()
        while queue and len(waiting) < self._limit:
            topic, payload, token = queue.popleft()
            mid = client._mid_generate()
            packet = publish_packet(self._heads[topic], mid, payload)
            out.append({"command": _PUBLISH_QOS1, "mid": mid, "qos": 1, "pos": 0,
                        "to_process": len(packet), "packet": packet, "info": None})  # fmt: skip
            waiting[mid] = token
        client._call_socket_register_write()  # (a no-op inside loop_read: it writes them)

    def take(self) -> Settled[T]:
        """The messages settled since the last call (and forget them)."""
        settled, self._settled = self._settled, Settled()
        self._changed.clear()
        return settled

    def abandon(self) -> list[T]:
        """Forget the unsettled messages and return their tokens (after a failure)."""
        tokens = list(self._waiting.values()) + [queued[2] for queued in self._queue]
        self._waiting.clear()
        self._queue.clear()
        return tokens

    async def wait(self) -> None:
        """Return when something was settled; raise if the connection ends or PUBACKs stop.

        Raises:
            aiomqtt.MqttError: The connection was lost, or messages are outstanding and no
                PUBACK came for ``timeout`` seconds.
        """
        while not self._settled:
            disconnected: asyncio.Future[None] = self._client._disconnected
            if disconnected.done():
                cause = None if disconnected.cancelled() else disconnected.exception()
                raise aiomqtt.MqttError("Disconnected during publish") from cause
            remaining = self._timeout - (self._clock() - self._progress)
            if self._waiting and remaining <= 0:
                raise aiomqtt.MqttError("Operation timed out")
            changed = asyncio.ensure_future(self._changed.wait())
            either: set[asyncio.Future[Any]] = {changed, disconnected}
            try:
                await asyncio.wait(
                    either,
                    timeout=remaining if self._waiting else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                changed.cancel()

    def close(self) -> None:
        """Give paho its plain reader, writer and PUBACK handler back (the client may
        outlive the window)."""
        self._uncoalesce()
        self._unbuffer()
        self._unhook_puback()

    def _take_pubacks(self, data: bytes, pos: int) -> int:
        """Settle the run of the window's PUBACKs at ``data[pos:]`` straight from the buffer.

        The same fast path as :meth:`_on_puback_packet`, for a whole run at once (MQTT 5,
        3.4: fixed header 0x40, remaining length 2, or 3 with a reason code below 0x80): paho
        never sees them as packets. Stops at anything else, which paho then reads itself.
        Returns the position after the PUBACKs taken.
        """
        client = self._paho
        waiting = self._waiting
        acked = self._settled.acked
        end = len(data)
        start = pos
        while end - pos >= 4 and data[pos] == 0x40:
            length = data[pos + 1]
            if not (length == 2 or (length == 3 and end - pos >= 5 and data[pos + 4] < 0x80)):
                break
            mid = (data[pos + 2] << 8) | data[pos + 3]
            if mid not in waiting:
                break
            acked.append(waiting.pop(mid))
            pos += 2 + length
        if pos == start:
            return pos
        self._progress = self._clock()
        with client._msgtime_mutex:  # paho's keep-alive clock, as its own reader sets it
            client._last_bytes_received = time.monotonic()
        self._changed.set()
        with contextlib.suppress(aiomqtt.MqttError):  # as in _on_puback_packet
            self._pump()
        return pos

    def _on_puback_packet(self, command: str) -> Any:
        """paho's PUBACK/PUBCOMP handler: the window's own PUBACKs are settled here (a success
        or a refusal, MQTT 5, 3.4.2.1: a reason code of 0x80 or above), every other one goes
        to paho's handler."""
        client = self._paho
        packet = client._in_packet["packet"]
        if command != "PUBACK" or len(packet) < 2:
            return paho.Client._handle_pubackcomp(client, command)  # type: ignore[arg-type]
        mid = (packet[0] << 8) | packet[1]
        token = self._waiting.pop(mid, None)
        if token is None:
            return paho.Client._handle_pubackcomp(client, command)  # type: ignore[arg-type]
        code = packet[2] if len(packet) > 2 else 0
        if code >= 0x80:
            reason = ReasonCode(PacketTypes.PUBACK, identifier=code)
            self._settled.refused.append((token, f"{reason} ({code:#04x})"))
        else:
            self._settled.acked.append(token)
        self._progress = self._clock()
        self._changed.set()
        # A refusal means the connection is going: wait() reports it, abandon() returns what
        # is still queued.
        with contextlib.suppress(aiomqtt.MqttError):
            self._pump()
        return paho.MQTT_ERR_SUCCESS
