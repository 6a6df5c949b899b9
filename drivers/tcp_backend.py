"""Caisse-AP over IP: the ``tcp://`` payment terminal backend.

URL: ``tcp://192.168.1.50:8888?protocol=caisse-ap`` (options as for ``serial://``, see
:mod:`drivers.serial`, plus ``connect_timeout`` in seconds).

Caisse-AP over IP sends the bare tag message on a raw TCP socket, one connection per
transaction (github.com/akretion/caisse-ap-ip); there is no ENQ/ACK, no length prefix and no
end marker. The answer is complete by the protocol's rules, never after a quiet time: at the
first field boundary where its mandatory fields are there
(:func:`drivers.protocols.caisse_ap.first_message`: CZ and AE, CB and CE for money done, AF for
money not done). An answer that never completes is a timeout after ``answer_timeout``
(delivered: in doubt). What the terminal sends after a complete answer on the same connection
is read in the background until it closes or the next transaction: a second copy of the same
answer is counted as a duplicate (``duplicate_answer`` event), anything else as unexpected.

After a cancel the connection stays open in the background until ``answer_timeout``: an answer
that still comes is reported as a late answer (see :mod:`drivers.serial.terminal`). The bytes
received so far live on the terminal, not in the read that the cancel stops, so an answer that
was half-received when the till cancelled is finished by the background read and still reported.
Between transactions the idle probe is a TCP connect every ``keepalive`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from drivers.base import DeviceState
from drivers.errors import ConfigurationError
from drivers.protocols import caisse_ap as cap
from drivers.protocols.errors import ProtocolError
from drivers.registry import DeviceUrl, parse_url
from drivers.serial import parse_options
from drivers.serial.channel import LinkClosed, TcpChannel
from drivers.serial.codecs import CaisseApCodec
from drivers.serial.results import TerminalUnavailable
from drivers.serial.terminal import TpeTerminal

__all__ = ["TcpTerminal", "create"]


class TcpTerminal(TpeTerminal):
    """A Caisse-AP terminal reached over TCP (see the module docstring)."""

    def __init__(self, *, host: str, port: int, connect_timeout: float = 5.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._chan: TcpChannel | None = None
        self._rx = bytearray()  # bytes of the answer received so far on self._chan
        self._idle_task: asyncio.Task[None] | None = None

    async def _dial(self) -> TcpChannel:
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await TcpChannel.connect(self.host, self.port)
        except (LinkClosed, TimeoutError) as exc:
            self._set_alive(False)
            raise TerminalUnavailable(f"cannot reach {self.host}:{self.port}",
                                      device=self.url) from exc

    def _set_alive(self, alive: bool) -> None:
        if self.alive is not alive:
            self._emit("link_up" if alive else "link_down")
        if not alive:
            self.counters["probes_failed"] += 1
        self.alive = alive

    async def _connect(self) -> None:
        chan = await self._dial()
        await chan.aclose()
        self._set_alive(True)

    async def _keepalive_once(self) -> bool:
        try:
            chan = await self._dial()
        except TerminalUnavailable:
            return False
        await chan.aclose()
        self._set_alive(True)
        return True

    async def _hang_up(self) -> None:
        chan, self._chan = self._chan, None
        self._rx = bytearray()
        if chan is not None:
            await chan.aclose()

    async def _disconnect(self) -> None:
        await self._hang_up()

    async def _send_request(self, body: bytes) -> None:
        await self._hang_up()
        chan = await self._dial()
        if self.state is not DeviceState.OPEN:  # closed while we connected: nothing sent
            await chan.aclose()
            raise TerminalUnavailable("terminal closed while connecting", device=self.url)
        try:
            await chan.write(body)
        except LinkClosed as exc:
            await chan.aclose()
            raise TerminalUnavailable("connection lost while sending", device=self.url) \
                from exc
        self._chan = chan
        self._set_alive(True)

    async def _receive_answer(self) -> bytes:
        chan = self._chan
        if chan is None:
            raise LinkClosed("no connection")
        # The connection stays open: the idle task reads what follows (a duplicate).
        async with asyncio.timeout(self.answer_timeout):
            return await self._read_message(chan)

    async def _read_message(self, chan: TcpChannel) -> bytes:
        """The next complete answer on ``chan`` (raises LinkClosed if it closes first).

        ``self._rx`` is grown in place, so a read cancelled half-way (the till's cancel) keeps
        what it had for the background read; bytes past the message stay there for the next.
        """
        buf = self._rx
        while (found := cap.first_message(bytes(buf), answer=True)) is None:
            try:
                buf += await chan.read()
            except LinkClosed:
                raise LinkClosed("connection closed before a complete answer") from None
        fields, used = found
        del buf[:used]
        return cap.encode_fields(fields)

    async def _pause_idle(self) -> None:
        task, self._idle_task = self._idle_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._hang_up()

    def _resume_idle(self) -> None:
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.create_task(self._idle(), name=f"{self.name}.idle")

    async def _idle(self) -> None:
        if self._chan is not None:
            await self._drain_connection(self._chan)
        if self.keepalive is None:
            return
        while True:
            await asyncio.sleep(self.keepalive)
            with contextlib.suppress(TerminalUnavailable):
                chan = await self._dial()
                await chan.aclose()
                self._set_alive(True)

    async def _drain_connection(self, chan: TcpChannel) -> None:
        """Read the last transaction's connection until the terminal closes it.

        After a cancel, the answer that still comes is the late answer; after an answer, a
        second message is a duplicate (or unexpected). Bounded by ``answer_timeout``.
        """
        with contextlib.suppress(TimeoutError, LinkClosed, ProtocolError):
            async with asyncio.timeout(self.answer_timeout):
                while True:
                    body = await self._read_message(chan)
                    self._unsolicited(body)
        await self._hang_up()


def create(url: DeviceUrl | str, **kwargs: Any) -> TcpTerminal:
    """Create (not open) the terminal a ``tcp://host:port`` URL names.

    Raises:
        ConfigurationError: Malformed URL or option, or a protocol other than Caisse-AP.
    """
    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    raw = parsed.raw or str(url)
    host, _, port_text = parsed.target.rpartition(":")
    host = host.strip("[]")
    if parsed.scheme != "tcp" or not host or not port_text.isdigit() or \
            not 0 < int(port_text) < 65536:
        raise ConfigurationError("tcp URL must be tcp://host:port", device=raw)
    query = dict(parsed.params)
    opts = parse_options(raw, query, default_protocol="caisse-ap")
    if opts.protocol.lower().replace("_", "-") not in ("caisse-ap", "concert-v3"):
        raise ConfigurationError("only Caisse-AP runs over TCP", device=raw)
    try:
        connect_timeout = float(query.pop("connect_timeout", "5"))
    except ValueError:
        raise ConfigurationError("connect_timeout must be a number", device=raw) from None
    if query:
        raise ConfigurationError(f"unknown option(s): {', '.join(sorted(query))}", device=raw)
    return TcpTerminal(url=raw, host=host, port=int(port_text),
                       connect_timeout=connect_timeout, name=f"tpe[{parsed.target}]",
                       codec=CaisseApCodec(pos_number=opts.pos),
                       answer_timeout=opts.answer_timeout, cancel_grace=opts.cancel_grace,
                       keepalive=opts.keepalive, **kwargs)
