"""Voids of sales taken on a smart terminal (TPE), made at that terminal.

The till's void (``POST /api/payments/{id}/void``) journals COMPLETED -> VOID_PENDING before
anything can move money (:class:`gateway.recovery.voids.VoidService`). For a sale of a TPE
lane our acquirer never saw it, so the void is the terminal's cancellation of that debit
("annulation": Concert V2 type 2, Caisse-AP CD 2, under the sale's amount and reference):
:class:`TerminalVoids` waits (bounded) for the lane's terminal, settles what the lane left in
doubt first (the terminal's last transaction must not be overwritten), then has the lane's
:class:`~gateway.payments.terminal_recovery.TerminalRecovery` send the cancellation and journal
its answer (VOIDED; COMPLETED again when the terminal refuses or does not take it; still
VOID_PENDING when the answer is lost, which the lane's recovery settles from the terminal).
"""

from __future__ import annotations

import asyncio
import logging

from drivers import DriverError, SmartTerminal
from gateway.journal import Payment
from gateway.payments.terminal_lanes import TerminalLanes

__all__ = ["TerminalVoids"]

log = logging.getLogger("gateway.payments")
ACTOR = "terminal"


class TerminalVoids(TerminalLanes):
    """The daemon's smart-terminal lanes, as :class:`gateway.recovery.voids.TerminalVoider`.

    Args:
        lanes: The daemon's lanes by id.
    """

    async def void(self, payment: Payment) -> Payment:
        """Cancel the VOID_PENDING sale ``payment`` at its lane's terminal (module docstring).

        Returns:
            The payment after: VOIDED, COMPLETED (refused or not taken: the sale stands) or
            VOID_PENDING (sent, no answer yet).
        """
        lane = self._lanes[payment.lane]
        journal = lane.journal
        if lane.current is not None:
            return await journal.void_refused(
                payment.id, actor=ACTOR, reason="the lane is taking a payment: void later")
        try:
            async with asyncio.timeout(lane.timeouts.reader_ready):
                terminal = await lane.supervisor.wait_ready()
        except TimeoutError:
            return await journal.void_refused(payment.id, actor=ACTOR,
                                              reason="terminal not ready: nothing sent")
        if not isinstance(terminal, SmartTerminal):
            return await journal.void_refused(payment.id, actor=ACTOR,
                                              reason="the lane has no smart terminal")
        recovery = lane.terminal_recovery
        recovery.in_flight.add(payment.id)  # before resolve: this one is ours to send
        try:
            try:
                await recovery.resolve(terminal)
            except DriverError as exc:  # the terminal must first tell about another payment
                log.warning("void %s: the lane's doubt is not settled: %s", payment.id, exc)
                return await journal.void_refused(
                    payment.id, actor=ACTOR,
                    reason=f"terminal busy settling another payment: {type(exc).__name__}")
            return await recovery.void(terminal, payment)
        finally:
            recovery.in_flight.discard(payment.id)
