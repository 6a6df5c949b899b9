"""Refunds of sales taken on a smart terminal (TPE), made at that terminal.

The till's refund route (``POST /api/payments/{id}/refunds``) journals a refund of a settled
sale and commits AUTH_REQUESTED before anything can move money
(:class:`gateway.recovery.refunds.RefundService`). For a sale of a TPE lane the acquirer never
saw it, so the refund is the terminal's: :class:`TerminalRefunds` asks the lane's terminal for
a refund (Concert V2 type 1, Caisse-AP CD 1; the cardholder presents the card there) under the
refund's terminal reference, and journals its answer:

* approved: APPROVED (authorisation code, masked PAN, AID) then COMPLETED (outbox row);
* declined, cancelled at the keypad, a terminal error, or never delivered (busy, no ACK, not
  ready): DECLINED, with the reason;
* delivered and no usable answer: UNKNOWN, settled by the lane from the terminal's last
  transaction (:mod:`gateway.payments.terminal_recovery`), never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from drivers import DriverError, Money, SmartTerminal, TransactionResult
from drivers import TransactionStatus as Status
from gateway.journal import Journal, Payment
from gateway.payments.lane import Lane
from gateway.payments.terminal_lanes import TerminalLanes
from gateway.payments.terminal_recovery import journal_mask, terminal_reference

__all__ = ["TerminalRefunds"]

log = logging.getLogger("gateway.payments")
ACTOR = "terminal"


class TerminalRefunds(TerminalLanes):
    """The daemon's smart-terminal lanes, as :class:`gateway.recovery.refunds.TerminalRefunder`.

    Args:
        lanes: The daemon's lanes by id.
    """

    def __init__(self, lanes: Mapping[int, Lane]) -> None:
        super().__init__(lanes)
        self._busy = {lane_id: asyncio.Lock() for lane_id in self._lanes}

    async def refund(self, refund: Payment, sale: Payment) -> Payment:
        """Refund ``refund.amount`` at the terminal of the sale's lane (module docstring)."""
        lane = self._lanes[sale.lane]
        journal = lane.journal
        timeouts = lane.timeouts
        async with self._busy[sale.lane]:
            try:
                async with asyncio.timeout(timeouts.reader_ready):
                    terminal = await lane.supervisor.wait_ready()
            except TimeoutError:
                return await journal.decline(refund.id, response_code="Z3", actor=ACTOR,
                                             reason="terminal not ready")
            if not isinstance(terminal, SmartTerminal):
                return await journal.decline(refund.id, response_code="Z3", actor=ACTOR,
                                             reason="the lane has no smart terminal")
            recovery = lane.terminal_recovery
            recovery.in_flight.add(refund.id)  # before resolve: this one is ours to journal
            try:
                await recovery.resolve(terminal)
                async with asyncio.timeout(timeouts.transaction):
                    result = await terminal.refund(
                        Money(refund.amount, refund.currency),
                        reference=terminal_reference(refund.id))
            except (DriverError, TimeoutError) as exc:
                recovery.in_flight.discard(refund.id)
                delivered = isinstance(exc, TimeoutError) or exc.delivered
                reason = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("refund %s at the terminal: %s", refund.id, reason)
                if not delivered:
                    return await journal.decline(refund.id, response_code="Z3", actor=ACTOR,
                                                 reason=f"terminal did not take it: {reason}")
                return await journal.mark_unknown(refund.id, actor=ACTOR, reason=reason)
        try:
            return await self._answered(journal, refund, result)
        finally:
            recovery.in_flight.discard(refund.id)

    async def _answered(self, journal: Journal, refund: Payment,
                        result: TransactionResult) -> Payment:
        if result.status is Status.APPROVED:
            aid = result.extra.get("aid")
            await journal.approve(refund.id, auth_code=_code(result.auth_code), actor=ACTOR,
                                  masked_pan=journal_mask(result.masked_pan),
                                  aid=aid if isinstance(aid, str) and aid.isalnum() else None,
                                  reason="refunded by the terminal")
            return await journal.complete(refund.id, actor=ACTOR, reason="refunded")
        words = {Status.DECLINED: "declined by the terminal",
                 Status.CANCELLED: "cancelled at the terminal"}.get(result.status,
                                                                   "terminal error")
        return await journal.decline(refund.id, actor=ACTOR, reason=words)


def _code(text: str | None) -> str:
    kept = "".join(ch for ch in (text or "") if ch.isascii() and ch.isalnum())[:12]
    return kept or "000000"
