"""A broker that resets the connection while PUBACKs are awaited, and a closed write watch.

A minimal broker on loopback (asyncio streams in the test): it answers CONNECT with an MQTT 5
CONNACK (3.2), reads the PUBLISH without acknowledging it, then closes with a TCP reset
(``SO_LINGER`` 0). The gateway's session client and publish window must report the lost
connection well before the PUBACK time-out, with no error in the loop's callbacks.

uvloop closes a socket's watch when the socket reports an error, and keeps the closed watch
in its table; adding a write watch on that descriptor then raises ``RuntimeError`` (seen in
``test_fleet.py`` after a broker restart: "unable to perform operation on <UVPoll
closed=True>", then the PUBACK time-out). The session client treats that as a lost connection
(``gateway/sync/client.py``); the second test makes asyncio's ``add_writer`` raise as uvloop's
does (a stand-in: which event the kernel reports first after a reset cannot be chosen here,
and uvloop's loop is not patched in place).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from gateway.sync.client import mqtt_client_factory
from gateway.sync.window import PublishWindow

#: CONNACK: session not present, reason Success, no properties (MQTT 5, 3.2.2).
CONNACK = bytes([0x20, 0x03, 0x00, 0x00, 0x00])
PUBACK_TIMEOUT = 30.0


class _ResettingBroker:
    """Accepts one client, CONNACKs it, and resets the connection at the first PUBLISH."""

    def __init__(self) -> None:
        self.published = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(4096)  # CONNECT
            writer.write(CONNACK)
            await writer.drain()
            while data := await reader.read(4096):
                if data[0] & 0xF0 == 0x30:  # a PUBLISH: no PUBACK, a reset
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    self.published.set()
                    return
        except ConnectionError:
            pass
        finally:
            writer.close()  # (a no-op after the abort)
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def __aenter__(self) -> _ResettingBroker:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the loop's exception handler would have printed ("Exception in callback")."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(None)


@pytest.mark.both_loops
async def test_a_reset_while_pubacks_are_awaited_ends_the_session_at_once(
    loop_errors: list[dict[str, Any]],
) -> None:
    async with _ResettingBroker() as broker:
        make = mqtt_client_factory(host="127.0.0.1", port=broker.port, shop="reset-1",
                                   role="sales", timeout=PUBACK_TIMEOUT)  # fmt: skip
        client = make()
        started = time.monotonic()
        with pytest.raises(aiomqtt.MqttError, match="Disconnected"):  # noqa: PT012
            async with client:
                window: PublishWindow[int] = PublishWindow(client, timeout=PUBACK_TIMEOUT)
                window.publish("posgw/reset-1/sales", b'{"n": 1}', 1)
                await broker.published.wait()
                try:
                    async with asyncio.timeout(PUBACK_TIMEOUT / 2):
                        await window.wait()
                finally:
                    window.close()
        took = time.monotonic() - started
    assert took < 5, took  # seconds, not the 30 s PUBACK time-out
    assert loop_errors == []


async def test_a_write_watch_the_loop_has_closed_ends_the_session_as_lost(
    loop_errors: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    closed_watch = RuntimeError("unable to perform operation on <UVPoll closed=True>")

    def add_writer(_fd: int, *_args: object) -> None:  # as uvloop's, after a socket error
        raise closed_watch

    async with _ResettingBroker() as broker:
        make = mqtt_client_factory(host="127.0.0.1", port=broker.port, shop="reset-2",
                                   role="sales", timeout=PUBACK_TIMEOUT)  # fmt: skip
        with pytest.raises(aiomqtt.MqttError, match="Disconnected") as raised:  # noqa: PT012
            async with make() as client:
                monkeypatch.setattr(loop, "add_writer", add_writer)
                client._client._registered_write = False
                client._client._call_socket_register_write()  # paho has bytes to write
                async with asyncio.timeout(5):
                    await asyncio.shield(client._disconnected)  # what the publisher awaits
    assert "the socket failed (RuntimeError)" in str(raised.value)
    assert raised.value.__cause__ is closed_watch
    assert loop_errors == []
