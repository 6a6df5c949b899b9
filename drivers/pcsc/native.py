"""The native PC/SC backend: pcscd's socket on the event loop, no thread, no pyscard.

* Card operations use one :class:`~drivers.pcsc.client.PcscClient` (a pcscd connection with
  its context); monitoring uses :class:`~drivers.pcsc.native_monitor.NativeReaderMonitor` on a
  second one. An APDU costs one write and one loop wake-up: the same system calls as
  libpcsclite's blocking ``SCardTransmit``, without the loop-to-thread hop (benchmarks/pcsc.py).
* ``SCARD_SHARE_EXCLUSIVE`` by default; T=0 and T=1 from SCardConnect, 61xx / 6Cxx handled by
  the transport layer above (EMV 4.4 Book 1, 9.3).
* An exchange that times out or is cancelled closes the session's connection (pcscd then
  releases the card); the next ``power_on`` opens a new one. pcscd restart: the in-flight call
  fails with :class:`~drivers.errors.ReaderRemoved`, the monitor reconnects and reports the
  reader again, the next ``power_on`` works.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from drivers.errors import DriverError, NoCard, ProtocolError, ReaderRemoved, Timeout
from drivers.pcsc.client import PcscClient, socket_path
from drivers.pcsc.common import UNPOWER_CARD, PcscReader, no_reader_error
from drivers.pcsc.errors import S_SUCCESS, SERVICE_GONE, PcscdNotRunning, translate
from drivers.pcsc.features import CM_IOCTL_GET_FEATURE_REQUEST, parse_features
from drivers.pcsc.native_monitor import NativeReaderMonitor

__all__ = ["NativePcscReader"]

OPEN_PATIENCE = 10.0  # seconds for the first reader table
CONNECT_PATIENCE = 10.0  # seconds for a power on when exchanges have no timeout


class NativePcscReader(PcscReader):
    """The native backend (``pcsc://NAME``, or ``?backend=native``)."""

    backend = "native"

    def __init__(self, *, socket: str | None = None, **options: Any) -> None:
        """Create the reader.

        Args:
            socket: pcscd's socket (default: ``$PCSCLITE_CSOCK_NAME`` or the system one).
            options: Those of :class:`~drivers.pcsc.common.PcscReader`.
        """
        super().__init__(**options)
        self._socket = socket
        self._monitor: NativeReaderMonitor | None = None
        self._client: PcscClient | None = None
        self._context = 0
        self._session_epoch = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def _open(self) -> None:
        path = self._socket or socket_path()
        error = await asyncio.to_thread(no_reader_error, self.pattern, path)
        if isinstance(error, PcscdNotRunning):  # say so now, not after OPEN_PATIENCE
            raise error
        monitor = NativeReaderMonitor(self.pattern, self._on_monitor, socket=self._socket)
        self._monitor = monitor
        monitor.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OPEN_PATIENCE):
                await monitor.ready.wait()
        if monitor.error is not None or monitor.reader is None:
            await self._stop_monitor()
            if monitor.error is not None:
                raise monitor.error
            raise await asyncio.to_thread(no_reader_error, self.pattern, path)

    async def _close(self) -> None:
        await self._stop_monitor()
        await self._release_card()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _stop_monitor(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            await monitor.stop()

    # -- the session: one pcscd connection and its context -----------------------------------

    async def _session(self) -> PcscClient:
        client = self._client
        if client is not None and (client.closed or self._session_epoch != self._epoch):
            self._drop_session()
            client = None
        if client is None:
            client = await PcscClient.open(self._socket, device=self.name)
            try:
                self._context = await client.establish_context()
            except BaseException:
                client.close()
                raise
            self._client, self._session_epoch = client, self._epoch
        return client

    def _drop_session(self) -> None:
        client, self._client, self._card = self._client, None, None
        if client is not None:
            client.close()  # pcscd releases the context and any card handle with it

    def _fail(self, code: int, operation: str) -> DriverError:
        if code in SERVICE_GONE:
            self._drop_session()
        return translate(code, operation, self.name)

    async def _release_card(self) -> None:
        card, self._card = self._card, None
        client = self._client
        if card is not None and client is not None and not client.closed:
            with contextlib.suppress(DriverError):
                await client.disconnect(card, UNPOWER_CARD)

    # -- hooks -------------------------------------------------------------------------------

    async def _connect(self) -> bytes:
        if not self.reader_present:
            raise ReaderRemoved("reader not present", device=self.name)
        patience = self.timeout or CONNECT_PATIENCE
        try:
            async with asyncio.timeout(patience):
                return await self._power_on()
        except TimeoutError:
            self._drop_session()  # the connection is out of step, or pcscd is stuck
            raise Timeout(
                f"power on: no answer from pcscd in {patience} s", device=self.name
            ) from None

    async def _power_on(self) -> bytes:
        """Connect to the card, check it with pcscd, read its ATR and the reader's features."""
        await self._release_card()
        client = await self._session()
        try:
            card, protocol = await client.connect(
                self._context, self.name, self._share, self._protocols
            )
        except DriverError as exc:
            if isinstance(exc, ReaderRemoved):
                self._drop_session()
            raise
        self._card, self._active_protocol = card, protocol
        code = await client.status(card)
        if code != S_SUCCESS:
            raise self._fail(code, "status")
        atr = next((r.atr for r in await client.reader_states() if r.name == self.name), b"")
        if not atr:
            raise NoCard("card has no ATR", device=self.name)
        with contextlib.suppress(DriverError):  # a broken feature list: no PIN pad for us
            self.pin_pad = parse_features(await client.control(card, CM_IOCTL_GET_FEATURE_REQUEST))
        return atr

    async def _disconnect(self) -> None:
        await self._release_card()

    async def _transceive(self, capdu: bytes) -> bytes:
        client, card = self._client, self._card
        if client is None or card is None:
            raise NoCard("card not connected", device=self.name)
        try:
            code, response = await client.transmit(card, self._active_protocol, capdu)
        except BaseException:
            self._card = None  # service gone, or cancelled / timed out: connection closed
            raise
        if code != S_SUCCESS:
            raise await self._transmit_failure(client, card, code)
        if len(response) < 2:
            raise await self._no_status_word(client, card)
        return response

    async def _control(self, code: int, data: bytes) -> bytes:
        client, card = self._client, self._card
        if client is None or card is None:
            raise NoCard("card not connected", device=self.name)
        try:
            return await client.control(card, code, data)
        except BaseException:
            self._card = None  # as for an exchange: the connection may be out of step
            raise

    async def _transmit_failure(self, client: PcscClient, card: int, code: int) -> DriverError:
        error = self._fail(code, "transmit")
        if not isinstance(error, ReaderRemoved | NoCard) and not client.closed:
            # a failed exchange may be the card leaving mid-command: ask the service
            error = await self._card_status(client, card) or error
        return self._ended(error)

    async def _no_status_word(self, client: PcscClient, card: int) -> DriverError:
        # A reader answering without SW1 SW2 lost the card link (vpcd does this when the
        # virtual ICC drops mid-command); pcscd sees the removal at its next presence poll.
        deadline = time.monotonic() + self.EMPTY_ANSWER_GRACE
        while time.monotonic() < deadline and not client.closed:
            error = await self._card_status(client, card)
            if error is not None:
                return self._ended(error)
            await asyncio.sleep(0.02)
        return ProtocolError("card answered without a status word", device=self.name)

    async def _card_status(self, client: PcscClient, card: int) -> DriverError | None:
        """The error pcscd reports for the card handle now, if any."""
        status = await client.status(card)
        return None if status == S_SUCCESS else self._fail(status, "transmit")

    def _ended(self, error: DriverError) -> DriverError:
        """``error``, after dropping the card handle when it means the session is over."""
        if isinstance(error, ReaderRemoved | NoCard):
            self._card = None
        return error
