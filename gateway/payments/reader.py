"""The card-reader adapter: a payment on a PC/SC (or simulated) reader, run by our EMV kernel.

For the session (:mod:`gateway.payments.session`) it waits for a card (bounded; the till may
cancel meanwhile), then runs the kernel on the reader's card channel:

* contact: :func:`terminal.run_contact_transaction` (EMV 4.4 Books 1-4) with the payment's
  journal-first online step; the card stays in the reader until the second GENERATE AC;
* contactless: :func:`terminal.run_contactless_payment` (EMV Contactless Books A/B): the kernel
  itself follows a restart, shows "remove card" before going online (Book A, 9.4) and runs the
  online step, so a contactless payment has the same shape as a contact one.

Within the card session (:meth:`ReaderAdapter._run_kernel`):

* a co-badged card's brand is asked of the till (:func:`gateway.payments.cobadge.brand_chooser`,
  the kernel's application choice);
* ``pin_pad = "reader"``: the lane's :class:`gateway.payments.pinpad.ReaderPinPad` is given this
  reader, whose PC/SC Part 10 keypad takes an offline plaintext PIN (VERIFY_PIN_DIRECT);
* a wrong online PIN (55) on a contact card with entries left
  (:func:`gateway.payments.settle.may_retry_pin`): the authoriser journals AUTH_REQUESTED ->
  CARD_READ, the lane shows WRONG PIN, TRY AGAIN, the till gets a ``payment`` event with that
  reason, and the kernel runs again on the same card and payment (a new ARQC, a new PIN block).

Both return a :class:`terminal.TransactionResult` that carries what settlement needs: the
decision, 8A, the masked PAN, the AID, the final ICC data and the PAN (for the sealed
store-and-forward request of an offline approval only). Nothing re-reads the card's answers.

The kernel runs with ``trace=False``: nothing in the daemon reads its masked APDU trace, and
masking every exchange was 0.2-0.45 ms of CPU a payment (:mod:`terminal.trace`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers import CardReader, DriverError, Interface, NoCard
from gateway.day.limits import without_offline
from gateway.payments.cobadge import brand_chooser
from gateway.payments.pinpad import ReaderPinPad
from gateway.payments.session import DeviceResult, LaneView, PaymentContext, Prompt
from gateway.payments.settle import Verdict, may_retry_pin
from terminal import (
    CapkStore,
    Decision,
    Environment,
    OnlineRequest,
    PinPad,
    TerminalConfig,
    TransactionRequest,
    TransactionResult,
    run_contact_transaction,
    run_contactless_payment,
)

__all__ = ["WRONG_PIN_REASON", "KernelSetup", "ReaderAdapter"]

#: The payment's reason while the cardholder is asked for the PIN again.
WRONG_PIN_REASON = "wrong PIN, try again"

_VERDICTS = {
    Decision.APPROVED: Verdict.APPROVED,
    Decision.DECLINED: Verdict.DECLINED,
    Decision.CANCELLED: Verdict.STOPPED,
}


@dataclass(frozen=True, slots=True)
class KernelSetup:
    """What a lane gives the kernel, fixed for the lane's life.

    Attributes:
        config: The terminal configuration (PIN pad presence set for this lane).
        capk: The CA public keys.
        pinpad: The lane's PIN pad, if any.
        interface: ``contact``, ``contactless`` or ``auto`` (by the card's ATR).
        env: A fresh clock and randomness for each transaction.
    """

    config: TerminalConfig
    capk: CapkStore
    pinpad: PinPad | None
    interface: str
    env: Callable[[], Environment]


class ReaderAdapter:
    """A card reader's part of a payment (see the module docstring)."""

    acquirer_recoverable = True

    def __init__(self, reader: CardReader, kernel: KernelSetup) -> None:
        self._reader = reader
        self._kernel = kernel

    async def take_payment(self, context: PaymentContext) -> DeviceResult:
        """Wait for a card, run the kernel, and say what it decided.

        Raises:
            DriverError, EmvError, TimeoutError, OSError: the reader or the card failed.
        """
        view = context.view
        stop = await self._wait_for_card(context)
        if stop is not None:
            return stop
        context.show(Prompt.PROCESSING)
        interface = self._kernel.interface
        if interface == "auto":
            contactless = self._reader.interface is Interface.CONTACTLESS
            interface = "contactless" if contactless else "contact"
        view.interface = interface
        request = TransactionRequest(
            amount=view.amount,
            currency_code=context.currency.numeric,
            currency_exponent=context.currency.exponent,
            choose_application=brand_chooser(context, self._kernel.config.cobadge_brand_priority),
        )
        if isinstance(self._kernel.pinpad, ReaderPinPad):
            self._kernel.pinpad.reader = self._reader  # secure PIN entry on this reader
        try:
            async with asyncio.timeout(context.timeouts.transaction):
                result = await self._run_kernel(interface, request, context)
        finally:
            with contextlib.suppress(DriverError, OSError):
                await self._reader.power_off()
        verdict = _VERDICTS.get(result.decision, Verdict.FAILED)
        forward = None
        if verdict is Verdict.APPROVED:
            forward = context.steps.build_request(
                OnlineRequest(
                    icc_data=result.icc_data,
                    amount=request.amount,
                    currency=request.currency_code,
                    transaction_type=int(request.transaction_type),
                    masked_pan=result.masked_pan,
                    pan=result.pan,
                )
            )
        return DeviceResult(
            verdict=verdict,
            reason=result.reason,
            interface=interface,
            arc=result.authorisation_response_code,
            masked_pan=result.masked_pan,
            aid=result.aid,
            forward=forward,
        )

    async def _wait_for_card(self, context: PaymentContext) -> DeviceResult | None:
        """None once a card is there; a STOPPED result when cancelled or none came in time."""
        view = context.view
        if self._reader.card_present and not view.cancel_requested.is_set():
            # already in the slot (inserted or tapped before the prompt): power it on without
            # the race below (two tasks, about 30 us of CPU); a cancel meanwhile still wins
            try:
                async with asyncio.timeout(context.timeouts.card):
                    await self._reader.power_on()
            except NoCard:  # it left since: wait for one as below
                pass
            except DriverError:  # the reader failed (its own Timeout too): as below
                view.cancellable = False
                raise
            except TimeoutError:  # no card in time (the bound above)
                return await self._after_wait(view, card_came=False)
            else:
                return await self._after_wait(view, card_came=True)
        card = asyncio.create_task(self._reader.wait_for_card(), name="lane.wait_card")
        cancel = asyncio.create_task(view.cancel_requested.wait(), name="lane.cancel")
        try:
            await asyncio.wait(
                {card, cancel}, timeout=context.timeouts.card, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (card, cancel):
                task.cancel()
            await asyncio.gather(card, cancel, return_exceptions=True)
        stop = await self._after_wait(view, card_came=card.done() and not card.cancelled())
        if stop is None:
            card.result()  # a reader failure while waiting raises here
        return stop

    async def _after_wait(self, view: LaneView, *, card_came: bool) -> DeviceResult | None:
        """The wait is over: a cancel wins (a card that came with it is powered off); else the
        payment is no longer cancellable, and no card is STOPPED. None: go on with the card."""
        if view.cancel_requested.is_set():
            with contextlib.suppress(DriverError, OSError):
                await self._reader.power_off()  # a card that came with the cancel
            return DeviceResult(Verdict.STOPPED, f"cancelled by {view.cancelled_by}")
        view.cancellable = False
        if not card_came:
            return DeviceResult(Verdict.STOPPED, "no card presented in time")
        return None

    async def _run_kernel(
        self, interface: str, request: TransactionRequest, context: PaymentContext
    ) -> TransactionResult:
        # at a store-and-forward limit: no floor limit, so no offline approval (docs/day.md)
        config = self._kernel.config if context.offline_allowed else without_offline(
            self._kernel.config
        )
        kernel = self._kernel
        if interface == "contactless":
            return await run_contactless_payment(
                self._reader,
                config=config,
                request=request,
                env=kernel.env(),
                online=context.steps,
                pinpad=kernel.pinpad,
                on_card_removable=self._remove_card(context),
                trace=False,
            )
        steps = context.steps
        entries = 1

        def retry_allowed() -> bool:
            answer = steps.authorisation
            return may_retry_pin(
                response_code=None if answer is None else answer.response_code,
                interface=interface,
                entries=entries,
                pins_left=getattr(kernel.pinpad, "pins_left", 1),  # a virtual pad's sequence
            )

        steps.may_retry_pin = retry_allowed
        while True:
            result = await run_contact_transaction(
                self._reader,
                config=config,
                request=request,
                env=kernel.env(),
                online=steps,
                pinpad=kernel.pinpad,
                capk=kernel.capk,
                trace=False,
            )
            if not steps.pin_retry:
                return result
            entries += 1  # journaled AUTH_REQUESTED -> CARD_READ: the same payment again
            context.view.reason, context.view.state = WRONG_PIN_REASON, "CARD_READ"
            context.show(Prompt.WRONG_PIN)
            context.tell("payment")
            context.show(Prompt.PROCESSING)

    def _remove_card(self, context: PaymentContext) -> Callable[[], Awaitable[None]]:
        async def remove() -> None:
            context.show(Prompt.REMOVE_CARD)  # stays until the outcome (Book A, 9.4)
            with contextlib.suppress(DriverError, OSError):
                await self._reader.power_off()

        return remove
