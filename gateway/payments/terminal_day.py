"""End of day at a lane's smart terminal (Caisse-AP remittance), its totals kept in the journal.

:func:`end_of_day` waits (bounded) for the lane's terminal, settles what is in doubt first (the
terminal's last transaction must not be overwritten by the remittance), asks the terminal to
close its day (:meth:`drivers.SmartTerminal.end_of_day`: Caisse-AP CD "B"; Concert V2 has none
and says so) and records what it answered in the journal's ``terminal_totals`` table: whether
it closed, the transaction count and the debit and refund totals where the terminal gives them.
Day close and reconciliation (another part of the gateway) read them from there. Nothing here
moves money.
"""

from __future__ import annotations

import asyncio

from drivers import DriverError, SmartTerminal
from gateway.journal import TerminalTotals
from gateway.payments.errors import LaneBusy
from gateway.payments.lane import Lane

__all__ = ["end_of_day"]


async def end_of_day(lane: Lane, *, actor: str) -> TerminalTotals:
    """Close the day at ``lane``'s terminal and journal its totals (see the module docstring).

    Args:
        lane: A smart-terminal lane.
        actor: Who asked (recorded with the totals).

    Raises:
        LaneBusy: A payment is in progress on the lane.
    """
    if lane.current is not None:
        raise LaneBusy(f"lane {lane.id} is taking a payment")
    journal = lane.journal
    try:
        async with asyncio.timeout(lane.timeouts.reader_ready):
            terminal = await lane.supervisor.wait_ready()
    except TimeoutError:
        return await journal.add_terminal_totals(lane=str(lane.id), actor=actor, ok=False,
                                                 message="terminal not ready")
    if not isinstance(terminal, SmartTerminal):
        return await journal.add_terminal_totals(lane=str(lane.id), actor=actor, ok=False,
                                                 message="the lane has no smart terminal")
    try:
        await lane.terminal_recovery.resolve(terminal)
        async with asyncio.timeout(lane.timeouts.transaction):
            result = await terminal.end_of_day()
    except (DriverError, TimeoutError) as exc:
        return await journal.add_terminal_totals(
            lane=str(lane.id), actor=actor, ok=False,
            message=f"{type(exc).__name__}: {exc}"[:200])
    debits, refunds = result.totals.get("debits"), result.totals.get("refunds")
    some = debits if debits is not None else refunds
    currency = None if some is None else some.alpha
    return await journal.add_terminal_totals(
        lane=str(lane.id), actor=actor, ok=result.ok, transactions=result.transactions,
        debits=None if debits is None else debits.minor_units,
        refunds=None if refunds is None else refunds.minor_units,
        currency=currency, message=result.message)
