"""The CARD_READ step's facts, checked once: what the kernel read of the card (masked).

CREATED -> CARD_READ records the masked PAN, the AID, where the card was read (schema 8) and,
for a co-badged card, how its brand was chosen (EU IFR 2015/751 art. 8). CARD_READ announces no
side effect of its own, so it may share the request (and the ``COMMIT``) of the step that
follows it: AUTH_REQUESTED (:meth:`gateway.journal.Journal.card_read_and_request_auth`) or an
offline approval's STORED_FOR_FORWARDING (``read=`` of the store calls,
:mod:`gateway.journal.forwarding`). A crash leaves both steps or neither, and CREATED means
nothing was sent and nothing is owed, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.journal.errors import InvalidRecord
from gateway.journal.guard import check_masked_pan

__all__ = ["AID", "INTERFACES", "CardRead", "card_read_updates"]

#: An AID as the journal keeps it: 5-16 bytes in upper-case hex (EMV 4.4 Book 1, 12.2.1).
AID = re.compile(r"[0-9A-F]{10,32}")
#: Where a card can be read (``payments.interface``, schema 8).
INTERFACES = frozenset({"contact", "contactless", "terminal"})


def card_read_updates(
    masked_pan: str | None, aid: str | None, interface: str | None
) -> dict[str, str | None]:
    """The columns CARD_READ sets, checked (the masked PAN's shape, the AID, the interface).

    Raises:
        InvalidRecord: A value of the wrong shape.
    """
    check_masked_pan(masked_pan)
    if aid is not None and not AID.fullmatch(aid):
        raise InvalidRecord("aid", "expected 5-16 bytes of upper-case hex")
    if interface is not None and interface not in INTERFACES:
        raise InvalidRecord("interface", f"expected one of {', '.join(sorted(INTERFACES))}")
    updates: dict[str, str | None] = {"masked_pan": masked_pan, "aid": aid}
    if interface is not None:
        updates["interface"] = interface
    return updates


@dataclass(frozen=True, slots=True)
class CardRead:
    """A CREATED -> CARD_READ step to journal first, in the same request as the next step.

    Attributes:
        masked_pan: The PAN masked (first 6 + last 4 at most), or None.
        aid: The application's AID, or None.
        interface: ``contact``, ``contactless`` or ``terminal``; None leaves it unset.
        actor: Who read it (``lane[1]``).
        reason: How a co-badged card's brand was chosen ('' when not co-badged).
    """

    masked_pan: str | None
    aid: str | None
    interface: str | None
    actor: str
    reason: str = ""

    def updates(self) -> dict[str, str | None]:
        """The checked columns (raises InvalidRecord, before anything is queued)."""
        return card_read_updates(self.masked_pan, self.aid, self.interface)
