"""Concert link layer: STX/ETX/LRC frames and the ENQ/ACK/NAK/EOT procedure, without I/O.

This is the link layer shared by Concert V2 ("protocole E+") and Caisse-AP (Concert V3) over a
serial line (RS-232, USB CDC-ACM, Bluetooth rfcomm). Facts from public sources: the
Ingenico/Telium "Caisse Concert" descriptions and two public implementations
(github.com/Ousret/pyTeliumManager, github.com/akretion/pypostelium); Concert itself is a
French bank-card-industry document that is not freely published, so the timings below are
configurable defaults, not quoted values.

Frame::

    STX | body (ASCII) | ETX | LRC        LRC = XOR of every byte after STX up to and with ETX

A message exchange (either side can be the sender; the till sends the request, the terminal
sends the answer)::

    sender                 receiver
    ENQ        ─────────▶
               ◀─────────  ACK         (no ACK: ENQ again, 3 tries in all)
    frame      ─────────▶
               ◀─────────  ACK / NAK   (NAK or silence: the frame again, 3 tries in all)
    EOT        ─────────▶              (also sent after the last failed try, to free the line)

Line framing is 7E1 or 8N1. With 7E1 the UART strips parity, so every byte is 7-bit; a byte
with the top bit set inside a frame is reported as a bad frame (it cannot be valid data).

Everything here is sans-I/O: :class:`~drivers.protocols.frame.FrameReader` (re-exported
here with the rest of :mod:`drivers.protocols.frame`) turns received bytes into :data:`Event`
values, and :class:`Sender` / :class:`Receiver` turn events and timeouts into :class:`Step`
values (bytes to send, how long to wait, finished or not). The async backends only pump bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.protocols.errors import ProtocolError
from drivers.protocols.frame import (
    ACK,
    ENQ,
    EOT,
    ETX,
    MAX_BODY,
    NAK,
    STX,
    BadFrame,
    Control,
    Event,
    Frame,
    FrameReader,
    decode_frame,
    encode_frame,
    lrc,
)

__all__ = [
    "ACK",
    "ENQ",
    "EOT",
    "ETX",
    "MAX_BODY",
    "NAK",
    "STX",
    "BadFrame",
    "Control",
    "Event",
    "Failure",
    "Frame",
    "FrameReader",
    "LinkTimeouts",
    "Receiver",
    "Sender",
    "Step",
    "decode_frame",
    "encode_frame",
    "lrc",
]

@dataclass(frozen=True, slots=True)
class LinkTimeouts:
    """Link timers in seconds and the number of tries (Concert: 3 tries of ENQ and frame).

    Attributes:
        ack: Wait for ACK after our ENQ, and for ACK/NAK after our frame.
        frame: Wait for a complete frame after we ACKed the sender's ENQ (or NAKed a frame).
        eot: Wait for EOT after we ACKed a frame; its absence is tolerated.
        tries: Tries of ENQ and of each frame before the exchange fails.
    """

    ack: float = 2.0
    frame: float = 3.0
    eot: float = 1.0
    tries: int = 3


class Failure(enum.Enum):
    """Why a link exchange failed (the backend maps these to typed driver errors)."""

    NO_ACK = "no ACK to ENQ"
    BUSY = "ENQ refused with NAK"
    REJECTED = "frame refused with NAK"
    NO_FRAME_ACK = "no ACK to frame"
    BAD_FRAME = "no valid frame received"
    NO_FRAME = "no frame received"
    ABORTED = "sender ended the exchange (EOT)"


@dataclass(frozen=True, slots=True)
class Step:
    """What the backend does next.

    Attributes:
        send: Bytes to write now (may be empty).
        wait: Seconds to wait for the next event, ``None`` when finished.
        finished: The exchange is over (see the session's ``failure`` / ``body``).
    """

    send: bytes = b""
    wait: float | None = None
    finished: bool = False


_ENQ, _ACK, _NAK, _EOT = bytes([ENQ]), bytes([ACK]), bytes([NAK]), bytes([EOT])


@dataclass
class Sender:
    """Sends one framed message: ENQ → ACK → frame → ACK → EOT, with retries.

    Use: ``step = s.start()``, then ``s.on_event(ev)`` / ``s.on_timeout()`` until
    ``step.finished``; then :attr:`failure` is ``None`` on success.
    """

    frame: bytes
    timeouts: LinkTimeouts = field(default_factory=LinkTimeouts)
    failure: Failure | None = None
    enq_tries: int = 0
    frame_tries: int = 0
    _state: str = "idle"
    _nak_on_enq: bool = False

    def start(self) -> Step:
        """Begin the exchange with ENQ."""
        self._state = "enq"
        self.enq_tries = 1
        return Step(_ENQ, self.timeouts.ack)

    def on_event(self, event: Event) -> Step:
        """Feed one received event (a finished exchange stays finished)."""
        if self._state in ("done", "failed"):
            return Step(b"", None, finished=True)
        if self._state == "enq":
            if isinstance(event, Control) and event.code == ACK:
                self._state = "frame"
                self.frame_tries = 1
                return Step(self.frame, self.timeouts.ack)
            if isinstance(event, Control) and event.code == NAK:
                self._nak_on_enq = True
                return self._retry_enq()
            return Step(b"", self.timeouts.ack)  # noise or stray frame: keep waiting
        if self._state == "frame" and isinstance(event, Control):
            if event.code == ACK:
                self._state = "done"
                return Step(_EOT, None, finished=True)
            if event.code == NAK:
                return self._retry_frame(Failure.REJECTED)
        return Step(b"", self.timeouts.ack)

    def on_timeout(self) -> Step:
        """The wait of the last step ran out."""
        if self._state in ("done", "failed"):
            return Step(b"", None, finished=True)
        if self._state == "enq":
            return self._retry_enq()
        return self._retry_frame(Failure.NO_FRAME_ACK)

    def _retry_enq(self) -> Step:
        if self.enq_tries >= self.timeouts.tries:
            return self._fail(Failure.BUSY if self._nak_on_enq else Failure.NO_ACK)
        self.enq_tries += 1
        return Step(_ENQ, self.timeouts.ack)

    def _retry_frame(self, why: Failure) -> Step:
        if self.frame_tries >= self.timeouts.tries:
            return self._fail(why)
        self.frame_tries += 1
        return Step(self.frame, self.timeouts.ack)

    def _fail(self, why: Failure) -> Step:
        self._state = "failed"
        self.failure = why
        return Step(_EOT, None, finished=True)


@dataclass
class Receiver:
    """Receives one framed message: (ENQ) → ACK → frame → ACK/NAK → EOT.

    Args:
        first_wait: How long to wait for the sender's ENQ (``None`` in the step: no limit is
            the caller's business; give the answer timeout here).
        enquired: The sender's ENQ was already consumed: answer it with ACK at once.
        validate: Optional message check run on a frame with a good LRC; a
            :class:`ProtocolError` from it makes the frame count as bad (NAK, retry).

    After ``finished``: :attr:`body` holds the message (``None`` on failure), :attr:`error`
    the last frame error seen, :attr:`duplicates` how many repeats of the frame were re-ACKed,
    and :attr:`eot_missing` whether the closing EOT never came (tolerated).
    """

    first_wait: float
    timeouts: LinkTimeouts = field(default_factory=LinkTimeouts)
    enquired: bool = False
    validate: Callable[[bytes], object] | None = None
    body: bytes | None = None
    failure: Failure | None = None
    error: ProtocolError | None = None
    naks: int = 0
    duplicates: int = 0
    eot_missing: bool = False
    _state: str = "idle"

    def start(self) -> Step:
        """Begin: wait for ENQ, or ACK the ENQ already seen."""
        if self.enquired:
            self._state = "frame"
            return Step(_ACK, self.timeouts.frame)
        self._state = "enq"
        return Step(b"", self.first_wait)

    def on_event(self, event: Event) -> Step:
        """Feed one received event (a finished exchange stays finished)."""
        if self._state in ("done", "failed"):
            return Step(b"", None, finished=True)
        if self._state == "enq":
            if isinstance(event, Control) and event.code == ENQ:
                self._state = "frame"
                return Step(_ACK, self.timeouts.frame)
            return Step(b"", self.first_wait)  # noise: keep waiting (deadline is the caller's)
        if self._state == "frame":
            if isinstance(event, Frame):
                problem = self._check(event.body)
                if problem is None:
                    self.body = event.body
                    self._state = "eot"
                    return Step(_ACK, self.timeouts.eot)
                return self._nak(problem)
            if isinstance(event, BadFrame):
                return self._nak(event.error)
            if event.code == ENQ:  # our ACK was lost: the sender asks again
                return Step(_ACK, self.timeouts.frame)
            if event.code == EOT:
                return self._fail(Failure.ABORTED)
            return Step(b"", self.timeouts.frame)
        # state "eot"
        if isinstance(event, Control) and event.code == EOT:
            return self._finish()
        if isinstance(event, Frame) and event.body == self.body:
            self.duplicates += 1  # our ACK was lost: ACK the repeat, keep the first copy
            return Step(_ACK, self.timeouts.eot)
        return Step(b"", self.timeouts.eot)

    def on_timeout(self) -> Step:
        """The wait of the last step ran out."""
        if self._state in ("done", "failed"):
            return Step(b"", None, finished=True)
        if self._state == "enq":
            return self._fail(Failure.NO_FRAME)
        if self._state == "frame":
            return self._nak(None)
        self.eot_missing = True
        return self._finish()

    def _check(self, body: bytes) -> ProtocolError | None:
        if self.validate is None:
            return None
        try:
            self.validate(body)
        except ProtocolError as exc:
            return exc
        return None

    def _nak(self, error: ProtocolError | None) -> Step:
        if error is not None:
            self.error = error
        self.naks += 1
        if self.naks >= self.timeouts.tries:
            self._fail(Failure.BAD_FRAME if self.error is not None else Failure.NO_FRAME)
            return Step(_NAK, None, finished=True)
        return Step(_NAK, self.timeouts.frame)

    def _fail(self, why: Failure) -> Step:
        self._state = "failed"
        self.failure = why
        return Step(b"", None, finished=True)

    def _finish(self) -> Step:
        self._state = "done"
        return Step(b"", None, finished=True)
