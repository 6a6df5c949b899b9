"""Turn what the kernel (or a failure) said into the payment's final journaled state.

One rule decides, from the state the journal holds when the card session ends and the lane's
verdict (approved, declined, or no verdict because something failed):

========================  =====================================  =============================
journal state             approved by the card                   declined / failed
========================  =====================================  =============================
CREATED, CARD_READ        STORED_FOR_FORWARDING (TC, 8A Y1)      DECLINED (a card decision) or
                                                                 CANCELLED (no decision)
AUTH_REQUESTED            STORED_FOR_FORWARDING (unable to go    DECLINED when the request was
                          online, 8A Y3)                         never sent; UNKNOWN and the
                                                                 reconciler when it failed in
                                                                 flight
APPROVED                  COMPLETED (outbox row)                 REVERSAL_PENDING, reversal
UNKNOWN                   the reconciler                         the reconciler
DECLINED / CANCELLED      (stays)                                (stays)
========================  =====================================  =============================

Nothing here guesses "approved": a payment leaves UNKNOWN only through the host's answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.journal import Journal, Payment, PaymentState, VaultError
from gateway.recovery.reconciler import Reconciler

__all__ = ["LaneOutcome", "Settled", "Verdict", "settle"]

S = PaymentState


class Verdict(enum.Enum):
    """What the lane learnt at the end of the card session."""

    APPROVED = "approved"
    DECLINED = "declined"
    NONE = "none"  # no decision: cancelled, timed out, card or reader failure
    FAILED_IN_FLIGHT = "failed_in_flight"  # a failure while the request may have been sent


class LaneOutcome(enum.StrEnum):
    """What the till is told."""

    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ERROR = "error"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Settled:
    """The final state and the till's outcome."""

    payment: Payment
    outcome: LaneOutcome
    offline: bool = False


def _code(arc: bytes | None) -> str | None:
    if arc is None:
        return None
    text = arc.decode("ascii", "replace")
    return text if text.isalnum() and text.isascii() else None


async def settle(
    journal: Journal,
    reconciler: Reconciler,
    payment_id: str,
    *,
    verdict: Verdict,
    arc: bytes | None,
    masked_pan: str | None,
    aid: str | None,
    sealed: bytes | None,
    actor: str,
    reason: str,
) -> Settled:
    """Journal the end of a payment (see the table in the module docstring).

    Args:
        journal: The journal.
        reconciler: Takes payments whose outcome is unknown or that need a reversal.
        payment_id: The payment.
        verdict: The lane's verdict.
        arc: Authorisation Response Code (8A) the kernel ended with, if any.
        masked_pan: For CARD_READ when the kernel never went online.
        aid: Likewise.
        sealed: The forwarding request for an offline approval (None: cannot store).
        actor: Recorded in the events.
        reason: Why (no card data), recorded in the events.
    """
    payment = await journal.get(payment_id)
    decided = verdict in (Verdict.APPROVED, Verdict.DECLINED)
    if payment.state is S.CREATED and decided:
        payment = await journal.card_read(payment_id, masked_pan=masked_pan, aid=aid, actor=actor)
    state = payment.state
    if verdict is Verdict.APPROVED:
        if state is S.APPROVED:
            return Settled(
                await journal.complete(payment_id, actor=actor, reason=reason), LaneOutcome.APPROVED
            )
        if state in (S.CARD_READ, S.AUTH_REQUESTED):
            if sealed is None:
                declined = await journal.decline(
                    payment_id,
                    response_code="Z3",
                    actor=actor,
                    reason="offline approval without forwardable data",
                )
                return Settled(declined, LaneOutcome.DECLINED)
            try:
                stored = await journal.store_for_forwarding(
                    payment_id,
                    request=sealed,
                    response_code=_code(arc) or "Y1",
                    actor=actor,
                    reason=reason,
                )
            except VaultError as exc:  # no vault key configured: no offline approvals
                declined = await journal.decline(
                    payment_id,
                    response_code="Z3",
                    actor=actor,
                    reason=f"offline approval cannot be stored: {type(exc).__name__}",
                )
                return Settled(declined, LaneOutcome.DECLINED)
            reconciler.add(payment_id)
            return Settled(stored, LaneOutcome.APPROVED, offline=True)
    if state in (S.CREATED, S.CARD_READ):
        if verdict is Verdict.DECLINED:
            declined = await journal.decline(
                payment_id, response_code=_code(arc), actor=actor, reason=reason
            )
            return Settled(declined, LaneOutcome.DECLINED)
        cancelled = await journal.cancel(payment_id, actor=actor, reason=reason)
        stopped = reason.startswith(("cancelled", "no card"))  # the till or the cardholder
        outcome = LaneOutcome.CANCELLED if stopped else LaneOutcome.ERROR
        return Settled(cancelled, outcome)
    if state is S.AUTH_REQUESTED:
        if verdict is Verdict.FAILED_IN_FLIGHT:
            unknown = await journal.mark_unknown(payment_id, actor=actor, reason=reason)
            reconciler.add(payment_id)
            return Settled(unknown, LaneOutcome.UNKNOWN)
        declined = await journal.decline(
            payment_id, response_code=_code(arc) or "Z3", actor=actor, reason=reason
        )
        return Settled(declined, LaneOutcome.DECLINED)
    if state is S.APPROVED:
        pending = await journal.request_reversal(
            payment_id, actor=actor, reason=f"not completed at the lane: {reason}"
        )
        reconciler.add(payment_id)
        return Settled(pending, LaneOutcome.DECLINED)
    if state is S.UNKNOWN:
        reconciler.add(payment_id)
        return Settled(payment, LaneOutcome.UNKNOWN)
    if state is S.CANCELLED:
        return Settled(payment, LaneOutcome.CANCELLED)
    if state in (S.COMPLETED, S.STORED_FOR_FORWARDING, S.FORWARDED):
        return Settled(payment, LaneOutcome.APPROVED, offline=state is not S.COMPLETED)
    return Settled(payment, LaneOutcome.DECLINED)
