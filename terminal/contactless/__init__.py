"""Contactless: the EMV Entry Point with kernel 2 (Mastercard) and kernel 3 (Visa).

EMV Contactless Book A (architecture, outcomes, UI), Book B (Entry Point), Book C-2 (kernel 2,
M/Chip EMV mode) and Book C-3 (kernel 3, qVSDC). The one entry is
:func:`run_contactless_transaction`; :func:`~terminal.contactless.replay.replay_transcript`
replays a recorded exchange through it.
"""

from __future__ import annotations

from terminal.contactless.entry_point import run_contactless_transaction
from terminal.contactless.outcome import (
    AlternateInterface,
    CvmOutcome,
    ErrorIndication,
    L2Error,
    Message,
    Outcome,
    OutcomeParameters,
    Start,
    UiRequest,
    UiStatus,
)
from terminal.contactless.payment import run_contactless_payment
from terminal.contactless.preprocessing import Kernel2Settings
from terminal.contactless.result import ContactlessResult, ReplayStats, RestartContext

__all__ = [
    "AlternateInterface",
    "ContactlessResult",
    "CvmOutcome",
    "ErrorIndication",
    "Kernel2Settings",
    "L2Error",
    "Message",
    "Outcome",
    "OutcomeParameters",
    "ReplayStats",
    "RestartContext",
    "Start",
    "UiRequest",
    "UiStatus",
    "run_contactless_payment",
    "run_contactless_transaction",
]
