"""The contact EMV kernel (EMV 4.4 Books 1, 3 and 4), one module per processing step.

:func:`run_contact_transaction` (in :mod:`.flow`) runs a whole transaction; the steps are
:mod:`.selection`, :mod:`.read_data`, :mod:`.authentication`, :mod:`.restrictions`,
:mod:`.cvm`, :mod:`.risk`, :mod:`.action_analysis`, :mod:`.online` and :mod:`.scripts`, sharing
the state of :mod:`.state`.
"""

from __future__ import annotations

from terminal.contact.flow import (
    Candidate,
    OnlineAuthoriser,
    OnlineRequest,
    OnlineResponse,
    run_contact_transaction,
)

__all__ = [
    "Candidate",
    "OnlineAuthoriser",
    "OnlineRequest",
    "OnlineResponse",
    "run_contact_transaction",
]
