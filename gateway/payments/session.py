"""The one payment session: a payment from the till's request to settlement, for every device.

A lane (:mod:`gateway.payments.lane`) journals the till's request (CREATED) and queues it; the
session then runs it, whatever the lane's device is:

1. wait (bounded) for the lane's device to be ready;
2. pick the device adapter by what the opened device *is*: a :class:`drivers.CardReader` is
   driven through our EMV kernel (:class:`gateway.payments.reader.ReaderAdapter`), a
   :class:`drivers.SmartTerminal` runs EMV itself
   (:class:`gateway.payments.smart_terminal.SmartTerminalAdapter`);
3. the adapter takes the payment and returns one typed :class:`DeviceResult`; on the way it
   journals, through :class:`gateway.payments.online.JournaledAuthoriser`, every step before
   the side effect it announces (CARD_READ, AUTH_REQUESTED before anything can move money,
   then the answer);
4. :func:`gateway.payments.settle.settle` looks up the end in the one policy table and
   journals it; what is left in doubt goes to recovery.

A failure of the device, the card or the kernel (an exception) is a :class:`Verdict`
``IN_DOUBT``: the policy table decides by the journal state whether it was (UNKNOWN) or was not
(CANCELLED) in flight.

Inside a card reader's payment the session gives the adapter two more ways to talk to the till
(:attr:`PaymentContext.tell`): a co-badged card's brand offer (a ``brand`` event,
:class:`BrandOffer`, answered by the lane's ``choose_brand``) and a wrong online PIN asked again
(a ``payment`` event with the reason "wrong PIN, try again" and the prompt
:attr:`Prompt.WRONG_PIN`).

The adapter interface (:class:`DeviceAdapter`) is deliberately small: one coroutine
``take_payment(context) -> DeviceResult`` and one flag saying who can resolve a payment left
in doubt. Refunds, cancel races and end of day at a smart terminal extend the adapter, not the
session.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from drivers import DeviceSupervisor, DriverError
from drivers.errors import DeviceUnavailable, ReaderRemoved
from gateway.acquirer import AuthorisationRequest, seal_request
from gateway.daemon.config import TimeoutsConfig
from gateway.day.limits import OfflineGate
from gateway.journal import Journal
from gateway.payments.errors import PaymentError
from gateway.payments.flag import Flag
from gateway.payments.online import JournaledAuthoriser
from gateway.payments.settle import Admission, LaneOutcome, Settled, Verdict, settle
from terminal import EmvError
from terminal.currency import Currency

__all__ = [
    "BrandOffer",
    "DeviceAdapter",
    "DeviceResult",
    "LaneView",
    "PaymentContext",
    "PaymentSession",
    "Prompt",
    "TillEvent",
]

log = logging.getLogger("gateway.payments")


class Prompt(enum.StrEnum):
    """What the lane's display asks of the cardholder."""

    IDLE = "IDLE"
    PRESENT_CARD = "PRESENT CARD"
    PROCESSING = "PROCESSING"
    REMOVE_CARD = "REMOVE CARD"
    WRONG_PIN = "WRONG PIN, TRY AGAIN"


#: What an adapter may tell the till's event stream about its payment (gateway.till.hub).
TillEvent = Literal["payment", "brand"]


@dataclass(slots=True)
class BrandOffer:
    """The brands of a co-badged card offered to the cardholder, and the answer awaited.

    Attributes:
        brands: ``{"aid": hex, "label": name}`` in the card's priority order.
        default: The merchant's default AID (the configured brand priority), or None when
            every brand needs the cardholder's confirmation.
        timeout: Seconds the lane waits for the choice.
        chosen: Set with the chosen AID by the lane's ``choose_brand``.
    """

    brands: list[dict[str, str]]
    default: str | None
    timeout: float
    chosen: asyncio.Future[str] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """What the till's ``brand`` event carries."""
        return {"brands": self.brands, "default": self.default, "timeout": self.timeout}


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
    #: Why the store-and-forward limits asked the card for no offline approval, if they did.
    offline_refusal: str | None = None
    #: The journal state as the lane last knew it (None: left to the reconciler after a defect).
    state: str | None = "CREATED"
    cancel_requested: Flag = field(default_factory=Flag)
    #: Who asked to cancel (``till:NAME``), for the journal's reason.
    cancelled_by: str = "the till"
    cancellable: bool = True
    done: Flag = field(default_factory=Flag)
    #: The open brand choice of a co-badged card, if any.
    brand_offer: BrandOffer | None = None
    #: How the brand was chosen (journaled with CARD_READ); empty for a one-brand card.
    brand_note: str = ""

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


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """What a device adapter hands the session: typed, masked, the same for every device.

    Attributes:
        verdict: Approved, declined, stopped, failed or in doubt.
        reason: In plain words, for the journal and the till (no card data).
        interface: ``contact``, ``contactless`` or ``terminal``.
        arc: The Authorisation Response Code (8A) the device ended with, if any.
        masked_pan: First 6 + last 4 digits at most.
        aid: The selected AID, upper-case hex, if known.
        forward: For an offline approval by the card: the authorisation request to seal for
            store-and-forward (it holds the PAN; the session seals it and drops it).
    """

    verdict: Verdict
    reason: str
    interface: str | None = None
    arc: bytes | None = None
    masked_pan: str | None = None
    aid: str | None = None
    forward: AuthorisationRequest | None = field(default=None, repr=False)


@dataclass(slots=True)
class PaymentContext:
    """What the session gives an adapter for one payment.

    Attributes:
        view: The payment as the till sees it (amount, cancel request, cancellable flag).
        currency: The payment's currency.
        steps: The journal-first steps of the authorisation: the kernel's online authoriser,
            and the smart terminal's before-pay / answered steps.
        show: Shows a prompt on the lane (and tells the till's event stream).
        timeouts: The lane's bounded waits.
        tell: Tells the till's event stream of a change of this payment: ``payment`` (its
            reason or state changed) or ``brand`` (a brand offer opened).
        offline_allowed: See the attribute.
    """

    view: LaneView
    currency: Currency
    steps: JournaledAuthoriser
    show: Callable[[Prompt], None]
    timeouts: TimeoutsConfig
    tell: Callable[[TillEvent], None] = lambda _event: None
    #: False when the store-and-forward limits would refuse an offline approval of this sale:
    #: a card reader then runs the kernel with no floor limit (docs/day.md).
    offline_allowed: bool = True


class DeviceAdapter(Protocol):
    """One device kind's part of a payment (see the module docstring)."""

    #: True when the acquirer knows this device's payments under their idempotency key, so the
    #: reconciler can resolve one left in doubt; False for a smart terminal (its own host).
    acquirer_recoverable: bool

    async def take_payment(self, context: PaymentContext) -> DeviceResult:
        """Take the payment of ``context`` on the device; expected outcomes are values.

        Raises:
            DriverError, EmvError, TimeoutError, OSError: the device could not be driven
                (the session makes it a verdict ``IN_DOUBT``).
        """
        ...


class PaymentSession:
    """Runs a lane's payments, one at a time (see the module docstring).

    Args:
        actor: The lane's name in the journal (``lane[1]``).
        journal: The journal.
        supervisor: The lane's device supervisor (ready device, failure reports).
        adapter_for: The adapter for an opened device (raises UnsupportedDevice).
        authoriser_for: The journal-first steps for a payment id.
        recover: Takes a payment in doubt that the acquirer can resolve (the reconciler).
        show: The lane's prompt.
        timeouts: The lane's bounded waits.
        on_settled: Called when a sale settles approved (wakes the outbox publisher).
        tell: Tells the till's event stream of a change of a payment (:data:`TillEvent`).
        offline_gate: The store-and-forward limits (gateway.day.limits.OfflineGate), if any.
    """

    def __init__(
        self,
        *,
        actor: str,
        journal: Journal,
        supervisor: DeviceSupervisor[Any],
        adapter_for: Callable[[Any], DeviceAdapter],
        authoriser_for: Callable[[str], JournaledAuthoriser],
        recover: Callable[[str], None],
        show: Callable[[Prompt], None],
        timeouts: TimeoutsConfig,
        on_settled: Callable[[], Callable[[], None]],
        tell: Callable[[TillEvent, LaneView], None] = lambda _event, _view: None,
        offline_gate: OfflineGate | None = None,
    ) -> None:
        self._gate = offline_gate
        self._actor = actor
        self._journal = journal
        self._supervisor = supervisor
        self._adapter_for = adapter_for
        self._authoriser_for = authoriser_for
        self._recover = recover
        self._show = show
        self._timeouts = timeouts
        self._on_settled = on_settled
        #: Who resolves the current payment if it is left in doubt (by its device kind).
        self._hand_off = recover
        self._tell = tell

    async def run(self, view: LaneView, currency: Currency) -> Settled:
        """Take one payment to its journaled end; the view is updated for the till."""
        steps = self._authoriser_for(view.id)
        steps.card_read_reason = lambda: view.brand_note  # a co-badged card's brand choice
        steps.card_read_interface = lambda: view.interface  # set by the device adapter
        adapter: DeviceAdapter | None = None
        self._hand_off = self._recover
        try:
            self._show(Prompt.PRESENT_CARD)
            device = await self._ready_device()
            if device is None:
                result = DeviceResult(Verdict.FAILED, "reader not ready")
            else:
                adapter = self._adapter_for(device)
                if not adapter.acquirer_recoverable:
                    self._hand_off = self._left_to_device
                context = PaymentContext(
                    view,
                    currency,
                    steps,
                    self._show,
                    self._timeouts,
                    lambda event: self._tell(event, view),
                    offline_allowed=await self._offline_allowed(view),
                )
                result = await adapter.take_payment(context)
        except (DriverError, EmvError, PaymentError, TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            if isinstance(exc, DeviceUnavailable | ReaderRemoved):
                self._supervisor.report_failure(exc)
            log.warning("%s payment %s: %s", self._actor, view.id, reason)
            result = DeviceResult(Verdict.IN_DOUBT, reason, view.interface)
        sealed = None
        if result.verdict is Verdict.APPROVED and result.forward is not None:
            sealed = seal_request(result.forward)
        settled = await settle(
            self._journal,
            view.id,
            verdict=result.verdict,
            arc=result.arc,
            masked_pan=result.masked_pan,
            aid=result.aid,
            sealed=sealed,
            actor=self._actor,
            reason=result.reason or "no decision",
            recover=self._hand_off,
            card_read_reason=view.brand_note,
            interface=result.interface or view.interface,
            admit=self._admission(result),
            approval=steps.approval,
        )
        view.outcome, view.offline, view.reason = settled.outcome, settled.offline, result.reason
        if settled.refusal is not None:  # the card approved offline, the limits refused it
            view.reason = f"offline limit: {settled.refusal}"
        elif view.offline_refusal and "unable to go online" in result.reason:
            view.reason = f"offline limit: {view.offline_refusal} ({result.reason})"
        view.masked_pan = settled.payment.masked_pan or result.masked_pan
        view.state = settled.payment.state.value
        if settled.outcome is LaneOutcome.APPROVED:
            self._on_settled()()
        log.info("%s payment %s: %s (%s)", self._actor, view.id, view.state, result.reason)
        return settled

    async def _offline_allowed(self, view: LaneView) -> bool:
        """Would the store-and-forward limits take an offline approval of this sale now?
        (Not atomic: it only chooses the kernel's floor limits; :meth:`_admission` decides.)"""
        if self._gate is None:
            return True
        exposure = await self._journal.offline_exposure()
        decision = self._gate.precheck(
            amount=view.amount, currency=view.currency, exposure=exposure
        )
        if not decision.allowed:
            view.offline_refusal = f"{decision.refusal}: {decision.detail}"
        return decision.allowed

    def _admission(self, result: DeviceResult) -> Admission | None:
        if self._gate is None:
            return None
        online_pin = result.forward is not None and result.forward.pin is not None
        admission: Admission = self._gate.admission(online_pin=online_pin)
        return admission

    def hand_off(self, payment_id: str) -> None:
        """Leave a payment the session could not finish (a defect) to whoever can resolve it."""
        self._hand_off(payment_id)

    async def _ready_device(self) -> Any:
        """The lane's device once ready, or None after ``timeouts.reader_ready``."""
        device = self._supervisor.ready_device
        if device is not None:
            return device  # ready now: no wait to bound (no timer armed)
        try:
            async with asyncio.timeout(self._timeouts.reader_ready):
                return await self._supervisor.wait_ready()
        except TimeoutError:
            return None

    def _left_to_device(self, payment_id: str) -> None:
        log.warning(
            "%s payment %s: left in doubt for the terminal's own recovery", self._actor, payment_id
        )
