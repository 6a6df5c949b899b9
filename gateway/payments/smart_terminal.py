"""The smart-terminal adapter: a payment on a TPE that runs EMV itself (Concert V2, Caisse-AP).

For the session (:mod:`gateway.payments.session`), on a :class:`drivers.SmartTerminal`:

1. the lane's payments left in doubt are settled first, from the terminal's last transaction
   (:mod:`gateway.payments.terminal_recovery`): the terminal keeps one last transaction, so a
   new one must not start before the old one is read;
2. CARD_READ then AUTH_REQUESTED are journaled *before* the terminal is asked to pay: from the
   moment the request leaves, the terminal can move money (ARCHITECTURE.md, journal first);
   the card is in the terminal, so CARD_READ carries no masked PAN;
3. :meth:`drivers.SmartTerminal.pay` under the payment's terminal reference
   (:func:`~gateway.payments.terminal_recovery.terminal_reference`), bounded by
   ``timeouts.transaction``, with its progress shown as the lane's prompts and events;
4. an approval is journaled as the host's would be (APPROVED, with the authorisation code,
   the terminal's masked PAN and AID) before anyone is told; every answer becomes the typed
   result, and the session's policy table journals the end: approved (COMPLETED), declined
   (DECLINED), cancelled at the keypad (DECLINED in the journal, "cancelled" to the till), or
   a terminal error (DECLINED);
5. the till may cancel while the terminal waits for the card. Neither Concert V2 nor Caisse-AP
   has an abort message, so the driver stops waiting (``cancel_grace``): an answer that comes
   within the grace decides (an approval is kept and the till told "approved"); without one
   the payment is in doubt (UNKNOWN, "cancel not confirmed") and the terminal's last
   transaction settles it before the next payment;
6. an exception from the terminal (gone, time-out, protocol broken) leaves the outcome unknown:
   the session journals UNKNOWN and leaves it to the terminal's recovery, never to the
   acquirer's reconciler: the acquirer never saw this payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from drivers import DriverError, Money, Progress, ProgressStage, SmartTerminal, parse_url
from drivers import TransactionResult as TerminalResult
from drivers import TransactionStatus as Status
from gateway.journal import Action, PendingPayment, Recovery
from gateway.payments.flag import Flag
from gateway.payments.session import DeviceResult, PaymentContext, Prompt
from gateway.payments.settle import Verdict
from gateway.payments.terminal_recovery import (
    TerminalRecovery,
    journal_mask,
    terminal_reference,
)

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
    """A smart terminal's part of a payment (see the module docstring).

    Args:
        terminal: The lane's opened terminal.
        recovery: The lane's recovery of payments left in doubt (None: none, in unit tests).
    """

    acquirer_recoverable = False

    def __init__(self, terminal: SmartTerminal,
                 recovery: TerminalRecovery | None = None) -> None:
        self._terminal = terminal
        self._recovery = recovery

    async def take_payment(self, context: PaymentContext) -> DeviceResult:
        """Settle what is in doubt, journal, ask the terminal to pay, journal its answer.

        Raises:
            DriverError, TimeoutError, OSError: the terminal could not be driven after the
                request may have left (the session makes it in doubt).
        """
        view = context.view
        view.interface = INTERFACE
        if self._recovery is not None:
            await self._recovery.resolve(self._terminal)
        if view.cancel_requested.is_set():
            view.cancellable = False
            return DeviceResult(Verdict.STOPPED, f"cancelled by {view.cancelled_by}", INTERFACE)
        try:
            amount = Money(view.amount, f"{context.currency.numeric:03d}")  # ISO 4217 numeric
        except ValueError:  # nothing asked of the terminal yet
            reason = f"currency {context.currency.alpha} not supported by the terminal driver"
            return DeviceResult(Verdict.FAILED, reason, INTERFACE)
        await context.steps.before_terminal_pays()

        shown = [Prompt.PRESENT_CARD]  # the session showed it before the terminal was asked

        def progress(event: Progress) -> None:
            prompt = _PROMPTS.get(event.stage)
            if prompt is not None and prompt is not shown[-1]:  # each change once
                shown.append(prompt)
                with contextlib.suppress(Exception):  # a display never stops a payment
                    context.show(prompt)

        pay = asyncio.create_task(
            self._terminal.pay(amount, reference=terminal_reference(view.id), progress=progress),
            name=f"lane[{view.lane}].terminal.pay",
        )
        try:
            async with asyncio.timeout(context.timeouts.transaction):
                result = await self._until_answer(view.cancel_requested, pay)
        except DriverError as exc:
            if exc.delivered:
                raise  # the terminal may have acted: in doubt
            # Never delivered (no ACK, busy, refused, not reachable): nothing happened there.
            return DeviceResult(Verdict.FAILED, f"terminal did not take the request: "
                                f"{type(exc).__name__}: {exc}"[:200], INTERFACE)
        except ValueError as exc:  # an answer the driver could not turn into a result
            reason = f"terminal answer unreadable: {type(exc).__name__}"
            return DeviceResult(Verdict.IN_DOUBT, reason, INTERFACE)
        finally:
            view.cancellable = False
            if not pay.done():
                pay.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pay
        return await self._answered(context, result)

    async def _until_answer(self, cancel: Flag, pay: asyncio.Task[TerminalResult],
                            ) -> TerminalResult:
        """The terminal's answer; on the till's cancel, ask the driver to stop waiting."""
        stop = asyncio.create_task(cancel.wait())
        try:
            await asyncio.wait({pay, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not pay.done():
            await self._terminal.cancel()  # the answer within cancel_grace still decides
        return await pay

    async def _answered(self, context: PaymentContext, result: TerminalResult) -> DeviceResult:
        aid = _aid(result.extra.get("aid"))
        result = dataclasses.replace(result, masked_pan=journal_mask(result.masked_pan))
        if result.approved:  # journaled as the host's approval would be, before anyone sees it
            await context.steps.terminal_approved(result.auth_code, result.masked_pan, aid)
        if result.status is Status.CANCELLED and result.extra.get("confirmed") is False:
            return DeviceResult(  # the till's cancel, unconfirmed: the terminal may still pay
                Verdict.IN_DOUBT, "cancelled by the till, not confirmed by the terminal",
                INTERFACE, masked_pan=result.masked_pan, aid=aid)
        verdict, reason = {
            Status.APPROVED: (Verdict.APPROVED, "approved by the terminal"),
            Status.DECLINED: (Verdict.DECLINED, "declined by the terminal"),
            Status.CANCELLED: (Verdict.STOPPED, "cancelled at the terminal"),
            Status.ERROR: (Verdict.FAILED, "terminal error"),
        }[result.status]
        if result.approved and result.extra.get("cancel_requested"):
            reason = "approved by the terminal before the till's cancel"
        if result.message and result.status is not Status.APPROVED:
            reason = f"{reason}: {result.message}"[:200]
        return DeviceResult(
            verdict=verdict, reason=reason, interface=INTERFACE, masked_pan=result.masked_pan,
            aid=aid,
        )


def _aid(value: object) -> str | None:
    """The AID as the journal keeps it (5-16 bytes, upper-case hex), else None."""
    if not isinstance(value, str):
        return None
    text = value.upper()
    ok = 10 <= len(text) <= 32 and len(text) % 2 == 0 and all(c in "0123456789ABCDEF"
                                                               for c in text)
    return text if ok else None


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
