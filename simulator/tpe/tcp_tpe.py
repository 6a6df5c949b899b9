"""A virtual Caisse-AP terminal on TCP (Caisse-AP over IP: bare tag messages on a socket).

One request per connection, as github.com/akretion/caisse-ap-ip does. The request is complete
when its mandatory fields are all there, at a field boundary
(:func:`drivers.protocols.caisse_ap.first_message`): a request split across TCP segments is
never read as a shorter one. A request that stays incomplete (a mandatory field never comes)
is answered with a format error (AE 01 / AF 09) when the till half-closes its side or after
``request_timeout`` seconds: that timer never completes a request, it only gives up on one.
The terminal then answers and keeps the connection until the till closes it. It runs one
transaction at a time: a request that comes while another runs (the till's duplicate after a
restart) is answered when that one is over, so the duplicate describes it. Faults
(:mod:`simulator.tpe.faults`): ``silent`` (never answers), ``slow``, ``disconnect`` (closes
after the request), ``cut`` (decides, then closes without answering), ``duplicate`` (answers
twice), ``noise`` (a NUL byte inside the answer: there is no checksum on TCP, so only damage
the parser can see is simulated), ``drop`` (one byte missing: the answer is malformed or never
completes). Link-level faults (busy, nak, no_ack, bad_lrc) have no meaning without the serial
link layer and are ignored here.
"""

from __future__ import annotations

import asyncio
import contextlib

from drivers.protocols import caisse_ap as cap
from drivers.protocols.errors import ProtocolError
from simulator.tpe.brain import TerminalBrain
from simulator.tpe.faults import Faults

__all__ = ["VirtualTcpTpe"]


class VirtualTcpTpe:
    """A virtual Caisse-AP terminal listening on ``host:port`` (port 0: any free port)."""

    def __init__(self, brain: TerminalBrain | None = None, *, faults: Faults | None = None,
                 host: str = "127.0.0.1", port: int = 0, request_timeout: float = 10.0) -> None:
        self.brain = brain or TerminalBrain(protocol="caisse-ap")
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.request_timeout = request_timeout
        self.connections = 0
        self.answered = 0
        #: Request bytes received so far, on all connections (tests wait on it to split).
        self.bytes_received = 0
        self.received = asyncio.Condition()
        self._busy = asyncio.Lock()
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every connection (idempotent)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    async def __aenter__(self) -> VirtualTcpTpe:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        self.connections += 1
        try:
            await self._converse(reader, writer)
        except (ProtocolError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # stop() cancels its own connection tasks; asyncio's stream callback would log
            # a cancelled client task as an error, so it ends here (nothing above awaits it).
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The request bytes: a complete message, or what came before the till gave up.

        Returns None when the till closed without sending anything.
        """
        buf = b""
        try:
            async with asyncio.timeout(self.request_timeout):
                while cap.first_message(buf, answer=False) is None:
                    more = await reader.read(4096)
                    if not more:
                        break
                    buf += more
                    async with self.received:
                        self.bytes_received += len(more)
                        self.received.notify_all()
        except TimeoutError:
            pass
        found = cap.first_message(buf, answer=False)
        if found is not None:
            return buf[: found[1]]
        if not buf:
            return None
        _, used = cap.scan_fields(buf)  # incomplete: answered as a format error
        return buf[:used]

    async def _converse(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        request = await self._read_request(reader)
        if request is None or self.faults.disconnect:
            return
        if self.faults.silent:  # a dead terminal: it neither acts nor answers
            await reader.read()  # until the till gives up and closes
            return
        async with self._busy:  # one transaction at a time, as a terminal has one keypad
            self.brain.received(request)
            if self.faults.slow:  # the card comes late: the decision is made after
                await asyncio.sleep(self.faults.slow)
            answer = self.brain.answer(request)
        if self.faults.take_cut():
            return  # decided, then the connection drops: the answer is lost
        wire = answer
        if self.faults.noise:  # a NUL in the middle: no checksum on TCP, the parser sees it
            wire = wire[: len(wire) // 2] + b"\x00" + wire[len(wire) // 2 :]
        if self.faults.drop:
            wire = wire[: len(wire) // 3] + wire[len(wire) // 3 + 1 :]
        if self.faults.stall:
            half = len(wire) // 2
            writer.write(wire[:half])
            await writer.drain()
            await asyncio.sleep(self.faults.stall)
            wire = wire[half:]
        writer.write(wire)
        if self.faults.duplicate:
            writer.write(answer)
        await writer.drain()
        self.answered += 1
        await reader.read()  # the till closes when it has the answer
