"""The payment state machine: states, the legal transitions, and what recovery does with each.

A sale::

    CREATED ─▶ CARD_READ ─▶ AUTH_REQUESTED ─▶ APPROVED ─▶ COMPLETED ─▶ VOID_PENDING ─▶ VOIDED
       │           │              │  │           └──────▶ REVERSAL_PENDING ─▶ REVERSED
       ▼           ▼              │  ├─▶ DECLINED                ▲
    CANCELLED   CANCELLED         │  └─▶ UNKNOWN ─▶ APPROVED / DECLINED / REVERSAL_PENDING
                   │              │
                   ├─▶ DECLINED (offline decline: the card answered an AAC)
                   └──────────────┴─▶ STORED_FOR_FORWARDING ─▶ FORWARDED
                                                    │
                                                    └─▶ FORWARD_DECLINED ─▶ DECLINE_ACKNOWLEDGED

Offline approval (the card's TC, or "unable to go online" with the Default action codes, EMV 4.4
Book 3, 10.7) *is* the transition into STORED_FOR_FORWARDING: the encrypted authorisation request
is written to the vault in the same SQLite transaction, so no offline-approved payment ever
exists without the data needed to forward it. When the acquirer declines the forwarded
request, the payment moves to FORWARD_DECLINED (not FORWARDED: no money will come for it) and
stays there, shown to the manager, until a manager acknowledges it (DECLINE_ACKNOWLEDGED, with the
manager named in the event). A void is COMPLETED -> VOID_PENDING (journaled, naming who asked,
before the reversal is sent) -> VOIDED, recovered like a reversal; on a payment-terminal lane
the terminal's cancellation may be refused, and the sale stands again (VOID_PENDING ->
COMPLETED, no new outbox row). A refund is a payment of kind
``refund`` that follows the same machine and names its original sale.

Every transition is committed before the side effect it announces (ARCHITECTURE.md, rules).
"""

from __future__ import annotations

import enum

from gateway.journal.errors import IllegalTransition

__all__ = [
    "APPROVED_AT_LANE",
    "FORWARD_DONE",
    "SETTLED",
    "TERMINAL",
    "TRANSITIONS",
    "Action",
    "PaymentKind",
    "PaymentState",
    "check_transition",
    "recovery_action",
]


class PaymentState(enum.StrEnum):
    """Where a payment is; the value is what the journal stores."""

    CREATED = "CREATED"
    CARD_READ = "CARD_READ"
    AUTH_REQUESTED = "AUTH_REQUESTED"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    UNKNOWN = "UNKNOWN"
    COMPLETED = "COMPLETED"
    REVERSAL_PENDING = "REVERSAL_PENDING"
    REVERSED = "REVERSED"
    STORED_FOR_FORWARDING = "STORED_FOR_FORWARDING"
    FORWARDED = "FORWARDED"
    CANCELLED = "CANCELLED"
    #: The acquirer declined a forwarded offline approval: the goods left, no money will come.
    FORWARD_DECLINED = "FORWARD_DECLINED"
    #: A manager has seen the declined forward (the event names who); nothing else to do.
    DECLINE_ACKNOWLEDGED = "DECLINE_ACKNOWLEDGED"
    #: A void of a completed sale was asked for (journaled before the reversal is sent).
    VOID_PENDING = "VOID_PENDING"
    #: The acquirer reversed the voided sale: nothing was charged.
    VOIDED = "VOIDED"


class PaymentKind(enum.StrEnum):
    """A sale takes money; a refund gives it back (and names its sale)."""

    SALE = "sale"
    REFUND = "refund"


S = PaymentState

#: The legal transitions; anything else raises :class:`IllegalTransition`.
TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    S.CREATED: frozenset({S.CARD_READ, S.CANCELLED}),
    S.CARD_READ: frozenset({S.AUTH_REQUESTED, S.DECLINED, S.STORED_FOR_FORWARDING, S.CANCELLED}),
    # AUTH_REQUESTED -> CARD_READ: wrong online PIN (55), the same payment asks again with a
    # new ARQC and a new PIN block (Journal.pin_retry); nothing was charged.
    S.AUTH_REQUESTED: frozenset(
        {S.APPROVED, S.DECLINED, S.UNKNOWN, S.STORED_FOR_FORWARDING, S.CARD_READ}
    ),
    S.UNKNOWN: frozenset({S.APPROVED, S.DECLINED, S.REVERSAL_PENDING}),
    S.APPROVED: frozenset({S.COMPLETED, S.REVERSAL_PENDING}),
    # a void: a completed sale of the current day reversed at the till's request
    S.COMPLETED: frozenset({S.VOID_PENDING}),
    # a terminal refused to cancel the debit (gateway.payments.terminal_recovery): it stands
    S.VOID_PENDING: frozenset({S.VOIDED, S.COMPLETED}),
    S.REVERSAL_PENDING: frozenset({S.REVERSED}),
    S.STORED_FOR_FORWARDING: frozenset({S.FORWARDED, S.FORWARD_DECLINED}),
    S.FORWARD_DECLINED: frozenset({S.DECLINE_ACKNOWLEDGED}),
    S.DECLINED: frozenset(),
    S.REVERSED: frozenset(),
    S.FORWARDED: frozenset(),
    S.CANCELLED: frozenset(),
    S.DECLINE_ACKNOWLEDGED: frozenset(),
    S.VOIDED: frozenset(),
}

#: States whose vault row is purged in the transaction that enters them (the request was sent).
FORWARD_DONE = frozenset({S.FORWARDED, S.FORWARD_DECLINED})

#: States with no way out.
TERMINAL = frozenset(state for state, nexts in TRANSITIONS.items() if not nexts)

#: States in which the sale is done at the lane and head office gets a sale record (outbox).
SETTLED = frozenset({S.COMPLETED, S.STORED_FOR_FORWARDING, S.FORWARDED})

#: Approved at the lane, whatever happened after (a void, the bank declining the forward): the
#: day's "approved" figure counts these, so a payment never leaves the counted set.
APPROVED_AT_LANE = SETTLED | {S.VOID_PENDING, S.VOIDED, S.FORWARD_DECLINED, S.DECLINE_ACKNOWLEDGED}


def check_transition(payment_id: str, current: PaymentState, requested: PaymentState) -> None:
    """Raise unless ``current -> requested`` is a legal transition.

    Args:
        payment_id: Named in the error.
        current: The state in the journal.
        requested: The state asked for.

    Raises:
        IllegalTransition: Naming the payment and both states.
    """
    if requested not in TRANSITIONS[current]:
        raise IllegalTransition(payment_id, current.value, requested.value)


class Action(enum.StrEnum):
    """What restart recovery asks the daemon to do with an unfinished payment."""

    #: Nothing was sent to the acquirer: close it (the till asks again).
    CANCEL = "cancel"
    #: A request was (or may have been) sent and no answer is journaled: ask the acquirer for
    #: the status under the stored idempotency key; reverse if it cannot say.
    STATUS_QUERY = "status_query"
    #: Approved by the acquirer but not completed at the lane (or explicitly pending): reverse.
    REVERSE = "reverse"
    #: Offline-approved and in the vault: forward the stored authorisation request.
    FORWARD = "forward"


_ACTIONS: dict[PaymentState, Action] = {
    S.CREATED: Action.CANCEL,
    S.CARD_READ: Action.CANCEL,
    S.AUTH_REQUESTED: Action.STATUS_QUERY,
    S.UNKNOWN: Action.STATUS_QUERY,
    S.APPROVED: Action.REVERSE,
    S.REVERSAL_PENDING: Action.REVERSE,
    S.VOID_PENDING: Action.REVERSE,
    S.STORED_FOR_FORWARDING: Action.FORWARD,
}


def recovery_action(state: PaymentState) -> Action | None:
    """The recovery action for a payment found in ``state`` at start-up (None: nothing to do)."""
    return _ACTIONS.get(state)
