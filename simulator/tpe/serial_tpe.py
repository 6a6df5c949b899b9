"""A virtual Concert V2 / Caisse-AP terminal on a pseudo-terminal pair.

The terminal holds the pty master; the driver opens the slave path (``/dev/pts/N``) with
pyserial exactly as it would open ``/dev/ttyACM0``. The slave is put in raw mode (termios) and
its descriptor kept open here, so the master never sees a hang-up between driver sessions;
:meth:`VirtualSerialTpe.hang_up` closes the master, which the driver sees as an unplugged line.

The terminal side of the Concert link, with the faults of :mod:`simulator.tpe.faults`:

* ENQ → ACK (``busy``: NAK; ``silent``: nothing); then the request frame → ACK (``nak``: NAK
  n times; ``no_ack``: nothing; malformed request: NAK); EOT ends the request. An ENQ followed
  by EOT is the driver's keep-alive probe.
* The answer goes out as ENQ, frame, EOT with up to 3 tries of each, the frame damaged on the
  first tries as the faults say; ``duplicate`` sends the whole exchange twice. ENQs the till
  sent while the terminal was busy (its card wait) are stale by then: they are skipped while
  the terminal waits for its ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty

from drivers.protocols.errors import ProtocolError
from drivers.protocols.link import (
    ACK,
    ENQ,
    EOT,
    NAK,
    BadFrame,
    Control,
    Frame,
    LinkTimeouts,
    encode_frame,
)
from drivers.serial.channel import FdChannel, LinkClosed
from drivers.serial.link_io import LinkIO
from simulator.tpe.brain import TerminalBrain
from simulator.tpe.faults import Faults

__all__ = ["VirtualSerialTpe"]

_ENQ, _ACK, _NAK, _EOT = bytes([ENQ]), bytes([ACK]), bytes([NAK]), bytes([EOT])


class VirtualSerialTpe:
    """A virtual terminal on a pty (see the module docstring).

    Args:
        brain: Decides and encodes the answers (protocol, card hook).
        faults: Faults to inject (may be changed while running).
        timeouts: The terminal's own link timers.
        seven_bit: Refuse 8-bit bytes in frames, as on a 7E1 line.
    """

    def __init__(self, brain: TerminalBrain | None = None, *, faults: Faults | None = None,
                 timeouts: LinkTimeouts | None = None, seven_bit: bool = True) -> None:
        self.brain = brain or TerminalBrain()
        self.faults = faults or Faults()
        self.timeouts = timeouts or LinkTimeouts(ack=1.0, frame=1.0, eot=0.5)
        self.seven_bit = seven_bit
        self.path: str | None = None
        self.probes = 0
        self.answered = 0
        self.requests_refused = 0
        self._master: FdChannel | None = None
        self._slave_fd: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Create the pty pair and start serving; returns the slave path for the driver."""
        master, slave = os.openpty()
        tty.setraw(slave)
        self._slave_fd = slave
        self.path = os.ttyname(slave)
        self._master = FdChannel(master, name=f"pty master {self.path}")
        self._task = asyncio.create_task(self._serve(), name=f"tpe-sim[{self.path}]")
        return self.path

    async def hang_up(self) -> None:
        """Close the master side: the driver's line is gone (like an unplugged cable)."""
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._master is not None:
            await self._master.aclose()

    async def stop(self) -> None:
        """Stop serving and close both pty descriptors (idempotent)."""
        await self.hang_up()
        if self._slave_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._slave_fd)
            self._slave_fd = None

    async def __aenter__(self) -> VirtualSerialTpe:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self) -> None:
        assert self._master is not None
        link = LinkIO(self._master, seven_bit=self.seven_bit)
        with contextlib.suppress(LinkClosed):
            while True:
                event = await link.next_event(None)
                if not (isinstance(event, Control) and event.code == ENQ):
                    continue
                if self.faults.silent:
                    continue
                if self.faults.busy:
                    await link.channel.write(_NAK)
                    continue
                await link.channel.write(_ACK)
                body = await self._receive_request(link)
                if body is None:
                    continue
                if self.faults.disconnect:
                    await self._master.aclose()
                    return
                self.brain.received(body)
                if self.faults.slow:  # the card comes late: the decision is made after
                    await asyncio.sleep(self.faults.slow)
                answer = self.brain.answer(body)
                if self.faults.take_cut():
                    continue  # decided, but the answer never reaches the till
                if await self._send_answer(link, answer):
                    self.answered += 1
                if self.faults.duplicate:
                    await self._send_answer(link, answer)

    async def _receive_request(self, link: LinkIO) -> bytes | None:
        """After our ACK to ENQ: the request body, or None (probe, give-up, fault)."""
        naks = 0
        while True:
            try:
                event = await link.next_event(self.timeouts.frame)
            except TimeoutError:
                return None
            if isinstance(event, Control):
                if event.code == EOT:
                    self.probes += 1
                    return None
                if event.code == ENQ:
                    await link.channel.write(_ACK)
                continue
            if isinstance(event, BadFrame):
                await link.channel.write(_NAK)
                continue
            assert isinstance(event, Frame)
            if self.faults.no_ack:
                continue
            if naks < self.faults.nak:
                naks += 1
                self.requests_refused += 1
                await link.channel.write(_NAK)
                continue
            try:
                self.brain.validate(event.body)
            except ProtocolError:
                self.requests_refused += 1
                await link.channel.write(_NAK)
                continue
            await link.channel.write(_ACK)
            with contextlib.suppress(TimeoutError):  # the closing EOT
                await link.next_event(self.timeouts.eot)
            return event.body

    async def _send_answer(self, link: LinkIO, body: bytes) -> bool:
        """ENQ, frame, EOT with retries; True when the driver ACKed the frame."""
        frame = encode_frame(body, seven_bit=self.seven_bit)
        tries = self.timeouts.tries
        for _ in range(tries):
            if self.faults.noise:
                await link.channel.write(b"\x7f~#")
            await link.channel.write(_ENQ)
            if await self._expect(link, ACK):
                break
        else:
            await link.channel.write(_EOT)
            return False
        for attempt in range(tries):
            await link.channel.write(self.faults.corrupt(frame, attempt))
            if await self._expect(link, ACK):
                await link.channel.write(_EOT)
                return True
        await link.channel.write(_EOT)
        return False

    async def _expect(self, link: LinkIO, code: int) -> bool:
        """Wait for one control byte: True if it is ``code`` (NAK, timeout: False)."""
        while True:
            try:
                event = await link.next_event(self.timeouts.ack)
            except TimeoutError:
                return False
            if isinstance(event, Control):
                if event.code == ENQ and code != ENQ:
                    continue  # the till's stale ENQ (it tried while we were busy): ignored
                return event.code == code
