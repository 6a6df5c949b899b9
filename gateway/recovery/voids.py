"""Voids: the till reverses a completed sale of the current day with one call.

A void is a money move like the others (ARCHITECTURE.md): it is journaled first
(COMPLETED -> VOID_PENDING, naming who asked; :meth:`gateway.journal.Journal.void_sale` refuses a
sale of a closed day, a refunded one, or anything but a completed sale), then the reversal is sent
to the acquirer under the key ``rev-<payment id>``, then VOIDED. If the reversal cannot be
sent or its answer is lost, the payment stays VOID_PENDING and goes to the reconciler, which
sends the same reversal under the same key (also after a restart: VOID_PENDING is recovered
like REVERSAL_PENDING), so the host reverses once whatever happens.

After the day is closed the sale can no longer be voided: it is refunded
(``POST /api/payments/{id}/refunds``). A sale taken on a payment terminal lane (the terminal's
own host authorised it) is not voided here either (``terminal_lane``): the terminal's own
cancellation is not wired yet.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from gateway.acquirer import (
    AcquirerClient,
    AcquirerError,
    AcquirerHealth,
    AcquirerRejected,
    NotFound,
)
from gateway.journal import Journal, Payment, VoidNotAllowed
from gateway.recovery.reconciler import Reconciler

__all__ = ["VoidOutcome", "VoidResult", "VoidService", "reversal_key"]

log = logging.getLogger("gateway.voids")


def reversal_key(payment_id: str) -> str:
    """The idempotency key of a payment's reversal (the reconciler uses the same)."""
    return f"rev-{payment_id}"


class VoidOutcome(enum.StrEnum):
    """What the till is told."""

    VOIDED = "voided"
    PENDING = "pending"  # journaled; the reversal is being retried


@dataclass(frozen=True, slots=True)
class VoidResult:
    """The payment after the void, and the outcome."""

    payment: Payment
    outcome: VoidOutcome


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
    ) -> None:
        #: Lanes whose device is a payment terminal with its own host: our acquirer never saw
        #: their sales, so a reversal there would find nothing; they are refunded instead.
        self._terminal_lanes = terminal_lanes
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
        if (await self._journal.get(payment_id)).lane in self._terminal_lanes:
            raise VoidNotAllowed(
                "terminal_lane",
                f"payment {payment_id!r} was taken on a payment terminal (its own host): refund"
                " it, or cancel it on the terminal",
            )
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

    def _pending(self, payment: Payment, exc: AcquirerError) -> VoidResult:
        log.warning("payment %s: void journaled, reversal not confirmed yet: %s", payment.id, exc)
        self._reconciler.add(payment.id)
        return VoidResult(payment, VoidOutcome.PENDING)
