"""Payments: one lane per device, one payment session from the till's request to settlement.

:class:`Lane` (:mod:`.lane`) supervises its device and queues the till's payments;
:class:`~gateway.payments.session.PaymentSession` (:mod:`.session`) runs each one whatever the
device is, through its adapter: :mod:`.reader` (a card reader, our EMV kernel) or
:mod:`.smart_terminal` (a TPE that runs EMV itself); :mod:`.online` holds the journal-first
authorisation steps; :mod:`.settle` the one state-policy table; :mod:`.pinpad` the PIN pad;
:mod:`.errors` the ``PaymentError`` branch. What a payment leaves in doubt goes to
:mod:`gateway.recovery`. See docs/architecture.md.
"""

from __future__ import annotations

from gateway.payments.errors import (
    LaneBusy,
    NoBrandChoice,
    NotCancellable,
    NotForManager,
    PaymentError,
    UnsupportedDevice,
)
from gateway.payments.lane import Lane, LaneServices
from gateway.payments.online import JournaledAuthoriser
from gateway.payments.session import BrandOffer, LaneView, Prompt
from gateway.payments.settle import LaneOutcome, Settled, Verdict, settle

__all__ = [
    "BrandOffer",
    "JournaledAuthoriser",
    "Lane",
    "LaneBusy",
    "LaneOutcome",
    "LaneServices",
    "LaneView",
    "NoBrandChoice",
    "NotCancellable",
    "NotForManager",
    "PaymentError",
    "Prompt",
    "Settled",
    "UnsupportedDevice",
    "Verdict",
    "settle",
]
