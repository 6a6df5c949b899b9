"""Reader and card monitoring on its own thread (SCardGetStatusChange, PC/SC Part 5, 3.1.x).

One thread per reader device, with its own PC/SC context (a blocked GetStatusChange holds its
context): it resolves the reader pattern against the reader list, watches that reader plus
the ``\\\\?PnP?\\Notification`` pseudo-reader (reader list changes), and reports changes to a
callback (which the device bridges onto the loop). When pcscd goes away (restart, crash) it
reports the reader removed, drops the context and establishes a new one every
``retry_interval`` seconds until the service is back.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from typing import Any

from smartcard import scard

from drivers.base import ReaderEventKind
from drivers.pcsc.common import presence_events
from drivers.pcsc.errors import E_CANCELLED, E_TIMEOUT, S_SUCCESS

__all__ = ["PNP_READER", "ReaderMonitor", "match_reader"]

PNP_READER = "\\\\?PnP?\\Notification"

Report = Callable[[ReaderEventKind, str, bytes | None], None]


def match_reader(pattern: str, readers: list[str]) -> str | None:
    """The first reader equal to ``pattern``, else the first matching it as a glob."""
    if pattern in readers:
        return pattern
    for name in readers:
        if fnmatch.fnmatchcase(name, pattern):
            return name
    return None


class ReaderMonitor:
    """Watches one reader (by name or glob) and reports events from its own thread."""

    def __init__(
        self, pattern: str, report: Report, *, poll_ms: int = 1000, retry_interval: float = 0.05
    ) -> None:
        """Create the monitor (call :meth:`start`).

        Args:
            pattern: Reader name or glob.
            report: Called (on the monitor thread) with (kind, reader name, ATR).
            poll_ms: GetStatusChange timeout, bounds how long a stop can take without cancel.
            retry_interval: Seconds between attempts to reach a missing service.
        """
        self.pattern = pattern
        self._report = report
        self._poll_ms = poll_ms
        self._retry = retry_interval
        self._stop = threading.Event()
        self._context: Any = None
        self._context_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"pcsc-monitor:{pattern}")
        self.reader: str | None = None
        self.present = False
        self.ready = threading.Event()

    def start(self) -> None:
        """Start the thread."""
        self.thread.start()

    def stop(self) -> None:
        """Ask the thread to end (non-blocking; join ``thread`` afterwards)."""
        self._stop.set()
        with self._context_lock:
            if self._context is not None:
                scard.SCardCancel(self._context)

    def _establish(self) -> bool:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != S_SUCCESS:
            return False
        with self._context_lock:
            self._context = context
        return True

    def _release(self) -> None:
        with self._context_lock:
            context, self._context = self._context, None
        if context is not None:
            scard.SCardReleaseContext(context)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._context is None and not self._establish():
                    self._lost()
                    self._stop.wait(self._retry)
                    continue
                if not self._watch():
                    self._lost()
                    self._release()
                    self._stop.wait(self._retry)
        finally:
            self._release()
            self.ready.set()

    def _lost(self) -> None:
        if self.reader is not None:
            name, self.reader, self.present = self.reader, None, False
            self._report(ReaderEventKind.READER_REMOVED, name, None)
        self.ready.set()

    def _resolve(self) -> bool:
        hresult, readers = scard.SCardListReaders(self._context, [])
        if hresult not in (S_SUCCESS, 0x8010002E):  # 2E: no readers available
            return False
        name = match_reader(self.pattern, list(readers or []))
        if name != self.reader:
            if self.reader is not None:
                self._lost()
            if name is not None:
                self.reader = name
                self._report(ReaderEventKind.READER_ADDED, name, None)
        return True

    def _watch(self) -> bool:
        """Wait for changes; False when the context must be set up again."""
        if not self._resolve():
            return False
        states: list[tuple[str, int]] = [(PNP_READER, scard.SCARD_STATE_UNAWARE)]
        if self.reader is not None:
            states.append((self.reader, scard.SCARD_STATE_UNAWARE))
        first = True
        while not self._stop.is_set():
            hresult, new_states = scard.SCardGetStatusChange(
                self._context, 0 if first else self._poll_ms, states
            )
            if hresult == E_CANCELLED or self._stop.is_set():
                return True
            if hresult == E_TIMEOUT and not first:
                continue
            if hresult not in (S_SUCCESS, E_TIMEOUT):
                return False
            first = False
            next_states: list[tuple[str, int]] = []
            list_changed = False
            for name, event_state, atr in new_states:
                if name == PNP_READER:
                    list_changed = list_changed or bool(event_state & scard.SCARD_STATE_CHANGED)
                    next_states.append((name, event_state & ~scard.SCARD_STATE_CHANGED))
                    continue
                if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                    list_changed = True
                self._card_state(name, event_state, bytes(atr or b""))
                next_states.append((name, event_state & ~scard.SCARD_STATE_CHANGED))
            self.ready.set()
            if list_changed:
                return True  # re-resolve the reader list, keep the context
            states = next_states
        return True

    def _card_state(self, name: str, state: int, atr: bytes) -> None:
        present = bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE
        counter = state >> 16  # pcsc-lite puts the reader's event counter in the high word
        for kind in presence_events(self.present, self._counter, present, counter):
            self._report(kind, name, atr if kind is ReaderEventKind.CARD_INSERTED else None)
        self.present = present
        self._counter = counter

    _counter = 0
