"""The device facade: :class:`Device` lifecycle and the transparent :class:`CardReader`.

python-can style: the public methods here are template methods that check state, apply the
timeout, trace (header, lengths and status word only, never data) and map errors; a backend
implements the small private hooks (``_open``, ``_close``, ``_connect``, ``_disconnect``,
``_transceive``) and translates its library's exceptions into :mod:`drivers.errors` there.

A :class:`CardReader` satisfies the kernel's ``CardChannel`` protocol by shape
(``async transceive(capdu) -> rapdu``, EMV 4.4 Book 1, 9.3): ``drivers`` imports nothing of
``terminal``.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from drivers.errors import (
    CardRemoved,
    DeviceClosed,
    DeviceUnavailable,
    DriverError,
    NoCard,
    ProtocolError,
    ReaderRemoved,
    Timeout,
)
from drivers.events import (
    EventStream,
    Interface,
    PinPadCapabilities,
    ReaderEvent,
    ReaderEventKind,
    classify_interface,
)
from drivers.executor import DeviceExecutor, Watchdog

__all__ = [
    "CardReader",
    "Device",
    "DeviceState",
    "EventStream",
    "Interface",
    "PinPadCapabilities",
    "ReaderEvent",
    "ReaderEventKind",
    "classify_interface",
]

log = logging.getLogger("posgw.drivers")

Clock = Callable[[], float]


class DeviceState(enum.Enum):
    """Where a device object is in its life."""

    CREATED = "created"
    OPEN = "open"
    CLOSED = "closed"


class Device(abc.ABC):
    """Base of every device: explicit lifecycle, one executor, async context manager.

    ``open()`` then ``close()`` (or ``async with``); ``close()`` may be called any number of
    times. Subclasses implement ``_open`` and ``_close``.
    """

    def __init__(self, *, url: str, clock: Clock = time.monotonic) -> None:
        """Create the device object (no I/O until :meth:`open`).

        Args:
            url: The device URL it was created from (used in messages and diagnostics).
            clock: Monotonic clock, injected for replayable tests.
        """
        self.url = url
        self._clock = clock
        self._state = DeviceState.CREATED
        self._executor = DeviceExecutor(url)
        self._lost: asyncio.Event | None = None
        self._lost_reason: DriverError | None = None

    @property
    def state(self) -> DeviceState:
        """The lifecycle state."""
        return self._state

    @property
    def executor(self) -> DeviceExecutor:
        """The device's own worker thread (blocking library calls go there)."""
        return self._executor

    async def open(self) -> None:
        """Open the device (idempotent while open).

        Raises:
            DeviceClosed: when the object was already closed (create a new one).
            DriverError: what the backend raised (DeviceUnavailable, ConfigurationError...).
        """
        if self._state is DeviceState.OPEN:
            return
        if self._state is DeviceState.CLOSED:
            raise DeviceClosed("device was closed; create a new one", device=self.url)
        self._lost = asyncio.Event()
        try:
            await self._open()
        except BaseException:
            await self._release()
            raise
        self._state = DeviceState.OPEN

    async def close(self) -> None:
        """Close the device and join its thread; safe to call twice."""
        if self._state is DeviceState.CLOSED:
            return
        was_open = self._state is DeviceState.OPEN
        self._state = DeviceState.CLOSED
        if self._lost is not None:
            self._lost.set()
        try:
            if was_open:
                await self._close()
        finally:
            await self._release()

    async def _release(self) -> None:
        self._state = DeviceState.CLOSED
        await self._executor.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._state is not DeviceState.OPEN:
            raise DeviceClosed(f"device is {self._state.value}", device=self.url)

    def mark_lost(self, reason: DriverError) -> None:
        """Declare the device unusable (loop thread): :meth:`wait_lost` returns ``reason``."""
        self._lost_reason = reason
        if self._lost is not None:
            self._lost.set()

    async def wait_lost(self) -> DriverError | None:
        """Wait until the device is lost or closed; returns the reason (None when closed).

        A supervisor (:mod:`drivers.lifecycle`) awaits this to know when to set up again.
        """
        if self._lost is None:
            raise DeviceClosed("device not opened", device=self.url)
        await self._lost.wait()
        return self._lost_reason

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe state for the status page (no card data)."""
        return {"url": self.url, "state": self._state.value}

    @abc.abstractmethod
    async def _open(self) -> None:
        """Backend hook: acquire the device."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Backend hook: release the device (called once)."""


class CardReader(Device):
    """A transparent card reader: events, power on/off, C-APDU in, R-APDU out.

    Backends implement ``_open``, ``_close``, ``_connect`` (power on, return the ATR),
    ``_disconnect`` and ``_transceive``, and call :meth:`_emit` when a card or the reader
    comes or goes (on the loop thread; use :class:`~drivers.executor.LoopBridge`).
    """

    def __init__(
        self, *, url: str, name: str, timeout: float | None = 5.0, clock: Clock = time.monotonic
    ) -> None:
        """Create the reader.

        Args:
            url: Device URL.
            name: Reader (slot) name.
            timeout: Seconds allowed for one APDU exchange (None: no limit).
            clock: Monotonic clock.
        """
        super().__init__(url=url, clock=clock)
        self.name = name
        self.timeout = timeout
        self.atr: bytes | None = None
        self.card_present = False
        self.pin_pad = PinPadCapabilities()
        self._session_end: DriverError | None = None
        self._subscribers: list[asyncio.Queue[ReaderEvent]] = []
        self._counters = {"apdus": 0, "errors": 0, "timeouts": 0}
        self._watchdog = Watchdog()

    @property
    def interface(self) -> Interface:
        """Contact or contactless, from the reader name and the current ATR."""
        return classify_interface(self.name, self.atr)

    @property
    def powered(self) -> bool:
        """True while a card session is open (after :meth:`power_on`)."""
        return self.atr is not None

    async def power_on(self) -> bytes:
        """Connect to the card in the slot and return its ATR (EMV 4.4 Book 1, 8.1 and 8.3).

        Raises:
            NoCard: no card in the slot.
            DeviceUnavailable: the reader or the service is gone.
        """
        self._check_open()
        try:
            atr = await self._connect()
        except DriverError:
            raise  # typed already (drivers.Timeout is an OSError too)
        except OSError as exc:
            raise DeviceUnavailable("power on failed", device=self.name) from exc
        self.atr = atr
        self._session_end = None
        return atr

    async def power_off(self) -> None:
        """End the card session (idempotent)."""
        if self.atr is None or self._state is not DeviceState.OPEN:
            self.atr = None
            return
        self.atr = None
        try:
            await self._disconnect()
        except (NoCard, DeviceUnavailable):
            pass  # nothing left to power off
        except OSError as exc:
            raise DeviceUnavailable("power off failed", device=self.name) from exc

    async def transceive(self, capdu: bytes) -> bytes:
        """Send one C-APDU and return the R-APDU including SW1 SW2 (EMV 4.4 Book 1, 9.3).

        The trace (logger ``posgw.drivers``, DEBUG) shows the command header, lengths and the
        status word only, never data.

        Raises:
            ProtocolError: C-APDU shorter than 4 bytes, or R-APDU shorter than 2.
            NoCard / CardRemoved: no card session, or the card left.
            Timeout: no answer within :attr:`timeout`.
            DeviceUnavailable / ReaderRemoved: the reader or the service went away.
        """
        if self._state is not DeviceState.OPEN:
            self._check_open()
        if self.atr is None:
            raise self._session_end or NoCard("card not powered on", device=self.name)
        if len(capdu) < 4:
            raise ProtocolError("C-APDU shorter than 4 bytes", device=self.name)
        trace = log.isEnabledFor(logging.DEBUG)  # the hot path does no tracing work otherwise
        start = time.perf_counter() if trace else 0.0
        timeout = self.timeout
        try:
            if timeout is None:
                rapdu = await self._transceive(capdu)
            elif self._watchdog.busy or (task := asyncio.current_task()) is None:
                async with asyncio.timeout(timeout):  # concurrent exchanges: one timer each
                    rapdu = await self._transceive(capdu)
            else:
                rapdu = await self._watched(task, timeout, capdu)
        except DriverError as exc:
            self._counters["errors"] += 1
            if isinstance(exc, NoCard | DeviceUnavailable):
                self.atr = None
            raise
        except TimeoutError as exc:
            self._counters["timeouts"] += 1
            self.atr = None  # the card's state is unknown now: a new session is needed
            raise Timeout(f"no answer in {timeout} s", device=self.name) from exc
        except OSError as exc:
            self._counters["errors"] += 1
            self.atr = None
            raise DeviceUnavailable("exchange failed", device=self.name) from exc
        self._counters["apdus"] += 1
        if len(rapdu) < 2:
            raise ProtocolError("R-APDU shorter than 2 bytes", device=self.name)
        if trace:
            log.debug(
                "%s: C %s Lc+data=%d -> R %d bytes SW=%s in %.3f ms",
                self.name,
                capdu[:4].hex(" ").upper(),
                len(capdu) - 4,
                len(rapdu) - 2,
                rapdu[-2:].hex().upper(),
                (time.perf_counter() - start) * 1e3,
            )
        return rapdu

    async def _watched(self, task: asyncio.Task[Any], limit: float, capdu: bytes) -> bytes:
        """The backend exchange under the device's :class:`~drivers.executor.Watchdog`."""
        watchdog = self._watchdog
        watchdog.arm(task, limit)
        try:
            return await self._transceive(capdu)
        except asyncio.CancelledError as exc:
            if watchdog.disarm(cancelled=True):
                raise TimeoutError from exc
            raise
        finally:
            watchdog.disarm()

    async def _release(self) -> None:
        self._watchdog.close()
        await super()._release()

    def events(self) -> EventStream:
        """Subscribe from now on: every event after this call is queued for the caller.

        Use ``async for event in reader.events()`` or ``anext``; ``aclose()`` unsubscribes.
        """
        return EventStream(self._subscribers)

    async def wait_for_card(self) -> bytes:
        """Wait for a card in the slot (one present already counts) and power it on.

        Bound the wait with ``asyncio.timeout``. Returns the ATR.
        """
        self._check_open()
        while True:
            if self.card_present:
                try:
                    return await self.power_on()
                except NoCard:
                    pass
            await self._wait_event(ReaderEventKind.CARD_INSERTED)

    async def _wait_event(self, kind: ReaderEventKind) -> ReaderEvent:
        queue: asyncio.Queue[ReaderEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                event = await queue.get()
                if event.kind is kind or (
                    kind is ReaderEventKind.CARD_INSERTED
                    and event.kind is ReaderEventKind.CARD_TAPPED
                ):
                    return event
        finally:
            self._subscribers.remove(queue)

    def _emit(self, kind: ReaderEventKind, atr: bytes | None = None) -> None:
        """Record and publish an event (loop thread only)."""
        if kind in (ReaderEventKind.CARD_INSERTED, ReaderEventKind.CARD_TAPPED):
            self.card_present = True
            if classify_interface(self.name, atr) is Interface.CONTACTLESS:
                kind = ReaderEventKind.CARD_TAPPED
        elif kind in (ReaderEventKind.CARD_REMOVED, ReaderEventKind.READER_REMOVED):
            self.card_present = False
            if self.atr is not None:
                self._session_end = (
                    CardRemoved("card removed", device=self.name)
                    if kind is ReaderEventKind.CARD_REMOVED
                    else ReaderRemoved("reader removed", device=self.name)
                )
            self.atr = None
        event = ReaderEvent(kind, self.name, self._clock(), atr, classify_interface(self.name, atr))
        for queue in self._subscribers:
            queue.put_nowait(event)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe state: name, interface, card presence, counters, PIN pad."""
        return {
            **super().diagnostics(),
            "reader": self.name,
            "interface": self.interface.value,
            "card_present": self.card_present,
            "powered": self.powered,
            "pin_pad": self.pin_pad.has_pin_pad,
            **self._counters,
        }

    @abc.abstractmethod
    async def _connect(self) -> bytes:
        """Backend hook: power the card on, return the ATR (raise NoCard when absent)."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Backend hook: power the card off."""

    @abc.abstractmethod
    async def _transceive(self, capdu: bytes) -> bytes:
        """Backend hook: one physical exchange; raise CardRemoved, ReaderRemoved..."""
