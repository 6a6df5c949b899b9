"""The listener's TLS upgrade when the client's first bytes are already waiting at accept.

A real aiohttp app behind :class:`~gateway.security.limits.LimitedSite` with a self-signed
certificate, and a client whose ClientHello (made by :mod:`ssl` over memory BIOs) is in the
kernel's buffer before the server even accepts. uvloop starts reading once ``connection_made``
returns, whatever ``pause_reading()`` asked, so those bytes reach the admission protocol before
the TLS layer is in place (asyncio 3.11 waits); the handshake must still complete, on both
loops, and garbage in their place must still be dropped at once.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gateway.security.limits import ConnectionLimiter, LimitedSite
from gateway.security.tls import ensure_self_signed, server_context

pytestmark = pytest.mark.both_loops


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[LimitedSite]:
    cert, key = tmp_path / "http.crt", tmp_path / "http.key"
    ensure_self_signed(cert, key, common_name="shop-1", names=["localhost", "127.0.0.1"])

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hello over TLS")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    limiter = ConnectionLimiter(per_client=8, total=16)
    listener = LimitedSite(
        runner, "127.0.0.1", 0, limiter=limiter, ssl_context=server_context(cert, key),
        handshake_timeout=5.0,
    )  # fmt: skip
    await listener.start()
    try:
        yield listener
    finally:
        await runner.cleanup()


def _connected_with(port: int, first: bytes) -> socket.socket:
    """A socket connected to ``port`` with ``first`` sent before the server's loop has run
    (the kernel completes a loopback connect from the listen backlog)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first)
    sock.setblocking(False)
    return sock


async def _handshake(
    sock: socket.socket, tls: ssl.SSLObject, out: ssl.MemoryBIO, into: ssl.MemoryBIO
) -> None:
    """Finish the client's handshake over ``sock`` (the ClientHello is already sent)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            if pending := out.read():
                await loop.sock_sendall(sock, pending)
            data = await loop.sock_recv(sock, 65536)
            if not data:
                raise ConnectionError("the server closed the connection in the handshake") from None
            into.write(data)
            continue
        if pending := out.read():
            await loop.sock_sendall(sock, pending)
        return


async def _read_to_the_end(
    sock: socket.socket, tls: ssl.SSLObject, out: ssl.MemoryBIO, into: ssl.MemoryBIO
) -> bytes:
    """What the server sends until it closes (with or without a TLS close_notify)."""
    loop = asyncio.get_running_loop()
    answer = bytearray()
    await loop.sock_sendall(sock, out.read())
    while True:
        try:
            chunk = tls.read(65536)
        except ssl.SSLZeroReturnError:
            return bytes(answer)
        except ssl.SSLWantReadError:
            data = await loop.sock_recv(sock, 65536)
            if not data:
                return bytes(answer)
            into.write(data)
            continue
        if not chunk:
            return bytes(answer)
        answer.extend(chunk)


async def test_a_client_hello_waiting_at_accept_still_gets_its_handshake(
    site: LimitedSite,
) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the handshake's timing is under test, not the trust
    into, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(into, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    sock = _connected_with(site.port, out.read())  # the whole ClientHello, before any accept
    try:
        async with asyncio.timeout(10):
            await _handshake(sock, tls, out, into)
            tls.write(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = await _read_to_the_end(sock, tls, out, into)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 200"), bytes(answer[:200])
    assert answer.endswith(b"hello over TLS")


async def test_plain_http_waiting_at_accept_is_dropped_at_once(site: LimitedSite) -> None:
    loop = asyncio.get_running_loop()
    sock = _connected_with(site.port, b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
    try:
        received = bytearray()
        async with asyncio.timeout(3):  # well inside the 5 s handshake time-out
            while data := await loop.sock_recv(sock, 4096):
                received.extend(data)
    finally:
        sock.close()
    assert b"hello over TLS" not in received
