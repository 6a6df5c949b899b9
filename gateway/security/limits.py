"""Connection caps at accept time, and rate-limited logging of connection errors.

aiohttp bounds what one request may send (``client_max_size``, header line and field sizes)
and closes a connection that sends no request within ``keepalive_timeout`` (from the moment it
connects, aiohttp 3.14 ``RequestHandler.connection_made``), but it accepts every connection the
kernel hands it, and with TLS on the listening socket asyncio holds a connection that never
finishes its handshake out of aiohttp's sight. :class:`ConnectionLimiter` adds caps on open TCP
connections, per client address and in total, counted before any TLS. When a new connection
would pass a cap, the connection of that client (or of anyone, for the total) that has been idle
longest, never one in the middle of a request, is closed to make room; only when every
connection is busy is the new one refused. A flood of
idle sockets thus costs the flooder its own oldest sockets, and a till that connects gets in.

:class:`LimitedSite` is aiohttp's ``TCPSite`` with the limiter between the listening socket
and aiohttp's protocol: each accepted connection gets a small admission protocol which, when
admitted, upgrades it to TLS (``loop.start_tls``, bounded by a handshake time-out) and hands
every callback to aiohttp's ``RequestHandler`` unchanged. The limiter's
:meth:`~ConnectionLimiter.middleware` marks a connection busy while a handler runs.

:class:`RateLimitedLog` is a logging filter: at most ``burst`` records per ``period`` seconds
get through, then one summary line says how many were dropped (an idle-connection flood used to
write about 1.5 MB of log per second).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import cast

from aiohttp import web

__all__ = ["ConnectionLimiter", "LimitedSite", "RateLimitedLog"]

log = logging.getLogger("gateway.security.limits")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class _Conn:
    address: str
    transport: asyncio.Transport
    last_active: float
    busy: int = 0


class ConnectionLimiter:
    """Caps on open connections (see the module docstring).

    Args:
        per_client: Most connections one client address may hold open.
        total: Most connections open at once.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        per_client: int = 64,
        total: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.total = total
        self._clock = clock
        self._conns: dict[int, _Conn] = {}
        self._keys: dict[int, int] = {}  # id(transport) (TCP, and TLS on top) -> key
        #: TLS handshakes in progress (cancelled when the site stops).
        self.upgrades: set[asyncio.Task[None]] = set()
        self.evicted = 0
        self.refused = 0

    @property
    def open(self) -> int:
        """Connections open now."""
        return len(self._conns)

    def _victim(self, address: str | None) -> int | None:
        idle = [
            (conn.last_active, key)
            for key, conn in self._conns.items()
            if conn.busy == 0 and (address is None or conn.address == address)
        ]
        return min(idle)[1] if idle else None

    def admit(self, key: int, address: str, transport: asyncio.Transport) -> bool:
        """Register a new connection; False when it must be refused (all others busy)."""
        mine = sum(1 for conn in self._conns.values() if conn.address == address)
        for over, scope in ((mine >= self.per_client, address), (self.open >= self.total, None)):
            if not over:
                continue
            victim = self._victim(scope)
            if victim is None:
                self.refused += 1
                return False
            self._conns[victim].transport.abort()
            self.gone(victim)
            self.evicted += 1
            if scope is not None:
                mine -= 1
        self._conns[key] = _Conn(address, transport, self._clock())
        self._keys[id(transport)] = key
        return True

    def alias(self, key: int, transport: asyncio.BaseTransport) -> None:
        """The TLS transport layered on connection ``key`` (what a request sees)."""
        if key in self._conns:
            self._keys[id(transport)] = key

    def gone(self, key: int) -> None:
        """A connection closed."""
        if self._conns.pop(key, None) is not None:
            for alias in [t for t, k in self._keys.items() if k == key]:
                del self._keys[alias]

    def touch(self, key: int) -> None:
        """Bytes arrived on a connection."""
        conn = self._conns.get(key)
        if conn is not None:
            conn.last_active = self._clock()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the request's connection busy while its handler runs (not evictable)."""
        key = self._keys.get(id(request.transport))
        conn = None if key is None else self._conns.get(key)
        if conn is not None:
            conn.busy += 1
        try:
            return await handler(request)
        finally:
            if conn is not None:
                conn.busy -= 1
                conn.last_active = self._clock()

    def factory(
        self,
        make_handler: Callable[[], asyncio.Protocol],
        *,
        ssl_context: SSLContext | None = None,
        handshake_timeout: float = 10.0,
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` wrapping aiohttp's.

        With ``ssl_context`` the listening socket is plain TCP and each admitted connection is
        upgraded to TLS (``loop.start_tls``): a socket that never finishes its handshake is
        counted, capped and evicted like any idle one, and dropped after
        ``handshake_timeout`` seconds.
        """
        return lambda: _Admission(self, make_handler, ssl_context, handshake_timeout)


class _Admission(asyncio.Protocol):
    """Admits or refuses one connection, upgrades it to TLS when asked, then forwards every
    callback to aiohttp's handler."""

    def __init__(
        self,
        limiter: ConnectionLimiter,
        make_handler: Callable[[], asyncio.Protocol],
        ssl_context: SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        self._limiter = limiter
        self._make_handler = make_handler
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout
        self._inner: asyncio.Protocol | None = None
        self._upgrade: asyncio.Task[None] | None = None
        self._key = id(self)
        # bytes the TLS layer decrypts before start_tls returns to us (the request's start)
        self._early: list[bytes] = []
        self._early_eof = False
        self._plain: asyncio.Transport | None = None
        # raw bytes read before the TLS layer is in place: uvloop starts reading once
        # connection_made returns, whatever pause_reading() said (asyncio 3.11 waits)
        self._before_tls: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses, only alike)
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._limiter.admit(self._key, address, transport):
            transport.abort()
            return
        if self._ssl is None:
            self._start(transport)
            return
        transport.pause_reading()  # the ClientHello waits for the TLS layer
        self._plain = transport
        self._upgrade = asyncio.get_running_loop().create_task(self._start_tls(transport))
        self._limiter.upgrades.add(self._upgrade)
        self._upgrade.add_done_callback(self._limiter.upgrades.discard)

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        assert self._ssl is not None
        loop = asyncio.get_running_loop()
        if self._before_tls:  # runs after start_tls has put its protocol in place (below)
            loop.call_soon(self._hand_to_tls, transport)
        try:
            secured = await loop.start_tls(
                transport,
                self,
                self._ssl,
                server_side=True,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except (OSError, TimeoutError, ConnectionError, ssl.SSLError) as exc:
            log.debug("TLS handshake failed: %s", type(exc).__name__)
            transport.abort()
            self._limiter.gone(self._key)
            return
        if secured is None or secured.is_closing():
            self._limiter.gone(self._key)
            return
        self._limiter.alias(self._key, secured)
        self._start(secured)

    def _start(self, transport: asyncio.Transport) -> None:
        inner = self._make_handler()
        inner.connection_made(transport)
        self._inner = inner
        early, self._early = self._early, []
        for chunk in early:
            inner.data_received(chunk)
        if self._early_eof:
            inner.eof_received()

    def _hand_to_tls(self, transport: asyncio.Transport) -> None:
        """Give the TLS layer the bytes read before it was in place (the ClientHello's start).

        ``start_tls`` sets its protocol and schedules that protocol's ``connection_made`` and
        the transport's ``resume_reading``; this runs before both (scheduled first), while the
        transport is paused, so the bytes keep their order. Both loops' TLS protocols are
        buffered protocols that queue what they are given until their handshake starts.
        """
        chunks, self._before_tls = self._before_tls, []
        tls = transport.get_protocol()
        get_buffer = getattr(tls, "get_buffer", None)  # uvloop's is not a BufferedProtocol
        buffer_updated = getattr(tls, "buffer_updated", None)  # subclass, only alike
        if tls is self or get_buffer is None or buffer_updated is None:
            transport.abort()  # not the state start_tls leaves: drop it, the client retries
            return
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                buffer = memoryview(get_buffer(len(view)))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                buffer_updated(size)
                view = view[size:]

    def data_received(self, data: bytes) -> None:
        self._limiter.touch(self._key)
        if self._inner is not None:
            self._inner.data_received(data)
        elif self._plain is not None and self._plain.get_protocol() is self:
            self._before_tls.append(data)  # raw bytes, before the TLS layer (uvloop)
            self._plain.pause_reading()
        elif self._upgrade is not None:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        if self._inner is None:
            self._early_eof = True
            return None
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._limiter.gone(self._key)
        if self._upgrade is not None and not self._upgrade.done():
            self._upgrade.cancel()
        if self._inner is not None:
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class LimitedSite(web.BaseSite):
    """``aiohttp.web.TCPSite`` with a :class:`ConnectionLimiter` at accept time.

    Args:
        runner: The app runner (set up).
        host: Address to bind.
        port: Port (0: any free one; see :attr:`port`).
        limiter: The caps.
        ssl_context: TLS for the listener, or None for plain HTTP.
        handshake_timeout: Seconds a TLS handshake may take.
        backlog: The listen backlog.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limiter: ConnectionLimiter,
        ssl_context: SSLContext | None = None,
        handshake_timeout: float = 10.0,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._limiter = limiter
        self._tls = ssl_context
        self._handshake_timeout = handshake_timeout
        self._bound: int | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._bound if self._bound is not None else self._port

    @property
    def name(self) -> str:
        """``https://HOST:PORT`` (or ``http``)."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening; handshakes still in progress are abandoned."""
        for task in list(self._limiter.upgrades):
            task.cancel()
        await super().stop()

    async def start(self) -> None:
        """Listen (aiohttp's BaseSite contract); TLS is layered per connection."""
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._limiter.factory(
                server, ssl_context=self._tls, handshake_timeout=self._handshake_timeout
            ),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )
        sockets = self._server.sockets
        if sockets:
            self._bound = int(sockets[0].getsockname()[1])


class RateLimitedLog(logging.Filter):
    """At most ``burst`` records per ``period`` seconds pass; then one summary of the drops.

    Args:
        burst: Records allowed per period.
        period: Seconds.
        clock: Monotonic seconds.
    """

    def __init__(
        self, *, burst: int = 20, period: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._burst = burst
        self._period = period
        self._clock = clock
        self._start = clock()
        self._passed = 0
        self.dropped = 0
        self._dropped_in_period = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """True when the record may be written (logging.Filter)."""
        now = self._clock()
        if now - self._start >= self._period:
            if self._dropped_in_period:
                record.msg = f"({self._dropped_in_period} similar messages dropped) {record.msg}"
            self._start, self._passed, self._dropped_in_period = now, 0, 0
        if self._passed < self._burst:
            self._passed += 1
            return True
        self.dropped += 1
        self._dropped_in_period += 1
        return False
