"""A co-badged card's brand choice: the kernel's application choice, asked of the till.

EU IFR 2015/751 art. 8: on a card with several payment brands the merchant sets a default and
the cardholder may choose another at the point of sale. The kernel asks its
``TransactionRequest.choose_application`` callback when it has several candidates
(EMV 4.4 Book 1, 12.4). :func:`brand_chooser` answers it for one payment: it opens a
:class:`gateway.payments.session.BrandOffer` on the payment's view, tells the till (a ``brand``
event with the brands, the default and the timeout), and waits ``timeouts.brand_choice``
seconds for the lane's ``choose_brand`` (``POST /api/payments/{id}/brand``); without an answer
it takes the default. How the brand was chosen is kept on the view (``brand_note``) and
journaled with the CARD_READ event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.payments.session import BrandOffer, PaymentContext
from terminal import Candidate
from terminal.environment import ChooseApplication

__all__ = ["brand_chooser", "default_brand"]


def default_brand(candidates: Sequence[Candidate], priority: Sequence[str]) -> str | None:
    """The merchant's default AID: the configured brand priority, else the card's first brand
    that needs no confirmation (as the kernel's automatic choice, EMV 4.4 Book 1, 12.4).

    Args:
        candidates: The kernel's candidates, in the card's priority order.
        priority: AID prefixes (hex) of the terminal configuration's ``cobadge_brand_priority``.
    """
    eligible = [c for c in candidates if not c.confirmation_required]
    for prefix in priority:
        wanted = bytes.fromhex(prefix)
        for candidate in eligible:
            if bytes(candidate.aid).startswith(wanted):
                return bytes(candidate.aid).hex().upper()
    return bytes(eligible[0].aid).hex().upper() if eligible else None


def brand_chooser(context: PaymentContext, priority: Sequence[str]) -> ChooseApplication:
    """The kernel's application choice for the payment of ``context`` (module docstring)."""
    view = context.view

    async def choose(candidates: Sequence[Candidate]) -> Candidate | None:
        by_aid = {bytes(c.aid).hex().upper(): c for c in candidates}
        default = default_brand(candidates, priority)
        offer = BrandOffer(
            brands=[{"aid": aid, "label": c.display_name} for aid, c in by_aid.items()],
            default=default,
            timeout=context.timeouts.brand_choice,
            chosen=asyncio.get_running_loop().create_future(),
        )
        view.brand_offer = offer
        context.tell("brand")
        aid: str | None
        try:
            async with asyncio.timeout(offer.timeout):
                aid = await offer.chosen
            how = "chosen by the cardholder"
        except TimeoutError:
            aid, how = default, f"merchant default, no choice within {offer.timeout:g} s"
        finally:
            view.brand_offer = None
            if not offer.chosen.done():
                offer.chosen.cancel()
        if aid is None:
            view.brand_note = "no brand chosen, none can be taken by default"
            return None
        view.brand_note = f"brand {aid} {how} (merchant default {default})"[:200]
        return by_aid[aid]

    return choose
