"""PC/SC status codes and their translation into :mod:`drivers.errors` (the one boundary).

Codes from pcsc-lite's ``pcsclite.h`` (the Windows SCard values, PC/SC Part 5 / winerror.h).
"""

from __future__ import annotations

from drivers.errors import (
    CardRemoved,
    DeviceBusy,
    DeviceUnavailable,
    DriverError,
    NoCard,
    ProtocolError,
    ReaderRemoved,
    Timeout,
)

__all__ = ["SERVICE_GONE", "PcscdNotRunning", "translate"]


class PcscdNotRunning(ReaderRemoved):
    """No pcscd at the socket (missing, or nothing answers): no reader can be found."""

S_SUCCESS = 0x00000000
E_CANCELLED = 0x80100002
E_INVALID_HANDLE = 0x80100003
E_TIMEOUT = 0x8010000A
E_SHARING_VIOLATION = 0x8010000B
E_NO_SMARTCARD = 0x8010000C
E_UNKNOWN_READER = 0x80100009
E_PROTO_MISMATCH = 0x8010000F
E_NOT_TRANSACTED = 0x80100016
E_READER_UNAVAILABLE = 0x80100017
F_COMM_ERROR = 0x80100013
E_NO_SERVICE = 0x8010001D
E_SERVICE_STOPPED = 0x8010001E
E_NO_READERS_AVAILABLE = 0x8010002E
W_UNRESPONSIVE_CARD = 0x80100066
W_UNPOWERED_CARD = 0x80100067
W_RESET_CARD = 0x80100068
W_REMOVED_CARD = 0x80100069

#: Codes after which the context (or the whole service) must be set up again.
SERVICE_GONE = frozenset({E_NO_SERVICE, E_SERVICE_STOPPED, E_INVALID_HANDLE})

_MAP: dict[int, tuple[type[DriverError], str]] = {
    E_NO_SERVICE: (ReaderRemoved, "smart-card service (pcscd) not available"),
    E_SERVICE_STOPPED: (ReaderRemoved, "smart-card service (pcscd) stopped"),
    E_INVALID_HANDLE: (ReaderRemoved, "handle no longer valid (service restarted?)"),
    E_READER_UNAVAILABLE: (ReaderRemoved, "reader unavailable"),
    E_UNKNOWN_READER: (ReaderRemoved, "reader not found"),
    E_NO_READERS_AVAILABLE: (ReaderRemoved, "no reader available"),
    E_NO_SMARTCARD: (NoCard, "no card in the reader"),
    W_REMOVED_CARD: (CardRemoved, "card removed"),
    W_RESET_CARD: (CardRemoved, "card reset by another application"),
    W_UNPOWERED_CARD: (CardRemoved, "card not powered"),
    W_UNRESPONSIVE_CARD: (ProtocolError, "card does not answer"),
    E_SHARING_VIOLATION: (DeviceBusy, "reader or card in exclusive use elsewhere"),
    E_TIMEOUT: (Timeout, "PC/SC timeout"),
    E_PROTO_MISMATCH: (ProtocolError, "protocol mismatch"),
    E_NOT_TRANSACTED: (ProtocolError, "exchange not transacted"),
    F_COMM_ERROR: (ProtocolError, "communication error with the card"),
}


def translate(hresult: int, operation: str, reader: str | None) -> DriverError:
    """The driver exception for a PC/SC status code (raise it ``from`` nothing foreign).

    Args:
        hresult: The SCard return code.
        operation: What was being done (``"transmit"``), for the message.
        reader: Reader name, for the message.
    """
    code = hresult & 0xFFFFFFFF
    cls, text = _MAP.get(code, (DeviceUnavailable, "PC/SC error"))
    return cls(f"{operation}: {text} (0x{code:08X})", device=reader)
