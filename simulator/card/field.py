"""A contactless card in the reader's field: per-APDU latency around a virtual card.

:meth:`VirtualCard.process` is synchronous and takes microseconds; a real card in the field
takes several milliseconds per exchange (ISO/IEC 14443-4 frames at 106-848 kbit/s plus the
card's own processing). :class:`CardInField` models that with an ``await asyncio.sleep`` before
each exchange, which is what the contactless "card-in-field time" budget measures (EMV
Contactless Book A: about 500 ms for a whole tap). It implements the kernel's card channel
(``async transceive(capdu) -> rapdu``).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["DEFAULT_LATENCY_S", "CardInField", "SyncCard"]

#: Default time per C-APDU/R-APDU exchange of a card in the field.
DEFAULT_LATENCY_S = 0.015


class SyncCard(Protocol):
    """Anything with a synchronous ``process(capdu) -> rapdu`` (virtual or transcript card)."""

    def process(self, capdu: bytes) -> bytes:
        """Answer one C-APDU."""
        ...


class CardInField:
    """An async card channel that waits ``latency_s`` per exchange, then asks the card.

    Attributes:
        card: The card answering.
        latency_s: Seconds per exchange (0 for none).
        exchanges: Number of exchanges so far.
    """

    def __init__(self, card: SyncCard, latency_s: float = DEFAULT_LATENCY_S) -> None:
        """Wrap ``card``; ``latency_s`` must not be negative."""
        if latency_s < 0:
            raise ValueError("latency must not be negative")
        self.card = card
        self.latency_s = latency_s
        self.exchanges = 0

    async def transceive(self, capdu: bytes) -> bytes:
        """Send one C-APDU and return the R-APDU after the field latency."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        self.exchanges += 1
        return self.card.process(capdu)

    def __repr__(self) -> str:
        return f"CardInField({self.card!r}, {self.latency_s * 1000:.0f} ms)"
