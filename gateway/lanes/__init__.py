"""The lanes: one supervised reader per till, the payment flow, and the reconciler.

:class:`Lane` takes one payment at a time (journal first, then the card, then the acquirer);
:func:`settle` journals the end of each; :class:`Reconciler` finishes what a lane or a
previous run left (status queries, reversals, store-and-forward). See docs/daemon.md.
"""

from __future__ import annotations

from gateway.lanes.lane import Lane, LaneBusy, LaneServices, LaneView, NotCancellable, Prompt
from gateway.lanes.online import AcquirerHealth, JournaledAuthoriser
from gateway.lanes.reconcile import FORWARDING, RESOLVING, Reconciler
from gateway.lanes.settle import LaneOutcome, Settled, Verdict, settle

__all__ = [
    "FORWARDING",
    "RESOLVING",
    "AcquirerHealth",
    "JournaledAuthoriser",
    "Lane",
    "LaneBusy",
    "LaneOutcome",
    "LaneServices",
    "LaneView",
    "NotCancellable",
    "Prompt",
    "Reconciler",
    "Settled",
    "Verdict",
    "settle",
]
