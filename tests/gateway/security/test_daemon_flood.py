"""1,000 idle sockets from loopback against the real daemon over TLS: the listener keeps no more
than its caps open, and a till's payment still completes (its time is printed, not asserted:
speed belongs to benchmarks/)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    acquirer_fixture,
    fixed_env,
    insert_card,
    running,
    slot_name,
    till_token,
)
from tests.gateway.security.tls_support import pinned_session, tls_config, tls_till

__all__ = ["acquirer_fixture"]

IDLE = 1000
PER_CLIENT = 64


async def _until(condition: object, within: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - a counter, no event to wait on
            await asyncio.sleep(0.02)


async def test_a_till_is_served_while_a_thousand_idle_sockets_are_held(
    tmp_path: Path, acquirer: AcquirerHost, caplog: pytest.LogCaptureFixture
) -> None:
    assert acquirer.url is not None
    slot = slot_name()
    config = tls_config(tmp_path, acquirer.url, [slot], max_connections_per_client=PER_CLIENT)
    daemon = Daemon(config, env=fixed_env, environ={})
    loop = asyncio.get_running_loop()
    held: list[socket.socket] = []
    async with running(daemon), pinned_session(daemon, till_token(tmp_path)) as session:
        assert daemon.listener is not None and daemon.http_port is not None
        limiter = daemon.listener.limiter
        try:
            for _ in range(IDLE):
                sock = socket.socket()
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", daemon.http_port))
                held.append(sock)
            await _until(lambda: limiter.evicted >= IDLE - PER_CLIENT)
            assert limiter.open <= PER_CLIENT
            till = tls_till(session, daemon)
            started = time.monotonic()
            status, body = await till.pay(1, 1250)
            assert status == 202, body
            await till.wait_prompt(1, "PRESENT CARD")
            insert_card(slot)
            result = await till.get(body["id"], wait=10)
            elapsed = time.monotonic() - started
            print(f"payment with {IDLE} idle sockets held: {elapsed:.3f} s "
                  f"(evicted {limiter.evicted}, open {limiter.open})")  # fmt: skip
            assert result["state"] == "COMPLETED", result
            assert limiter.open <= PER_CLIENT + 2  # the till's connections took their place
        finally:
            for sock in held:
                sock.close()
    noisy = [r for r in caplog.records if r.name.startswith(("aiohttp", "asyncio"))]
    assert len(noisy) <= 20 * 2  # rate-limited: at most a burst per period (and a summary)


async def test_idle_connections_are_closed_after_the_idle_timeout(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    """A socket that never speaks is dropped after ``idle_timeout`` (the TLS handshake
    time-out), and the limiter forgets it."""
    assert acquirer.url is not None
    config = tls_config(tmp_path, acquirer.url, [slot_name()], idle_timeout=0.5)
    daemon = Daemon(config, env=fixed_env, environ={})
    loop = asyncio.get_running_loop()
    async with running(daemon):
        assert daemon.listener is not None and daemon.http_port is not None
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", daemon.http_port))
        try:
            async with asyncio.timeout(5):
                assert await loop.sock_recv(sock, 1024) == b""  # closed by the server
        finally:
            sock.close()
        await _until(lambda: daemon.listener is not None and daemon.listener.limiter.open == 0)


async def _tls_stream(daemon: Daemon, tmp_path: Path) -> tuple[Any, Any]:
    context = ssl.create_default_context(cafile=str(tmp_path / "http.crt"))
    return await asyncio.open_connection("127.0.0.1", daemon.http_port, ssl=context)


async def test_a_request_header_dribbled_byte_by_byte_is_cut_off(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    """Slowloris: a header that never ends is closed after ``idle_timeout``, however steadily
    its bytes arrive."""
    assert acquirer.url is not None
    config = tls_config(tmp_path, acquirer.url, [slot_name()], idle_timeout=0.5)
    daemon = Daemon(config, env=fixed_env, environ={})
    async with running(daemon):
        reader, writer = await _tls_stream(daemon, tmp_path)
        writer.write(b"GET /api/lanes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        closed = False
        async with asyncio.timeout(10):
            while not closed:
                try:
                    writer.write(b"a")
                    await writer.drain()
                    # the server's close shows as EOF; bounded wait per byte
                    chunk = await asyncio.wait_for(reader.read(1024), 0.1)
                    closed = chunk == b""
                except TimeoutError:
                    continue
                except (ConnectionError, ssl.SSLError):
                    closed = True
        assert closed  # (else the 10 s bound above fails the test)
        print(f"dribbled header cut off after {time.monotonic() - started:.2f} s")
        writer.close()


async def test_a_body_that_never_arrives_is_a_400(tmp_path: Path, acquirer: AcquirerHost) -> None:
    assert acquirer.url is not None
    config = tls_config(tmp_path, acquirer.url, [slot_name()], body_timeout=0.5)
    daemon = Daemon(config, env=fixed_env, environ={})
    async with running(daemon):
        reader, writer = await _tls_stream(daemon, tmp_path)
        head = (
            "POST /api/lanes/1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {till_token(tmp_path)}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        writer.write(head.encode() + b'{"amount": ')
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
        assert status_line.startswith(b"HTTP/1.1 400"), status_line
        writer.close()
