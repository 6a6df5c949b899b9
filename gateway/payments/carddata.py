"""What a lane keeps of the card in memory only: the PAN for the acquirer, the forwarding blob.

The kernel hands the PAN to the online step only (``OnlineRequest.pan``); an offline approval
(TC at the first GENERATE AC, EMV 4.4 Book 3, 10.8) gives none, yet store-and-forward needs it.
:class:`PanCapture` wraps the reader's card channel and keeps the Application PAN (5A, or the
digits of Track 2 Equivalent Data 57 before the separator) from the card's responses, in
memory, for this one transaction. It never logs, prints or reprs it.
"""

from __future__ import annotations

from typing import Protocol

from terminal.errors import TlvError
from terminal.tlv import decode, flatten

__all__ = ["CardChannelLike", "PanCapture"]


class CardChannelLike(Protocol):
    """The kernel's card channel (``terminal.transport.CardChannel``) by shape."""

    async def transceive(self, capdu: bytes) -> bytes:
        """One C-APDU in, the R-APDU with SW1 SW2 out."""
        ...


class PanCapture:
    """A card channel that remembers the PAN the card returned (see the module docstring)."""

    __slots__ = ("_channel", "_pan")

    def __init__(self, channel: CardChannelLike) -> None:
        self._channel = channel
        self._pan: str | None = None

    async def transceive(self, capdu: bytes) -> bytes:
        """Forward to the reader; look for 5A / 57 in a successful answer (Book 3, Annex A)."""
        rapdu = await self._channel.transceive(capdu)
        if self._pan is None and len(rapdu) > 2 and rapdu[-2:] == b"\x90\x00":
            self._sniff(rapdu[:-2])
        return rapdu

    def _sniff(self, data: bytes) -> None:
        try:
            values = flatten(decode(data))
        except TlvError:
            return
        pan = values.get(0x5A)
        if pan is not None:
            digits = pan.hex().upper().rstrip("F")
        elif (track2 := values.get(0x57)) is not None:
            digits = track2.hex().upper().split("D", 1)[0]
        else:
            return
        if digits.isdigit() and 12 <= len(digits) <= 19:
            self._pan = digits

    @property
    def pan(self) -> str | None:
        """The captured PAN (never log it)."""
        return self._pan

    def __repr__(self) -> str:
        return f"PanCapture(captured={self._pan is not None})"
