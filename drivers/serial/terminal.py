"""The Concert-family :class:`~drivers.smart_terminal.SmartTerminal`: transactions, cancel,
late and duplicated answers, status.

:class:`TpeTerminal` is the template: ``pay``, ``refund``, ``void``, ``cancel``,
``last_transaction_status`` and ``end_of_day`` do the state checks, progress, cancel handling
and error mapping; a line class implements four small hooks (connect, disconnect, send the
request, receive the answer). :class:`~drivers.serial.line.SerialTerminal` runs the Concert link
over a serial line; :class:`~drivers.tcp_backend.TcpTerminal` runs Caisse-AP over TCP.

Defined outcomes:

* Not delivered (no ACK, line gone): :class:`TerminalUnavailable`, :class:`TerminalBusy` or
  :class:`RequestRejected` with ``delivered = False``; nothing happened at the terminal.
* Delivered, then an answer: a :class:`TransactionResult` (approved, declined, cancelled at the
  keypad, error status).
* Delivered, then silence past ``answer_timeout`` (:class:`~drivers.errors.Timeout`), the line
  lost (:class:`TerminalUnavailable`), or only bad frames / an answer that does not match
  (:class:`~drivers.protocols.errors.ProtocolError`, with field and offset): all with
  ``delivered = True``: resolve with ``last_transaction_status()`` or a reversal.
* :meth:`~TpeTerminal.cancel` while waiting: an answer already on its way within
  ``cancel_grace`` seconds wins (``extra["cancel_requested"]``); otherwise the result is
  CANCELLED with ``extra["confirmed"] = False``. An answer arriving later still is ACKed,
  kept as the last transaction with ``extra["late"] = True`` and announced as a
  ``late_answer`` :class:`TerminalEvent`, so an approved late payment can be reversed.
* The same answer twice (a terminal that missed our ACK): the copy is ACKed and dropped
  (``duplicate_answer`` event, counter).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

from drivers.base import DeviceState
from drivers.errors import DriverError, Timeout
from drivers.protocols.errors import ProtocolError
from drivers.serial.channel import LinkClosed
from drivers.serial.codecs import CaisseApCodec, ConcertV2Codec, kind_of
from drivers.serial.results import TerminalBusy, TerminalEvent, TerminalUnavailable
from drivers.smart_terminal import (
    EndOfDayResult,
    Money,
    Progress,
    ProgressCallback,
    ProgressStage,
    SmartTerminal,
    TransactionResult,
    TransactionStatus,
)

__all__ = ["TpeTerminal"]

_TOTALS = re.compile(r"([0-9]{1,9})/([0-9]{1,15})/([0-9]{1,15})")

EventCallback = Callable[[TerminalEvent], None]


class TpeTerminal(SmartTerminal):
    """Template of a Concert-family terminal driver (see the module docstring).

    Args:
        url: The device URL (messages, diagnostics, executor name).
        codec: The message set (Concert V2 or Caisse-AP).
        name: Device name for task names.
        answer_timeout: Seconds to wait for the answer once the request is delivered.
        cancel_grace: Seconds an in-flight answer may still take after :meth:`cancel`.
        keepalive: Idle seconds between line probes, ``None`` for no probe.
        on_event: Called on the loop with every :class:`TerminalEvent`.
        clock: Monotonic clock.
    """

    def __init__(self, *, url: str, codec: ConcertV2Codec | CaisseApCodec, name: str,
                 answer_timeout: float = 120.0, cancel_grace: float = 2.0,
                 keepalive: float | None = 30.0, on_event: EventCallback | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(url=url, clock=clock)
        self.codec = codec
        self.name = name
        self.answer_timeout = answer_timeout
        self.cancel_grace = cancel_grace
        self.keepalive = keepalive
        self.on_event = on_event
        self.alive: bool | None = None
        self.counters = {"late_answers": 0, "duplicate_answers": 0, "unexpected_answers": 0,
                         "unknown_outcomes": 0, "probes_failed": 0}
        self._txn = asyncio.Lock()
        self._cancel: asyncio.Event | None = None
        self._last: TransactionResult | None = None
        self._last_body: bytes | None = None
        self._abandoned: tuple[str, Money] | None = None
        self._probing = False
        self._no_late_answer = asyncio.Event()  # clear while a cancelled answer may come
        self._no_late_answer.set()

    # -- hooks ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def _connect(self) -> None:
        """Open the line (raise TerminalUnavailable)."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Release the line (idempotent)."""

    @abc.abstractmethod
    async def _send_request(self, body: bytes) -> None:
        """Deliver the request (raise TerminalUnavailable / TerminalBusy / RequestRejected)."""

    @abc.abstractmethod
    async def _receive_answer(self) -> bytes:
        """Wait for the answer body (raise TimeoutError, LinkClosed or ProtocolError)."""

    @abc.abstractmethod
    async def _keepalive_once(self) -> bool:
        """One keep-alive exchange on an idle line: True when the terminal answered."""

    async def _pause_idle(self) -> None:
        """Stop background line work before a transaction (default: none)."""

    def _resume_idle(self) -> None:
        """Restart background line work after a transaction (default: none)."""

    # -- Device hooks --------------------------------------------------------------------

    async def _open(self) -> None:
        await self._connect()
        self._resume_idle()

    async def _close(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        await self._pause_idle()
        await self._disconnect()

    def diagnostics(self) -> dict[str, Any]:
        """State for the status page and metrics (no card data)."""
        last = self._last
        return {**super().diagnostics(), "protocol": self.codec.name, "alive": self.alive,
                "in_transaction": self._txn.locked(), **self.counters,
                "last_status": last.status.value if last else None}

    async def wait_late_answer(self, within: float) -> bool:
        """Wait (at most ``within`` s) for the answer of a transaction the till cancelled.

        Returns:
            True when no such answer is pending any more (it came, or none was expected).
        """
        try:
            async with asyncio.timeout(within):
                await self._no_late_answer.wait()
        except TimeoutError:
            return False
        return True

    async def probe(self) -> None:
        """One keep-alive now (the supervisor's probe, :mod:`drivers.lifecycle`).

        Serial: ENQ, expecting ACK (or NAK: busy but there); TCP: a connection. While a
        transaction runs the terminal is talking, so the probe passes at once; a transaction
        asked for during a probe waits for it (a few link timeouts at most).

        Raises:
            TerminalUnavailable: The terminal did not answer.
            DeviceClosed: The terminal is not open.
        """
        self._check_open()
        if self._txn.locked():
            return
        async with self._txn:
            self._probing = True
            await self._pause_idle()
            try:
                alive = await self._keepalive_once()
            finally:
                self._probing = False
                if self.state is DeviceState.OPEN:
                    self._resume_idle()
        if not alive:
            raise TerminalUnavailable("no answer to the keep-alive", device=self.url)

    # -- SmartTerminal -------------------------------------------------------------------

    async def pay(self, amount: Money, *, reference: str | None = None,
                  progress: ProgressCallback | None = None) -> TransactionResult:
        """Debit ``amount`` (Concert V2 type 0, Caisse-AP CD 0); see the module docstring."""
        return await self._transact("payment", amount, reference, progress)

    async def refund(self, amount: Money, *, reference: str | None = None,
                     progress: ProgressCallback | None = None) -> TransactionResult:
        """Credit ``amount`` to the card (Concert V2 type 1, Caisse-AP CD 1)."""
        return await self._transact("refund", amount, reference, progress)

    async def void(self, amount: Money, *, reference: str | None = None,
                   progress: ProgressCallback | None = None) -> TransactionResult:
        """Cancel (void) an earlier transaction of ``amount`` (type 2, CD 2)."""
        return await self._transact("cancellation", amount, reference, progress)

    async def cancel(self) -> None:
        """Stop waiting for the current answer (no-op when idle); see the module docstring."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()

    async def last_transaction_status(self) -> TransactionResult | None:
        """The last transaction: asked of the terminal where the protocol allows (Caisse-AP
        duplicate, CD 3; ``extra["source"] = "terminal"``), else the driver's own record
        (Concert V2, late answers included; ``extra["source"] = "driver"``, which a restarted
        process does not have: None)."""
        if "status" not in self.codec.actions:
            last = self._last
            if last is None:
                return None
            return dataclasses.replace(last, extra={**last.extra, "source": "driver"})
        result = await self._transact("status", Money(0, "978"), None, None, record=False)
        return dataclasses.replace(result, extra={**result.extra, "source": "terminal"})

    async def end_of_day(self) -> EndOfDayResult:
        """Remittance (Caisse-AP CD "B"); Concert V2 has no such request.

        The public documents do not give the remittance answer's fields: totals are read from
        CF when it holds ``count/debits/refunds`` (the virtual terminal's layout), else only
        the status is known.
        """
        if "end_of_day" not in self.codec.actions:
            return EndOfDayResult(ok=False, message=f"{self.codec.name} has no end-of-day")
        result = await self._transact("end_of_day", Money(0, "978"), None, None, record=False)
        totals = _TOTALS.fullmatch(result.reference or "")
        if totals is None:
            return EndOfDayResult(ok=result.approved, message=result.message)
        count, debits, refunds = (int(group) for group in totals.groups())
        currency = result.amount.currency
        return EndOfDayResult(ok=result.approved, transactions=count, message=result.message,
                              totals={"debits": Money(debits, currency),
                                      "refunds": Money(refunds, currency)})

    # -- the template --------------------------------------------------------------------

    def _emit(self, kind: str, detail: str = "") -> None:
        if self.on_event is not None:
            self.on_event(TerminalEvent(kind, detail))

    async def _transact(self, action: str, amount: Money, reference: str | None,
                        progress: ProgressCallback | None, *,
                        record: bool = True) -> TransactionResult:
        self._check_open()
        if self._txn.locked() and not self._probing:
            raise TerminalBusy("a transaction is already running", device=self.url)
        if action not in self.codec.actions:
            raise ProtocolError(f"{self.codec.name} has no {action} request", field="action")

        def report(stage: ProgressStage, message: str = "") -> None:
            if progress is not None:
                progress(Progress(stage, message))

        async with self._txn:
            body = self.codec.request(action, amount, reference)
            self._cancel = asyncio.Event()
            await self._pause_idle()
            try:
                await self._send_request(body)
                self._abandoned = None
                self._no_late_answer.set()
                report(ProgressStage.SENT, action)
                report(ProgressStage.WAITING_CARD)
                result = await self._await_answer(action, amount)
            except DriverError as exc:
                if exc.delivered:
                    self.counters["unknown_outcomes"] += 1
                raise
            finally:
                self._cancel = None
                if self.state is DeviceState.OPEN:
                    self._resume_idle()
            if record:
                self._last = result
            report(ProgressStage.DONE, result.status.value)
            return result

    async def _await_answer(self, action: str, amount: Money) -> TransactionResult:
        assert self._cancel is not None
        recv = asyncio.create_task(self._receive_answer(), name=f"{self.name}.answer")
        stop = asyncio.create_task(self._cancel.wait(), name=f"{self.name}.cancel")
        cancel_requested = False
        try:
            await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not recv.done():
                cancel_requested = True
                self._emit("cancel_requested")
                # The answer may still come within the grace; whatever it raises is mapped
                # below like any answer's (never out of here as a line exception).
                await asyncio.wait({recv}, timeout=self.cancel_grace)
            if not recv.done():
                recv.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await recv
                self._abandoned = (action, amount)
                self._no_late_answer.clear()
                return TransactionResult(
                    status=TransactionStatus.CANCELLED, kind=kind_of(action), amount=amount,
                    message="cancelled by the till; a late answer is reported as an event",
                    extra={"action": action, "confirmed": False, "cancel_requested": True})
            return self._answer_result(recv, action, amount, cancel_requested)
        finally:
            stop.cancel()
            if not recv.done():
                recv.cancel()

    def _answer_result(self, recv: asyncio.Task[bytes], action: str, amount: Money,
                       cancel_requested: bool) -> TransactionResult:
        try:
            body = recv.result()
            result = self.codec.result(body, action, amount)
        except TimeoutError as exc:
            raise Timeout(f"no answer in {self.answer_timeout} s; outcome unknown",
                          device=self.url, delivered=True) from exc
        except LinkClosed as exc:
            raise TerminalUnavailable("line lost while waiting for the answer; outcome unknown",
                                      device=self.url, delivered=True) from exc
        except ProtocolError as exc:
            exc.delivered = True  # the parser does not know; the request was ACKed
            raise
        self._last_body = body
        if cancel_requested:
            result = dataclasses.replace(result, extra={**result.extra,
                                                        "cancel_requested": True})
        return result

    def _unsolicited(self, body: bytes) -> None:
        """An answer outside a transaction: a duplicate, a late answer, or noise."""
        if body == self._last_body:
            self.counters["duplicate_answers"] += 1
            self._emit("duplicate_answer")
            return
        if self._abandoned is None:
            # Not ours to wait for: perhaps the answer to a request of a process that died
            # (a daemon restarted while the terminal worked). Kept as the last transaction
            # when it reads as one, so recovery can match its reference; never acted on here.
            self.counters["unexpected_answers"] += 1
            self._emit("unexpected_answer")
            with contextlib.suppress(ProtocolError, ValueError):
                result = self.codec.result(body, "payment", Money(0, "978"))
                self._last_body = body
                self._last = dataclasses.replace(result, extra={**result.extra,
                                                                "unsolicited": True})
            return
        action, amount = self._abandoned
        try:
            result = self.codec.result(body, action, amount)
        except ProtocolError:
            self.counters["unexpected_answers"] += 1
            self._emit("unexpected_answer")
            return
        self._abandoned = None
        self._no_late_answer.set()
        self._last_body = body
        self._last = dataclasses.replace(
            result, extra={**result.extra, "late": True, "cancel_requested": True})
        self.counters["late_answers"] += 1
        self._emit("late_answer", result.status.value)

