"""The ``sim://`` backend: an in-process reader slot around a virtual card object.

A real registered backend (python-can's ``virtual`` bus), not a test double: ``sim://lane1``
opens the slot named ``lane1`` of this process; the simulator (or a test) inserts and removes
virtual cards with :func:`slot`. A card is any object with ``process(capdu: bytes) -> bytes``
(R-APDU including SW1 SW2), such as the simulator's virtual EMV cards. The card runs on the
device's executor thread, like a real reader's library call.

``sim://lane1?inline=1`` runs the card's ``process`` on the caller's thread (the event loop)
instead: no hop to the device thread and back per APDU, which with 16 lanes cost about as much
CPU as the card itself (two thread wake-ups and GIL hand-offs per APDU, docs/performance.md).
The loop is yielded once per APDU (``asyncio.sleep(0)``), so a whole card session never runs
as one uninterrupted callback: other lanes and pages keep their turn, as with a thread.
For virtual cards whose every answer is quick computing (the simulator's); the exchange's
time-out cannot interrupt an inline card, so a card that may block must not run inline.
Real readers (``pcsc://``) are not concerned: their library calls always run on the device
thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Protocol

from drivers.base import CardReader, ReaderEventKind
from drivers.errors import CardRemoved, ConfigurationError, NoCard
from drivers.executor import LoopBridge
from drivers.registry import DeviceUrl

__all__ = ["SimReader", "SimSlot", "VirtualCard", "create", "slot"]

#: ATR of a generic T=1 contact card (EMV 4.4 Book 1, 8.3 "basic ATR for T=1").
DEFAULT_ATR = bytes.fromhex("3BE000008131FE45")


class VirtualCard(Protocol):
    """What the simulated slot needs from a card."""

    def process(self, capdu: bytes) -> bytes:
        """Answer one C-APDU with the R-APDU (data + SW1 SW2)."""
        ...


class SimSlot:
    """One named virtual slot: holds at most one card; readers watch it."""

    def __init__(self, name: str) -> None:
        """Create an empty slot."""
        self.name = name
        self._lock = threading.Lock()
        self.card: VirtualCard | None = None
        self.atr = DEFAULT_ATR
        self._generation = 0
        self._watchers: list[SimReader] = []

    def insert(self, card: VirtualCard, atr: bytes = DEFAULT_ATR) -> None:
        """Put a card in the slot (a contactless ATR makes it a tap); any thread."""
        with self._lock:
            self.card, self.atr = card, atr
            self._generation += 1
            watchers = list(self._watchers)
        for reader in watchers:
            reader.bridge_emit(ReaderEventKind.CARD_INSERTED, atr)

    def remove(self) -> None:
        """Take the card out; any thread."""
        with self._lock:
            had = self.card is not None
            self.card = None
            self._generation += 1
            watchers = list(self._watchers)
        if had:
            for reader in watchers:
                reader.bridge_emit(ReaderEventKind.CARD_REMOVED, None)

    def snapshot(self) -> tuple[VirtualCard | None, bytes, int]:
        """(card, ATR, generation) under the lock."""
        with self._lock:
            return self.card, self.atr, self._generation

    def watch(self, reader: SimReader) -> None:
        """Register a reader for insert/remove events."""
        with self._lock:
            self._watchers.append(reader)

    def unwatch(self, reader: SimReader) -> None:
        """Unregister a reader."""
        with self._lock:
            if reader in self._watchers:
                self._watchers.remove(reader)


_SLOTS: dict[str, SimSlot] = {}
_SLOTS_LOCK = threading.Lock()


def slot(name: str) -> SimSlot:
    """The process-wide slot of that name (created on first use)."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(name, SimSlot(name))


class SimReader(CardReader):
    """A reader on a :class:`SimSlot`."""

    def __init__(self, *, url: str, slot_name: str, inline: bool = False, **kwargs: Any) -> None:
        """Create the reader for slot ``slot_name`` (see :class:`CardReader` for options).

        Args:
            url: The device URL.
            slot_name: The slot's name.
            inline: Run the card on the caller's thread (module docstring).
            **kwargs: :class:`CardReader` options.
        """
        super().__init__(url=url, name=f"sim:{slot_name}", **kwargs)
        self._slot = slot(slot_name)
        self._inline = inline
        self._bridge: LoopBridge | None = None
        self._session: int | None = None

    def bridge_emit(self, kind: ReaderEventKind, atr: bytes | None) -> None:
        """Publish an event from any thread."""
        if self._bridge is not None:
            self._bridge.call(self._emit, kind, atr)

    async def _open(self) -> None:
        self._bridge = LoopBridge()
        self._slot.watch(self)
        card, _atr, _ = self._slot.snapshot()
        if card is not None:
            self.card_present = True

    async def _close(self) -> None:
        self._slot.unwatch(self)
        self._bridge = None

    async def _connect(self) -> bytes:
        card, atr, generation = self._slot.snapshot()
        if card is None:
            raise NoCard("no card in the slot", device=self.name)
        self._session = generation
        return atr

    async def _disconnect(self) -> None:
        self._session = None

    def _process(self, capdu: bytes) -> bytes:
        card, _, generation = self._slot.snapshot()
        if card is None or generation != self._session:
            raise CardRemoved("card removed", device=self.name)
        return card.process(capdu)

    async def _transceive(self, capdu: bytes) -> bytes:
        if self._inline:
            rapdu = self._process(capdu)
            await asyncio.sleep(0)  # the answer comes in a later loop turn, as a device's would
            return rapdu
        return await self.executor.run(self._process, capdu)


def create(url: DeviceUrl, **options: Any) -> SimReader:
    """Backend entry point: ``sim://<slot name>[?timeout=seconds][&inline=0|1]``.

    Raises:
        ConfigurationError: an unknown option, or a malformed value.
    """
    timeout = options.pop("timeout", url.params.get("timeout", 5.0))
    inline = options.pop("inline", url.params.get("inline", False))
    clock = options.pop("clock", time.monotonic)
    if options:
        raise ConfigurationError(f"unknown sim options: {sorted(options)}", device=url.raw)
    try:
        seconds = None if timeout is None else float(timeout)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError("timeout must be a number", device=url.raw) from exc
    if isinstance(inline, str):
        if inline not in ("0", "1", "true", "false"):
            raise ConfigurationError("inline must be 0 or 1", device=url.raw)
        inline = inline in ("1", "true")
    return SimReader(
        url=url.raw, slot_name=url.target, inline=bool(inline), timeout=seconds, clock=clock
    )
