"""The smart-terminal adapter: a payment on a TPE that runs EMV itself (Concert V2, Caisse-AP).

For the session (:mod:`gateway.payments.session`), on a :class:`drivers.SmartTerminal`:

1. the till can no longer cancel from here on (the terminal owns the card);
2. CARD_READ then AUTH_REQUESTED are journaled *before* the terminal is asked to pay: from the
   moment the request leaves, the terminal can move money (ARCHITECTURE.md, journal first);
   the card is in the terminal, so CARD_READ carries no masked PAN;
3. :meth:`drivers.SmartTerminal.pay`, bounded by ``timeouts.transaction``, with its progress
   shown as the lane's prompts;
4. an approval is journaled as the host's would be (APPROVED, with the authorisation code and
   the terminal's masked PAN);
   every answer becomes the typed result, and the session's policy table journals the end:
   approved (COMPLETED), declined (DECLINED), cancelled at the keypad (DECLINED in the journal,
   "cancelled" to the till), or a terminal error (DECLINED);
5. an exception from the terminal (gone, time-out, protocol broken) leaves the outcome unknown:
   the session journals UNKNOWN and leaves it to the terminal's recovery
   (:meth:`~drivers.SmartTerminal.last_transaction_status`), never to the acquirer's
   reconciler: the acquirer never saw this payment.

Refunds, cancel races, last-transaction recovery and end of day extend this adapter.
"""

from __future__ import annotations

import asyncio
import contextlib

from drivers import Money, Progress, ProgressStage, SmartTerminal, parse_url
from drivers import TransactionResult as TerminalResult
from drivers import TransactionStatus as Status
from gateway.journal import Action, PendingPayment, Recovery
from gateway.payments.session import DeviceResult, PaymentContext, Prompt
from gateway.payments.settle import Verdict

__all__ = ["INTERFACE", "TERMINAL_SCHEMES", "SmartTerminalAdapter", "on_terminal_lanes"]

INTERFACE = "terminal"
#: Device URL schemes that open a smart terminal (drivers: Concert V2 / Caisse-AP).
TERMINAL_SCHEMES = frozenset({"serial", "tcp"})

_PROMPTS = {
    ProgressStage.WAITING_CARD: Prompt.PRESENT_CARD,
    ProgressStage.CARD_READ: Prompt.PROCESSING,
    ProgressStage.PIN_ENTRY: Prompt.PROCESSING,
    ProgressStage.AUTHORISING: Prompt.PROCESSING,
}


class SmartTerminalAdapter:
    """A smart terminal's part of a payment (see the module docstring)."""

    acquirer_recoverable = False

    def __init__(self, terminal: SmartTerminal) -> None:
        self._terminal = terminal

    async def take_payment(self, context: PaymentContext) -> DeviceResult:
        """Journal, ask the terminal to pay, journal its answer.

        Raises:
            DriverError, TimeoutError, OSError: the terminal could not be driven after the
                request may have left (the session makes it in doubt).
        """
        view = context.view
        view.interface = INTERFACE
        view.cancellable = False
        if view.cancel_requested.is_set():
            return DeviceResult(Verdict.STOPPED, f"cancelled by {view.cancelled_by}", INTERFACE)
        try:
            amount = Money(view.amount, f"{context.currency.numeric:03d}")  # ISO 4217 numeric
        except ValueError:  # nothing asked of the terminal yet
            reason = f"currency {context.currency.alpha} not supported by the terminal driver"
            return DeviceResult(Verdict.FAILED, reason, INTERFACE)
        await context.steps.before_terminal_pays()

        def progress(event: Progress) -> None:
            prompt = _PROMPTS.get(event.stage)
            if prompt is not None:
                with contextlib.suppress(Exception):  # a display never stops a payment
                    context.show(prompt)

        try:
            async with asyncio.timeout(context.timeouts.transaction):
                result = await self._terminal.pay(amount, progress=progress)
        except ValueError as exc:  # an answer the driver could not turn into a result
            reason = f"terminal answer unreadable: {type(exc).__name__}"
            return DeviceResult(Verdict.IN_DOUBT, reason, INTERFACE)
        return await self._answered(context, result)

    async def _answered(self, context: PaymentContext, result: TerminalResult) -> DeviceResult:
        if result.approved:  # journaled as the host's approval would be, before anyone sees it
            await context.steps.terminal_approved(result.auth_code, result.masked_pan)
        verdict, reason = {
            Status.APPROVED: (Verdict.APPROVED, "approved by the terminal"),
            Status.DECLINED: (Verdict.DECLINED, "declined by the terminal"),
            Status.CANCELLED: (Verdict.STOPPED, "cancelled at the terminal"),
            Status.ERROR: (Verdict.FAILED, "terminal error"),
        }[result.status]
        if result.message and result.status is not Status.APPROVED:
            reason = f"{reason}: {result.message}"[:200]
        return DeviceResult(
            verdict=verdict, reason=reason, interface=INTERFACE, masked_pan=result.masked_pan
        )


def on_terminal_lanes(recovery: Recovery, readers: dict[int, str]) -> tuple[Recovery, Recovery]:
    """Split start-up recovery: (payments of card-reader lanes, payments of terminal lanes).

    A smart terminal's payment left in doubt (AUTH_REQUESTED, UNKNOWN; APPROVED not completed)
    is not the acquirer's to resolve (it never saw it): it waits for the terminal's own
    recovery (``SmartTerminal.last_transaction_status``), never for a status query at our
    acquirer that would find nothing and decline it.

    Args:
        recovery: What :meth:`gateway.journal.Journal.recover` found.
        readers: Each lane's device URL by lane id.
    """
    terminal_lanes = {
        str(lane) for lane, url in readers.items() if parse_url(url).scheme in TERMINAL_SCHEMES
    }

    def theirs(item: PendingPayment) -> bool:  # asked of the terminal: only it can say
        return item.payment.lane in terminal_lanes and item.action is not Action.CANCEL

    ours = tuple(item for item in recovery.pending if not theirs(item))
    left = tuple(item for item in recovery.pending if theirs(item))
    return (
        Recovery(ours, recovery.outbox_unsent, recovery.released_claims),
        Recovery(left, 0, 0),
    )
