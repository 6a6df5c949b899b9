"""Building the aiomqtt clients for head-office sync: identity, session and last will.

The publisher and the stock subscriber each take a ``client_factory``: a no-argument callable
returning a fresh, not yet entered ``aiomqtt.Client`` (an async context manager that connects
on enter and disconnects on exit). A fresh client per attempt keeps each reconnect clean. Tests
inject their own factory; the daemon uses :func:`mqtt_client_factory`.

The two roles differ on purpose:

* ``sales`` carries the shop's last will (``status`` = offline, ``clean: false``, retained),
  and uses a clean session: the journal's outbox, not the broker, is the durable queue.
* ``stock`` uses a persistent session (``clean_session=False``, fixed client id), so QoS 1
  updates published while the gateway was briefly away are delivered when it returns
  (MQTT 3.1.1, 3.1.2.4); the retained per-SKU messages cover longer absences.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Literal

import aiomqtt

from gateway.sync.messages import check_name, status_payload, status_topic

__all__ = ["ClientFactory", "mqtt_client_factory"]

ClientFactory = Callable[[], aiomqtt.Client]


def mqtt_client_factory(
    *,
    host: str,
    port: int,
    shop: str,
    role: Literal["sales", "stock"],
    keepalive: int = 30,
    timeout: float = 10.0,
    username: str | None = None,
    password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> ClientFactory:
    """A factory of aiomqtt clients for ``role`` at the broker ``host:port``.

    Args:
        host: Broker host name or address.
        port: Broker TCP port.
        shop: Shop id (one topic level).
        role: ``"sales"`` (last will, clean session) or ``"stock"`` (persistent session).
        keepalive: MQTT keep-alive in seconds; the broker fires the will after 1.5 x this
            without traffic (MQTT 3.1.1, 3.1.2.10).
        timeout: Seconds for connect, subscribe and each QoS 1 publish acknowledgement.
        username: Optional broker user name.
        password: Optional broker password (never logged).
        tls_context: TLS to the broker (:func:`gateway.sync.tls.client_tls_context`);
            ``None`` is plain TCP.

    Raises:
        ValueError: ``shop`` is not a valid topic level, or the port is out of range.
    """
    check_name("shop", shop)
    if not 0 < port < 65536:
        raise ValueError("port: expected 1..65535")
    will = None
    if role == "sales":
        will = aiomqtt.Will(
            topic=status_topic(shop),
            payload=status_payload(shop, online=False, clean=False),
            qos=1,
            retain=True,
        )

    def make() -> aiomqtt.Client:
        return aiomqtt.Client(
            hostname=host,
            port=port,
            identifier=f"posgw-{shop}-{role}",
            clean_session=role == "sales",
            will=will,
            keepalive=keepalive,
            timeout=timeout,
            username=username,
            password=password,
            tls_context=tls_context,
        )

    return make
