"""What the journal hands back: payments, events, outbox items and the recovery plan.

Plain frozen dataclasses built from SQLite rows. None of them can hold a clear PAN: the write
path (:mod:`gateway.journal.guard`) refuses one, and vault plaintext is only ever returned as
the bytes of :meth:`Journal.forwarding_request`, never kept in a record.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.journal.states import Action, PaymentKind, PaymentState

__all__ = [
    "Event",
    "HostApproval",
    "OutboxItem",
    "Payment",
    "PendingPayment",
    "Recovery",
    "TerminalTotals",
]


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment as journaled (amounts in minor units, times in ms since the epoch)."""

    id: str
    kind: PaymentKind
    state: PaymentState
    lane: str
    amount: int
    currency: str
    refund_of: str | None
    items: list[Any] | None
    masked_pan: str | None
    aid: str | None
    auth_code: str | None
    response_code: str | None
    idempotency_key: str | None
    created_ms: int
    updated_ms: int
    till_reference: str | None = None
    #: ``contact``, ``contactless`` or ``terminal`` (schema 8); None before the card step or
    #: for rows journaled before version 8.
    interface: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Payment:
        """Build from a ``SELECT * FROM payments`` row."""
        return cls(
            id=row["id"],
            kind=PaymentKind(row["kind"]),
            state=PaymentState(row["state"]),
            lane=row["lane"],
            amount=row["amount"],
            currency=row["currency"],
            refund_of=row["refund_of"],
            items=None if row["items"] is None else json.loads(row["items"]),
            masked_pan=row["masked_pan"],
            aid=row["aid"],
            auth_code=row["auth_code"],
            response_code=row["response_code"],
            idempotency_key=row["idempotency_key"],
            created_ms=row["created_ms"],
            updated_ms=row["updated_ms"],
            till_reference=row["till_reference"],
            interface=row["interface"],
        )

    def sale_record(self, *, offline: bool) -> dict[str, Any]:
        """The record head office receives through the outbox when the payment settles."""
        record: dict[str, Any] = {
            "type": self.kind.value,
            "payment_id": self.id,
            "lane": self.lane,
            "amount": self.amount,
            "currency": self.currency,
            "masked_pan": self.masked_pan,
            "aid": self.aid,
            "auth_code": self.auth_code,
            "response_code": self.response_code,
            "offline": offline,
            "completed_ms": self.updated_ms,
        }
        if self.refund_of is not None:
            record["refund_of"] = self.refund_of
        if self.till_reference is not None:
            record["reference"] = self.till_reference
        if self.interface is not None:
            record["interface"] = self.interface
        if self.items is not None:
            record["items"] = self.items
        return record


@dataclass(frozen=True, slots=True)
class HostApproval:
    """The acquirer's approval of an online request, not yet journaled: the lane holds it
    until the card has answered and journals it with the payment's next state, in one request
    (:meth:`gateway.journal.Journal.approve_then`)."""

    auth_code: str
    response_code: str = "00"
    #: Who approved, for the APPROVED event.
    actor: str = "acquirer"


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the append-only event log: who moved which payment from where to where."""

    seq: int
    payment_id: str
    at_ms: int
    actor: str
    from_state: PaymentState | None
    to_state: PaymentState
    reason: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Event:
        """Build from a ``SELECT * FROM events`` row."""
        return cls(
            seq=row["seq"],
            payment_id=row["payment_id"],
            at_ms=row["at_ms"],
            actor=row["actor"],
            from_state=None if row["from_state"] is None else PaymentState(row["from_state"]),
            to_state=PaymentState(row["to_state"]),
            reason=row["reason"],
        )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A sale record waiting for head office, as claimed by :meth:`Journal.claim_batch`.

    ``text`` is the record exactly as the journal stored it (compact JSON, keys sorted:
    docs/journal.md, "Outbox"): the publisher puts it in the message as it is, so what is
    screened for card data is what is sent. ``body`` is that JSON decoded (on each access:
    read it once).
    """

    id: int
    payment_id: str
    text: str
    attempts: int
    created_ms: int

    @property
    def body(self) -> dict[str, Any]:
        """The record as a dict (decoded from ``text``)."""
        decoded: dict[str, Any] = json.loads(self.text)
        return decoded

    @classmethod
    def of(
        cls, id: int, payment_id: str, body: dict[str, Any], attempts: int, created_ms: int
    ) -> OutboxItem:
        """An item for ``body``, encoded as the journal stores records."""
        return cls(id, payment_id, encode_record(body), attempts, created_ms)


def encode_record(body: dict[str, Any]) -> str:
    """A sale record as the outbox stores it: compact JSON, keys sorted."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class PendingPayment:
    """A payment found unfinished at start-up, and what to do with it."""

    payment: Payment
    action: Action


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`Journal.recover` found: run it before the daemon says it is ready.

    Attributes:
        pending: Unfinished payments, oldest first, each with its action.
        outbox_unsent: Sale records not yet acknowledged by head office.
        released_claims: Outbox claims of the previous run that were released for retry.
    """

    pending: tuple[PendingPayment, ...]
    outbox_unsent: int
    released_claims: int

    def by_action(self, action: Action) -> list[Payment]:
        """The pending payments that need ``action``, oldest first."""
        return [item.payment for item in self.pending if item.action is action]


@dataclass(frozen=True, slots=True)
class TerminalTotals:
    """An end of day at a smart terminal: what it reported, for reconciliation.

    Amounts in minor units; None where the terminal did not say.
    """

    id: int
    lane: str
    at_ms: int
    actor: str
    ok: bool
    transactions: int | None
    debits: int | None
    refunds: int | None
    currency: str | None
    message: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TerminalTotals:
        """Build from a ``SELECT * FROM terminal_totals`` row."""
        return cls(id=row["id"], lane=row["lane"], at_ms=row["at_ms"], actor=row["actor"],
                   ok=bool(row["ok"]), transactions=row["transactions"], debits=row["debits"],
                   refunds=row["refunds"], currency=row["currency"], message=row["message"])
