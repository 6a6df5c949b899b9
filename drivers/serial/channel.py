"""Async byte channels under the Concert-family drivers: a serial port and a TCP socket.

Both give the same three coroutines (:class:`ByteChannel`): ``read()`` some bytes, ``write()``
all bytes, ``aclose()`` (idempotent). A closed or vanished peer raises :class:`LinkClosed`.

The serial port is opened, configured and closed with pyserial in one single-thread executor
per device (opening a USB CDC-ACM or rfcomm device can block); reads and writes then go through
the event loop's reader/writer callbacks on the non-blocking file descriptor, so no blocking
call ever runs in a coroutine and the device is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from typing import Any, Protocol

import serial  # pyserial: imported with the backend, so the registry can report it missing

try:
    from termios import error as _TermiosError  # not an OSError subclass
except ImportError:  # not POSIX (pyserial then uses the Win32 API, which raises OSError)
    _TermiosError = OSError  # type: ignore[assignment,misc]

from drivers.errors import DriverError
from drivers.executor import DeviceExecutor

__all__ = [
    "ByteChannel", "FdChannel", "LinkClosed", "SerialChannel", "TcpChannel", "open_serial",
]


class LinkClosed(Exception):
    """The line or socket is gone (device unplugged, peer closed, hang-up)."""


class ByteChannel(Protocol):
    """What the link pump needs from a transport."""

    async def read(self) -> bytes:
        """Wait for and return at least one byte; raise :class:`LinkClosed` at end of line."""
        ...

    async def write(self, data: bytes) -> None:
        """Write all of ``data``; raise :class:`LinkClosed` if the line is gone."""
        ...

    async def aclose(self) -> None:
        """Release the line; calling it twice is harmless."""
        ...


_GONE = (errno.EIO, errno.ENXIO, errno.ENODEV, errno.EBADF)


class FdChannel:
    """A non-blocking file descriptor (tty, pty master or slave) driven by the event loop.

    Args:
        fd: The descriptor; it is switched to non-blocking mode.
        name: For messages.
    """

    def __init__(self, fd: int, *, name: str = "fd") -> None:
        self._fd = fd
        self._name = name
        os.set_blocking(fd, False)
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    async def read(self) -> bytes:
        """Wait until the descriptor is readable and return what is there."""
        loop = asyncio.get_running_loop()
        woken = False
        while True:
            if self._closed:
                raise LinkClosed(f"{self._name} closed")
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                data = None
            except OSError as exc:
                code = errno.errorcode.get(exc.errno or 0, "?")
                raise LinkClosed(f"{self._name} lost ({code})") from exc
            if data:
                return data
            if data is not None and woken:
                # A tty in raw mode with VMIN=0 reads b"" when empty, so b"" alone means
                # nothing; b"" right after the loop said "readable" is a hang-up.
                raise LinkClosed(f"{self._name} hung up")
            await self._wait(loop.add_reader, loop.remove_reader)
            woken = True

    async def write(self, data: bytes) -> None:
        """Write everything, waiting for the descriptor to drain when the buffer is full."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            if self._closed:
                raise LinkClosed(f"{self._name} closed")
            try:
                sent = os.write(self._fd, view)
            except BlockingIOError:
                await self._wait(loop.add_writer, loop.remove_writer)
                continue
            except OSError as exc:
                raise LinkClosed(f"{self._name} lost on write") from exc
            view = view[sent:]

    async def _wait(self, add: Any, remove: Any) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        add(self._fd, wake)
        try:
            await ready
        finally:
            remove(self._fd)

    async def aclose(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)


class SerialChannel(FdChannel):
    """A pyserial port driven through the event loop (see the module docstring)."""

    def __init__(self, port: Any, executor: DeviceExecutor) -> None:
        super().__init__(port.fileno(), name=f"serial line {port.port}")
        self._port = port
        self._executor = executor

    async def aclose(self) -> None:
        """Close the port in the device executor (the device shuts the executor down)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, DriverError):
            await self._executor.run(self._port.close)


async def open_serial(device: str, *, baud: int, seven_e1: bool,
                      executor: DeviceExecutor) -> SerialChannel:
    """Open and configure a serial device (tty, ttyACM, rfcomm, pty) in the device's executor.

    Raises:
        LinkClosed: The device cannot be opened (missing, busy, no permission).
    """
    def _open() -> Any:
        return serial.Serial(
            device, baudrate=baud,
            bytesize=serial.SEVENBITS if seven_e1 else serial.EIGHTBITS,
            parity=serial.PARITY_EVEN if seven_e1 else serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE, timeout=0, exclusive=True,
        )

    try:
        port = await executor.run(_open)
    except (serial.SerialException, OSError, ValueError, _TermiosError) as exc:
        # termios.error: tcsetattr refused (EINVAL/EIO on a line that is hanging up, a pty
        # whose other side just closed); pyserial has closed the descriptor already.
        raise LinkClosed(f"cannot open serial device {device}: {type(exc).__name__}") from exc
    return SerialChannel(port, executor)


class TcpChannel:
    """An asyncio stream pair as a :class:`ByteChannel`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._closed = False

    @classmethod
    async def connect(cls, host: str, port: int) -> TcpChannel:
        """Open a TCP connection.

        Raises:
            LinkClosed: Connection refused or unreachable.
        """
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise LinkClosed(f"cannot connect to {host}:{port}: {exc.strerror}") from exc
        return cls(reader, writer)

    async def read(self) -> bytes:
        """Return the next bytes received; :class:`LinkClosed` when the peer closed."""
        try:
            data = await self._reader.read(4096)
        except OSError as exc:
            raise LinkClosed("connection lost") from exc
        if not data:
            raise LinkClosed("connection closed by peer")
        return data

    async def write(self, data: bytes) -> None:
        """Send all bytes and drain."""
        if self._closed or self._writer.is_closing():
            raise LinkClosed("connection closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise LinkClosed("connection lost on write") from exc

    async def aclose(self) -> None:
        """Close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
