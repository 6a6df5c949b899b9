"""One lane: a till's device (card reader or smart terminal), supervised, one payment at a time.

The till asks (:meth:`Lane.start_payment`): CREATED is journaled and the payment queued; the
lane's task ``lane[N].payments`` hands each to the one payment session
(:class:`gateway.payments.session.PaymentSession`), which picks the device adapter by what the
opened device is and journals the end through the policy table. Every wait is bounded and every
failure ends in a defined outcome; the lane is IDLE again afterwards.

A co-badged card's brand offer (:class:`gateway.payments.session.BrandOffer`, opened by the
reader adapter) is answered by the till through :meth:`Lane.choose_brand`.

The device runs under :class:`drivers.lifecycle.DeviceSupervisor` (task ``lane[N].reader``):
not ready -> retried with backoff. A smart terminal (TPE) is also probed (keep-alive, every
``keepalive`` seconds of its URL, 30 by default): one that stops answering goes not ready. Each
time a terminal is set up, and right after a payment of its lane ends in doubt, the lane's
:class:`~gateway.payments.terminal_recovery.TerminalRecovery` settles what the terminal's last
transaction tells (docs/tpe.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drivers import CardReader, DeviceSupervisor, DriverError, SmartTerminal, open_device
from drivers.errors import DeviceUnavailable
from drivers.registry import parse_url
from gateway.acquirer import AcquirerClient, AcquirerHealth
from gateway.daemon.config import LaneConfig, TimeoutsConfig
from gateway.day.limits import OfflineGate
from gateway.errors import GatewayError
from gateway.journal import Journal
from gateway.journal.audit import AuditNote
from gateway.payments.errors import LaneBusy, NoBrandChoice, NotCancellable, UnsupportedDevice
from gateway.payments.online import JournaledAuthoriser, StanCounter
from gateway.payments.pinpad import pin_pad_for
from gateway.payments.reader import KernelSetup, ReaderAdapter
from gateway.payments.session import (
    BrandOffer,
    DeviceAdapter,
    LaneView,
    PaymentSession,
    Prompt,
    TillEvent,
)
from gateway.payments.settle import LaneOutcome
from gateway.payments.smart_terminal import TERMINAL_SCHEMES, SmartTerminalAdapter
from gateway.payments.terminal_recovery import TerminalRecovery
from gateway.recovery.reconciler import Reconciler
from terminal import Environment, TerminalConfig
from terminal.currency import Currency, currency

__all__ = [
    "BrandOffer",
    "Lane",
    "LaneBusy",
    "LaneServices",
    "LaneView",
    "NoBrandChoice",
    "NotCancellable",
    "Prompt",
]

log = logging.getLogger("gateway.payments")


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
    #: The store-and-forward limits (docs/day.md); None: only the kernel's floor limits.
    offline_gate: OfflineGate | None = None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class Lane:
    """A lane and its reader (see the module docstring)."""

    def __init__(self, config: LaneConfig, services: LaneServices) -> None:
        self.config = config
        self.id = config.id
        self.actor = f"lane[{config.id}]"
        self._s = services
        pinpad = pin_pad_for(config.pin_pad)
        kernel_config = services.kernel_config.model_copy(
            update={"pin_pad_present": pinpad is not None}
        )
        self._kernel = KernelSetup(
            config=kernel_config,
            capk=kernel_config.capk_store(),
            pinpad=pinpad,
            interface=config.interface,
            env=services.env,
        )
        self._stan = StanCounter()
        self.terminal_recovery = TerminalRecovery(
            lane=str(config.id), journal=services.journal, on_settled=services.on_settled,
            void_timeout=services.timeouts.transaction,
        )
        self.supervisor: DeviceSupervisor[Any] = DeviceSupervisor(
            f"{self.actor}.reader",
            self._open_reader,
            clock=services.clock,
            on_ready=self._device_ready,
            probe=self._probe if _is_terminal(config.reader) else None,
            probe_interval=_keepalive(config.reader),
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
        self.session = PaymentSession(
            actor=self.actor,
            journal=services.journal,
            supervisor=self.supervisor,
            adapter_for=self._adapter_for,
            authoriser_for=self._authoriser_for,
            recover=services.reconciler.add,
            show=self._show,
            timeouts=services.timeouts,
            on_settled=lambda: services.on_settled,
            tell=self._tell,
            offline_gate=services.offline_gate,
        )

    async def _open_reader(self) -> Any:
        return await self._s.open_reader(self.config.reader)

    @property
    def journal(self) -> Journal:
        """The journal the lane writes to."""
        return self._s.journal

    @property
    def timeouts(self) -> TimeoutsConfig:
        """The lane's bounded waits."""
        return self._s.timeouts

    async def _device_ready(self, device: Any) -> None:
        """A terminal just set up: settle its lane's payments in doubt before any other
        (but not the one the lane is still settling itself: it asks right after).

        Raises:
            DriverError: The terminal could not be asked (the supervisor retries).
        """
        if not isinstance(device, SmartTerminal):
            return
        busy = self.current
        try:
            await self.terminal_recovery.resolve(
                device, skip=None if busy is None or busy.done.is_set() else busy.id)
        except GatewayError as exc:  # the journal refused: not ready, retried with backoff
            log.exception("%s: terminal recovery failed", self.actor)
            raise DeviceUnavailable(f"terminal recovery failed: {exc}",
                                    device=self.actor) from exc

    async def _probe(self, device: Any) -> None:
        """The keep-alive of a smart terminal (a card reader has its own monitor)."""
        probe = getattr(device, "probe", None)
        if isinstance(device, SmartTerminal) and probe is not None:
            await probe()

    async def _settle_in_doubt(self, view: LaneView, passes: int) -> None:
        """A terminal payment just left in doubt: have the terminal settle it now, while the
        lane is still busy with it (no other payment can start), and tell the till."""
        if view.state != "UNKNOWN" or view.interface != "terminal":
            return
        timeouts = self._s.timeouts
        for attempt in range(2):  # the device now, or the one its next setup opens
            device = self.supervisor.device
            try:
                if attempt:
                    async with asyncio.timeout(timeouts.reader_ready):
                        device = await self.supervisor.wait_ready()
                if not isinstance(device, SmartTerminal):
                    raise DeviceUnavailable("terminal being set up again", device=self.actor)
                wait_late = getattr(device, "wait_late_answer", None)
                if wait_late is not None:  # a cancelled transaction's answer may still come
                    await wait_late(timeouts.transaction)
                await self.terminal_recovery.resolve(device)
                break
            except TimeoutError:
                log.warning("%s payment %s: terminal not back, recovery later", self.actor,
                            view.id)
                return
            except DriverError as exc:
                if exc.delivered:
                    break  # asked, and it could not tell: for the manager
                # Lost, or it cannot tell yet: the device is set up again (not ready
                # meanwhile: no other payment); its setup's pass skips this payment, which is
                # asked right after, on that device.
                self.supervisor.report_failure(exc)
                if attempt or not await self.terminal_recovery.wait_pass(
                        passes, timeouts.reader_ready):
                    log.warning("%s payment %s: terminal recovery later (%s)", self.actor,
                                view.id, exc)
                    return
        payment = await self._s.journal.get(view.id)
        view.state = payment.state.value
        if payment.state.value == "COMPLETED":
            view.outcome, view.reason = LaneOutcome.APPROVED, "approved by the terminal"
            view.masked_pan = payment.masked_pan
        elif payment.state.value == "DECLINED":
            events = await self._s.journal.events(view.id)
            view.outcome, view.reason = LaneOutcome.DECLINED, events[-1].reason
            if "cancelled" in (view.reason or ""):
                view.outcome = LaneOutcome.CANCELLED

    def _notify(self, kind: str, view: LaneView | None) -> None:
        if self.listener is not None:
            try:
                self.listener(kind, view)
            except Exception:  # a listener's defect never stops a lane
                log.exception("%s: event listener failed", self.actor)

    def _tell(self, event: TillEvent, view: LaneView) -> None:
        self._notify(event, view)

    def _show(self, prompt: Prompt) -> None:
        self.prompt = prompt
        current = self.current
        self.prompt_history.append(
            (self._s.clock(), prompt, None if current is None else current.id)
        )
        self._notify("prompt", None)

    # -- the till's side ----------------------------------------------------------------

    async def start_payment(
        self,
        *,
        amount: int,
        currency: Currency,
        reference: str | None,
        requested_by: str | None = None,
        items: list[dict[str, Any]] | None = None,
        audit: AuditNote | None = None,
    ) -> LaneView:
        """Journal a sale (CREATED) with its basket lines, and queue it for the reader.

        ``requested_by`` (``till:NAME``) is the actor of the sale's first journal event; the
        lane (``lane[N]``) is the actor of the steps it performs itself. ``audit`` is the
        till's audit row, committed with the sale (``Journal.create_sale(audit=...)``).

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
                actor=requested_by or self.actor,
                till_reference=reference,
                items=items,
                audit=audit,
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

    def cancel(self, payment_id: str, *, requested_by: str | None = None) -> None:
        """Ask to cancel the payment while the lane waits for the card.

        ``requested_by`` (``till:NAME``) is named in the cancellation's journal reason.

        Raises:
            NotCancellable: The card is already being processed, or the payment is over.
        """
        view = self.current
        if view is None or view.id != payment_id or not view.cancellable:
            raise NotCancellable("the payment can no longer be cancelled")
        view.cancelled_by = requested_by or "the till"
        view.cancel_requested.set()

    def choose_brand(self, payment_id: str, aid: str) -> str:
        """The till's (or customer display's) brand choice for the open offer (EU IFR art. 8).

        Returns:
            The AID taken (upper-case hex).

        Raises:
            NoBrandChoice: no offer is open for this payment (``offered`` False), or ``aid`` is
                not one of its brands (``offered`` True).
        """
        view = self.current
        offer = None if view is None or view.id != payment_id else view.brand_offer
        if offer is None or offer.chosen.done():
            raise NoBrandChoice("no brand choice is open for this payment", offered=False)
        wanted = aid.strip().upper()
        if wanted not in {brand["aid"] for brand in offer.brands}:
            raise NoBrandChoice("the brand chosen was not offered", offered=True)
        offer.chosen.set_result(wanted)
        return wanted

    # -- the lane's task ------------------------------------------------------------------

    async def run_payments(self) -> None:
        """Task ``lane[N].payments``: take the queued payments one by one, forever."""
        while True:
            view = await self._queue.get()
            try:
                passes = self.terminal_recovery.passes  # setups' recovery passes so far
                await self.session.run(view, currency(view.currency))
                await self._settle_in_doubt(view, passes)
            except Exception:  # a defect or the journal failing: never a stuck lane
                log.exception("%s payment %s: failed; left to recovery", self.actor, view.id)
                view.outcome, view.reason, view.state = LaneOutcome.ERROR, "internal error", None
                self.session.hand_off(view.id)
            finally:
                view.cancellable = False
                self._show(Prompt.IDLE)
                self.last, self.current = view, None
                self._notify("payment", view)
                view.done.set()

    def _adapter_for(self, device: Any) -> DeviceAdapter:
        """The adapter for what the lane's device URL opened."""
        if isinstance(device, SmartTerminal):
            return SmartTerminalAdapter(device, self.terminal_recovery)
        if isinstance(device, CardReader):
            return ReaderAdapter(device, self._kernel)
        raise UnsupportedDevice(type(device).__name__)

    def _authoriser_for(self, payment_id: str) -> JournaledAuthoriser:
        return JournaledAuthoriser(
            journal=self._s.journal,
            client=self._s.client,
            payment_id=payment_id,
            actor=self.actor,
            terminal_id=self.config.terminal_id or self._s.terminal_id,
            merchant_id=self._s.merchant_id,
            stan=self._stan,
            clock=self._s.local_clock,
            health=self._s.health,
        )

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
            #: Terminal payments the terminal could not settle: UNKNOWN, for the manager.
            "for_manager": tuple(self.terminal_recovery.for_manager),
        }


def _is_terminal(url: str) -> bool:
    """True when a device URL names a smart terminal (kept alive by probes)."""
    try:
        return parse_url(url).scheme in TERMINAL_SCHEMES
    except DriverError:
        return False


def _keepalive(url: str) -> float:
    """The keep-alive period of a device URL (``keepalive=`` seconds; 30 when absent or 0)."""
    try:
        value = float(parse_url(url).params.get("keepalive", "30"))
    except (ValueError, DriverError):
        return 30.0
    return value if value > 0 else 30.0
