"""Runs the sans-I/O Concert link sessions (:mod:`drivers.protocols.link`) over a byte channel.

:class:`LinkIO` owns the :class:`~drivers.protocols.link.FrameReader` of one line and turns
channel reads into link events with a deadline; :meth:`LinkIO.run` pumps a
:class:`~drivers.protocols.link.Sender` or :class:`~drivers.protocols.link.Receiver` until it
finishes: write what the step says, wait for the next event at most ``step.wait`` seconds, feed
the event or the timeout back. Cancelling a wait loses no byte: bytes are only taken from the
kernel when they are there, and a partial frame stays in the reader.
"""

from __future__ import annotations

import asyncio
from collections import deque

from drivers.protocols.link import BadFrame, Event, FrameReader, Receiver, Sender
from drivers.serial.channel import ByteChannel

__all__ = ["LinkIO"]


class LinkIO:
    """Link events of one line, with timeouts, and the session pump.

    Attributes:
        channel: The byte channel (serial port, pseudo-terminal, socket).
        reader: The frame reader; its ``noise`` counts bytes ignored outside frames.
        bad_frames: Frames received broken (bad LRC, interrupted, too long) since opening.
    """

    def __init__(self, channel: ByteChannel, *, seven_bit: bool = False) -> None:
        self.channel = channel
        self.reader = FrameReader(seven_bit=seven_bit)
        self.bad_frames = 0
        self._events: deque[Event] = deque()

    def pending(self) -> int:
        """Events already received and not yet consumed."""
        return len(self._events)

    async def next_event(self, wait: float | None) -> Event:
        """The next link event, waiting at most ``wait`` seconds in all (None: no limit).

        Raises:
            TimeoutError: Nothing complete arrived in time (a partial frame is dropped).
            LinkClosed: The line is gone.
        """
        if not self._events:
            try:
                async with asyncio.timeout(wait):
                    while not self._events:
                        data = await self.channel.read()
                        self._events.extend(self.reader.feed(data))
            except TimeoutError:
                self.reader.reset()
                raise
        event = self._events.popleft()
        if isinstance(event, BadFrame):
            self.bad_frames += 1
        return event

    async def run(self, session: Sender | Receiver) -> None:
        """Drive a link session to its end (see :attr:`session.failure` afterwards).

        Raises:
            LinkClosed: The line went away during the exchange.
        """
        step = session.start()
        while True:
            if step.send:
                await self.channel.write(step.send)
            if step.finished:
                return
            try:
                event = await self.next_event(step.wait)
            except TimeoutError:
                step = session.on_timeout()
            else:
                step = session.on_event(event)
