"""Building the aiomqtt clients for head-office sync: MQTT 5 identity, session and last will.

The publisher and the stock subscriber each take a ``client_factory``: a no-argument callable
returning a fresh, not yet entered ``aiomqtt.Client`` (an async context manager that connects
on enter and disconnects on exit). A fresh client per attempt keeps each reconnect clean. Tests
inject their own factory; the daemon uses :func:`mqtt_client_factory`.

Every client speaks MQTT 5 (OASIS MQTT 5.0) with a persistent session: Clean Start off
(3.1.2.4) and a Session Expiry Interval (3.1.2.11.2), under a fixed client id per role, so the
broker keeps the subscriptions and queues QoS 1 messages for the shop while it is away, for up
to ``session_expiry`` seconds. Nothing here is broker specific: a single mosquitto or a cluster
(EMQX, HiveMQ, VerneMQ, bridged mosquittos) serves the same clients.

The two roles:

* ``sales`` publishes the outbox and carries the shop's last will (``status`` = offline,
  ``clean: false``, retained). Its session holds the subscription to head office's
  acknowledgements (``posgw/{shop}/acks``), queued while the shop is offline. The journal's
  outbox, not the broker, is the durable queue of sales.
* ``stock`` subscribes to head office's stock snapshots; QoS 1 snapshots published while the
  gateway was away are delivered when it returns, and the retained per-SKU messages cover
  absences longer than the session.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, Literal, Self

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.sync.messages import check_name, status_payload, status_topic

__all__ = ["DEFAULT_SESSION_EXPIRY", "ClientFactory", "SessionClient", "mqtt_client_factory"]

ClientFactory = Callable[[], aiomqtt.Client]

#: Seconds the broker keeps a shop's session after it disconnects (MQTT 5, 3.1.2.11.2).
DEFAULT_SESSION_EXPIRY = 7 * 86400
#: QoS 1 messages in flight (published, PUBACK not yet received) per connection; the broker's
#: Receive Maximum (3.2.2.3.3) lowers it when smaller.
DEFAULT_INFLIGHT = 64


class SessionClient(aiomqtt.Client):
    """An aiomqtt client that records the broker's Receive Maximum and can be cancelled.

    MQTT 5, 3.2.2.3.3: the broker says how many QoS 1 messages it accepts in flight from this
    client; paho does not apply it, so :class:`gateway.sync.window.PublishWindow` reads
    :attr:`receive_maximum` and keeps below it (65,535, the protocol's default, when absent).

    A connect cancelled while it waits for CONNACK (the daemon stopping while the broker is
    slow or frozen) is torn down at once: aiomqtt 2.5 leaves the socket open with its reader
    on the loop, and its ``_on_disconnect`` then asks the cancelled ``_connected`` future for
    its exception, which raises ``CancelledError`` inside the loop's reader callback (asyncio
    prints "Exception in callback" with a traceback). Here the half-open connection is closed
    when the cancellation arrives, and a disconnect seen on a cancelled connect is ignored.
    (A cancel while paho's blocking ``connect()`` still runs in the executor thread cannot
    stop that thread; that connection completes and is closed with the loop.)

    The socket's watches on uvloop (docs/daemon.md, "Event loop"). uvloop closes the watch of a
    socket that reports an error (a broker's reset) and keeps the closed watch in its table; a
    later ``add_writer`` on that descriptor raises ``RuntimeError`` ("unable to perform
    operation on <UVPoll closed=True>") in the callback aiomqtt 2.5 schedules, while paho still
    believes it is connected, and the PUBLISH packets in flight waited for the PUBACK time-out.
    Here a write watch that the loop refuses ends the session as a lost connection; a write
    watch is only added for the socket paho still has open; and paho's close removes the write
    watch as well as the read one (aiomqtt removes only the read one).
    """

    receive_maximum: int = 65535

    async def __aenter__(self) -> Self:
        try:
            return await super().__aenter__()
        except asyncio.CancelledError:
            self._drop_half_open()
            raise

    def _drop_half_open(self) -> None:
        """Close the socket of a connect cancelled mid-flight and free the client."""
        if self._client.socket() is not None:
            # paho's own close: calls aiomqtt's on_socket_close (reader removed, misc loop
            # cancelled) without any on_disconnect
            self._client._sock_close()
        if self._lock.locked():
            self._lock.release()

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()
        if fileno > -1:
            self._loop.remove_writer(fileno)
        super()._on_socket_close(client, userdata, sock)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()

        def writable() -> None:  # paho writes what it has queued; a failure ends the session
            try:
                client.loop_write()
            except Exception as exc:  # noqa: BLE001 - any write failure is a lost connection
                self._lost(exc)

        def watch() -> None:  # on the loop: only the socket paho still has, still open
            current = client.socket()
            if current is None or current is not sock or not current.fileno() == fileno > -1:
                return
            try:
                self._loop.add_writer(fileno, writable)
            except RuntimeError as exc:  # uvloop closed this descriptor's watch: it failed
                self._loop.remove_reader(fileno)  # forget the closed watch
                self._loop.remove_writer(fileno)
                self._lost(exc)

        self._loop.call_soon_threadsafe(watch)

    def _lost(self, cause: BaseException) -> None:
        """End the session as a lost connection (what the publisher and subscriber catch)."""
        if not self._disconnected.done():
            lost = aiomqtt.MqttError(f"Disconnected: the socket failed ({type(cause).__name__})")
            lost.__cause__ = cause
            self._disconnected.set_exception(lost)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
        reason_code: ReasonCode, properties: Properties | None = None,
    ) -> None:  # fmt: skip
        if self._connected.cancelled():  # nobody waits on this connection any more
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
        reason_code: ReasonCode, properties: Properties | None = None,
    ) -> None:  # fmt: skip
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_maximum, int) and receive_maximum > 0:
            self.receive_maximum = receive_maximum
        super()._on_connect(client, userdata, flags, reason_code, properties)


def connect_properties(session_expiry: int) -> Properties:
    """The CONNECT properties: the Session Expiry Interval (MQTT 5, 3.1.2.11.2)."""
    if not 0 <= session_expiry <= 0xFFFFFFFF:
        raise ValueError("session_expiry: expected 0..4294967295 seconds")
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry
    return properties


def mqtt_client_factory(
    *,
    host: str,
    port: int,
    shop: str,
    role: Literal["sales", "stock", "days"],
    keepalive: int = 30,
    timeout: float = 10.0,
    username: str | None = None,
    password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    session_expiry: int = DEFAULT_SESSION_EXPIRY,
    inflight: int = DEFAULT_INFLIGHT,
) -> ClientFactory:
    """A factory of MQTT 5 aiomqtt clients for ``role`` at the broker ``host:port``.

    Args:
        host: Broker host name or address.
        port: Broker TCP port.
        shop: Shop id (one topic level).
        role: ``"sales"`` (outbox, acknowledgements, last will), ``"stock"`` (snapshots) or
            ``"days"`` (the closed days' records, gateway/sync/days.py).
        keepalive: MQTT keep-alive in seconds; the broker fires the will after 1.5 x this
            without traffic (MQTT 5, 3.1.2.10).
        timeout: Seconds for connect, subscribe and each QoS 1 acknowledgement.
        username: Optional broker user name.
        password: Optional broker password (never logged).
        tls_context: TLS to the broker (:func:`gateway.sync.tls.client_tls_context`);
            ``None`` is plain TCP.
        session_expiry: Seconds the broker keeps the session after a disconnect.
        inflight: QoS 1 publishes in flight at once (the publisher's window).

    Raises:
        ValueError: ``shop`` is not a valid topic level, or a number is out of range.
    """
    check_name("shop", shop)
    if not 0 < port < 65536:
        raise ValueError("port: expected 1..65535")
    if not 0 < inflight <= 65535:
        raise ValueError("inflight: expected 1..65535")
    properties = connect_properties(session_expiry)
    will = None
    if role == "sales":
        will = aiomqtt.Will(
            topic=status_topic(shop),
            payload=status_payload(shop, online=False, clean=False),
            qos=1,
            retain=True,
        )

    def make() -> aiomqtt.Client:
        client = SessionClient(
            hostname=host,
            port=port,
            identifier=f"posgw-{shop}-{role}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
            will=will,
            keepalive=keepalive,
            timeout=timeout,
            username=username,
            password=password,
            tls_context=tls_context,
            max_inflight_messages=inflight,
        )
        # aiomqtt logs a warning per call once more than 10 are pending; a window of QoS 1
        # publishes is many pending calls by design.
        client.pending_calls_threshold = inflight + 16
        return client

    return make
