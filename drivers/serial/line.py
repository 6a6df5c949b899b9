"""A payment terminal on a serial line (RS-232, USB CDC-ACM, Bluetooth rfcomm, pseudo-terminal).

Concert V2 and Caisse-AP both run over the Concert link layer here (ENQ/ACK, STX…ETX+LRC,
NAK and retries, EOT). Between transactions an idle task owns the line: it answers a terminal
that starts an exchange on its own (a late answer after a cancel, a duplicated answer) and,
every ``keepalive`` seconds of silence, probes the terminal with ENQ (expect ACK, then EOT to
end the probe). A terminal that stops answering the probe is reported ``alive = False`` with a
``link_down`` event; a line that disappears (device unplugged, hang-up) marks the device lost,
for the lifecycle supervisor to set up again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from drivers.protocols.errors import ProtocolError
from drivers.protocols.link import (
    ACK,
    ENQ,
    EOT,
    NAK,
    BadFrame,
    Control,
    Event,
    Failure,
    Frame,
    LinkTimeouts,
    Receiver,
    Sender,
    encode_frame,
)
from drivers.serial.channel import LinkClosed, SerialChannel, open_serial
from drivers.serial.link_io import LinkIO
from drivers.serial.results import (
    RequestRejected,
    TerminalBusy,
    TerminalUnavailable,
)
from drivers.serial.terminal import TpeTerminal

__all__ = ["SerialTerminal"]


class SerialTerminal(TpeTerminal):
    """Concert V2 or Caisse-AP terminal on a serial device.

    Args:
        device: Device path (``/dev/ttyACM0``, ``/dev/rfcomm0``, a pty) or a resolver
            coroutine returning one (USB VID:PID:serial lookup).
        baud: Line speed.
        seven_e1: 7 data bits, even parity (Concert's usual framing) rather than 8N1.
        link: Link timers and tries.
        **kwargs: See :class:`~drivers.serial.terminal.TpeTerminal`.
    """

    def __init__(self, *, device: str, baud: int = 9600, seven_e1: bool = True,
                 link: LinkTimeouts | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device = device
        self.baud = baud
        self.seven_e1 = seven_e1
        self.link_timeouts = link or LinkTimeouts()
        self._channel: SerialChannel | None = None
        self._link: LinkIO | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._line = asyncio.Lock()

    def diagnostics(self) -> dict[str, Any]:
        """Adds the line counters (bad frames, noise bytes) to the common diagnostics."""
        extra = {}
        if self._link is not None:
            extra = {"bad_frames": self._link.bad_frames, "noise_bytes": self._link.reader.noise}
        return {**super().diagnostics(), "device": self.device, **extra}

    # -- hooks ---------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            self._channel = await open_serial(self.device, baud=self.baud,
                                              seven_e1=self.seven_e1, executor=self.executor)
        except LinkClosed as exc:
            raise TerminalUnavailable(str(exc), device=self.url) from exc
        self._link = LinkIO(self._channel, seven_bit=self.seven_e1)
        self.alive = None  # known after the first probe or exchange

    async def _disconnect(self) -> None:
        if self._channel is not None:
            await self._channel.aclose()

    def _require_link(self) -> LinkIO:
        if self._link is None:
            raise TerminalUnavailable("line not open", device=self.url)
        return self._link

    async def _send_request(self, body: bytes) -> None:
        link = self._require_link()
        sender = Sender(encode_frame(body, seven_bit=self.seven_e1), self.link_timeouts)
        try:
            await link.run(sender)
        except LinkClosed as exc:
            self._line_lost(exc)
            raise TerminalUnavailable("line lost while sending", device=self.url) from exc
        tries = self.link_timeouts.tries
        if sender.failure is None:
            self._set_alive(True)
            return
        if sender.failure is Failure.NO_ACK:
            self._set_alive(False)
            raise TerminalUnavailable(f"no ACK to ENQ after {tries} tries", device=self.url)
        if sender.failure is Failure.BUSY:
            raise TerminalBusy(f"ENQ refused (NAK) {tries} times", device=self.url)
        raise RequestRejected(f"request not acknowledged after {tries} tries "
                              f"({sender.failure.value})", device=self.url)

    async def _receive_answer(self) -> bytes:
        link = self._require_link()
        t = self.link_timeouts
        receiver = Receiver(first_wait=self.answer_timeout, timeouts=t,
                            validate=self.codec.validate)
        slack = t.tries * (t.frame + t.ack) + t.eot
        try:
            async with asyncio.timeout(self.answer_timeout + slack):
                await link.run(receiver)
        except LinkClosed as exc:
            self._line_lost(exc)
            raise
        if receiver.duplicates:
            self.counters["duplicate_answers"] += receiver.duplicates
            self._emit("duplicate_answer")
        if receiver.body is not None:
            return receiver.body
        if receiver.failure is Failure.NO_FRAME and receiver.error is None:
            raise TimeoutError
        if receiver.error is not None:
            raise receiver.error
        reason = receiver.failure.value if receiver.failure else "no answer"
        raise ProtocolError(f"answer exchange failed: {reason}", field="frame")

    # -- the idle task -------------------------------------------------------------------

    def _resume_idle(self) -> None:
        if self._link is not None and (self._idle_task is None or self._idle_task.done()):
            self._idle_task = asyncio.create_task(self._idle(), name=f"{self.name}.idle")

    async def _pause_idle(self) -> None:
        task, self._idle_task = self._idle_task, None
        if task is None:
            return
        async with self._line:  # never interrupt a probe or an answer half-way
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _set_alive(self, alive: bool) -> None:
        if self.alive is not alive:
            self._emit("link_up" if alive else "link_down")
        if not alive:
            self.counters["probes_failed"] += 1
        self.alive = alive

    def _line_lost(self, exc: LinkClosed) -> None:
        self._set_alive(False)
        self.mark_lost(TerminalUnavailable(f"serial line lost: {exc}", device=self.url))

    async def _idle(self) -> None:
        link = self._require_link()
        try:
            while True:
                try:
                    event = await link.next_event(self.keepalive)
                except TimeoutError:
                    async with self._line:
                        await self._probe(link)
                    continue
                async with self._line:
                    await self._idle_event(link, event)
        except LinkClosed as exc:
            self._line_lost(exc)

    async def _idle_event(self, link: LinkIO, event: Event) -> None:
        if isinstance(event, Control) and event.code == ENQ:
            receiver = Receiver(first_wait=0.0, timeouts=self.link_timeouts, enquired=True,
                                validate=self.codec.validate)
            await link.run(receiver)
            if receiver.body is not None:
                self._unsolicited(receiver.body)
        elif isinstance(event, Frame):  # its ENQ was ACKed by an abandoned receive
            try:
                self.codec.validate(event.body)
            except ProtocolError:
                await link.channel.write(bytes([NAK]))
                return
            await link.channel.write(bytes([ACK]))
            self._unsolicited(event.body)
        elif isinstance(event, BadFrame):
            await link.channel.write(bytes([NAK]))

    async def _keepalive_once(self) -> bool:
        link = self._require_link()
        try:
            async with self._line:
                await self._probe(link)
        except LinkClosed as exc:
            self._line_lost(exc)
            return False
        return self.alive is True

    async def _probe(self, link: LinkIO) -> None:
        for _ in range(self.link_timeouts.tries):
            await link.channel.write(bytes([ENQ]))
            try:
                event = await link.next_event(self.link_timeouts.ack)
            except TimeoutError:
                continue
            if isinstance(event, Control) and event.code in (ACK, NAK):
                if event.code == ACK:
                    await link.channel.write(bytes([EOT]))
                self._set_alive(True)
                return
            if isinstance(event, Control) and event.code == ENQ:  # it wants to talk first
                await self._idle_event(link, event)
                self._set_alive(True)
                return
        self._set_alive(False)
