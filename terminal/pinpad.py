"""The PIN pad port: offline PIN verification and online PIN blocks, without the clear PIN.

ARCHITECTURE.md: PIN entry belongs to the PIN pad. The kernel never sees a PIN. For offline
PIN (EMV 4.4 Book 3, 10.5.1) it hands the PIN pad a ``send`` function to the card; the PIN pad
builds the VERIFY command itself (Book 3, 6.5.12: P2 ``80`` plaintext PIN block, ``88``
enciphered PIN data per Book 2, 7.2) and reports what the card answered as a :class:`PinEntry`.
For online PIN (Book 3, 10.5.2) it returns an :class:`OnlinePinBlock` encrypted under its own
key (ISO 9564-1 format 0 or 4), with the key serial number.

Helpers for PIN pad implementations (the simulator's virtual PIN pad, tests):
:func:`plaintext_pin_block`, :func:`enciphered_pin_data`, :func:`verify_command` and
:func:`entry_from_status_word`, and :class:`PinSequence` (the PINs a test cardholder types).
Reprs of these values never show PIN material.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from terminal.errors import EmvError
from terminal.oda.results import RsaPublicKey

__all__ = [
    "VERIFY_ENCIPHERED",
    "VERIFY_INS",
    "VERIFY_PLAINTEXT",
    "OnlinePinBlock",
    "PinEntry",
    "PinError",
    "PinPad",
    "PinSequence",
    "PinStatus",
    "enciphered_pin_data",
    "entry_from_status_word",
    "plaintext_pin_block",
    "verify_command",
]

VERIFY_INS = 0x20
VERIFY_PLAINTEXT = 0x80
VERIFY_ENCIPHERED = 0x88

Send = Callable[[bytes], Awaitable[bytes]]


class PinError(EmvError):
    """A PIN pad helper was given input it cannot use (no PIN material in the message)."""


class PinStatus(enum.Enum):
    """What became of an offline PIN verification (Book 3, 10.5.1)."""

    VERIFIED = "verified"
    WRONG = "wrong"
    BLOCKED = "blocked"
    BYPASSED = "bypassed"
    CANCELLED = "cancelled"
    NOT_WORKING = "not working"


@dataclass(frozen=True, slots=True)
class PinEntry:
    """The result of a PIN entry.

    Attributes:
        status: See :class:`PinStatus`.
        sw: The card's status word to VERIFY, when one was sent.
        tries_left: For ``WRONG``: the tries left (63Cx), when the card said so.
    """

    status: PinStatus
    sw: int | None = None
    tries_left: int | None = None


@dataclass(frozen=True, slots=True)
class OnlinePinBlock:
    """An encrypted online PIN block (ISO 9564-1 format 0 or 4) and its key serial number."""

    block: bytes
    ksn: bytes
    fmt: Literal[0, 4] = 0

    def __repr__(self) -> str:
        return f"OnlinePinBlock(format {self.fmt}, {len(self.block)} bytes hidden)"


@runtime_checkable
class PinPad(Protocol):
    """The PIN pad port the kernel calls for offline and online PIN (Book 3, 10.5)."""

    async def verify_offline(
        self,
        send: Send,
        *,
        enciphered: bool,
        icc_key: RsaPublicKey | None,
        challenge: bytes | None,
        tries_left: int | None,
    ) -> PinEntry:
        """Collect the PIN and have the card verify it through ``send``.

        Args:
            send: Sends one C-APDU to the card and returns its R-APDU (data + SW1 SW2).
            enciphered: Offline enciphered PIN (VERIFY P2 88) rather than plaintext (P2 80).
            icc_key: The ICC PIN encipherment (or ICC) public key, for enciphered PIN.
            challenge: The 8-byte GET CHALLENGE answer, for enciphered PIN.
            tries_left: The PIN Try Counter (9F17) if the kernel read it.
        """
        ...

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        """Collect the PIN for online verification; a PinEntry when bypassed/cancelled/failed."""
        ...


def plaintext_pin_block(pin: str) -> bytes:
    """The plaintext offline PIN block (EMV 4.4 Book 3, 6.5.12.2, Table 24).

    ``C | N | P P P P (P/F)... | F F``: control ``2``, PIN length N (4-12), the digits, filler F.

    Raises:
        PinError: when the PIN is not 4 to 12 decimal digits.
    """
    if not (4 <= len(pin) <= 12 and pin.isdigit() and pin.isascii()):
        raise PinError("a PIN is 4 to 12 decimal digits")
    nibbles = f"2{len(pin):X}{pin}".ljust(16, "F")
    return bytes.fromhex(nibbles)


def enciphered_pin_data(
    pin: str, challenge: bytes, key: RsaPublicKey, random_pad: Callable[[int], bytes]
) -> bytes:
    """Offline enciphered PIN data (EMV 4.4 Book 2, 7.2, Table 23).

    ``7F | PIN block (8) | ICC Unpredictable Number (8) | random pad`` to the key's modulus
    length, then RSA-encrypted with the ICC (PIN encipherment) public key.

    Args:
        pin: The PIN digits (inside the PIN pad only).
        challenge: The 8 bytes the card returned to GET CHALLENGE.
        key: The ICC PIN encipherment public key (or ICC public key).
        random_pad: Source of the random padding (injected).
    """
    if len(challenge) != 8:
        raise PinError("the ICC unpredictable number is 8 bytes")
    size = key.size
    if size < 17 + 1:
        raise PinError("key modulus too short for enciphered PIN")
    pad = random_pad(size - 17)
    if len(pad) != size - 17:
        raise PinError("random pad of the wrong length")
    message = b"\x7f" + plaintext_pin_block(pin) + challenge + pad
    value = pow(
        int.from_bytes(message, "big"),
        int.from_bytes(key.exponent, "big"),
        int.from_bytes(key.modulus, "big"),
    )
    return value.to_bytes(size, "big")


def verify_command(data: bytes, *, enciphered: bool) -> bytes:
    """VERIFY C-APDU (EMV 4.4 Book 3, 6.5.12): ``00 20 00 80|88 Lc data``."""
    p2 = VERIFY_ENCIPHERED if enciphered else VERIFY_PLAINTEXT
    return bytes((0x00, VERIFY_INS, 0x00, p2, len(data))) + data


def entry_from_status_word(sw: int) -> PinEntry:
    """Map the card's answer to VERIFY to a PinEntry (Book 3, 6.5.12.4; 10.5.1).

    ``9000`` verified; ``63Cx`` wrong PIN with x tries left (``63C0``: now blocked);
    ``6983``/``6984`` PIN blocked (try limit exceeded); anything else is a wrong PIN with the
    tries left unknown.
    """
    if sw == 0x9000:
        return PinEntry(PinStatus.VERIFIED, sw)
    if sw & 0xFFF0 == 0x63C0:
        left = sw & 0x0F
        return PinEntry(PinStatus.BLOCKED if left == 0 else PinStatus.WRONG, sw, left)
    if sw in (0x6983, 0x6984):
        return PinEntry(PinStatus.BLOCKED, sw, 0)
    return PinEntry(PinStatus.WRONG, sw)


class PinSequence:
    """The PINs a simulated cardholder types, one per PIN entry (test PIN pads only).

    Each entry (an offline VERIFY or an online PIN block) takes the next PIN; once the sequence
    is used up the last PIN is typed again, so "a wrong PIN, then the right one" can be played
    (EMV 4.4 Book 3, 10.5: the PIN try counter sees each entry). The PINs are never in the
    ``repr``/``str`` or in an exception message.
    """

    def __init__(self, pins: str | Sequence[str]) -> None:
        """Validate the PINs: ``"1111,1234"`` or a list of 4-12 digit strings.

        Raises:
            PinError: an empty sequence, or a PIN that is not 4-12 digits (not quoted).
        """
        items = pins.split(",") if isinstance(pins, str) else list(pins)
        items = [item.strip() for item in items]
        if not items:
            raise PinError("at least one PIN")
        for item in items:
            plaintext_pin_block(item)  # validates without echoing the PIN
        self.__pins = items
        self.entries = 0

    def __len__(self) -> int:
        return len(self.__pins)

    @property
    def left(self) -> int:
        """PINs not typed yet (the last one is typed again afterwards)."""
        return max(0, len(self.__pins) - self.entries)

    def next_pin(self) -> str:
        """The PIN of the next entry."""
        pin = self.__pins[min(self.entries, len(self.__pins) - 1)]
        self.entries += 1
        return pin

    def __repr__(self) -> str:
        return f"PinSequence({len(self.__pins)} PIN(s) hidden)"

    __str__ = __repr__
