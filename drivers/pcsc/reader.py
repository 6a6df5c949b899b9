"""The pyscard PC/SC backend: pyscard's SCard API to pcscd, on the device's thread.

* Card operations (connect, transmit, control) run on the device's one executor thread, with
  a PC/SC context of their own; monitoring runs on :class:`~drivers.pcsc.monitor.ReaderMonitor`
  with another context. Nothing here blocks the loop.
* ``SCARD_SHARE_EXCLUSIVE`` by default: nobody else talks to the card during a payment.
* T=0 and T=1: the active protocol comes from SCardConnect; the transport layer above handles
  61xx / 6Cxx (EMV 4.4 Book 1, 9.3).
* pcscd restart: the first call that gets SCARD_E_NO_SERVICE / INVALID_HANDLE raises
  :class:`~drivers.errors.ReaderRemoved` and drops the context; the monitor establishes a new
  one as soon as the service is back and reports the reader again; the next ``power_on`` works.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from smartcard import scard

from drivers.errors import DriverError, NoCard, ProtocolError, ReaderRemoved
from drivers.executor import LoopBridge, join_thread
from drivers.pcsc.client import socket_path
from drivers.pcsc.common import UNPOWER_CARD, PcscReader, no_reader_error
from drivers.pcsc.errors import S_SUCCESS, SERVICE_GONE, translate
from drivers.pcsc.features import CM_IOCTL_GET_FEATURE_REQUEST, parse_features
from drivers.pcsc.monitor import ReaderMonitor

__all__ = ["PyscardReader"]


class PyscardReader(PcscReader):
    """The pyscard backend (``pcsc://NAME?backend=pyscard``)."""

    backend = "pyscard"

    def __init__(self, **options: Any) -> None:
        """Create the reader (options of :class:`~drivers.pcsc.common.PcscReader`)."""
        super().__init__(**options)
        self._context: Any = None
        self._monitor: ReaderMonitor | None = None
        self._bridge: LoopBridge | None = None
        self._context_epoch = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        self._bridge = LoopBridge()
        self._monitor = ReaderMonitor(self.pattern, self._bridge.wrap(self._on_monitor))
        self._monitor.start()
        await self.executor.run(self._monitor.ready.wait, 10.0)
        if self._monitor.reader is None:
            await self._stop_monitor()
            raise no_reader_error(self.pattern, socket_path())

    async def _close(self) -> None:
        await self._stop_monitor()
        await self.executor.run(self._release_all)

    async def _stop_monitor(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.stop()
            await join_thread(monitor.thread)

    # -- blocking calls, on the executor thread --------------------------------------------

    def _ensure_context(self) -> Any:
        if self._context is not None and self._context_epoch != self._epoch:
            self._release_all()
        if self._context is None:
            self._context_epoch = self._epoch
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != S_SUCCESS:
                raise translate(hresult, "establish context", self.name)
            self._context = context
        return self._context

    def _fail(self, hresult: int, operation: str) -> DriverError:
        if hresult & 0xFFFFFFFF in SERVICE_GONE:
            self._release_all()
        return translate(hresult, operation, self.name)

    def _release_card(self) -> None:
        card, self._card = self._card, None
        if card is not None:
            scard.SCardDisconnect(card, UNPOWER_CARD)

    def _release_all(self) -> None:
        try:
            self._release_card()
        finally:
            context, self._context = self._context, None
            if context is not None:
                scard.SCardReleaseContext(context)

    def _connect_blocking(self) -> bytes:
        self._release_card()
        context = self._ensure_context()
        hresult, card, protocol = scard.SCardConnect(
            context, self.name, self._share, self._protocols
        )
        if hresult != S_SUCCESS:
            raise self._fail(hresult, "connect")
        self._card, self._active_protocol = card, protocol
        hresult, _reader, _state, _proto, atr = scard.SCardStatus(card)
        if hresult != S_SUCCESS:
            raise self._fail(hresult, "status")
        self._read_features(card)
        return bytes(atr)

    def _read_features(self, card: Any) -> None:
        hresult, answer = scard.SCardControl(card, CM_IOCTL_GET_FEATURE_REQUEST, [])
        if hresult == S_SUCCESS:
            # a reader with a broken feature list simply has no PIN pad for us
            with contextlib.suppress(DriverError):
                self.pin_pad = parse_features(bytes(answer))

    def _transmit_blocking(self, capdu: bytes) -> bytes:
        card = self._card
        if card is None:
            raise NoCard("card not connected", device=self.name)
        hresult, response = scard.SCardTransmit(card, self._active_protocol, list(capdu))
        if hresult != S_SUCCESS:
            raise self._transmit_failure(hresult)
        if len(response) < 2:
            raise self._no_status_word(card)
        return bytes(response)

    def _no_status_word(self, card: Any) -> DriverError:
        # A reader answering without SW1 SW2 lost the card link (vpcd does this when the
        # virtual ICC drops mid-command). The service sees the removal at its next presence
        # poll (400 ms in pcscd): wait for it, briefly, on this (device) thread.
        deadline = time.monotonic() + self.EMPTY_ANSWER_GRACE
        while time.monotonic() < deadline:
            status, *_ = scard.SCardStatus(card)
            if status != S_SUCCESS:
                error = self._fail(status, "transmit")
                if isinstance(error, ReaderRemoved | NoCard):
                    self._card = None
                return error
            time.sleep(0.02)
        return ProtocolError("card answered without a status word", device=self.name)

    def _transmit_failure(self, hresult: int) -> DriverError:
        error = self._fail(hresult, "transmit")
        card = self._card
        if card is not None and not isinstance(error, ReaderRemoved | NoCard):
            # a failed exchange may be the card leaving mid-command: ask the service
            status, *_ = scard.SCardStatus(card)
            if status != S_SUCCESS:
                error = self._fail(status, "transmit")
        if isinstance(error, ReaderRemoved | NoCard):
            self._card = None
        return error

    # -- hooks -------------------------------------------------------------------------------

    async def _connect(self) -> bytes:
        if not self.reader_present:
            raise ReaderRemoved("reader not present", device=self.name)
        return await self.executor.run(self._connect_blocking)

    async def _disconnect(self) -> None:
        await self.executor.run(self._release_card)

    async def _transceive(self, capdu: bytes) -> bytes:
        return await self.executor.run(self._transmit_blocking, capdu)

    def _control_blocking(self, code: int, data: bytes) -> bytes:
        card = self._card
        if card is None:
            raise NoCard("card not connected", device=self.name)
        hresult, answer = scard.SCardControl(card, code, list(data))
        if hresult != S_SUCCESS:
            raise self._fail(hresult, "control")
        return bytes(answer)

    async def _control(self, code: int, data: bytes) -> bytes:
        return await self.executor.run(self._control_blocking, code, data)
