"""An asyncio client of pcscd's socket: PC/SC without a thread (pcsc-lite IPC 4.4 / 4.5).

One :class:`PcscClient` is one connection to ``pcscd.comm``, which pcscd serves as one client
(its contexts and card handles belong to that connection, and die with it). Requests are
written in one ``send`` and answered on the event loop: an exchange costs the daemon's work and
one loop wake-up, no hop to a worker thread. At most one request is in flight per connection
(pcscd serves a connection in order). A request cancelled or timed out mid-answer leaves the
byte stream out of step, so the connection is closed (pcscd then releases its handles) and
later calls fail with :class:`~drivers.errors.ReaderRemoved`; open a new client.

The socket is ``$PCSCLITE_CSOCK_NAME`` or ``/run/pcscd/pcscd.comm``, as libpcsclite finds it.
Non-success return codes become :mod:`drivers.errors` exceptions through
:func:`drivers.pcsc.errors.translate`; a lost service is ``ReaderRemoved``.
"""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Final, cast

from drivers.errors import ConfigurationError, DriverError
from drivers.pcsc import wire
from drivers.pcsc.errors import E_NO_SERVICE, E_SERVICE_STOPPED, S_SUCCESS, translate
from drivers.pcsc.wire import LENGTH_AND_RV, Command, ReaderState, WireError

__all__ = ["DEFAULT_SOCKET", "PcscClient", "UnsupportedIpcVersion", "socket_path"]

DEFAULT_SOCKET: Final = "/run/pcscd/pcscd.comm"
SCOPE_USER: Final = 0x0000
_ANSWER: Final = wire.STRUCTS[Command.TRANSMIT].size


def socket_path() -> str:
    """The daemon socket libpcsclite would use (``PCSCLITE_CSOCK_NAME`` first)."""
    return os.environ.get("PCSCLITE_CSOCK_NAME") or DEFAULT_SOCKET


class UnsupportedIpcVersion(ConfigurationError):
    """pcscd speaks an IPC protocol version this client does not know (not retried)."""


class _Stream(asyncio.BufferedProtocol):
    """Bytes from the daemon, read into one preallocated buffer, handed out by size.

    ``BufferedProtocol`` lets the transport ``recv_into`` this buffer: no allocation per
    answer (``Protocol.data_received`` costs a 256 KiB ``recv`` buffer each time).
    """

    SIZE = 1 << 17  # room for the largest answer: TRANSMIT's structure + an extended R-APDU

    def __init__(self) -> None:
        self.buffer = bytearray(self.SIZE)
        self.view = memoryview(self.buffer)
        self.filled = 0
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self._head = 0
        self._with_data = False
        self._waiter: asyncio.Future[None] | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.filled == self.SIZE:  # more than any answer, unread: not pcscd speaking
            self.lost = WireError("pcscd sent more than any answer holds")
            assert self.transport is not None
            self.transport.abort()
        return self.view[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        waiter = self._waiter
        if waiter is not None and self._complete() and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None:
            self.lost = exc or EOFError("pcscd closed the connection")
        if not self.finished.done():
            self.finished.set_result(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _data_length(self) -> int:
        """The data a TRANSMIT / CONTROL answer announces after its structure (0 on failure)."""
        length, rv = LENGTH_AND_RV.unpack_from(self.buffer, self._head - LENGTH_AND_RV.size)
        if rv != S_SUCCESS:
            return 0
        if length > wire.MAX_APDU:
            raise WireError(f"answer data of {length} bytes announced")
        return int(length)

    def _complete(self) -> bool:
        """True once the awaited answer (structure, and data if any) is in the buffer."""
        if self.filled < self._head:
            return False
        if not self._with_data:
            return True
        try:
            return self.filled >= self._head + self._data_length()
        except WireError:
            return True  # let the reader raise it

    async def read_reply(self, head: int, with_data: bool) -> tuple[bytes, bytes]:
        """The next answer: its ``head``-byte structure, and the data after it if ``with_data``.

        Raises:
            EOFError / OSError: the daemon went away.
            WireError: an answer announcing more data than any answer holds.
        """
        self._head, self._with_data = head, with_data
        while not self._complete():
            if self.lost is not None:
                raise self.lost
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        end = head + self._data_length() if with_data else head
        view = self.view
        reply, data = bytes(view[:head]), bytes(view[head:end])
        rest = self.filled - end
        if rest:
            self.buffer[:rest] = bytes(view[end : self.filled])  # may overlap: copy first
        self.filled = rest
        return reply, data


class PcscClient:
    """One connection to pcscd (see the module docstring)."""

    def __init__(self, stream: _Stream, device: str | None, version: tuple[int, int]) -> None:
        """Wrap an open stream; use :meth:`open`."""
        self._stream = stream
        self._device = device
        self._busy = False
        self._turns: collections.deque[asyncio.Future[None]] = collections.deque()
        self._broken: DriverError | None = None
        self.version = version

    @classmethod
    async def open(
        cls,
        path: str | None = None,
        *,
        device: str | None = None,
        versions: tuple[tuple[int, int], ...] = wire.SUPPORTED_VERSIONS,
    ) -> PcscClient:
        """Connect to pcscd and agree on the IPC version (``CMD_VERSION``).

        The first of ``versions`` is offered; pcscd refuses any other than its own and
        answers with it, which is spoken if it is in ``versions``.

        Args:
            path: The daemon socket (default :func:`socket_path`).
            device: Name used in error messages.
            versions: IPC versions to speak, preferred first.

        Raises:
            ReaderRemoved: no daemon listens there.
            UnsupportedIpcVersion: the daemon speaks a version not in ``SUPPORTED_VERSIONS``.
        """
        loop = asyncio.get_running_loop()
        try:
            _, stream = await loop.create_unix_connection(_Stream, path or socket_path())
        except OSError:
            raise translate(E_NO_SERVICE, "connect to pcscd", device) from None
        client = cls(stream, device, versions[0])
        try:
            await client._agree_version(versions)
        except BaseException:
            client.close()
            raise
        return client

    async def _agree_version(self, versions: tuple[tuple[int, int], ...]) -> None:
        offered = versions[0]
        for _ in range(2):
            major, minor, rv = await self._call(Command.VERSION, *offered, 0)
            if rv == S_SUCCESS:
                self.version = offered
                return
            if rv != E_SERVICE_STOPPED or (major, minor) not in versions:
                break
            offered = (major, minor)  # the daemon answered with its own version: speak it
        raise UnsupportedIpcVersion(
            f"pcscd speaks IPC protocol {major}.{minor}; the native client knows "
            f"{', '.join(f'{a}.{b}' for a, b in versions)}: "
            "use the pyscard backend (?backend=pyscard)",
            device=self._device,
        )

    @property
    def closed(self) -> bool:
        """True once the connection is closed or broken."""
        return self._broken is not None or self._stream.lost is not None

    def close(self) -> None:
        """Close the connection (idempotent); pcscd releases its contexts and handles."""
        if self._broken is None:
            self._broken = translate(E_NO_SERVICE, "pcscd connection closed", self._device)
        transport = self._stream.transport
        if transport is not None:
            transport.close()

    async def aclose(self) -> None:
        """Close and wait until the socket is released."""
        self.close()
        if self._stream.transport is not None:
            await asyncio.shield(self._stream.finished)

    # -- the exchange ------------------------------------------------------------------------

    def _gone(self) -> DriverError:
        return self._broken or translate(E_NO_SERVICE, "pcscd went away", self._device)

    async def _wait_turn(self) -> None:
        """Wait until the request in flight on this connection ends (FIFO)."""
        turn = asyncio.get_running_loop().create_future()
        self._turns.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._end_turn()  # handed the turn while being cancelled: pass it on
            raise

    def _end_turn(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)  # stays busy: the turn passes to that waiter
                return
        self._busy = False

    async def _request(
        self, message: bytes, head: int, *, with_data: bool = False, send: bool = True
    ) -> tuple[bytes, bytes]:
        """Send ``message`` (unless ``send`` is false), return the answer (structure, data)."""
        if self._broken is not None:
            raise self._broken
        if self._busy:
            await self._wait_turn()
        self._busy = True
        try:
            stream = self._stream
            transport = stream.transport
            if transport is None or stream.lost is not None or transport.is_closing():
                raise self._gone()
            try:
                if send:
                    transport.write(message)
                return await stream.read_reply(head, with_data)
            except (OSError, EOFError):
                self.close()
                raise self._gone() from None
            except BaseException:
                self.close()  # cancelled mid-answer, or garbage: the stream is out of step
                raise
        finally:
            self._end_turn()

    async def _exchange(self, message: bytes, answer: int) -> bytes:
        """Send ``message``, return the ``answer``-byte structure."""
        reply, _ = await self._request(message, answer)
        return reply

    async def _call(self, command: Command, *fields: object) -> tuple[int, ...]:
        message = wire.request(command, *fields)
        return wire.decode(command, await self._exchange(message, wire.reply_size(command)))

    def _check(self, rv: int, operation: str) -> None:
        if rv != S_SUCCESS:
            raise translate(rv, operation, self._device)

    # -- PC/SC Part 5 calls ------------------------------------------------------------------

    async def establish_context(self) -> int:
        """SCardEstablishContext (user scope); returns the context."""
        _scope, context, rv = await self._call(Command.ESTABLISH_CONTEXT, SCOPE_USER, 0, 0)
        self._check(rv, "establish context")
        return context

    async def release_context(self, context: int) -> None:
        """SCardReleaseContext."""
        _context, rv = await self._call(Command.RELEASE_CONTEXT, context, 0)
        self._check(rv, "release context")

    async def connect(
        self, context: int, reader: str, share: int, protocols: int
    ) -> tuple[int, int]:
        """SCardConnect; returns (card handle, active protocol)."""
        message = wire.connect_request(context, reader, share, protocols)
        answer = await self._exchange(message, wire.reply_size(Command.CONNECT))
        *_, card, protocol, rv = wire.decode(Command.CONNECT, answer)
        self._check(rv, "connect")
        return card, protocol

    async def disconnect(self, card: int, disposition: int) -> None:
        """SCardDisconnect with ``disposition`` (leave, reset, unpower, eject)."""
        _card, _disposition, rv = await self._call(Command.DISCONNECT, card, disposition, 0)
        self._check(rv, "disconnect")

    async def status(self, card: int) -> int:
        """SCardStatus's server part: the return code for ``card`` (0 while it is usable)."""
        _card, rv = await self._call(Command.STATUS, card, 0)
        return rv

    async def transmit(self, card: int, protocol: int, apdu: bytes) -> tuple[int, bytes]:
        """SCardTransmit: (return code, R-APDU); the R-APDU is empty unless the code is 0."""
        reply, data = await self._request(
            wire.transmit_request(card, protocol, apdu), _ANSWER, with_data=True
        )
        return int.from_bytes(reply[28:_ANSWER], "little"), data

    async def control(self, card: int, code: int, data: bytes = b"") -> bytes:
        """SCardControl (PC/SC Part 10 escapes)."""
        size = wire.STRUCTS[Command.CONTROL].size
        message = wire.control_request(card, code, data)
        reply, answer = await self._request(message, size, with_data=True)
        *_, rv = wire.decode(Command.CONTROL, reply)
        self._check(rv, "control")
        return answer

    async def reader_states(self) -> tuple[ReaderState, ...]:
        """The daemon's reader table (``CMD_GET_READERS_STATE``)."""
        return await self._table(wire.request(Command.GET_READERS_STATE))

    async def _table(self, message: bytes) -> tuple[ReaderState, ...]:
        """Send ``message`` and parse the reader table that answers it."""
        table = await self._exchange(message, wire.READER_TABLE_SIZE)
        try:
            return wire.parse_reader_states(table)
        except WireError:
            self.close()  # not pcscd's table: nothing after it can be trusted
            raise

    # -- events (a connection of its own: it stays registered between calls) -----------------

    async def register_for_events(self) -> tuple[ReaderState, ...]:
        """``CMD_WAIT_READER_STATE_CHANGE``: the reader table now; :meth:`next_event` follows."""
        return await self._table(wire.request(Command.WAIT_READER_STATE_CHANGE))

    async def next_event(self) -> int:
        """Wait for the daemon's signal of a reader or card change; returns its code.

        pcscd signals once and forgets the registration: call :meth:`register_for_events`
        again to read the new table and wait for the next change.
        """
        size = wire.STRUCTS[Command.WAIT_READER_STATE_CHANGE].size
        reply, _ = await self._request(b"", size, send=False)
        _timeout, rv = wire.decode(Command.WAIT_READER_STATE_CHANGE, reply)
        return int(rv)
