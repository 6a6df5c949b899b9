"""Voids: the till reverses a completed sale of the current day with one call.

A void is a money move like the others (ARCHITECTURE.md): it is journaled first
(COMPLETED -> VOID_PENDING, naming who asked; :meth:`gateway.journal.Journal.void_sale` refuses a
sale of a closed day, a refunded one, or anything but a completed sale), then the reversal is sent
to the acquirer under the key ``rev-<payment id>``, then VOIDED. If the reversal cannot be
sent or its answer is lost, the payment stays VOID_PENDING and goes to the reconciler, which
sends the same reversal under the same key (also after a restart: VOID_PENDING is recovered
like REVERSAL_PENDING), so the host reverses once whatever happens.

After the day is closed the sale can no longer be voided: it is refunded
(``POST /api/payments/{id}/refunds``).

A sale taken on a payment terminal lane (the terminal's own host authorised it; our acquirer
would find nothing to reverse) is voided at that terminal: journaled the same way first
(VOID_PENDING), then the :class:`TerminalVoider` the daemon gave (the payments part's
``TerminalVoids``) asks the terminal to cancel the debit. Its answer: VOIDED; the sale standing
again (COMPLETED, :attr:`VoidOutcome.REFUSED`: the terminal refused or did not take it); or
still VOID_PENDING when the answer was lost, settled from the terminal by the lane's recovery
(also after a restart: the start-up recovery leaves a terminal lane's payments to it).
Without a voider (``posgw`` tools) such a void is refused (``terminal_lane``), nothing journaled.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from gateway.acquirer import (
    AcquirerClient,
    AcquirerError,
    AcquirerHealth,
    AcquirerRejected,
    NotFound,
)
from gateway.journal import Journal, Payment, PaymentState, VoidNotAllowed
from gateway.recovery.reconciler import Reconciler

__all__ = ["TerminalVoider", "VoidOutcome", "VoidResult", "VoidService", "reversal_key"]

log = logging.getLogger("gateway.voids")


def reversal_key(payment_id: str) -> str:
    """The idempotency key of a payment's reversal (the reconciler uses the same)."""
    return f"rev-{payment_id}"


class VoidOutcome(enum.StrEnum):
    """What the till is told."""

    VOIDED = "voided"
    PENDING = "pending"  # journaled; the reversal is being retried
    REFUSED = "refused"  # a payment terminal refused the cancellation: the sale stands


class TerminalVoider(Protocol):
    """Cancels a TPE lane's VOID_PENDING sale at its terminal (the daemon wires one)."""

    def handles(self, lane: str) -> bool:
        """True when ``lane``'s device is a payment terminal."""
        ...

    async def void(self, payment: Payment) -> Payment:
        """Send the cancellation and journal its answer; the payment after it."""
        ...


@dataclass(frozen=True, slots=True)
class VoidResult:
    """The payment after the void, and the outcome."""

    payment: Payment
    outcome: VoidOutcome
    #: Why a terminal refused (REFUSED only), from the journal's last event.
    reason: str = ""


class VoidService:
    """Voids completed sales (see the module docstring)."""

    def __init__(
        self,
        *,
        journal: Journal,
        client: AcquirerClient,
        health: AcquirerHealth,
        reconciler: Reconciler,
        terminal_lanes: frozenset[str] = frozenset(),
        terminals: TerminalVoider | None = None,
    ) -> None:
        #: Lanes whose device is a payment terminal with its own host: our acquirer never saw
        #: their sales, so a reversal there would find nothing; their terminal cancels them.
        self._terminal_lanes = terminal_lanes
        self._terminals = terminals
        self._journal = journal
        self._client = client
        self._health = health
        self._reconciler = reconciler

    async def void(self, payment_id: str, *, actor: str, reason: str = "") -> VoidResult:
        """Void a completed sale of the current day.

        Args:
            payment_id: The sale.
            actor: Who asks (``till:<id>``, ``manager:<name>``), recorded in the journal.
            reason: The till's reason (no card data), recorded in the journal.

        Raises:
            VoidNotAllowed, IllegalTransition, UnknownPayment: nothing was journaled or sent.
        """
        lane = (await self._journal.get(payment_id)).lane
        if lane in self._terminal_lanes:
            terminals = self._terminals
            if terminals is None or not terminals.handles(lane):
                raise VoidNotAllowed(
                    "terminal_lane",
                    f"payment {payment_id!r} was taken on a payment terminal that cannot be"
                    " driven from here: refund it",
                )
            pending = await self._journal.void_sale(payment_id, actor=actor, reason=reason)
            return await self._at_terminal(terminals, pending, actor)
        payment = await self._journal.void_sale(payment_id, actor=actor, reason=reason)
        key = payment.idempotency_key
        if key is None:  # an approved sale always has its key: defensive, nothing was charged
            voided = await self._journal.confirm_void(
                payment_id, actor="recovery", reason="no request was ever sent"
            )
            return VoidResult(voided, VoidOutcome.VOIDED)
        note = "reversed by the host"
        try:
            await self._client.reverse(
                original_idempotency_key=key, idempotency_key=reversal_key(payment_id),
                reason="void",
            )  # fmt: skip
        except NotFound:
            note = "not found at the host: nothing charged"
        except AcquirerRejected as exc:
            if exc.code != "not_reversible":
                return self._pending(payment, exc)
            note = "not reversible at the host (declined)"
        except AcquirerError as exc:
            self._health.failure(exc)
            return self._pending(payment, exc)
        self._health.success()
        voided = await self._journal.confirm_void(payment_id, actor="acquirer", reason=note)
        log.info("payment %s: voided by %s (%s)", payment_id, actor, note)
        return VoidResult(voided, VoidOutcome.VOIDED)

    async def _at_terminal(
        self, terminals: TerminalVoider, pending: Payment, actor: str
    ) -> VoidResult:
        after = await terminals.void(pending)
        if after.state is PaymentState.VOIDED:
            log.info("payment %s: voided at the terminal for %s", after.id, actor)
            return VoidResult(after, VoidOutcome.VOIDED)
        if after.state is PaymentState.COMPLETED:
            events = await self._journal.events(after.id)
            why = events[-1].reason if events else "refused by the terminal"
            log.info("payment %s: the terminal did not void it: %s", after.id, why)
            return VoidResult(after, VoidOutcome.REFUSED, why)
        log.warning("payment %s: void sent to the terminal, no answer yet", after.id)
        return VoidResult(after, VoidOutcome.PENDING)

    def _pending(self, payment: Payment, exc: AcquirerError) -> VoidResult:
        log.warning("payment %s: void journaled, reversal not confirmed yet: %s", payment.id, exc)
        self._reconciler.add(payment.id)
        return VoidResult(payment, VoidOutcome.PENDING)
