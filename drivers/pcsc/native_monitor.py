"""Reader and card monitoring on the event loop, from pcscd's own change signal.

A connection of its own registers with ``CMD_WAIT_READER_STATE_CHANGE``: pcscd answers with
its reader table, then sends one signal at the next reader or card change (a reader added or
removed, a card inserted, removed or failing), and the monitor registers again. No polling, no
thread. The reader pattern is resolved against each table; a card removed and re-inserted
between two tables shows in the reader's event counter. When pcscd goes away the reader is
reported removed and the monitor reconnects every ``retry_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from drivers.base import ReaderEventKind
from drivers.errors import DriverError
from drivers.pcsc.client import PcscClient, UnsupportedIpcVersion
from drivers.pcsc.common import presence_events
from drivers.pcsc.monitor import match_reader
from drivers.pcsc.wire import ReaderState

__all__ = ["NativeReaderMonitor", "card_present"]

Report = Callable[[ReaderEventKind, str, bytes | None], None]
log = logging.getLogger("posgw.drivers.pcsc")

SCARD_PRESENT = 0x0004  # reader table state bits (pcsclite.h)


def card_present(entry: ReaderState) -> bool:
    """A powered card with an ATR in the slot (a mute card has SCARD_PRESENT but no ATR)."""
    return entry.initialised and bool(entry.state & SCARD_PRESENT) and bool(entry.atr)


class NativeReaderMonitor:
    """Watches one reader (by name or glob) and reports events on the loop."""

    def __init__(
        self,
        pattern: str,
        report: Report,
        *,
        socket: str | None = None,
        retry_interval: float = 0.05,
    ) -> None:
        """Create the monitor (call :meth:`start` from the loop).

        Args:
            pattern: Reader name or glob.
            report: Called with (kind, reader name, ATR).
            socket: pcscd's socket (default: as libpcsclite finds it).
            retry_interval: Seconds between attempts to reach a missing service.
        """
        self.pattern = pattern
        self._report = report
        self._socket = socket
        self._retry = retry_interval
        self._task: asyncio.Task[None] | None = None
        self._client: PcscClient | None = None
        self.reader: str | None = None
        self.present = False
        self._counter = 0
        self.ready = asyncio.Event()
        self.error: UnsupportedIpcVersion | None = None

    def start(self) -> None:
        """Start watching (a task on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"pcsc-monitor:{self.pattern}"
        )

    async def stop(self) -> None:
        """Stop watching and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    self._client = await PcscClient.open(self._socket, device=self.pattern)
                    await self._watch(self._client)
                except UnsupportedIpcVersion as exc:
                    self.error = exc
                    self.ready.set()
                    return
                except DriverError:
                    pass  # service gone: report, then try again
                except Exception:  # a bug must not leave the lane without reader events
                    log.exception("%s: monitor failed; starting again", self.pattern)
                if self._client is not None:
                    self._client.close()
                    self._client = None
                self._lost()
                await asyncio.sleep(self._retry)
        finally:
            self.ready.set()

    async def _watch(self, client: PcscClient) -> None:
        while True:
            self._apply(await client.register_for_events())
            self.ready.set()
            await client.next_event()

    def _apply(self, table: tuple[ReaderState, ...]) -> None:
        entries = {entry.name: entry for entry in table}
        name = match_reader(self.pattern, list(entries))
        if name != self.reader:
            self._lost()
            if name is not None:
                self.reader = name
                self._report(ReaderEventKind.READER_ADDED, name, None)
        if name is None:
            return
        entry = entries[name]
        present = card_present(entry)
        for kind in presence_events(self.present, self._counter, present, entry.event_counter):
            self._report(kind, name, entry.atr if kind is ReaderEventKind.CARD_INSERTED else None)
        self.present, self._counter = present, entry.event_counter

    def _lost(self) -> None:
        if self.reader is not None:
            name, self.reader, self.present = self.reader, None, False
            self._report(ReaderEventKind.READER_REMOVED, name, None)
