"""Exceptions of the EMV kernel.

An exception ends the card session (bad data from the card, a reader gone); an expected EMV
result (card blocked, not accepted, try again, try another interface) is a returned value, never
an exception.

Tree::

    EmvError
    ├── TlvError          malformed BER-TLV (carries offset and tag)
    ├── DolError          malformed Data Object List
    ├── ApduError         malformed command or response APDU
    ├── TransportError    the card channel failed or the 61xx/6Cxx procedure broke down
    └── CardDataError     well-formed TLV whose content breaks an EMV rule (tag, offset)

Messages never contain card data: at most a tag, an offset and a length.
"""

from __future__ import annotations

__all__ = ["ApduError", "CardDataError", "DolError", "EmvError", "TlvError", "TransportError"]


def _where(tag: int | None, offset: int | None) -> str:
    parts = []
    if tag is not None:
        parts.append(f"tag {tag:02X}")
    if offset is not None:
        parts.append(f"offset {offset}")
    return f" ({', '.join(parts)})" if parts else ""


class EmvError(Exception):
    """Base of every exception raised by :mod:`terminal`.

    Attributes:
        tag: The tag concerned, where one is known.
        offset: The byte offset in the input where the problem was found, where known.
    """

    def __init__(self, message: str, *, tag: int | None = None, offset: int | None = None):
        self.message = message
        self.tag = tag
        self.offset = offset
        super().__init__(message + _where(tag, offset))


class TlvError(EmvError):
    """Malformed BER-TLV data (EMV 4.4 Book 3, Annex B)."""


class DolError(EmvError):
    """Malformed Data Object List (EMV 4.4 Book 3, 5.4)."""


class ApduError(EmvError):
    """Malformed command or response APDU (EMV 4.4 Book 1, 9.4)."""


class TransportError(EmvError):
    """The card channel failed, or the GET RESPONSE / 6Cxx procedure did not converge."""


class CardDataError(EmvError):
    """Card data that decodes but violates an EMV rule (missing mandatory tag, bad length...)."""
