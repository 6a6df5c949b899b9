"""Voids: a sale of the current day cancelled at the acquirer instead of refunded.

A void journals VOID_PENDING before the reversal is sent (under ``rev-<payment id>``, which
recovery resends), then VOIDED when the acquirer reversed it, or COMPLETED again when a payment
terminal refused to cancel (the sale stands; refund it). Only a sale of the day still open may
be voided, and only while it has no refunds (docs/journal.md, "State machine").
"""

from __future__ import annotations

from gateway.journal.base import JournalBase
from gateway.journal.errors import VoidNotAllowed
from gateway.journal.guard import check_value
from gateway.journal.queries import last_close
from gateway.journal.records import Payment
from gateway.journal.states import PaymentKind, PaymentState, check_transition

__all__ = ["VoidCalls"]

S = PaymentState


class VoidCalls(JournalBase):
    """The journal's void calls (a mixin of :class:`~gateway.journal.Journal`)."""

    async def void_sale(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """A void: COMPLETED -> VOID_PENDING for a sale of the current day, before the reversal
        is sent (the caller then sends it under ``rev-<payment id>``; recovery resends it).

        Raises:
            VoidNotAllowed: ``not_voidable`` (a refund), ``day_closed`` (created before the last
                day close: refund it instead), ``refunded`` (it has refunds).
            IllegalTransition: Not COMPLETED. UnknownPayment.
        """
        check_value("reason", reason)
        store = self._s()

        def void() -> Payment:
            payment = store.get(payment_id)
            if payment.kind is not PaymentKind.SALE:
                raise VoidNotAllowed("not_voidable", f"payment {payment_id!r} is a refund")
            if payment.state is not S.COMPLETED:  # IllegalTransition, naming both states
                check_transition(payment_id, payment.state, S.VOID_PENDING)
            closed = last_close(store.conn)
            if closed is not None and payment.created_ms < closed.closed_ms:
                raise VoidNotAllowed(
                    "day_closed", f"payment {payment_id!r} belongs to a closed day: refund it"
                )
            refunds = store.conn.execute(
                "SELECT count(*) FROM payments WHERE refund_of = ? AND state NOT IN (?, ?, ?)",
                (payment_id, S.DECLINED.value, S.CANCELLED.value, S.REVERSED.value),
            ).fetchone()[0]
            if refunds:
                raise VoidNotAllowed("refunded", f"payment {payment_id!r} has refunds")
            return store.transition(
                payment_id, S.VOID_PENDING, actor=actor, reason=f"void: {reason}"[:200]
            )

        return await self._run_noting(self._note_change, void)

    async def confirm_void(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """VOID_PENDING -> VOIDED: the acquirer reversed the voided sale."""
        return await self._transition(
            payment_id, S.VOIDED, actor=actor, reason=reason, requeues=True
        )

    async def void_refused(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """VOID_PENDING -> COMPLETED: the payment terminal refused to cancel the sale, which
        stands (refund it). No new outbox row: head office has the sale as it was."""
        check_value("reason", reason)
        store = self._s()

        def refused() -> Payment:
            return store.transition(payment_id, S.COMPLETED, actor=actor, reason=reason[:200])

        def note(payment: Payment) -> None:  # still approved at the lane: no new figure
            self.money.note(payment, previous=S.VOID_PENDING)
            self._recent.remember(payment)

        return await self._run_noting(note, refused)
