"""Concert frames: ``STX body ETX LRC`` with LRC = XOR of the bytes after STX up to and with ETX.

Pure codec (no I/O): :func:`encode_frame`, :func:`decode_frame` for one complete frame, and
:class:`FrameReader`, the incremental receive side that turns a byte stream into events
(control bytes, good frames, broken frames) and counts line noise. See
:mod:`drivers.protocols.link` for the procedure around frames and for the sources.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from operator import xor

from drivers.protocols.errors import ProtocolError

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
    "Frame",
    "FrameReader",
    "decode_frame",
    "encode_frame",
    "lrc",
]

STX = 0x02
ETX = 0x03
EOT = 0x04
ENQ = 0x05
ACK = 0x06
NAK = 0x15
_CONTROLS = frozenset({EOT, ENQ, ACK, NAK})

#: Longest body accepted; a Caisse-AP ticket (ZT, up to 999 characters) plus the other fields
#: fits comfortably. Anything longer is line noise or a runaway sender.
MAX_BODY = 4096


def lrc(data: bytes) -> int:
    """XOR of all bytes (the Concert longitudinal redundancy check; 0 for no bytes)."""
    return reduce(xor, data, 0)


def encode_frame(body: bytes, *, seven_bit: bool = False) -> bytes:
    """Frame a message body as ``STX body ETX LRC``.

    Args:
        body: The message text; no control characters (below 0x20), at most :data:`MAX_BODY`.
        seven_bit: True on a 7E1 line: every byte must then be below 0x80.

    Raises:
        ProtocolError: The body cannot be framed (control character, 8-bit byte, too long).
    """
    if len(body) > MAX_BODY:
        raise ProtocolError("body too long to frame", field="body", offset=MAX_BODY)
    for i, b in enumerate(body):
        if b < 0x20:
            raise ProtocolError("control character in body", field="body", offset=i)
        if seven_bit and b > 0x7F:
            raise ProtocolError("8-bit byte on a 7-bit line", field="body", offset=i)
    tail = body + bytes([ETX])
    return bytes([STX]) + tail + bytes([lrc(tail)])


def decode_frame(data: bytes, *, seven_bit: bool = False) -> bytes:
    """Check a complete frame ``STX body ETX LRC`` and return the body.

    Raises:
        ProtocolError: Not exactly one well-formed frame (field ``stx``, ``etx``, ``body``,
            ``lrc`` or ``length``, with the offset).
    """
    if len(data) < 3:
        raise ProtocolError("frame truncated", field="length", offset=len(data))
    if data[0] != STX:
        raise ProtocolError("frame does not start with STX", field="stx", offset=0)
    end = data.find(bytes([ETX]), 1)
    if end < 0:
        raise ProtocolError("no ETX in frame", field="etx", offset=len(data))
    if end + 2 != len(data):
        what = "frame truncated after ETX" if end + 2 > len(data) else "bytes after LRC"
        raise ProtocolError(what, field="length", offset=min(end + 2, len(data)))
    body = data[1:end]
    for i, b in enumerate(body, start=1):
        if b < 0x20:
            raise ProtocolError("control character in body", field="body", offset=i)
        if seven_bit and b > 0x7F:
            raise ProtocolError("8-bit byte on a 7-bit line", field="body", offset=i)
    if len(body) > MAX_BODY:
        raise ProtocolError("body too long", field="body", offset=1 + MAX_BODY)
    if lrc(data[1 : end + 1]) != data[end + 1]:
        raise ProtocolError("LRC mismatch", field="lrc", offset=end + 1)
    return body


@dataclass(frozen=True, slots=True)
class Control:
    """A link control byte received outside a frame (ENQ, ACK, NAK or EOT)."""

    code: int


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame received with a correct LRC."""

    body: bytes


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that started (STX) but was broken: bad LRC, stray byte, overflow."""

    error: ProtocolError


Event = Control | Frame | BadFrame


class FrameReader:
    """Incremental receive side: bytes in, :data:`Event` values out.

    Bytes outside a frame that are not link control bytes are line noise: they are counted in
    :attr:`noise` and otherwise ignored. A control byte inside a frame breaks the frame (a
    dropped ETX) and is then handled as a control byte, so an ENQ after a broken frame is seen.
    """

    def __init__(self, *, seven_bit: bool = False, max_body: int = MAX_BODY) -> None:
        self.seven_bit = seven_bit
        self.max_body = max_body
        self.noise = 0
        self._body: bytearray | None = None
        self._await_lrc = False

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not yet ended."""
        return self._body is not None

    def reset(self) -> None:
        """Forget a partial frame (after a timeout)."""
        self._body = None
        self._await_lrc = False

    def feed(self, data: Iterable[int]) -> list[Event]:
        """Consume received bytes and return the events they complete, in order."""
        events: list[Event] = []
        for b in data:
            self._feed_byte(b, events)
        return events

    def _feed_byte(self, b: int, events: list[Event]) -> None:
        body = self._body
        if body is None:
            if b == STX:
                self._body = bytearray()
            elif b in _CONTROLS:
                events.append(Control(b))
            else:
                self.noise += 1
            return
        if self._await_lrc:
            tail = bytes(body) + bytes([ETX])
            self.reset()
            if lrc(tail) == b:
                events.append(Frame(bytes(body)))
            else:
                events.append(BadFrame(ProtocolError("LRC mismatch", field="lrc",
                                                     offset=len(tail) + 1)))
            return
        offset = len(body) + 1
        if b == ETX:
            self._await_lrc = True
        elif b == STX:
            events.append(BadFrame(ProtocolError("frame interrupted by STX", field="body",
                                                 offset=offset)))
            self._body = bytearray()
        elif b < 0x20:
            self.reset()
            events.append(BadFrame(ProtocolError("control character in frame", field="body",
                                                 offset=offset)))
            self._feed_byte(b, events)
        elif self.seven_bit and b > 0x7F:
            self.reset()
            events.append(BadFrame(ProtocolError("8-bit byte on a 7-bit line", field="body",
                                                 offset=offset)))
        elif len(body) >= self.max_body:
            self.reset()
            events.append(BadFrame(ProtocolError("frame too long", field="body",
                                                 offset=offset)))
        else:
            body.append(b)
