"""One lane: a till's reader, supervised, taking one payment at a time.

A payment (ARCHITECTURE.md, "a payment"): the till asks → CREATED → the reader shows PRESENT
CARD → a card comes (bounded wait; the till may cancel) → PROCESSING: the EMV kernel runs,
contact (EMV 4.4 Books 1-4) or contactless (EMV Contactless Books A/B, then REMOVE CARD before
going online) by the lane's interface or the ATR; the online step journals before it sends
(:mod:`gateway.payments.online`) → :func:`gateway.payments.settle.settle` journals the end. Every
wait has a time-out and every failure (card removed, reader gone, kernel error, time-out) ends
in a defined outcome with a reason; the lane is IDLE again afterwards.

The reader runs under :class:`drivers.lifecycle.DeviceSupervisor` (task ``lane[N].reader``):
not ready → retried with backoff; the payments run in task ``lane[N].payments``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drivers import CardReader, DeviceSupervisor, DriverError, Interface, open_device
from drivers.errors import DeviceUnavailable, ReaderRemoved
from gateway.acquirer import AcquirerClient, AcquirerHealth, seal_request
from gateway.daemon.config import LaneConfig, TimeoutsConfig
from gateway.journal import Journal
from gateway.payments.carddata import PanCapture
from gateway.payments.errors import LaneBusy, NotCancellable
from gateway.payments.online import JournaledAuthoriser, StanCounter
from gateway.payments.pinpad import pin_pad_for
from gateway.payments.reader import KernelRun, run_kernel
from gateway.payments.settle import LaneOutcome, Verdict, settle
from gateway.recovery.reconciler import Reconciler
from terminal.config import TerminalConfig
from terminal.currency import Currency, currency
from terminal.environment import Environment, TransactionRequest
from terminal.errors import EmvError

__all__ = ["Lane", "LaneBusy", "LaneServices", "LaneView", "NotCancellable", "Prompt"]

log = logging.getLogger("gateway.payments")


class Prompt(enum.StrEnum):
    """What the lane's display asks of the cardholder."""

    IDLE = "IDLE"
    PRESENT_CARD = "PRESENT CARD"
    PROCESSING = "PROCESSING"
    REMOVE_CARD = "REMOVE CARD"


@dataclass(slots=True)
class LaneServices:
    """What every lane shares (injected; the clock and randomness too)."""

    journal: Journal
    client: AcquirerClient
    health: AcquirerHealth
    reconciler: Reconciler
    kernel_config: TerminalConfig
    merchant_id: str
    terminal_id: str
    timeouts: TimeoutsConfig
    env: Callable[[], Environment] = Environment.system
    local_clock: Callable[[], datetime] = datetime.now
    clock: Callable[[], float] = time.time
    open_reader: Callable[[str], Awaitable[Any]] = open_device
    #: Called when a sale settles (its outbox row is written): wakes the head-office publisher.
    on_settled: Callable[[], None] = lambda: None


@dataclass(slots=True)
class LaneView:
    """A payment as the lane sees it (what the till reads; no card data beyond the mask)."""

    id: str
    lane: int
    amount: int
    currency: str
    reference: str | None
    started_at: float
    masked_pan: str | None = None
    interface: str | None = None
    outcome: LaneOutcome | None = None
    reason: str | None = None
    offline: bool = False
    #: The journal state as the lane last knew it (None: left to the reconciler after a defect).
    state: str | None = "CREATED"
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    cancellable: bool = True
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "id": self.id,
            "lane": self.lane,
            "amount": self.amount,
            "currency": self.currency,
            "reference": self.reference,
            "started_at": _iso(self.started_at),
            "masked_pan": self.masked_pan,
            "interface": self.interface,
            "outcome": None if self.outcome is None else self.outcome.value,
            "reason": self.reason,
            "offline": self.offline,
        }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class Lane:
    """A lane and its reader (see the module docstring)."""

    def __init__(self, config: LaneConfig, services: LaneServices) -> None:
        self.config = config
        self.id = config.id
        self.actor = f"lane[{config.id}]"
        self._s = services
        self._pinpad = pin_pad_for(config.pin_pad)
        self._kernel_config = services.kernel_config.model_copy(
            update={"pin_pad_present": self._pinpad is not None}
        )
        self._capk = self._kernel_config.capk_store()
        self._stan = StanCounter()
        self.supervisor: DeviceSupervisor[Any] = DeviceSupervisor(
            f"{self.actor}.reader", self._open_reader, clock=services.clock
        )
        self.supervisor.on_state_change = lambda _state: self._notify("reader", None)
        self.prompt = Prompt.IDLE
        #: The last prompts shown, oldest first: (time, prompt, payment id or None).
        self.prompt_history: deque[tuple[float, Prompt, str | None]] = deque(maxlen=64)
        self.current: LaneView | None = None
        self.last: LaneView | None = None
        self._queue: asyncio.Queue[LaneView] = asyncio.Queue()
        self._reserved = False
        #: Told of each change a till shows: ``("prompt" | "reader", None)`` or ``("payment",
        #: view)`` (gateway.till.hub); called on the loop, must not block or raise.
        self.listener: Callable[[str, LaneView | None], None] | None = None

    async def _open_reader(self) -> Any:
        return await self._s.open_reader(self.config.reader)

    def _notify(self, kind: str, view: LaneView | None) -> None:
        if self.listener is not None:
            try:
                self.listener(kind, view)
            except Exception:  # a listener's defect never stops a lane
                log.exception("%s: event listener failed", self.actor)

    def _show(self, prompt: Prompt) -> None:
        self.prompt = prompt
        current = self.current
        self.prompt_history.append(
            (self._s.clock(), prompt, None if current is None else current.id)
        )
        self._notify("prompt", None)

    # -- the till's side ----------------------------------------------------------------

    async def start_payment(
        self, *, amount: int, currency: Currency, reference: str | None
    ) -> LaneView:
        """Journal a sale (CREATED) and queue it for the reader.

        Raises:
            LaneBusy: A payment is in progress. gateway.journal errors on bad input.
        """
        if self._reserved or self.current is not None:
            raise LaneBusy(f"lane {self.id} is busy")
        self._reserved = True
        try:
            payment = await self._s.journal.create_sale(
                lane=str(self.id),
                amount=amount,
                currency=currency.alpha,
                actor=self.actor,
                till_reference=reference,
            )
            view = LaneView(
                id=payment.id,
                lane=self.id,
                amount=amount,
                currency=currency.alpha,
                reference=reference,
                started_at=self._s.clock(),
            )
            self.current = view
            self._queue.put_nowait(view)
            self._notify("payment", view)
            return view
        finally:
            self._reserved = False

    def cancel(self, payment_id: str) -> None:
        """Ask to cancel the payment while the lane waits for the card.

        Raises:
            NotCancellable: The card is already being processed, or the payment is over.
        """
        view = self.current
        if view is None or view.id != payment_id or not view.cancellable:
            raise NotCancellable("the payment can no longer be cancelled")
        view.cancel_requested.set()

    # -- the lane's task ------------------------------------------------------------------

    async def run_payments(self) -> None:
        """Task ``lane[N].payments``: take the queued payments one by one, forever."""
        while True:
            view = await self._queue.get()
            try:
                await self._process(view)
            except Exception:  # a defect or the journal failing: never a stuck lane
                log.exception("%s payment %s: failed; left to the reconciler", self.actor, view.id)
                view.outcome, view.reason, view.state = LaneOutcome.ERROR, "internal error", None
                self._s.reconciler.add(view.id)
            finally:
                view.cancellable = False
                self._show(Prompt.IDLE)
                self.last, self.current = view, None
                self._notify("payment", view)
                view.done.set()

    async def _process(self, view: LaneView) -> None:
        authoriser = JournaledAuthoriser(
            journal=self._s.journal,
            client=self._s.client,
            payment_id=view.id,
            actor=self.actor,
            terminal_id=self.config.terminal_id or self._s.terminal_id,
            merchant_id=self._s.merchant_id,
            stan=self._stan,
            clock=self._s.local_clock,
            health=self._s.health,
        )
        verdict, run, reason = Verdict.NONE, None, ""
        try:
            reader = await self._present_card(view)
            if reader is None:
                reason = (
                    "cancelled by the till"
                    if view.cancel_requested.is_set()
                    else (view.reason or "no card presented in time")
                )
            else:
                run = await self._run_card(view, reader, authoriser)
                verdict, reason = run.verdict, run.reason
        except (DriverError, EmvError, TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            if isinstance(exc, DeviceUnavailable | ReaderRemoved):
                self.supervisor.report_failure(exc)
            verdict = Verdict.FAILED_IN_FLIGHT
            log.warning("%s payment %s: %s", self.actor, view.id, reason)
        sealed = None
        if verdict is Verdict.APPROVED and run is not None and run.online_request is not None:
            wire = authoriser.build_request(run.online_request)
            sealed = None if wire is None else seal_request(wire)
        settled = await settle(
            self._s.journal,
            self._s.reconciler,
            view.id,
            verdict=verdict,
            arc=None if run is None else run.arc,
            masked_pan=None if run is None else run.masked_pan,
            aid=None if run is None else run.aid,
            sealed=sealed,
            actor=self.actor,
            reason=reason or "no decision",
        )
        view.outcome, view.offline, view.reason = settled.outcome, settled.offline, reason
        view.masked_pan, view.state = settled.payment.masked_pan, settled.payment.state.value
        if settled.outcome is LaneOutcome.APPROVED:
            self._s.on_settled()
        log.info("%s payment %s: %s (%s)", self.actor, view.id, settled.payment.state, reason)

    async def _present_card(self, view: LaneView) -> CardReader | None:
        self._show(Prompt.PRESENT_CARD)
        timeouts = self._s.timeouts
        try:
            async with asyncio.timeout(timeouts.reader_ready):
                reader: CardReader = await self.supervisor.wait_ready()
        except TimeoutError:
            view.reason = "reader not ready"
            return None
        card = asyncio.create_task(reader.wait_for_card(), name=f"{self.actor}.wait_card")
        cancel = asyncio.create_task(view.cancel_requested.wait(), name=f"{self.actor}.cancel")
        try:
            await asyncio.wait(
                {card, cancel}, timeout=timeouts.card, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (card, cancel):
                task.cancel()
            await asyncio.gather(card, cancel, return_exceptions=True)
        if view.cancel_requested.is_set():
            with contextlib.suppress(DriverError, OSError):
                await reader.power_off()  # a card that came with the cancel
            return None
        view.cancellable = False
        if not card.done() or card.cancelled():
            return None
        card.result()  # a reader failure while waiting raises here
        return reader

    async def _run_card(
        self, view: LaneView, reader: CardReader, authoriser: JournaledAuthoriser
    ) -> KernelRun:
        self._show(Prompt.PROCESSING)
        interface = self.config.interface
        if interface == "auto":
            contactless = reader.interface is Interface.CONTACTLESS
            interface = "contactless" if contactless else "contact"
        view.interface = interface
        capture = PanCapture(reader)
        authoriser.pan_source = lambda: capture.pan
        request = TransactionRequest(
            amount=view.amount,
            currency_code=_numeric(view.currency),
            currency_exponent=_exponent(view.currency),
        )
        try:
            async with asyncio.timeout(self._s.timeouts.transaction):
                return await run_kernel(
                    interface,
                    capture,
                    config=self._kernel_config,
                    capk=self._capk,
                    request=request,
                    env=self._s.env(),
                    online=authoriser,
                    pinpad=self._pinpad,
                    on_remove_card=self._remove_card(reader),
                )
        finally:
            with contextlib.suppress(DriverError, OSError):
                await reader.power_off()

    def _remove_card(self, reader: CardReader) -> Callable[[], Awaitable[None]]:
        async def remove() -> None:
            self._show(Prompt.REMOVE_CARD)  # stays until the outcome (Book A, 9.4)
            with contextlib.suppress(DriverError, OSError):
                await reader.power_off()

        return remove

    # -- status -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The lane's part of the daemon snapshot (docs/daemon.md)."""
        view = self.current
        payment = None
        if view is not None:
            payment = {
                "id": view.id,
                "amount": view.amount,
                "currency": view.currency,
                "masked_pan": view.masked_pan,
                "started_at": _iso(view.started_at),
                "state": "IN_PROGRESS",
            }
        device = self.supervisor.diagnostics()
        for key in ("since", "last_success", "last_error_at"):
            device[key] = _iso(device.get(key))
        return {
            "id": self.id,
            "name": self.config.display_name,
            "reader": self.config.reader,
            "interface": self.config.interface,
            "device": device,
            "prompt": self.prompt.value,
            "payment": payment,
            "last": None if self.last is None else self.last.to_json(),
        }


def _numeric(alpha: str) -> int:
    return currency(alpha).numeric


def _exponent(alpha: str) -> int:
    return currency(alpha).exponent
