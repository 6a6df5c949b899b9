"""The state policy: which journal state follows which verdict, in one table, and its executor.

When a device adapter is done (:mod:`gateway.payments.session`), the session knows a
:class:`Verdict` and the journal holds a state. :data:`POLICY` maps every ``(state, verdict)``
pair to one :class:`Rule`: the journal step to take and what the till is told. Nothing else in
the gateway decides the end of a payment; ``tests/gateway/payments/test_settle.py`` walks the
whole table on a real journal.

In words (EMV 4.4 Book 3, 10.7-10.9 for the card's side):

* approved by the card with no online answer journaled (CARD_READ, or AUTH_REQUESTED when the
  host could not be reached, 8A ``Y3``): STORED_FOR_FORWARDING with the sealed request, or
  DECLINED ``Z3`` when it cannot be sealed (no PAN, no vault key); a payment still in CREATED
  (an offline approval: nothing was asked of the host) journals its CARD_READ in the store's
  own request, one ``COMMIT`` (:mod:`gateway.journal.card_read`);
* approved after the host approved (APPROVED): COMPLETED, with its outbox row;
* declined: DECLINED; a host approval the card then refused: REVERSAL_PENDING and a reversal;
* a host approval the lane holds (``approval``: the reader path journals it here, not before
  the card's second GENERATE AC, :mod:`gateway.payments.online`) makes AUTH_REQUESTED or
  UNKNOWN read as APPROVED, and APPROVED is journaled in the same request as COMPLETED or
  REVERSAL_PENDING (:meth:`gateway.journal.Journal.approve_then`);
* stopped (the till cancelled, no card came) or failed before anything was sent: CANCELLED;
* in doubt (a failure while the request may have been out): UNKNOWN, handed to recovery;
* a state the session finds already final stays, and tells the till what it says;
* with store-and-forward limits (docs/day.md), STORE first asks them, atomically with the store:
  a refused offline approval is DECLINED ``Z3`` instead.

Nothing here guesses "approved": a payment leaves UNKNOWN only through an answer.

One step goes back instead of ending the payment, decided here too (:func:`may_retry_pin`): the
issuer answered wrong PIN (55) to a contact card's online PIN with PIN entries left. The
authoriser journals AUTH_REQUESTED -> CARD_READ (:meth:`gateway.journal.Journal.pin_retry`,
nothing was charged) and the reader adapter runs the kernel again on the same payment; 55
without a retry, and 75 (PIN tries exceeded), reach this table as DECLINED.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.journal import HostApproval, Journal, Payment, PaymentState, VaultError
from gateway.journal.card_read import CardRead
from gateway.journal.queries import OfflineExposure

__all__ = [
    "MAX_PIN_ENTRIES",
    "POLICY",
    "WRONG_PIN_CODE",
    "Admission",
    "LaneOutcome",
    "Rule",
    "Settled",
    "Step",
    "Verdict",
    "may_retry_pin",
    "settle",
]

S = PaymentState
#: The store-and-forward limits' check: None admits the offline approval, else the refusal.
Admission = Callable[[Payment, Mapping[str, OfflineExposure]], str | None]

#: Response code of a wrong online PIN (ISO 8583 "incorrect PIN").
WRONG_PIN_CODE = "55"
#: Online PIN entries on one payment (the issuer answers 75 after three wrong ones anyway).
MAX_PIN_ENTRIES = 3


class Verdict(enum.Enum):
    """What the session learnt when the device was done."""

    APPROVED = "approved"
    DECLINED = "declined"
    #: No decision: the till cancelled, or no card came in time (the till is told CANCELLED).
    STOPPED = "stopped"
    #: No decision: the device, card or kernel failed while nothing could have been sent.
    FAILED = "failed"
    #: A failure while the request may have been sent (acquirer or terminal): in doubt.
    IN_DOUBT = "in_doubt"


class LaneOutcome(enum.StrEnum):
    """What the till is told."""

    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ERROR = "error"
    UNKNOWN = "unknown"


class Step(enum.Enum):
    """The journal step a rule takes."""

    COMPLETE = "complete"  # APPROVED -> COMPLETED (outbox row)
    STORE = "store"  # -> STORED_FOR_FORWARDING (sealed request), else DECLINED Z3
    DECLINE = "decline"  # -> DECLINED (the card's or host's code, else Z3)
    CANCEL = "cancel"  # -> CANCELLED
    MARK_UNKNOWN = "mark_unknown"  # AUTH_REQUESTED -> UNKNOWN, then recovery
    REVERSE = "reverse"  # APPROVED -> REVERSAL_PENDING, then recovery
    RECOVER = "recover"  # stays (UNKNOWN): recovery resolves it
    KEEP = "keep"  # stays: already final


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the policy: the step, and the till's outcome."""

    step: Step
    outcome: LaneOutcome


def _table() -> dict[tuple[PaymentState, Verdict], Rule]:
    ok, no, stop = LaneOutcome.APPROVED, LaneOutcome.DECLINED, LaneOutcome.CANCELLED
    err, unknown = LaneOutcome.ERROR, LaneOutcome.UNKNOWN
    v = Verdict
    rows: dict[tuple[PaymentState, Verdict], Rule] = {}
    for state in (S.CREATED, S.CARD_READ):  # nothing sent yet
        rows[state, v.APPROVED] = Rule(Step.STORE, ok)
        rows[state, v.DECLINED] = Rule(Step.DECLINE, no)
        rows[state, v.STOPPED] = Rule(Step.CANCEL, stop)
        rows[state, v.FAILED] = Rule(Step.CANCEL, err)
        rows[state, v.IN_DOUBT] = Rule(Step.CANCEL, err)
    rows[S.AUTH_REQUESTED, v.APPROVED] = Rule(Step.STORE, ok)  # unable to go online, Y3
    rows[S.AUTH_REQUESTED, v.DECLINED] = Rule(Step.DECLINE, no)
    rows[S.AUTH_REQUESTED, v.STOPPED] = Rule(Step.DECLINE, stop)  # cancelled at a terminal
    rows[S.AUTH_REQUESTED, v.FAILED] = Rule(Step.DECLINE, no)
    rows[S.AUTH_REQUESTED, v.IN_DOUBT] = Rule(Step.MARK_UNKNOWN, unknown)
    rows[S.APPROVED, v.APPROVED] = Rule(Step.COMPLETE, ok)
    for verdict in (v.DECLINED, v.STOPPED, v.FAILED, v.IN_DOUBT):
        rows[S.APPROVED, verdict] = Rule(Step.REVERSE, no)
    for verdict in Verdict:
        rows[S.UNKNOWN, verdict] = Rule(Step.RECOVER, unknown)
        rows[S.CANCELLED, verdict] = Rule(Step.KEEP, stop)
        rows[S.COMPLETED, verdict] = Rule(Step.KEEP, ok)
        rows[S.STORED_FOR_FORWARDING, verdict] = Rule(Step.KEEP, ok)
        rows[S.FORWARDED, verdict] = Rule(Step.KEEP, ok)
        for final in (S.DECLINED, S.REVERSAL_PENDING, S.REVERSED, S.FORWARD_DECLINED,
                      S.DECLINE_ACKNOWLEDGED, S.VOID_PENDING, S.VOIDED):  # fmt: skip
            rows[final, verdict] = Rule(Step.KEEP, no)
    return rows


#: The states a held host approval is journaled from (the request sent, or its answer lost).
_HELD_APPROVAL_FROM = frozenset({S.AUTH_REQUESTED, S.UNKNOWN})

#: (journal state when the device is done, verdict) -> the rule. Covers every pair.
POLICY: dict[tuple[PaymentState, Verdict], Rule] = _table()

#: The step a rule takes, by the state it leaves the payment in (for the docs and the test).
RESULT: dict[Step, PaymentState | None] = {
    Step.COMPLETE: S.COMPLETED,
    Step.STORE: S.STORED_FOR_FORWARDING,
    Step.DECLINE: S.DECLINED,
    Step.CANCEL: S.CANCELLED,
    Step.MARK_UNKNOWN: S.UNKNOWN,
    Step.REVERSE: S.REVERSAL_PENDING,
    Step.RECOVER: None,
    Step.KEEP: None,
}


def may_retry_pin(
    *, response_code: str | None, interface: str | None, entries: int, pins_left: int
) -> bool:
    """Whether a wrong online PIN goes back to CARD_READ for another entry (module docstring).

    EMV 4.4 Book 3, 10.5.2 and Book 4, 6.3.4: the issuer checks the online PIN; a retry is a
    new online authorisation of the same payment with a new PIN block. Only a contact card is
    still in the reader to be asked again.

    Args:
        response_code: The issuer's response code.
        interface: ``contact``, ``contactless`` or ``terminal``.
        entries: Online PIN entries made on this payment so far.
        pins_left: PIN entries the PIN pad can still take (a virtual pad's sequence).
    """
    return (
        response_code == WRONG_PIN_CODE
        and interface == "contact"
        and entries < MAX_PIN_ENTRIES
        and pins_left > 0
    )


@dataclass(frozen=True, slots=True)
class Settled:
    """The final state and the till's outcome."""

    payment: Payment
    outcome: LaneOutcome
    offline: bool = False
    #: Why the store-and-forward limits refused the card's offline approval (docs/day.md).
    refusal: str | None = None


def _code(arc: bytes | None) -> str | None:
    if arc is None:
        return None
    text = arc.decode("ascii", "replace")
    return text if text.isalnum() and text.isascii() else None


async def settle(
    journal: Journal,
    payment_id: str,
    *,
    verdict: Verdict,
    arc: bytes | None,
    masked_pan: str | None,
    aid: str | None,
    sealed: bytes | None,
    actor: str,
    reason: str,
    recover: Callable[[str], None],
    card_read_reason: str = "",
    interface: str | None = None,
    admit: Admission | None = None,
    approval: HostApproval | None = None,
) -> Settled:
    """Journal the end of a payment by :data:`POLICY` (see the module docstring).

    Args:
        journal: The journal.
        payment_id: The payment.
        verdict: The session's verdict.
        arc: Authorisation Response Code (8A) the device ended with, if any.
        masked_pan: For CARD_READ when the card was read but never went online.
        aid: Likewise.
        sealed: The forwarding request for an offline approval (None: cannot store).
        actor: Recorded in the events.
        reason: Why (no card data), recorded in the events.
        recover: Takes a payment left in doubt or to reverse (the reconciler, for payments
            the acquirer knows under their idempotency key).
        card_read_reason: How a co-badged card's brand was chosen, for a CARD_READ journaled
            here.
        interface: Where the card was read, for a CARD_READ journaled here.
        admit: The store-and-forward limits (:meth:`gateway.day.limits.OfflineGate.admission`):
            an offline approval they refuse is DECLINED (8A Z3) in the same journal call that
            would have stored it, so two lanes never both take the last place under a limit.
        approval: The host's approval, not journaled yet (:attr:`JournaledAuthoriser.approval
            <gateway.payments.online.JournaledAuthoriser.approval>`): journaled here with the
            step that follows it.
    """
    payment = await journal.get(payment_id)
    read: CardRead | None = None
    state = payment.state
    if approval is not None and state not in _HELD_APPROVAL_FROM:
        approval = None  # journaled otherwise meanwhile: the journal's state rules
    if approval is not None:
        state = S.APPROVED
    if state is S.CREATED and verdict in (Verdict.APPROVED, Verdict.DECLINED):
        state = S.CARD_READ
        if POLICY[state, verdict].step is Step.STORE and sealed is not None:
            # journaled with the store, in one request (gateway.journal.card_read)
            read = CardRead(masked_pan, aid, interface, actor, card_read_reason)
        else:
            payment = await journal.card_read(
                payment_id, masked_pan=masked_pan, aid=aid, actor=actor, reason=card_read_reason,
                interface=interface,
            )
    rule = POLICY[state, verdict]
    step = rule.step
    if step is Step.COMPLETE:
        if approval is not None:
            payment = await journal.approve_then(
                payment_id, approval, S.COMPLETED, actor=actor, reason=reason
            )
        else:
            payment = await journal.complete(payment_id, actor=actor, reason=reason)
    elif step is Step.STORE:
        if sealed is None:
            payment = await journal.decline(
                payment_id,
                response_code="Z3",
                actor=actor,
                reason="offline approval without forwardable data",
            )
            return Settled(payment, LaneOutcome.DECLINED)
        try:
            if admit is not None:
                payment, refusal = await journal.store_for_forwarding_within(
                    payment_id,
                    request=sealed,
                    response_code=_code(arc) or "Y1",
                    actor=actor,
                    admit=admit,
                    reason=reason,
                    read=read,
                )
                if refusal is not None:
                    return Settled(payment, LaneOutcome.DECLINED, refusal=refusal)
            else:
                payment = await journal.store_for_forwarding(
                    payment_id,
                    request=sealed,
                    response_code=_code(arc) or "Y1",
                    actor=actor,
                    reason=reason,
                    read=read,
                )
        except VaultError as exc:  # no vault key configured: no offline approvals
            if read is not None:  # the failed request wrote nothing: the card was read, though
                await journal.card_read(
                    payment_id, masked_pan=read.masked_pan, aid=read.aid, actor=read.actor,
                    reason=read.reason, interface=read.interface,
                )  # fmt: skip
            payment = await journal.decline(
                payment_id,
                response_code="Z3",
                actor=actor,
                reason=f"offline approval cannot be stored: {type(exc).__name__}",
            )
            return Settled(payment, LaneOutcome.DECLINED)
        recover(payment_id)
        return Settled(payment, rule.outcome, offline=True)
    elif step is Step.DECLINE:
        code = _code(arc) if payment.state is not S.AUTH_REQUESTED else _code(arc) or "Z3"
        payment = await journal.decline(payment_id, response_code=code, actor=actor, reason=reason)
    elif step is Step.CANCEL:
        payment = await journal.cancel(payment_id, actor=actor, reason=reason)
    elif step is Step.MARK_UNKNOWN:
        payment = await journal.mark_unknown(payment_id, actor=actor, reason=reason)
        recover(payment_id)
    elif step is Step.REVERSE:
        why = f"not completed at the lane: {reason}"
        if approval is not None:
            payment = await journal.approve_then(
                payment_id, approval, S.REVERSAL_PENDING, actor=actor, reason=why
            )
        else:
            payment = await journal.request_reversal(payment_id, actor=actor, reason=why)
        recover(payment_id)
    elif step is Step.RECOVER:
        recover(payment_id)
    offline = payment.state in (S.STORED_FOR_FORWARDING, S.FORWARDED)
    return Settled(payment, rule.outcome, offline=offline)
