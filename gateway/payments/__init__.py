"""Payments: one lane per device, one payment session from the till's request to settlement.

:class:`Lane` supervises its device and takes one payment at a time (journal first, then the
card, then the acquirer); :func:`settle` journals the end of each; :mod:`gateway.payments.pinpad`
is the PIN pad; :mod:`gateway.payments.reader` drives a card reader through our EMV kernel.
What a payment leaves in doubt goes to :mod:`gateway.recovery`. See docs/architecture.md.
"""

from __future__ import annotations

from gateway.payments.errors import LaneBusy, NotCancellable, PaymentError, UnsupportedDevice
from gateway.payments.lane import Lane, LaneServices, LaneView, Prompt
from gateway.payments.online import JournaledAuthoriser
from gateway.payments.settle import LaneOutcome, Settled, Verdict, settle

__all__ = [
    "JournaledAuthoriser",
    "Lane",
    "LaneBusy",
    "LaneOutcome",
    "LaneServices",
    "LaneView",
    "NotCancellable",
    "PaymentError",
    "Prompt",
    "Settled",
    "UnsupportedDevice",
    "Verdict",
    "settle",
]
