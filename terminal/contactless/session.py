"""The card session a contactless kernel runs on: exchanges, trace, UI, card data (Book A, 5-7).

:class:`CardSession` is shared by the Entry Point and the kernels it activates. It

* sends commands through :class:`terminal.commands.CardIo` (61xx / 6Cxx handled by the
  transport) and records every physical exchange in the masked trace;
* emits UI requests (Book A, 7.1) to the caller's callback, in order;
* remembers the "card may be removed" moment (Book A, 7.1: "Card Read Successfully");
* holds the card's data objects as the kernel reads them (a flat TLV database, tag → value).

Data read: nothing by itself. Data written: the trace, the UI list and the removal index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from terminal import tlv
from terminal.apdu import CommandApdu, ResponseApdu
from terminal.commands import CardIo
from terminal.contactless.outcome import Message, UiRequest, UiStatus
from terminal.dol import DolEntry
from terminal.errors import CardDataError
from terminal.result import TraceEntry
from terminal.trace import tracer
from terminal.transport import CardChannel

__all__ = ["CardSession", "UiCallback", "read_records", "record_tlvs"]

UiCallback = Callable[[UiRequest], None]

#: "Card read OK, please remove card" (Book A, 9.4 message 17, status Card Read Successfully).
CARD_READ_OK = UiRequest(Message.CARD_READ_OK, UiStatus.CARD_READ_SUCCESSFULLY)


class CardSession:
    """One activation of the contactless field with a card in it.

    Args:
        channel: The card channel.
        ui: Receives each UI request as it is emitted (may be ``None``).
        trace: Record the masked APDU trace (``False``: :attr:`trace` stays empty,
            :mod:`terminal.trace`).
    """

    def __init__(
        self, channel: CardChannel, ui: UiCallback | None = None, *, trace: bool = True
    ) -> None:
        self.io = CardIo(channel, tracer(trace))
        self._ui = ui
        self.ui_requests: list[UiRequest] = []
        self.card_removable_at: int | None = None

    @property
    def trace(self) -> list[TraceEntry]:
        """The masked trace so far (one entry per physical exchange)."""
        return self.io.tracer.entries

    async def send(
        self, command: CommandApdu, *, dol: list[DolEntry] | None = None
    ) -> ResponseApdu:
        """Send one command, recording each physical exchange in the masked trace.

        Args:
            command: The command.
            dol: The DOL its data was built from, so that sensitive entries are masked.

        Raises:
            TransportError: when the channel fails (see :func:`terminal.transport.exchange`).
        """
        return await self.io.send(command, dol=dol)

    def show(self, request: UiRequest) -> None:
        """Emit a UI request (Book A, 7.1)."""
        self.ui_requests.append(request)
        if self._ui is not None:
            self._ui(request)

    def card_read_complete(self) -> None:
        """Mark the card as no longer needed and ask for its removal (Book A, 7.1).

        Emits "Card read OK" once; later calls do nothing.
        """
        exchanges = self.io.tracer.exchanges
        if self.card_removable_at is not None or not exchanges:
            return
        self.card_removable_at = exchanges - 1
        self.show(CARD_READ_OK)


def record_tlvs(data: bytes, sfi: int, number: int) -> list[tlv.Tlv]:
    """Decode a READ RECORD response that must be one ``70`` template (EMV 4.4 Book 3, 7.2).

    Raises:
        TlvError: when the data is not BER-TLV.
        CardDataError: when it is not exactly one ``70`` template.
    """
    objects = tlv.decode(data)
    if len(objects) != 1 or objects[0].tag != 0x70 or objects[0].children is None:
        raise CardDataError(f"SFI {sfi} record {number} is not a 70 template", tag=0x70)
    return list(objects[0].children)


def read_records(afl: Iterable[tuple[int, int, int, int]]) -> list[tuple[int, int]]:
    """The (SFI, record number) pairs an AFL names, in order (EMV 4.4 Book 3, 10.2)."""
    return [(sfi, n) for sfi, first, last, _oda in afl for n in range(first, last + 1)]
