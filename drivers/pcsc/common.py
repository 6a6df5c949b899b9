"""What both PC/SC backends share: URL options, the reader base class, card presence events.

The backends (:mod:`drivers.pcsc.native`, pcscd's socket on the event loop, and
:mod:`drivers.pcsc.reader`, pyscard on the device thread) differ only in how they reach pcscd.
Share modes, protocols and dispositions are the PC/SC Part 5 values pcsc-lite uses.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from drivers.base import CardReader, ReaderEventKind
from drivers.errors import NoCard, ReaderRemoved
from drivers.pcsc.errors import PcscdNotRunning
from drivers.pcsc.pin_verify import PinVerifyParameters, verify_pin_direct

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_T0",
    "SHARE_MODES",
    "UNPOWER_CARD",
    "PcscReader",
    "no_reader_error",
    "presence_events",
]

SHARE_EXCLUSIVE = 0x0001
SHARE_SHARED = 0x0002
PROTOCOL_T0 = 0x0001
PROTOCOL_T1 = 0x0002
UNPOWER_CARD = 0x0002  # SCARD_UNPOWER_CARD: a payment leaves the card powered down

SHARE_MODES = {"exclusive": SHARE_EXCLUSIVE, "shared": SHARE_SHARED}
PROTOCOLS = {"any": PROTOCOL_T0 | PROTOCOL_T1, "T=0": PROTOCOL_T0, "T=1": PROTOCOL_T1}


def _pcscd_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


def no_reader_error(pattern: str, socket_path: str) -> ReaderRemoved:
    """Why no reader matched ``pattern``: :class:`PcscdNotRunning`, or no such reader.

    A missing or dead pcscd socket (``$PCSCLITE_CSOCK_NAME`` or the system one) is named as
    such, with the path, rather than as an unmatched reader pattern.
    """
    if not os.path.exists(socket_path):
        return PcscdNotRunning(
            f"pcscd is not running (no socket at {socket_path}; start pcscd, or set "
            "PCSCLITE_CSOCK_NAME to its socket)",
            device=pattern,
        )
    if not _pcscd_answers(socket_path):
        return PcscdNotRunning(f"pcscd is not running (nothing answers at {socket_path})",
                             device=pattern)  # fmt: skip
    return ReaderRemoved("no reader matches the pattern", device=pattern)


def presence_events(
    was_present: bool, old_counter: int, present: bool, counter: int
) -> list[ReaderEventKind]:
    """Card events between two looks at a slot (pcscd's per-reader event counter included).

    A card still present with a new counter was removed and inserted in between: both events.
    """
    if present and was_present:
        if counter != old_counter:
            return [ReaderEventKind.CARD_REMOVED, ReaderEventKind.CARD_INSERTED]
        return []
    if present:
        return [ReaderEventKind.CARD_INSERTED]
    if was_present:
        return [ReaderEventKind.CARD_REMOVED]
    return []


class PcscReader(CardReader):
    """A PC/SC reader slot named by exact name or glob (``pcsc://*Contactless*``).

    Subclasses connect, exchange and watch the reader; this class holds the options, the
    reader's presence (from the backend's monitor) and the diagnostics.
    """

    #: ``"native"`` or ``"pyscard"``.
    backend = ""
    #: Seconds to wait for the service to report a removal after an answer without SW.
    EMPTY_ANSWER_GRACE = 1.5

    def __init__(
        self,
        *,
        url: str,
        pattern: str,
        share: str = "exclusive",
        protocol: str = "any",
        timeout: float | None = 5.0,
        clock: Any = time.monotonic,
    ) -> None:
        """Create the reader (no I/O until ``open``).

        Args:
            url: Device URL.
            pattern: Reader name or glob pattern.
            share: ``"exclusive"`` or ``"shared"`` access to the card.
            protocol: ``"any"``, ``"T=0"`` or ``"T=1"``.
            timeout: Seconds allowed for one exchange.
            clock: Monotonic clock.
        """
        super().__init__(url=url, name=pattern, timeout=timeout, clock=clock)
        self.pattern = pattern
        self._share = SHARE_MODES[share]
        self._protocols = PROTOCOLS[protocol]
        self._card: Any = None
        self._active_protocol = 0
        self.reader_present = False
        self._epoch = 0  # bumped when the reader goes away: sessions from before are stale

    @property
    def protocol(self) -> str | None:
        """``"T=0"`` or ``"T=1"`` while a card session is open."""
        if self._card is None:
            return None
        return "T=0" if self._active_protocol == PROTOCOL_T0 else "T=1"

    def _on_monitor(self, kind: ReaderEventKind, name: str, atr: bytes | None) -> None:
        """A monitor's report, on the loop thread."""
        if kind is ReaderEventKind.READER_ADDED:
            self.name, self.reader_present = name, True
        elif kind is ReaderEventKind.READER_REMOVED:
            self.reader_present = False
            self._epoch += 1
        self._emit(kind, atr)

    async def verify_pin_direct(self, params: PinVerifyParameters | None = None) -> int:
        """Offline plaintext PIN on the reader's keypad (PC/SC Part 10, FEATURE_VERIFY_PIN_DIRECT).

        The PIN never reaches this process: see :mod:`drivers.pcsc.pin_verify`. A card must be
        powered on (the features are read then).

        Returns:
            The status word of the card (or of the reader: 6400 timeout, 6401 cancelled).

        Raises:
            NoCard: no card session.
            ConfigurationError: the reader has no PIN pad.
            Timeout, ProtocolError, ReaderRemoved: as for an exchange.
        """
        if self._card is None:
            raise NoCard("card not connected", device=self.name)
        return await verify_pin_direct(self._control, self.pin_pad, params, device=self.name)

    async def _control(self, code: int, data: bytes) -> bytes:
        """``SCardControl`` on the connected card (backend hook)."""
        raise NotImplementedError

    def diagnostics(self) -> dict[str, Any]:
        """Adds reader presence, the active protocol and the backend."""
        return {
            **super().diagnostics(),
            "reader_present": self.reader_present,
            "protocol": self.protocol,
            "backend": self.backend,
        }
