"""The manager page's provider: what waits for a manager, read from the journal and the lanes.

:class:`~gateway.security.manager.ManagerPages` does not read payments itself (the security
part sits below the payments part: docs/architecture.md); the daemon hands it
:func:`manager_work_provider`, which returns plain :class:`~gateway.security.manager_work`
records:

* the declined forwards (FORWARD_DECLINED, any day, oldest first) from the journal's money
  figures kept in memory by its commits (:class:`gateway.journal.money.DayMoney`, what the
  status page's money part lists), masked PAN only;
* each lane's ``terminal_recovery.for_manager`` (payment-terminal payments left UNKNOWN, voids
  left VOID_PENDING: docs/tpe.md "Settled by hand"), each read from the journal for its amount
  and state; one settled meanwhile is left out;
* the currency of each refund approval's sale the page asks about (an approval records the
  amount only), so the page writes ``€90.00``, not ``9000``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from gateway.journal import Journal, PaymentState, UnknownPayment
from gateway.payments import Lane
from gateway.security.manager_work import (
    DeclinedForward,
    LeftForManager,
    ManagerWork,
    WorkProvider,
)

__all__ = ["DECLINED_LISTED", "manager_work_provider"]

#: Declined forwards listed on the page (the rest are counted).
DECLINED_LISTED = 50
#: Refund approvals' sales whose currency is read for one page (the others show minor units).
CURRENCIES_READ = 200

_LEFT = frozenset({PaymentState.UNKNOWN, PaymentState.VOID_PENDING})


def manager_work_provider(
    journal: Callable[[], Journal | None], lanes: Callable[[], Iterable[Lane]]
) -> WorkProvider:
    """A provider reading the daemon's current journal and lanes at each call.

    Args:
        journal: The open journal (None or closed: nothing is listed).
        lanes: The daemon's lanes.
    """

    async def work(sale_ids: Sequence[str]) -> ManagerWork:
        current = journal()
        if current is None or current.closed:
            return ManagerWork()
        currencies: dict[str, str] = {}
        for sale_id in list(dict.fromkeys(sale_ids))[:CURRENCIES_READ]:
            try:
                currencies[sale_id] = (await current.get(sale_id)).currency
            except UnknownPayment:
                continue
        declined = current.money.read().declined_forwards
        listed = tuple(
            DeclinedForward(
                payment_id=p.id,
                amount=p.amount,
                currency=p.currency,
                masked_pan=p.masked_pan,
                lane=p.lane,
                at_ms=p.updated_ms,
                response_code=p.response_code,
            )
            for p in declined[:DECLINED_LISTED]
        )
        terminal: list[LeftForManager] = []
        for lane in lanes():
            for payment_id in list(lane.terminal_recovery.for_manager):
                try:
                    payment = await current.get(payment_id)
                except UnknownPayment:
                    continue
                if payment.state not in _LEFT:
                    continue
                terminal.append(
                    LeftForManager(
                        payment_id=payment.id,
                        lane=payment.lane,
                        amount=payment.amount,
                        currency=payment.currency,
                        state=payment.state.value,
                    )
                )
        return ManagerWork(
            declined=listed,
            terminal=tuple(terminal),
            declined_more=max(0, len(declined) - DECLINED_LISTED),
            sale_currencies=currencies,
        )

    return work
