"""The one exception the serial/IP terminal codecs raise.

Every parser in :mod:`drivers.protocols` turns malformed input (a bad LRC, a truncated frame, a
letter in an amount, a length that runs past the end) into :class:`ProtocolError`, carrying the
name of the field and the offset in the input where the problem was found. No IndexError,
ValueError or KeyError escapes a parser (the hypothesis tests feed them arbitrary bytes).

It is a :class:`drivers.errors.ProtocolError`, so callers may catch either. Messages never
contain the bytes that were received: a field can hold a card number,
so a message says *what* was wrong and *where*, never *what was there*.
"""

from __future__ import annotations

from drivers.errors import ProtocolError as _DriverProtocolError

__all__ = ["ProtocolError"]


class ProtocolError(_DriverProtocolError):
    """Malformed data on a terminal link (framing, length, field content).

    Attributes:
        message: What was wrong, without the offending data.
        field: The frame part or message field concerned (``"lrc"``, ``"amount"``, ``"CB"``).
        offset: Offset in the frame or message where the problem was found, where known.
    """

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None,
                 device: str | None = None, delivered: bool = False) -> None:
        self.field = field
        self.offset = offset
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(message + (f" ({', '.join(where)})" if where else ""), device=device,
                         delivered=delivered)
