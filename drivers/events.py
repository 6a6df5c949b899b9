"""Reader events, slot interfaces and PIN-pad capabilities (the data a reader reports).

Kept apart from :mod:`drivers.base` (the device facade); everything here is re-exported there.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field

__all__ = [
    "EventStream",
    "Interface",
    "PinPadCapabilities",
    "ReaderEvent",
    "ReaderEventKind",
    "classify_interface",
]

#: Words in reader names that mean a contactless (PICC) slot.
_CONTACTLESS_HINTS = ("contactless", "picc", "nfc", " cl ", "-cl", "acr122", "rfid")


class Interface(enum.Enum):
    """The card interface of a reader slot."""

    CONTACT = "contact"
    CONTACTLESS = "contactless"
    UNKNOWN = "unknown"


def classify_interface(reader_name: str, atr: bytes | None = None) -> Interface:
    """Tell a contactless slot from a contact one, from the reader name and the ATR.

    PC/SC Part 3 (3.1.3.2.3) makes a reader synthesise the ATR of a contactless card as
    ``3B 8n 80 01 ...`` (TD1 = 80, TD2 = 01, no interface bytes); a contact EMV card answers
    with an ATR of EMV 4.4 Book 1, 8.3 shape, which never has that prefix.

    Args:
        reader_name: The reader (slot) name as the service reports it.
        atr: The card's ATR, when a card is present.

    Returns:
        The interface; UNKNOWN when neither the name nor the ATR tells.
    """
    if atr is not None and len(atr) >= 4 and atr[0] == 0x3B and atr[1] & 0xF0 == 0x80 and (
        atr[2] == 0x80 and atr[3] == 0x01
    ):
        return Interface.CONTACTLESS
    lowered = f" {reader_name.lower()} "
    if any(hint in lowered for hint in _CONTACTLESS_HINTS):
        return Interface.CONTACTLESS
    if atr is not None and len(atr) >= 2:
        return Interface.CONTACT
    return Interface.UNKNOWN


class ReaderEventKind(enum.Enum):
    """What happened at a reader."""

    CARD_INSERTED = "card_inserted"
    CARD_TAPPED = "card_tapped"
    CARD_REMOVED = "card_removed"
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """One reader event (the ATR is not card data: it identifies the chip, not the holder)."""

    kind: ReaderEventKind
    reader: str
    at: float
    atr: bytes | None = None
    interface: Interface = Interface.UNKNOWN


@dataclass(frozen=True, slots=True)
class PinPadCapabilities:
    """Secure PIN entry features of a reader (PC/SC Part 10, 2.2: GET_FEATURE_REQUEST).

    Attributes:
        verify_pin_direct: FEATURE_VERIFY_PIN_DIRECT (0x06) is offered.
        modify_pin_direct: FEATURE_MODIFY_PIN_DIRECT (0x07) is offered.
        features: Every feature tag offered, mapped to its SCardControl code.
    """

    verify_pin_direct: bool = False
    modify_pin_direct: bool = False
    features: dict[int, int] = field(default_factory=dict)

    @property
    def has_pin_pad(self) -> bool:
        """True when the reader can take a PIN on its own keypad."""
        return self.verify_pin_direct or self.modify_pin_direct


class EventStream:
    """One subscriber's queue of reader events (registered on creation)."""

    def __init__(self, subscribers: list[asyncio.Queue[ReaderEvent]]) -> None:
        """Register a new queue in ``subscribers``."""
        self._subscribers = subscribers
        self._queue: asyncio.Queue[ReaderEvent] = asyncio.Queue()
        subscribers.append(self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ReaderEvent:
        return await self._queue.get()

    async def aclose(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._queue in self._subscribers:
            self._subscribers.remove(self._queue)
