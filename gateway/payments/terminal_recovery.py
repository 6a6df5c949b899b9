"""A smart terminal's payments left in doubt, settled from the terminal's last transaction.

A payment (a sale or a refund) on a TPE lane is in doubt when the request may have reached the
terminal and no answer was journaled: AUTH_REQUESTED (the daemon died while the terminal
worked), UNKNOWN (the link broke, the answer never came, the till's cancel was not confirmed),
or APPROVED but not COMPLETED (the daemon died between the two commits). The acquirer never
saw these payments (the terminal has its own host), so only the terminal can say what happened.

:meth:`TerminalRecovery.resolve` runs each time the lane's terminal is set up (the supervisor's
``on_ready`` hook: at start-up, and after the link came back), and before the lane takes
another payment. For each payment in doubt, oldest first:

* APPROVED: the approval is journaled, the terminal charged: COMPLETED (outbox row);
* otherwise it asks :meth:`drivers.SmartTerminal.last_transaction_status` and compares the
  answer's reference with the one the payment was sent under (:func:`terminal_reference`):

  ======================================  ===================================================
  the terminal's last transaction         the payment becomes
  ======================================  ===================================================
  ours, approved                          APPROVED (its auth code, masked PAN), COMPLETED
  ours, declined / cancelled / error      DECLINED (the terminal's words as the reason)
  another one, told by the terminal       DECLINED: the request never became a transaction
  (Caisse-AP duplicate)                   there (the terminal runs one at a time, so a
                                          duplicate asked while ours runs describes ours)
  none, or only the driver's memory of    stays UNKNOWN, **for the manager** (listed on the
  another one (Concert V2 after a         status page): never approved or dropped by guess
  restart)
  a terminal that can be asked but does   stays UNKNOWN, and :meth:`resolve` raises: no new
  not answer now (Caisse-AP time-out)     transaction may overwrite the evidence, so the lane
                                          is not ready until the terminal tells
  ======================================  ===================================================

A void of a sale taken on the lane (VOID_PENDING, journaled by
:class:`gateway.recovery.voids.VoidService` before anything is sent) is the terminal's
cancellation of that debit (:meth:`drivers.SmartTerminal.void`, Concert V2 type 2, Caisse-AP
CD 2, under the sale's own reference and amount). :meth:`TerminalRecovery.void` sends it and
journals the answer; :meth:`resolve` finishes the voids a crash or a lost answer left pending:

======================================  ===================================================
what the terminal says                  the void becomes
======================================  ===================================================
its last transaction is our             VOIDED (approved) or COMPLETED (refused: the sale
cancellation (Caisse-AP duplicate)      stands; refund it)
anything else: the cancellation was     the cancellation is sent now: approved VOIDED;
never made (Caisse-AP), or it cannot    refused COMPLETED where the terminal could tell it
tell (Concert V2 after a restart)       was never made, else stays VOID_PENDING **for the
                                        manager** (a second cancellation of a debit already
                                        cancelled is refused too: never guessed)
not taken (busy, not reachable), or     stays VOID_PENDING, and the lane is not ready
no answer                               until the terminal settles it (asked again at each
                                        setup, with the supervisor's backoff)
======================================  ===================================================

A void the till just journaled (``first``: nothing was sent before) is sent at once; refused
or not taken by the terminal, it is COMPLETED again at once and the till is told.

Nothing here guesses: a payment leaves doubt only through the terminal's own answer, or
through a manager who read it on the terminal (its receipt or its journal) and says so:
:meth:`TerminalRecovery.settle_by_hand` (``POST /manager/payments/{id}/settle``, docs/tpe.md)
takes only a payment this lane flagged for the manager, and journals the manager as the actor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from drivers import DriverError, Money, SmartTerminal, TransactionKind
from drivers import TransactionResult as TerminalResult
from drivers import TransactionStatus as Status
from drivers.errors import DeviceUnavailable
from gateway.journal import Journal, Payment, PaymentState
from gateway.payments.errors import NotForManager

__all__ = ["IN_DOUBT", "TerminalRecovery", "journal_mask", "terminal_reference"]

log = logging.getLogger("gateway.payments")

S = PaymentState
#: The states of a terminal payment that only the terminal can settle.
IN_DOUBT = (S.AUTH_REQUESTED, S.UNKNOWN, S.APPROVED)
ACTOR = "terminal-recovery"


def terminal_reference(payment_id: str) -> str:
    """The reference a payment is sent to the terminal under, and found again by.

    The last 10 characters of the id (base32 from the journal's random token): they fit
    Concert V2's private field (10 characters) and Caisse-AP's CF, which both terminals echo.
    """
    return payment_id.removeprefix("pay_")[-10:]


def journal_mask(masked_pan: str | None) -> str | None:
    """A terminal's masked PAN as the journal keeps it: the mask characters as ``*``.

    Terminals mask with ``#``, ``X`` or ``*`` (Caisse-AP's AA: ``497010######0014``).
    """
    if masked_pan is None:
        return None
    return "".join("*" if ch in "#Xx" else ch for ch in masked_pan)


def _alnum(text: str | None) -> str | None:
    if text is None:
        return None
    kept = "".join(ch for ch in text if ch.isascii() and ch.isalnum())[:12]
    return kept or None


class TerminalRecovery:
    """Settles one lane's terminal payments left in doubt (see the module docstring).

    Args:
        lane: The lane id as the journal stores it.
        journal: The journal.
        on_settled: Called when a sale completes (wakes the head-office publisher).
    """

    def __init__(self, *, lane: str, journal: Journal, on_settled: Callable[[], None],
                 void_timeout: float = 120.0) -> None:
        #: How long a cancellation at the terminal may take (the lane's transaction time-out).
        self.void_timeout = void_timeout
        self._lane = lane
        self._journal = journal
        self._on_settled = on_settled
        self._lock = asyncio.Lock()
        self._passes = asyncio.Condition()
        #: Payment ids the terminal could not settle: UNKNOWN, for the manager.
        self.for_manager: list[str] = []
        self.resolved = 0
        #: Completed passes of :meth:`resolve` (each asked the terminal about every payment).
        self.passes = 0
        #: Payments (refunds) being taken at the terminal right now: left alone meanwhile.
        self.in_flight: set[str] = set()
        #: Voids the terminal refused to make again and could not say were made before.
        self._void_for_manager: set[str] = set()

    async def wait_pass(self, after: int, within: float) -> bool:
        """Wait (at most ``within`` s) until a pass later than number ``after`` completed."""
        try:
            async with asyncio.timeout(within), self._passes:
                await self._passes.wait_for(lambda: self.passes > after)
        except TimeoutError:
            return False
        return True

    async def resolve(self, terminal: SmartTerminal, *, skip: str | None = None) -> None:
        """Settle this lane's payments in doubt from the terminal (see the module docstring).

        Args:
            terminal: The lane's terminal, open.
            skip: A payment the lane is still settling itself (left as it is).

        Raises:
            DriverError: The terminal could not be asked, or could not tell yet what became
                of a payment it alone knows (the lane is not ready: the supervisor retries).
        """
        async with self._lock:
            pending = await self._journal.on_lane(self._lane, IN_DOUBT)
            flagged: list[str] = []
            for payment in pending:
                if payment.id == skip or payment.id in self.in_flight:
                    continue
                if not await self._settle(terminal, payment):
                    flagged.append(payment.id)
            for payment in await self._journal.on_lane(self._lane, (S.VOID_PENDING,)):
                if payment.id == skip or payment.id in self.in_flight:
                    continue
                if payment.id in self._void_for_manager:  # not sent again and again
                    flagged.append(payment.id)
                    continue
                after = await self._void(terminal, payment, first=False)
                if after.state is S.VOID_PENDING and payment.id in self._void_for_manager:
                    flagged.append(payment.id)
            self.for_manager = flagged
        async with self._passes:
            self.passes += 1
            self._passes.notify_all()

    async def settle_by_hand(
        self, payment_id: str, *, approved: bool, auth_code: str | None, actor: str, reason: str
    ) -> Payment:
        """A manager settles what the terminal could not tell: what its receipt or journal says.

        A payment left UNKNOWN: ``approved`` (the card was charged) makes it APPROVED then
        COMPLETED, else DECLINED. A void left VOID_PENDING: ``approved`` (the terminal's
        cancellation went through) makes it VOIDED, else COMPLETED again (the sale stands).

        Args:
            payment_id: A payment this lane flagged for the manager (:attr:`for_manager`).
            approved: The terminal's receipt shows the transaction (or cancellation) approved.
            auth_code: The approval code on the receipt (a sale only; ``000000`` if none).
            actor: The manager (journaled as the actor of each step).
            reason: What the manager checked, journaled with the steps.

        Raises:
            NotForManager: the payment is not flagged for the manager on this lane, or the
                terminal settled it meanwhile.
        """
        words = f"settled by hand: {reason}" if reason else "settled by hand"
        async with self._lock:  # never beside a pass asking the terminal
            if payment_id not in self.for_manager:
                raise NotForManager(f"payment {payment_id} is not waiting for a manager here")
            payment = await self._journal.get(payment_id)
            if payment.state is S.UNKNOWN and approved:
                await self._journal.approve(payment_id, auth_code=_alnum(auth_code) or "000000",
                                            actor=actor, reason=words)
                payment = await self._journal.complete(payment_id, actor=actor, reason=words)
            elif payment.state is S.UNKNOWN:
                payment = await self._journal.decline(payment_id, response_code=None,
                                                      actor=actor, reason=words)
            elif payment.state is S.VOID_PENDING and approved:
                payment = await self._journal.confirm_void(payment_id, actor=actor, reason=words)
            elif payment.state is S.VOID_PENDING:
                payment = await self._journal.void_refused(payment_id, actor=actor, reason=words)
            else:
                self.for_manager.remove(payment_id)
                raise NotForManager(f"payment {payment_id} is {payment.state.value} now")
            self.for_manager.remove(payment_id)
            self._void_for_manager.discard(payment_id)
        log.info("payment %s: settled by hand by %s: %s", payment_id, actor, payment.state.value)
        if payment.state is S.COMPLETED or payment.state is S.VOIDED:
            self._on_settled()
        return payment

    async def void(self, terminal: SmartTerminal, payment: Payment) -> Payment:
        """Cancel at the terminal a sale the till's void just journaled (VOID_PENDING).

        Returns:
            The payment after: VOIDED (cancelled), COMPLETED (the terminal refused or did not
            take the cancellation: the sale stands), or VOID_PENDING (sent, no answer: the
            next :meth:`resolve` asks the terminal).
        """
        async with self._lock:
            return await self._void(terminal, payment, first=True)

    async def _void(self, terminal: SmartTerminal, payment: Payment, *, first: bool) -> Payment:
        """Send (or find) the cancellation of one VOID_PENDING sale; see the module docstring."""
        pid = payment.id
        can_tell = first  # whether a refusal proves no cancellation was made before
        if not first:
            try:
                last = await terminal.last_transaction_status()
            except DriverError as exc:
                log.warning("void %s: the terminal cannot tell yet (%s)", pid, exc)
                raise DeviceUnavailable(
                    f"the terminal must tell what became of the void of {pid} before another",
                    device=getattr(terminal, "url", None)) from exc
            if (last is not None and last.kind is TransactionKind.CANCELLATION
                    and (last.reference or "").strip() == terminal_reference(pid)):
                return await self._void_answered(payment, last, can_tell=True)
            can_tell = last is not None and last.extra.get("source") == "terminal"
        try:
            async with asyncio.timeout(self.void_timeout):
                result = await terminal.void(Money(payment.amount, payment.currency),
                                             reference=terminal_reference(pid))
        except (DriverError, TimeoutError) as exc:
            delivered = isinstance(exc, TimeoutError) or exc.delivered
            reason = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("void %s at the terminal: %s", pid, reason)
            if first and not delivered:
                return await self._journal.void_refused(
                    pid, actor=ACTOR, reason=f"void not taken by the terminal: {reason}")
            if first:
                return payment  # taken, no answer: the next pass asks the terminal
            # a pass: the lane is not ready until the terminal settles it (the supervisor sets
            # it up again, with backoff, and this pass runs again)
            raise DeviceUnavailable(
                f"the void of {pid} is not settled at the terminal yet",
                device=getattr(terminal, "url", None)) from exc
        return await self._void_answered(payment, result, can_tell=can_tell)

    async def _void_answered(self, payment: Payment, result: TerminalResult, *,
                             can_tell: bool) -> Payment:
        pid = payment.id
        if result.status is Status.APPROVED:
            self._void_for_manager.discard(pid)
            voided = await self._journal.confirm_void(pid, actor=ACTOR,
                                                      reason="cancelled by the terminal")
            self._done(pid, "voided")
            return voided
        words = {Status.DECLINED: "refused by the terminal",
                 Status.CANCELLED: "cancelled at the terminal"}.get(result.status,
                                                                   "terminal error")
        if not can_tell:  # perhaps cancelled before the restart: never guessed
            log.warning("void %s: %s, and the terminal cannot tell whether an earlier "
                        "cancellation went through: for the manager", pid, words)
            self._void_for_manager.add(pid)
            return payment
        self._void_for_manager.discard(pid)
        stands = await self._journal.void_refused(pid, actor=ACTOR,
                                                  reason=f"void {words}: the sale stands")
        self._done(pid, f"void {words}")
        return stands

    async def _settle(self, terminal: SmartTerminal, payment: Payment) -> bool:
        """Settle one payment; False when the terminal cannot tell (left for the manager)."""
        pid = payment.id
        if payment.state is S.APPROVED:
            await self._journal.complete(pid, actor=ACTOR, reason="approval journaled before")
            self._done(pid, "completed")
            return True
        try:
            last = await terminal.last_transaction_status()
        except DriverError as exc:
            # A terminal that can be asked (Caisse-AP) could not answer now. Its last
            # transaction is the only evidence: no new payment may overwrite it, so the lane
            # is not ready until the terminal tells (the supervisor asks again, with backoff).
            log.warning("payment %s: the terminal cannot tell yet (%s)", pid, exc)
            await self._unknown(payment, f"terminal cannot tell yet: {type(exc).__name__}")
            raise DeviceUnavailable(
                f"the terminal must tell what became of payment {pid} before another",
                device=getattr(terminal, "url", None)) from exc
        ours = last is not None and last.reference is not None and \
            last.reference.strip() == terminal_reference(pid)
        if last is not None and ours:
            await self._from_answer(payment, last)
            return True
        if last is not None and last.extra.get("source") == "terminal":
            await self._decline(payment, "the terminal has no transaction for it")
            return True
        await self._unknown(payment, "the terminal cannot tell: for the manager")
        return False

    async def _from_answer(self, payment: Payment, last: TerminalResult) -> None:
        pid = payment.id
        if last.status is Status.APPROVED:
            if payment.state is S.AUTH_REQUESTED or payment.state is S.UNKNOWN:
                await self._journal.approve(pid, auth_code=_alnum(last.auth_code) or "000000",
                                            actor=ACTOR, masked_pan=journal_mask(last.masked_pan),
                                            reason="the terminal's last transaction")
            await self._journal.complete(pid, actor=ACTOR, reason="approved by the terminal")
            self._done(pid, "approved")
            return
        words = {Status.DECLINED: "declined by the terminal",
                 Status.CANCELLED: "cancelled at the terminal"}.get(last.status, "terminal error")
        await self._decline(payment, words)

    async def _decline(self, payment: Payment, reason: str) -> None:
        await self._journal.decline(payment.id, response_code="Z3" if payment.state
                                    is S.AUTH_REQUESTED else None, actor=ACTOR, reason=reason)
        self._done(payment.id, reason)

    async def _unknown(self, payment: Payment, reason: str) -> None:
        if payment.state is S.AUTH_REQUESTED:
            await self._journal.mark_unknown(payment.id, actor=ACTOR, reason=reason)

    def _done(self, payment_id: str, what: str) -> None:
        self.resolved += 1
        log.info("payment %s: settled from the terminal's last transaction: %s", payment_id,
                 what)
        if what in ("approved", "completed", "voided"):  # voided: revision 2 to head office
            self._on_settled()
